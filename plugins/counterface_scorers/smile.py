"""The landmark smile scorer: :func:`counterface.metrics.smile_score` of each face's 68 landmarks."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from counterface import Scorer


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

        from counterface.metrics import smile_score

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
