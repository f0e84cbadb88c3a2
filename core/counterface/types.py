"""Data that crosses stage boundaries.

Conventions (documented once, here and in docs/architecture.md):

* Images at the boundary are numpy arrays (H, W, 3) uint8 RGB.
* Tensors inside are float32 NCHW in [-1, 1].
* Points are (x, y) in pixels of the full photo, float64; pixel centres sit at integer coordinates
  (OpenCV's convention).
* A ``matrix`` is 2x3 and maps photo coordinates to crop coordinates (OpenCV ``warpAffine`` style).
* W+ latents are (num_ws, w_dim) per face; layer index l is 0-based.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import numpy as np


@dataclass
class AlignedFace:
    """One face found in a photo and warped into the canonical crop.

    ``landmarks``: (68, 2) float64, iBUG order, photo pixels.
    ``matrix``: (2, 3) float64 similarity, photo -> crop. Its inverse (step 7) is exact.
    ``crop``: (size, size, 3) uint8 RGB.
    ``crop_landmarks``: (68, 2) float64, the landmarks in crop pixels.
    ``region_mask``: (size, size) float32 in [0, 1] or None: an edit region the aligner computed
    itself (e.g. from a face parser); None (the reference aligners) = built from the landmarks for
    each attribute's :class:`Region` by :meth:`region`.
    ``box``: detector box (x0, y0, x1, y1) in photo pixels, if the aligner had one.
    ``score``: detector confidence if known.
    """

    landmarks: np.ndarray
    matrix: np.ndarray
    crop: np.ndarray
    crop_landmarks: np.ndarray
    region_mask: np.ndarray | None = None
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    index: int = 0

    @property
    def size(self) -> int:
        return int(self.crop.shape[0])

    def region(self, spec: Any = None) -> np.ndarray:
        """(size, size) float32 in [0, 1]: the edit region ``spec`` (a :class:`Region`, a name in
        :data:`REGIONS`, landmark indices, or a builder ``face -> mask``) in crop pixels. ``None``: the
        aligner's own ``region_mask`` when it has one, else the whole face."""
        if spec is None and self.region_mask is not None:
            return np.asarray(self.region_mask, dtype=np.float32)
        return resolve_region(spec).mask(self)

    @property
    def face_width(self) -> float:
        """Width of the face in photo pixels (jaw-line extent of the landmarks)."""
        xs = self.landmarks[:17, 0]
        return float(xs.max() - xs.min())

    def to_json(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "size": self.size,
            "matrix": np.asarray(self.matrix, dtype=float).tolist(),
            "landmarks": np.asarray(self.landmarks, dtype=float).round(3).tolist(),
            "box": None if self.box is None else [float(v) for v in self.box],
            "score": self.score,
        }


@dataclass(frozen=True)
class Region:
    """Where an attribute lives on the aligned face: the tuner weighs its reconstruction there
    (``lambda_region``) and the metrics measure preservation outside it.

    ``landmarks``: iBUG-68 indices whose convex hull (in crop pixels) is the region, grown by
    ``dilate`` times the crop side; or ``builder``: ``face -> (size, size)`` float32 mask in [0, 1]
    (a face parser, a fixed box). ``metric_dilate``: the metrics' margin, times the region's width,
    around the union of the original's and the edited face's hulls.
    """

    name: str
    landmarks: tuple[int, ...] = ()
    dilate: float = 0.03
    metric_dilate: float = 0.25
    builder: Any = None

    def mask(self, face: "AlignedFace") -> np.ndarray:
        if self.builder is not None:
            m = np.asarray(self.builder(face), dtype=np.float32)
            if m.shape != (face.size, face.size):
                from .errors import ConfigError

                raise ConfigError(f"region {self.name!r} built a mask of shape {m.shape}, not ({face.size}, {face.size})")
            return np.clip(m, 0.0, 1.0)
        from .geometry import landmark_mask

        return landmark_mask(face.crop_landmarks, self.landmarks, face.size, self.dilate)


#: the reference regions: the mouth (smile), the eyes with brows and nose bridge (glasses, gaze), the
#: whole face (age, pose, and any attribute that names none)
REGIONS: dict[str, Region] = {
    "mouth": Region("mouth", tuple(range(48, 68)), 0.03),
    "eyes": Region("eyes", tuple(range(17, 31)) + tuple(range(36, 48)), 0.03),
    "face": Region("face", tuple(range(0, 68)), 0.0, metric_dilate=0.0),
}


def resolve_region(spec: Any) -> Region:
    """A :class:`Region` from a Region, a name in :data:`REGIONS` (``None`` = ``'face'``), a sequence of
    landmark indices, or a builder callable; ConfigError otherwise."""
    from .errors import ConfigError

    if spec is None:
        return REGIONS["face"]
    if isinstance(spec, Region):
        return spec
    if isinstance(spec, str):
        if spec not in REGIONS:
            raise ConfigError(f"unknown region {spec!r}; valid: {', '.join(REGIONS)} (or landmark indices)")
        return REGIONS[spec]
    if callable(spec):
        return Region(getattr(spec, "__name__", "custom"), builder=spec)
    try:
        idx = tuple(int(i) for i in spec)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid region {spec!r}; use a name ({', '.join(REGIONS)}) or landmark indices") from None
    if not idx or min(idx) < 0 or max(idx) > 67:
        raise ConfigError(f"region landmark indices must be in 0-67, got {spec!r}")
    return Region("landmarks", idx)


@dataclass
class Pivot:
    """The result of tuning one face: the refined latent plus the tuned generator tensors.

    ``w``: (num_ws, w_dim) float32 CPU tensor, the pivot latent.
    ``tensors``: name -> tensor, *only* the generator parameters the tuner changed, keyed by the
    generator module's own parameter names. Everything else in the generator is the released file.
    ``generator``: a description of the base generator ({'name':..., 'family':..., 'params':...}) so a
    pivot is never applied to another network.
    ``meta``: JSON-serialisable provenance (losses, steps, seconds, component parameters).

    Saved as safetensors with the JSON in the header (see :mod:`counterface.pivot`), so one
    inversion serves many edits.
    """

    w: Any
    tensors: dict[str, Any] = field(default_factory=dict)
    generator: dict[str, Any] = field(default_factory=dict)
    meta: dict[str, Any] = field(default_factory=dict)


@dataclass
class Preset:
    """A named composition: kind -> {'name': component name, **params}, plus edit settings.

    ``components`` example: ``{'aligner': {'name': 'fan'}, 'tuner': {'name': 'pti', 'tune_steps': 350}}``.
    ``edit`` holds pipeline-level settings (alpha, layers, face, seed, directions, keep, watch).
    """

    components: Mapping[str, Mapping[str, Any]]
    edit: Mapping[str, Any] = field(default_factory=dict)
    description: str = ""

    def to_config(self) -> dict[str, Any]:
        cfg: dict[str, Any] = {k: dict(v) for k, v in self.components.items()}
        cfg["edit"] = dict(self.edit)
        return cfg


@dataclass
class EditResult:
    """One edited face pasted back into its photo."""

    image: np.ndarray
    crop: np.ndarray
    face: AlignedFace
    alpha: float
    meta: dict[str, Any] = field(default_factory=dict)

