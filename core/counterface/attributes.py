"""Attribute planning: which attributes an edit moves, keeps and watches, on which W+ rows, and the
leakage along the watched ones. A part of :class:`counterface.pipeline.Pipeline`.

Every ``--direction`` / ``--keep`` / ``--watch`` value becomes a direction component through one
function, :func:`load_direction`, so that other kinds of attribute (fields, ...) plug in there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from .errors import ConfigError, WeightsError
from .registry import create
from .types import AlignedFace


def load_direction(spec: str):
    """The direction component a ``--direction`` (``--keep``, ``--watch``) value names: a registered
    direction or a boundary file (see :func:`counterface.config.direction_section`)."""
    from . import config as config_mod

    name, params = config_mod.direction_section(spec)
    return create("direction", name, **params)


def direction_spec(section: dict[str, Any]) -> str:
    """What the user named for the configured direction: its file (``path``/``file``, or ``weights``
    when that is a file on disk), else its component name."""
    for key in ("path", "file"):
        if isinstance(section.get(key), str):
            return section[key]
    w = section.get("weights")
    if isinstance(w, str) and Path(w).expanduser().is_file():
        return w
    return str(section.get("name") or "direction")


def as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


class Attributes:
    """The attribute-planning part of a pipeline (mixed into :class:`~counterface.pipeline.Pipeline`)."""

    def _edits(self, specs: list[tuple[str, Any]], layers_spec: Any) -> list:
        from . import config as config_mod
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
            specs = [(direction_spec(dict(self.config.get("direction") or {})), self.component("direction"))]
            specs += [(str(s), load_direction(str(s))) for s in as_list(self.edit.get("directions"))]
            self._components["_directions"] = specs
        return self._components["_directions"]

    def _listed(self, key: str) -> list:
        cache = f"_{key}"
        if cache not in self._components:
            specs = [(str(s), load_direction(str(s))) for s in as_list(self.edit.get(key))]
            self._components[cache] = self._edits(specs, "all") if specs else []
        return self._components[cache]

    def kept_attributes(self) -> list:
        """Attributes the edit must not move (``edit.keep``), on every W+ row."""
        return self._listed("keep")

    def watched_attributes(self) -> list:
        """Attributes whose leakage is recorded (``edit.watch``)."""
        return self._listed("watch")

    def metrics_region(self) -> Any:
        """The region the metrics treat as edited (``Evaluator.region``): the configured direction's
        ``region``, else the whole face. ``batch`` and ``evaluate`` both use it, so their numbers agree."""
        return getattr(self.component("direction"), "region", None) or "face"

    def region_mask(self, face: AlignedFace) -> np.ndarray:
        """(size, size) float32 in [0, 1]: where the edited attributes live on the aligned face (the
        union of their directions' ``region``; the tuner's region loss)."""
        masks = [face.region(getattr(d, "region", None)) for _, d in self.directions()]
        return np.maximum.reduce(masks) if len(masks) > 1 else masks[0]

    def leakage(self, pivot, z1, z0=None) -> dict[str, Any]:
        """Sidecar/row fields for the watched attributes: ``leakage_<attribute>`` (the mean over the
        edited rows of n . (w1 - w0)) and ``leakage`` (per row). A photo (an operator that returns
        it) or a missing Z0 counts as the pivot latent."""
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

    # -- operators -------------------------------------------------------------------------------
    def operator(self, role: str):
        """The operator filling ``role`` (``'pi1'`` or ``'pi0'``), as the configuration (the preset,
        ``--pi1``/``--pi0``) names it."""
        from .rendering import ROLES

        if role not in ROLES:
            raise ConfigError(f"unknown role {role!r}; valid: {', '.join(ROLES)}")
        if role not in self._components:
            if not self.has(role):
                raise ConfigError(f"the configuration names no {role} operator: choose one with --{role} NAME "
                                  "(see `counterface plugins`)")
            op = self.component(role)
            from .counterfactual import check_intercept

            check_intercept(op, role, self.attribute_edits())
        return self._components[role]

    def check_operators(self) -> None:
        """Refuse, before anything heavy is built, an operator that needs signed distances with a
        direction known to have no intercept (``has_intercept`` False, e.g. a published bare
        vector): one ConfigError naming the way to get one."""
        from .counterfactual import check_intercept
        from .rendering import ROLES

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


def _local_weights(direction: Any) -> bool:
    """False when the direction reads a registered weights file (``weights``) that is not on disk yet,
    so that checking it would mean a download; True otherwise."""
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
