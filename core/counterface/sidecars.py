"""The JSON sidecar of an output image: input, face, settings, components, environment, seconds and
losses. A part of :class:`counterface.pipeline.Pipeline`.
"""

from __future__ import annotations

import time
from typing import Any, Mapping

from .provenance import component_record, environment
from .types import AlignedFace, Pivot


class Sidecars:
    """The provenance part of a pipeline (mixed into :class:`~counterface.pipeline.Pipeline`)."""

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
