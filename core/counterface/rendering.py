"""Operators, alpha and rendering: move the pivot latent (pi_1 / pi_0), render it through the tuned
generator, paste it back; the ``--alpha auto`` search. A part of :class:`counterface.pipeline.Pipeline`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .convert import to_image
from .device import autocast
from .errors import ConfigError
from .provenance import Timer
from .types import AlignedFace, EditResult, Pivot

#: output roles: the image of pi_1 (attribute on) and of pi_0 (attribute off), in every command
ROLES = {"pi1": "z1", "pi0": "z0"}


def full_steps(n: int, value: float) -> np.ndarray:
    """(n,) float64 distance steps, all ``value``: host-side numbers (never device or fake tensors),
    so that deciding the uniform edit path reads no tensor data."""
    return np.full((n,), float(value), dtype=np.float64)


class Rendering:
    """The operator and rendering part of a pipeline (mixed into :class:`~counterface.pipeline.Pipeline`)."""

    def alphas(self, alpha: Any = None) -> list[float]:
        """One strength per edited attribute from ``alpha`` (default ``edit.alpha``): a number for all,
        or a list with one per ``--direction``."""
        from .settings import parse_alpha

        n = len(self.attribute_edits())
        value = parse_alpha(self.edit["alpha"] if alpha is None else alpha, n)
        if value == "auto":
            raise ConfigError("--alpha auto is resolved per face: call Pipeline.auto_alpha first")
        values = list(value) if isinstance(value, list) else [float(value)] * n
        if len(values) != n:
            raise ConfigError(f"{len(values)} alpha values for {n} directions; give one, or one per --direction")
        return values

    def counterfactual_latent(self, pivot: Pivot, role_or_operator: Any, alpha: Any = None):
        """(w, records, photo) for an operator (a role name or an Operator) on the pivot latent: the moved
        (num_ws, w_dim) latent (None for an operator that returns the photo), the sidecar
        ``attributes`` list and whether the output is the photo itself."""
        from . import counterfactual as cf

        if isinstance(role_or_operator, str):
            op = self.operator(role_or_operator)
        else:
            op = role_or_operator
            cf.check_intercept(op, getattr(op, "name", "") or "operator", self.attribute_edits())
        edits = self.attribute_edits()
        w = pivot.w
        alphas = self.alphas(alpha)
        name = getattr(op, "name", "") or type(op).__name__.lower()
        if getattr(op, "returns_photo", False):
            return None, cf.records(name, edits, None, w, None, photo=True), True
        keep = self.kept_attributes()
        if any(getattr(e.direction, "field", None) is not None for e in [*edits, *keep]):  # per-face paths
            from .fieldpath import pipeline_move

            return (*pipeline_move(name, op, edits, keep, w, alphas), False)
        steps = cf.steps_for(op, edits, w, alphas)
        w_out = cf.move(w, edits, steps, keep, uniform_apply=not getattr(op, "needs_intercept", False))
        return w_out, cf.records(name, edits, steps, w, w_out), False

    def edit_latent(self, w, alpha: float):
        """Step 5 as a plain shift: w+ + alpha * v on the configured layers, whatever the operators."""
        from . import counterfactual as cf

        edits = self.attribute_edits()
        steps = [full_steps(len(e.rows), a) for e, a in zip(edits, self.alphas(alpha))]
        return cf.move(w, edits, steps, self.kept_attributes(), uniform_apply=True)

    def synthesize(self, pivot: Pivot, w) -> np.ndarray:
        """Step 6: the crop from the pivot's tuned generator, (R, R, 3) uint8."""
        import torch

        g = self.generator
        dev = next(iter(g.module.parameters())).device
        w = (w.unsqueeze(0) if w.dim() == 2 else w).to(dev, torch.float32)
        with torch.no_grad(), g.load_tensors(pivot.tensors), autocast(self.device, self.precision):
            img = g.synthesize(w).float()
        return to_image(img)

    def _finish(self, photo, face, pivot, w, alpha, t, records, role=None) -> EditResult:
        with t("synthesize"):
            crop = self.synthesize(pivot, w)
        with t("blend"):
            out = self.component("blender").blend(photo, crop, face)
        return EditResult(image=out, crop=crop, face=face, alpha=alpha,
                          meta={"seconds": t.seconds, "attributes": records, "latent": w, "role": role})

    def reconstruct(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot) -> EditResult:
        """The pivot's own render, pasted back (no latent move): what the metrics compare the crop to."""
        self.check_pivot(pivot)
        return self._finish(photo, face, pivot, pivot.w, 0.0, Timer(), [])

    def apply_operator(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, role: str,
                       alpha: Any = None) -> EditResult:
        """pi_1 or pi_0 (``role``) of one face: the operator moves the pivot latent, the tuned generator
        renders it and the blender pastes it back (an operator that returns the photo: the photo)."""
        self.check_pivot(pivot)
        alpha = self.edit["alpha"] if alpha is None else alpha
        if alpha == "auto":
            alpha = self.auto_alpha(photo, face, pivot).alpha
        t = Timer()
        with t("edit"):
            w, records, is_photo = self.counterfactual_latent(pivot, role, alpha)
        a = float(alpha) if isinstance(alpha, (int, float)) else alpha
        if is_photo:
            return EditResult(image=photo.copy(), crop=face.crop.copy(), face=face, alpha=a,
                              meta={"seconds": t.seconds, "attributes": records, "latent": None, "role": ROLES[role]})
        return self._finish(photo, face, pivot, w, a, t, records, role=ROLES[role])

    def render(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: Any) -> EditResult:
        """pi_1 of one face at ``alpha`` (a sweep's step)."""
        return self.apply_operator(photo, face, pivot, "pi1", alpha)

    def pi1(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: Any = None) -> EditResult:
        """Z1 = pi_1(Z): the ``pi1`` operator."""
        return self.apply_operator(photo, face, pivot, "pi1", alpha)

    def pi0(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: Any = None) -> EditResult:
        """Z0 = pi_0(Z): the ``pi0`` operator."""
        return self.apply_operator(photo, face, pivot, "pi0", alpha)

    def scorer(self):
        """The ``scorer`` component for ``--alpha auto``; ConfigError when none is configured."""
        if not self.has("scorer"):
            raise ConfigError("--alpha auto needs a scorer: choose one with --scorer NAME (see `counterface plugins`)")
        return self.component("scorer")

    def auto_alpha(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot):
        """``--alpha auto``: the smallest alpha in ``edit.alpha_bounds`` whose pi_1 output reaches
        ``edit.target_score`` on the scorer. Returns a :class:`counterface.counterfactual.AutoAlpha`."""
        from .counterfactual import search_alpha

        target = self.edit.get("target_score")
        if target is None:
            raise ConfigError("--alpha auto needs --target-score T (the scorer's value to reach)")
        scorer = self.scorer()
        bounds = tuple(float(x) for x in self.edit["alpha_bounds"])

        def score_at(a: float) -> float:
            crop = self.apply_operator(photo, face, pivot, "pi1", a).crop  # scorers read aligned crops
            return float(np.asarray(scorer.score([crop]), dtype=np.float64).reshape(-1)[0])

        return search_alpha(score_at, float(target), bounds, scorer=getattr(scorer, "name", ""))
