"""pi_1 / pi_0 orchestration. Composes components; contains no model code.

    photo -> Aligner -> faces -> Inverter -> w0+ -> Tuner -> Pivot
          -> Direction(w+, alpha) -> Generator (tuned) -> crop -> Blender -> photo'

Components are built lazily from a resolved configuration (:mod:`counterface.config`), so a command
that only aligns never loads the generator.
"""

from __future__ import annotations

import time
from typing import Any, Callable, Mapping

import numpy as np

from . import config as config_mod
from .convert import to_image, to_tensor  # noqa: F401  (also pipeline.to_tensor, as before)
from .device import PRECISIONS, autocast, check_precision, configure_backends, resolve_device  # noqa: F401
from .errors import ConfigError, WeightsError
from .matching import select_faces  # noqa: F401  (pipeline.select_faces, as before)
from .provenance import Timer, component_record, config_digest, environment  # noqa: F401  (pipeline.config_digest)
from .registry import create
from .types import AlignedFace, EditResult, Pivot

#: output roles: the image of pi_1 (attribute on) and of pi_0 (attribute off), in every command
ROLES = {"pi1": "z1", "pi0": "z0"}

#: edit settings and their defaults (``[edit]`` in TOML, ``--set edit.KEY=V``)
EDIT_DEFAULTS: dict[str, Any] = {
    "alpha": 1.0,  # strength of the shift/negate operators; one per direction, or "auto" (needs a scorer)
    "layers": None,  # W+ rows to edit; None = each direction's default (4-6 for smile)
    "directions": [],  # more attributes edited at once (--direction repeated): names or boundary files
    "keep": [],  # attributes whose signed distance the edit must not change (conditioning, --keep)
    "watch": [],  # attributes whose leakage n . (w1 - w0) is recorded (--watch)
    "target_score": None,  # --alpha auto: the scorer's value to reach
    "alpha_bounds": [0.0, 3.0],  # --alpha auto: the search interval
    "face": "largest",  # largest | all | N (0-based index, largest first) | match (the reference's person)
    "min_face": 0,  # faces narrower than this many photo pixels are skipped
    "reference": None,  # --face match: photo(s) of the person (a path, a folder or a list; see matching.py)
    "references": None,  # --face match in a batch: DIR of DIR/<value>.jpg or DIR/<value>/*.jpg ...
    "reference_column": None,  # ... with <value> from this manifest column
    "matcher": "dlib",  # the identity component that matches faces (a name or {name = ..., params})
    "match_threshold": None,  # lowest cosine similarity to the reference; None = the matcher's own
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "precision": "fp32",  # fp32 | tf32 | bf16 (the last two on CUDA only; see configure_backends)
}


