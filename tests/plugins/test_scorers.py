"""The reference smile scorer (kind ``scorer``): mouth landmarks of real faces, NaN without a face."""

from __future__ import annotations

import numpy as np

import counterface
from counterface import read_image
from counterface.metrics import smile_score


def test_smile_scorer_is_registered_with_its_attribute():
    assert "smile" in counterface.available("scorer")
    s = counterface.create("scorer", "smile")
    assert isinstance(s, counterface.Scorer) and s.attribute == "smile"


def test_smile_scorer_scores_aligned_crops_like_the_metric_and_nan_without_a_face(photos):
    photo = read_image(photos / "astronaut.jpg")
    aligner = counterface.create("aligner", "dlib")
    (face,) = aligner.align(photo, size=256)[:1]
    crop = face.crop
    scorer = counterface.create("scorer", "smile")
    blank = np.full((64, 64, 3), 127, np.uint8)
    before = crop.copy()
    scores = scorer.score([crop, blank])
    assert scores.shape == (2,) and scores.dtype == np.float64
    assert np.array_equal(crop, before)  # inputs untouched
    assert np.isnan(scores[1])
    # the crop's own landmarks give the same score (it is invariant to scale, rotation, translation)
    assert abs(scores[0] - smile_score(face.crop_landmarks).score) < 0.05
    # a mirrored face keeps its smile
    assert abs(scorer.score([crop[:, ::-1].copy()])[0] - scores[0]) < 0.05
