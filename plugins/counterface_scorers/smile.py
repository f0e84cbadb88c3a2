"""The landmark smile scorer: mouth-corner lift plus mouth width of each face's 68 iBUG landmarks.

:func:`smile_score` is the score of one landmark set; :class:`LandmarkSmileScorer` (registered as
``smile``, the default scorer of the ``smile`` attribute, so the ``score_*`` columns of a smile edit)
finds the landmarks on each image with an aligner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from counterface import Scorer

#: iBUG-68 indices used by the smile score
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT = 48, 54
#: upper-lip top, lower-lip bottom, inner upper, inner lower: their mean is the mouth centre
MOUTH_CENTRE = (51, 57, 62, 66)


@dataclass(frozen=True)
class SmileScore:
    """``lift``: mean height of the two mouth corners above the mouth centre, along the face's own
    vertical axis (perpendicular to the eye line), divided by the inter-ocular distance; positive
    when the corners are raised. ``width``: corner-to-corner distance / inter-ocular distance.
    ``score`` = lift + width; both grow with a smile. Invariant to translation, rotation and scale.
    """

    lift: float
    width: float

    @property
    def score(self) -> float:
        return self.lift + self.width

    def to_json(self) -> dict[str, float]:
        return {"lift": self.lift, "width": self.width, "score": self.score}


def smile_score(landmarks: np.ndarray) -> SmileScore:
    """The landmark smile score of one face from its 68 iBUG landmarks (any pixel frame)."""
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape != (68, 2):
        raise ValueError(f"expected (68, 2) landmarks, got {lm.shape}")
    eye_l, eye_r = lm[LEFT_EYE].mean(0), lm[RIGHT_EYE].mean(0)
    axis = eye_r - eye_l
    iod = float(np.hypot(*axis))
    if not np.isfinite(iod) or iod <= 1e-9:
        raise ValueError("degenerate landmarks: the eyes coincide")
    x_dir = axis / iod
    down = np.array([-x_dir[1], x_dir[0]])  # x turned 90 degrees: points from the eyes to the mouth
    centre = lm[list(MOUTH_CENTRE)].mean(0)
    corners = lm[[MOUTH_LEFT, MOUTH_RIGHT]]
    lift = float(np.mean((centre - corners) @ down)) / iod
    width = float(np.hypot(*(corners[1] - corners[0]))) / iod
    return SmileScore(lift=lift, width=width)


class LandmarkSmileScorer(Scorer):
    """Smile = mouth-corner lift + mouth width, both per inter-ocular distance (higher = more smile).

    Images: aligned face crops or photos (the face is found by the aligner; the largest one is
    scored); NaN where no face is found. Parameters: ``aligner`` (a registered aligner's name; dlib
    by default, offline), ``size`` (the crop the aligner's landmarks are taken at; only the
    landmarks are used, so the score does not depend on it), ``upsample`` (small crops: the image is
    enlarged to at least this many pixels on its shorter side before detection).
    """

    attribute = "smile"

    def __init__(self, *, aligner: str = "dlib", size: int = 256, upsample: int = 256):
        self.aligner = str(aligner)
        self.size = int(size)
        self.upsample = int(upsample)
        self._aligner = None

    def _get_aligner(self):
        if self._aligner is None:
            import counterface

            self._aligner = counterface.create("aligner", self.aligner)
        return self._aligner

    def score(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import cv2

        out = np.full(len(images), np.nan, dtype=np.float64)
        for i, img in enumerate(images):
            img = np.ascontiguousarray(np.asarray(img, dtype=np.uint8))
            short = min(img.shape[:2])
            scale = 1.0
            if short < self.upsample:
                scale = self.upsample / short
                img = cv2.resize(img, (round(img.shape[1] * scale), round(img.shape[0] * scale)),
                                 interpolation=cv2.INTER_CUBIC)
            faces = self._get_aligner().align(img, size=self.size)
            if faces:
                try:
                    out[i] = smile_score(faces[0].landmarks).score
                except ValueError:  # degenerate landmarks
                    pass
        return out