class Pipeline:
    """A composed SmileGAN-PTI-style pipeline. Build with :meth:`from_config`."""

    def __init__(self, cfg: Mapping[str, Any]):
        self.config: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in cfg.items()}
        self.edit: dict[str, Any] = {**EDIT_DEFAULTS, **dict(self.config.get("edit") or {})}
        unknown = sorted(set(self.edit) - set(EDIT_DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown edit setting {unknown[0]!r}; valid: {', '.join(EDIT_DEFAULTS)}")
        self._components: dict[str, Any] = {}
        self.last_match = None  # the matching.Match of the last faces() call with --face match
        self.device = resolve_device(self.edit["device"])
        self.precision = check_precision(self.device, self.edit.get("precision") or "fp32")
        if self.precision == "fp32":
            configure_backends(self.device)
        else:
            configure_backends(self.device, self.precision)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "Pipeline":
        return cls(cfg)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Pipeline":
        return cls(config_mod.resolve(preset=name, edit=overrides))

    # -- components ------------------------------------------------------------------------------
    def component(self, kind: str):
        """The component of ``kind``, built on first use from the configuration."""
        if kind not in self._components:
            from .registry import kind_of

            name, params = config_mod.component_params(self.config, kind)
            section, kind = kind, kind_of(kind)
            injected = {}
            if kind in ("aligner", "generator", "inverter", "identity", "tuner"):
                injected["device"] = self.device  # where the factory takes one (edit.device means everywhere)
            if kind == "tuner":  # edit.seed governs the tuner unless its own seed is set
                injected["seed"] = int(self.edit["seed"])
                if self.precision != "fp32":
                    injected["precision"] = self.precision
            for key, value in injected.items():
                if key in params:
                    continue
                try:
                    from .registry import check_params, entry

                    check_params(entry(kind, name).factory, {key: value}, "")
                    params = {**params, key: value}
                except ConfigError:
                    pass
            self._components[section] = create(kind, name, **params)
            kind = section
        return self._components[kind]

    def has(self, kind: str) -> bool:
        return bool((self.config.get(kind) or {}).get("name"))

    @property
    def generator(self):
        return self.component("generator")

    # -- stages ----------------------------------------------------------------------------------
    def align(self, image: np.ndarray, size: int | None = None) -> list[AlignedFace]:
        """Every face, largest first, aligned at the generator's resolution (step 1)."""
        size = size or self.generator.resolution
        return self.component("aligner").align(image, size=size)

    def faces(self, image: np.ndarray) -> list[AlignedFace]:
        """Aligned faces after ``edit.face`` / ``edit.min_face`` selection; NoFaceError if none."""
        from .matching import selector  # --face match: the Match goes to self.last_match

        return select_faces(self.align(image), self.edit["face"], self.edit["min_face"], match=selector(self, image))

    def _check_family(self, comp, what: str) -> None:
        fam = getattr(comp, "family", "") or ""
        gfam = getattr(self.generator, "family", "") or ""
        if fam and gfam and fam != gfam and fam != "any":
            raise ConfigError(f"{what} {comp.name!r} is for {fam!r} but the generator {self.generator.name!r} is {gfam!r}")

    def invert(self, face: AlignedFace):
        """Step 2: (num_ws, w_dim) initial latent."""
        import torch

        inv = self.component("inverter")
        self._check_family(inv, "inverter")
        with torch.no_grad():
            w = inv.invert(to_tensor(face.crop), self.generator)
        return w[0].detach().float().cpu()

    def tune(self, face: AlignedFace, w0, progress: Callable[[dict[str, float]], None] | None = None) -> Pivot:
        """Steps 3-4: refine the latent and tune the generator around it."""
        import torch

        seed = int(self.edit["seed"])
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        identity = self.component("identity") if self.has("identity") else None
        target = to_tensor(face.crop)
        mask = torch.from_numpy(np.ascontiguousarray(self.region_mask(face), dtype=np.float32))[None, None]
        pivot = self.component("tuner").tune(self.generator, w0, target, region_mask=mask, identity=identity,
                                             progress=progress)
        pivot.generator = self.generator_record()
        return pivot

    def generator_record(self) -> dict[str, Any]:
        g = self.generator
        return {"name": g.name, "family": getattr(g, "family", ""), "params": g.describe()}

    def check_pivot(self, pivot: Pivot) -> None:
        """A pivot may only be applied to the generator it was tuned on (name, family, parameters
        other than the device, latent and tensor shapes); ConfigError otherwise."""
        mine = self.generator_record()
        theirs = pivot.generator or {}
        if theirs and (theirs.get("name"), theirs.get("family")) != (mine["name"], mine["family"]):
            raise ConfigError(
                f"pivot was tuned on generator {theirs.get('name')!r} ({theirs.get('family')}), "
                f"not {mine['name']!r} ({mine['family']})"
            )
        a = {k: v for k, v in (theirs.get("params") or {}).items() if k != "device"}
        b = {k: v for k, v in (mine.get("params") or {}).items() if k != "device"}
        if theirs and a != b:
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise ConfigError(f"pivot was tuned on a generator with other parameters ({', '.join(diff[:4])})")
        g = self.generator
        if tuple(pivot.w.shape) != (g.num_ws, g.w_dim):
            raise ConfigError(f"pivot latent has shape {tuple(pivot.w.shape)}, the generator needs ({g.num_ws}, {g.w_dim})")
        params = dict(g.module.named_parameters())
        for k, v in pivot.tensors.items():
            if k not in params or tuple(params[k].shape) != tuple(v.shape):
                raise ConfigError(f"pivot tensor {k!r} does not fit the generator")

    # -- attributes and operators ----------------------------------------------------------------
    def _direction_spec(self) -> str:
        section = dict(self.config.get("direction") or {})
        for key in ("path", "file", "weights"):
            if isinstance(section.get(key), str) and section.get("name") not in ("smile", "age", "pose"):
                return section[key]
        return str(section.get("name") or "direction")

    def _direction_for(self, spec: str):
        """A direction component for a ``--direction`` value other than the configured one."""
        from . import config as cfg_mod

        name, params = cfg_mod.direction_section(spec)
        return create("direction", name, **params)

    def _edits(self, specs: list[tuple[str, Any]], layers_spec: Any) -> list:
        from .counterfactual import AttributeEdit, boundary_of, file_sha256

        g = self.generator
        num_ws, w_dim = int(g.num_ws), int(g.w_dim)
        out = []
        for i, (spec, direction) in enumerate(specs):
            self._check_family(direction, "direction")
            b = boundary_of(direction, num_ws, w_dim)
            if b.w_dim != w_dim:
                raise ConfigError(f"direction {spec!r} has {b.w_dim} dimensions but the generator {g.name!r} has "
                                  f"{w_dim} (a direction for another generator family)")
            if b.rows not in (1, num_ws):
                raise ConfigError(f"direction {spec!r} has {b.rows} rows but the generator has {num_ws}")
            rows = config_mod.parse_layers(layers_spec, num_ws)
            if rows is None:
                default = getattr(direction, "default_layers", None)
                rows = (list(range(num_ws)) if default is None else config_mod.parse_layers(list(default), num_ws))
            out.append(AttributeEdit(spec=spec, direction=direction, boundary=b, rows=list(rows), index=i,
                                     file_sha256=file_sha256(direction, b)))
        return out

    def attribute_edits(self) -> list:
        """The edited attributes (:class:`counterface.counterfactual.AttributeEdit`), the configured
        direction first, then ``edit.directions`` in order; each on ``edit.layers`` or its own rows."""
        if "_edits" not in self._components:
            self._components["_edits"] = self._edits(self.directions(), self.edit["layers"])
        return self._components["_edits"]

    def directions(self) -> list[tuple[str, Any]]:
        """(spec, direction component) of every edited attribute: the configured direction, then
        ``edit.directions``. Cheap: no boundary is loaded."""
        if "_directions" not in self._components:
            specs = [(self._direction_spec(), self.component("direction"))]
            specs += [(str(s), self._direction_for(str(s))) for s in _as_list(self.edit.get("directions"))]
            self._components["_directions"] = specs
        return self._components["_directions"]

    def metrics_region(self) -> Any:
        """The region the metrics treat as edited (``Evaluator.region``): the configured direction's
        ``region``, else the whole face. ``batch`` and ``evaluate`` both use it, so their numbers agree."""
        return getattr(self.component("direction"), "region", None) or "face"

    def region_mask(self, face: AlignedFace) -> np.ndarray:
        """(size, size) float32 in [0, 1]: where the edited attributes live on the aligned face (the
        union of their directions' ``region``; the tuner's region loss)."""
        masks = [face.region(getattr(d, "region", None)) for _, d in self.directions()]
        return np.maximum.reduce(masks) if len(masks) > 1 else masks[0]

    def kept_attributes(self) -> list:
        """Attributes the edit must not move (``edit.keep``), on every W+ row."""
        if "_keep" not in self._components:
            specs = [(str(s), self._direction_for(str(s))) for s in _as_list(self.edit.get("keep"))]
            self._components["_keep"] = self._edits(specs, "all") if specs else []
        return self._components["_keep"]

    def watched_attributes(self) -> list:
        """Attributes whose leakage is recorded (``edit.watch``)."""
        if "_watch" not in self._components:
            specs = [(str(s), self._direction_for(str(s))) for s in _as_list(self.edit.get("watch"))]
            self._components["_watch"] = self._edits(specs, "all") if specs else []
        return self._components["_watch"]

    def operator(self, role: str):
        """The operator filling ``role`` (``'pi1'`` or ``'pi0'``); defaults ``shift`` / ``reconstruction``."""
        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; valid: pi1, pi0")
        if role not in self._components:
            if not self.has(role):
                self.config[role] = {"name": "shift" if role == "pi1" else "reconstruction"}
            op = self.component(role)
            from .counterfactual import check_intercept

            check_intercept(op, role, self.attribute_edits())
        return self._components[role]

    def check_operators(self) -> None:
        """Refuse, before anything heavy is built, an operator that needs signed distances (``on``,
        ``off``, ``neutral``) with a direction known to have no intercept (``has_intercept`` False,
        e.g. the published InterFaceGAN vectors): one ConfigError naming the way to get one."""
        from .counterfactual import check_intercept

        for role in ROLES:
            if not self.has(role):
                continue
            op = self.component(role)
            if not getattr(op, "needs_intercept", False):
                continue
            for spec, direction in self.directions():
                known = getattr(direction, "has_intercept", None)
                name = getattr(direction, "name", "") or spec
                if known is None and not _local_weights(direction):
                    from .boundary import cached_boundaries  # not downloaded yet: only a calibration has one

                    known = None if name in cached_boundaries() else False
                if known is None:
                    try:
                        b = getattr(direction, "boundary", None)
                        known = False if b is None else bool(b.has_intercept)
                    except WeightsError:  # the vector's file is missing: only a cached calibration has one
                        from .boundary import cached_boundaries

                        known = None if name in cached_boundaries() else False
                if known is False:
                    check_intercept(op, role, [_NoIntercept(spec)])

    def alphas(self, alpha: Any = None) -> list[float]:
        """One strength per edited attribute from ``alpha`` (default ``edit.alpha``): a number for all,
        or a list with one per ``--direction``."""
        alpha = self.edit["alpha"] if alpha is None else alpha
        n = len(self.attribute_edits())
        if isinstance(alpha, str):
            if alpha == "auto":
                raise ConfigError("--alpha auto is resolved per face: call Pipeline.auto_alpha first")
            try:
                alpha = float(alpha)
            except ValueError:
                raise ConfigError(f"invalid alpha {alpha!r}; use a number or auto") from None
        values = [float(a) for a in alpha] if isinstance(alpha, (list, tuple)) else [float(alpha)] * n
        if len(values) == 1 and n > 1:
            values = values * n
        if len(values) != n:
            raise ConfigError(f"{len(values)} alpha values for {n} directions; give one, or one per --direction")
        if not all(np.isfinite(values)):
            raise ConfigError(f"alpha must be finite, got {alpha!r}")
        return values

    def counterfactual_latent(self, pivot: Pivot, role_or_operator: Any, alpha: Any = None):
        """(w, records, photo) for an operator (a role name or an Operator) on the pivot latent: the moved
        (num_ws, w_dim) latent (None for ``original``), the sidecar ``attributes`` list and whether
        the output is the photo itself."""
        from . import counterfactual as cf

        if isinstance(role_or_operator, str):
            op = self.operator(role_or_operator)
        else:
            op = role_or_operator
            cf.check_intercept(op, getattr(op, "name", "") or "operator", self.attribute_edits())
        edits = self.attribute_edits()
        keep = self.kept_attributes()
        w = pivot.w
        alphas = self.alphas(alpha)
        name = getattr(op, "name", "") or type(op).__name__.lower()
        if getattr(op, "returns_photo", False):
            return None, cf.records(name, edits, None, w, None, photo=True), True
        if any(getattr(e.direction, "field", None) is not None for e in [*edits, *keep]):  # per-face paths
            from .fieldpath import pipeline_move

            return (*pipeline_move(name, op, edits, keep, w, alphas), False)
        steps = cf.steps_for(op, edits, w, alphas)
        w_out = cf.move(w, edits, steps, keep, uniform_apply=not getattr(op, "needs_intercept", False))
        return w_out, cf.records(name, edits, steps, w, w_out), False

    def edit_latent(self, w, alpha: float):
        """Step 5: w+ + alpha * v on the configured layers (the ``shift`` operator)."""
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

    def render(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: Any) -> EditResult:
        """Steps 5-7 for one alpha (the ``shift`` operator): edit, synthesize, paste back."""
        from .provenance import Timer

        self.check_pivot(pivot)
        t = Timer()
        with t("edit"):
            shift = _Shift()
            w, records, _ = self.counterfactual_latent(pivot, shift, alpha)
        a = alpha if not isinstance(alpha, (int, float)) else float(alpha)
        return self._finish(photo, face, pivot, w, a, t, records)

    def apply_operator(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, role: str,
                       alpha: Any = None) -> EditResult:
        """pi_1 or pi_0 (``role``) of one face: the operator moves the pivot latent, the tuned generator
        renders it and the blender pastes it back (``original``: the photo itself)."""
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

    def pi1(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: Any = None) -> EditResult:
        """Z1 = pi_1(Z): the ``pi1`` operator (default ``shift``)."""
        return self.apply_operator(photo, face, pivot, "pi1", alpha)

    def pi0(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: Any = None) -> EditResult:
        """Z0 = pi_0(Z): the ``pi0`` operator (default ``reconstruction``)."""
        return self.apply_operator(photo, face, pivot, "pi0", alpha)

    def leakage(self, pivot: Pivot, z1: EditResult, z0: EditResult | None = None) -> dict[str, Any]:
        """Sidecar/row fields for the watched attributes: ``leakage_<attribute>`` (the mean over the
        edited rows of n . (w1 - w0)) and ``leakage`` (per row). A photo (``original``) or a missing
        Z0 counts as the pivot latent."""
        from . import counterfactual as cf

        watched = self.watched_attributes()
        if not watched:
            return {}
        w1 = z1.meta.get("latent")
        w1 = pivot.w if w1 is None else w1
        w0 = None if z0 is None else z0.meta.get("latent")
        w0 = pivot.w if w0 is None else w0
        rows = sorted({r for e in self.attribute_edits() for r in e.rows})
        detail = cf.leakage(watched, rows, w1, w0)
        out: dict[str, Any] = {f"leakage_{k}": v["mean"] for k, v in detail.items()}
        out["leakage"] = detail
        return out

    def scorer(self):
        """The ``scorer`` component for ``--alpha auto``; ConfigError when none is configured."""
        if not self.has("scorer"):
            raise ConfigError("--alpha auto needs a scorer: choose one with --scorer NAME (see `counterface plugins`)")
        return self.component("scorer")

    def auto_alpha(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot):
        """``--alpha auto``: the smallest alpha in ``edit.alpha_bounds`` whose pi_1 output (through the
        ``pi1`` operator's strength; ``shift`` unless another operator uses alpha) reaches
        ``edit.target_score`` on the scorer. Returns a :class:`counterface.counterfactual.AutoAlpha`."""
        from .counterfactual import search_alpha

        target = self.edit.get("target_score")
        if target is None:
            raise ConfigError("--alpha auto needs --target-score T (the scorer's value to reach)")
        scorer = self.scorer()
        bounds = tuple(float(x) for x in _as_list(self.edit.get("alpha_bounds")))
        if len(bounds) != 2:
            raise ConfigError(f"edit.alpha_bounds must be two numbers, got {self.edit.get('alpha_bounds')!r}")

        def score_at(a: float) -> float:
            crop = self.apply_operator(photo, face, pivot, "pi1", a).crop  # scorers read aligned crops
            return float(np.asarray(scorer.score([crop]), dtype=np.float64).reshape(-1)[0])

        return search_alpha(score_at, float(target), bounds, scorer=getattr(scorer, "name", ""))

    def mask(self, photo: np.ndarray, face: AlignedFace) -> np.ndarray:
        """The blender's weight m (H, W) float32 in [0, 1]: pixels where m == 0 keep the photo's values."""
        return self.component("blender").mask(photo.shape[:2], face)

    def pivot(self, face: AlignedFace, progress=None) -> tuple[Pivot, dict[str, float]]:
        """Steps 2-4 for one face, with per-stage seconds."""
        t = Timer()
        with t("invert"):
            w0 = self.invert(face)
        with t("tune"):
            pivot = self.tune(face, w0, progress=progress)
        pivot.meta.setdefault("seconds", {}).update(t.seconds)
        return pivot, t.seconds

    def tune_many(self, faces: list[AlignedFace], w0s: list, progress=None) -> list[Pivot]:
        """Steps 3-4 for several faces at once (``--tune-batch``): the tuner's ``tune_many``, one pivot
        per face, each equal within float tolerance to :meth:`tune` on that face alone."""
        import torch

        seed = int(self.edit["seed"])
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        identity = self.component("identity") if self.has("identity") else None
        targets = [to_tensor(f.crop) for f in faces]
        masks = [torch.from_numpy(np.ascontiguousarray(self.region_mask(f), dtype=np.float32))[None, None]
                 for f in faces]
        pivots = self.component("tuner").tune_many(self.generator, list(w0s), targets, region_masks=masks,
                                                   identity=identity, progress=progress)
        for p in pivots:
            p.generator = self.generator_record()
        return pivots

    def pivots(self, faces: list[AlignedFace], progress=None) -> list[tuple[Pivot, dict[str, float]]]:
        """Steps 2-4 for several faces tuned together: (pivot, per-stage seconds) per face, where
        ``tune`` is the face's share (the batch's seconds divided by its faces)."""
        if not faces:
            return []
        timings, w0s = [], []
        for face in faces:
            t = Timer()
            with t("invert"):
                w0s.append(self.invert(face))
            timings.append(t.seconds)
        t = Timer()
        with t("tune"):
            pivots = self.tune_many(faces, w0s, progress=progress)
        share = round(t.seconds["tune"] / len(faces), 4)
        out = []
        for pivot, seconds in zip(pivots, timings):
            seconds = {**seconds, "tune": share}
            pivot.meta.setdefault("seconds", {}).update(seconds)
            out.append((pivot, seconds))
        return out

    # -- provenance ------------------------------------------------------------------------------
    def components_record(self) -> dict[str, Any]:
        from .registry import kind_of

        return {section: component_record(kind_of(section), comp) for section, comp in self._components.items()
                if not section.startswith("_")}

    def sidecar(self, *, input_path=None, input_sha256=None, face: AlignedFace | None = None,
                alpha: Any = None, role: str | None = None, pivot: Pivot | None = None,
                seconds: Mapping[str, float] | None = None, extra: Mapping[str, Any] | None = None,
                attributes: list[dict[str, Any]] | None = None) -> dict[str, Any]:
        """The JSON sidecar of one output image. ``attributes``: the edited attributes' records
        (:func:`counterface.counterfactual.records`; an EditResult's ``meta['attributes']``)."""
        rec: dict[str, Any] = {
            "counterface_sidecar": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "input": {"path": None if input_path is None else str(input_path), "sha256": input_sha256},
            "role": role,
            "alpha": alpha,
            "attributes": list(attributes or []),
            "preset": self.config.get("preset"),
            "edit": self.edit,
            "config": {k: v for k, v in self.config.items() if k not in ("edit", "preset")},
            "components": self.components_record(),
            "environment": environment(),
            "seconds": dict(seconds or {}),
        }
        if face is not None:
            rec["face"] = face.to_json()
        rec["seed"] = self.edit.get("seed")
        if pivot is not None:
            rec["pivot"] = {"generator": pivot.generator, "meta": pivot.meta}
            rec["losses"] = pivot.meta.get("losses", {})
        if extra:
            rec.update(extra)
        return rec


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


def full_steps(n: int, value: float) -> np.ndarray:
    """(n,) float64 distance steps, all ``value``: host-side numbers (never device or fake tensors),
    so that deciding the uniform edit path reads no tensor data."""
    return np.full((n,), float(value), dtype=np.float64)


def _local_weights(direction: Any) -> bool:
    """False when the direction reads a registered weights file (``weights``) that is not on disk yet,
    so that checking it would mean a download; True otherwise."""
    from pathlib import Path

    name = getattr(direction, "weights", None)
    if not isinstance(name, str) or Path(name).expanduser().is_file():
        return True
    try:
        from . import weights

        return weights.path(name).is_file()
    except Exception:  # noqa: BLE001 - not a registered name: let loading say what is wrong
        return True


class _NoIntercept:
    """Stands for a direction known to have no intercept, for the early check."""

    def __init__(self, spec: str):
        self.spec = spec
        self.boundary = None


class _Shift:
    """The shift operator for :meth:`Pipeline.render` without going through the registry."""

    name = "shift"
    needs_intercept = False
    returns_photo = False

    def step(self, distance, *, alpha, boundary=None, index=0, rows=0):
        return full_steps(rows, alpha)
