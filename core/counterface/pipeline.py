"""pi_1 / pi_0 orchestration. Composes components; contains no model code.

    photo -> Aligner -> faces -> Inverter -> w0+ -> Tuner -> Pivot
          -> Operator(w+, alpha) -> Generator (tuned) -> crop -> Blender -> photo'

:class:`Pipeline` holds the component cache and the stages; its other jobs live in their own modules,
one each: attribute planning and leakage (:mod:`counterface.attributes`), inversion, tuning and
pivot checks (:mod:`counterface.tuning`), operators, alpha and the auto-alpha search
(:mod:`counterface.rendering`), and sidecars (:mod:`counterface.sidecars`). Settings enter only as
one validated :class:`counterface.settings.EditSettings`; the per-photo flow that uses all of this
is :mod:`counterface.flow`.

Components are built lazily from the resolved configuration, so a command that only aligns never
loads the generator.
"""

from __future__ import annotations

from typing import Any, Mapping

import numpy as np

from .attributes import Attributes
from .device import check_precision, configure_backends, resolve_deterministic, resolve_device
from .errors import ConfigError
from .matching import select_faces
from .registry import create
from .rendering import Rendering
from .settings import EditSettings
from .sidecars import Sidecars
from .tuning import Tuning
from .types import AlignedFace

#: component kinds whose factory takes the run's device when it accepts one (edit.device means everywhere)
_DEVICE_KINDS = ("aligner", "generator", "inverter", "identity", "tuner")


class Pipeline(Attributes, Tuning, Rendering, Sidecars):
    """A composed SmileGAN-PTI-style pipeline, built from an :class:`EditSettings` (or a resolved
    configuration dict, validated into one)."""

    def __init__(self, settings: EditSettings | Mapping[str, Any]):
        if not isinstance(settings, EditSettings):
            settings = EditSettings.from_config(settings)
        self.settings = settings
        self.config: dict[str, Any] = settings.config
        self.edit: dict[str, Any] = settings.edit
        self._components: dict[str, Any] = {}
        self.last_match = None  # the matching.Match of the last faces() call with --face match
        self.device = resolve_device(self.edit["device"])
        self.precision = check_precision(self.device, self.edit.get("precision") or "auto")
        self.deterministic = resolve_deterministic(self.device, self.edit.get("deterministic"))
        self.edit.update(precision=self.precision, deterministic=self.deterministic)  # sidecars: what ran
        configure_backends(self.device, self.precision, self.deterministic)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "Pipeline":
        return cls(cfg)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Pipeline":
        return cls(EditSettings.resolve(preset=name, edit=overrides))

    # -- components ------------------------------------------------------------------------------
    def component(self, kind: str):
        """The component of ``kind`` (a config section), built on first use from the configuration."""
        if kind not in self._components:
            from . import config as config_mod
            from .registry import check_params, entry, kind_of

            name, params = config_mod.component_params(self.config, kind)
            section, kind = kind, kind_of(kind)
            injected: dict[str, Any] = {}
            if kind in _DEVICE_KINDS:
                injected["device"] = self.device
            if kind == "tuner":  # edit.seed governs the tuner unless its own seed is set
                injected["seed"] = int(self.edit["seed"])
                if self.precision != "fp32":
                    injected["precision"] = self.precision
            for key, value in injected.items():
                if key in params:
                    continue
                try:
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

    def _check_family(self, comp, what: str) -> None:
        fam = getattr(comp, "family", "") or ""
        gfam = getattr(self.generator, "family", "") or ""
        if fam and gfam and fam != gfam and fam != "any":
            raise ConfigError(f"{what} {comp.name!r} is for {fam!r} but the generator {self.generator.name!r} is {gfam!r}")

    # -- stages ----------------------------------------------------------------------------------
    def align(self, image: np.ndarray, size: int | None = None) -> list[AlignedFace]:
        """Every face, largest first, aligned at the generator's resolution (step 1)."""
        size = size or self.generator.resolution
        return self.component("aligner").align(image, size=size)

    def faces(self, image: np.ndarray, reference: Any = None) -> list[AlignedFace]:
        """Aligned faces after ``edit.face`` / ``edit.min_face`` selection; NoFaceError if none.
        ``reference``: the ``--face match`` reference (or a function making it; default edit.reference)."""
        from .matching import selector  # --face match: the Match goes to self.last_match

        match = selector(self, image, reference)
        return select_faces(self.align(image), self.edit["face"], self.edit["min_face"], match=match)

    def mask(self, photo: np.ndarray, face: AlignedFace) -> np.ndarray:
        """The blender's weight m (H, W) float32 in [0, 1]: pixels where m == 0 keep the photo's values."""
        return self.component("blender").mask(photo.shape[:2], face)

    def prepare(self, *, with_pivot: bool = False) -> None:
        """Build the components and check the edit settings before the first photo, so that a
        configuration or weights problem fails once and at once, not per photo after minutes of
        tuning. With a saved pivot, the inverter, tuner and identity network are not built."""
        from . import config as config_mod
        from . import matching
        from .registry import sections

        matching.prepare(self)  # --face match: the matcher, its threshold and the reference's faces
        self.check_operators()  # an operator that needs an intercept with a direction without one
        skip = {"inverter", "tuner", "identity"} if with_pivot else set()
        for section in sections():
            if section not in skip and self.has(section):
                self.component(section)
        config_mod.parse_layers(self.edit["layers"], getattr(self.generator, "num_ws", None))
        for role in self.settings.roles:
            self.operator(role)
        self.kept_attributes()
        self.watched_attributes()
        if self.edit.get("alpha") == "auto":
            self.scorer()
            if self.edit.get("target_score") is None:
                raise ConfigError("--alpha auto needs --target-score T (the scorer's value to reach)")
