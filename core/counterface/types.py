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

import dataclasses
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
    ``mouth_mask``: (size, size) float32 in [0, 1], the mouth region (landmarks 48-67, dilated).
    ``box``: detector box (x0, y0, x1, y1) in photo pixels, if the aligner had one.
    ``score``: detector confidence if known.
    """

    landmarks: np.ndarray
    matrix: np.ndarray
    crop: np.ndarray
    crop_landmarks: np.ndarray
    mouth_mask: np.ndarray
    box: tuple[float, float, float, float] | None = None
    score: float | None = None
    index: int = 0

    @property
    def size(self) -> int:
        return int(self.crop.shape[0])

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

    ``components`` example: ``{'aligner': {'name': 'fan'}, 'tuner': {'name': 'pti', 'steps': 350}}``.
    ``edit`` holds pipeline-level settings (alpha, layers, face, seed, pi0).
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


def replace(obj, **changes):
    """``dataclasses.replace`` re-exported for plugin authors."""
    return dataclasses.replace(obj, **changes)
