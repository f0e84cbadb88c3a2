"""The reference smile scorer (kind ``scorer``): mouth landmarks of real faces, NaN without a face."""

from __future__ import annotations

import math

import numpy as np
import pytest
from counterface_scorers.smile import smile_score
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import counterface
from counterface import read_image
from tests.helpers import face_landmarks, mouth_landmarks

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def transform(points: np.ndarray, scale: float, angle: float, tx: float, ty: float) -> np.ndarray:
    c, s = math.cos(angle), math.sin(angle)
    R = np.array([[c, -s], [s, c]]) * scale
    return points @ R.T + [tx, ty]




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


# -- smile score -----------------------------------------------------------------------------------
def test_smile_score_ranks_synthetic_mouths():
    frown = smile_score(mouth_landmarks(width=0.9, lift=-0.02)).score
    neutral = smile_score(mouth_landmarks()).score
    slight = smile_score(mouth_landmarks(width=1.1, lift=0.01)).score
    broad = smile_score(mouth_landmarks(width=1.3, lift=0.03, opening=0.02)).score
    assert frown < neutral < slight < broad


@SETTINGS
@given(st.floats(0.7, 1.5), st.floats(-0.04, 0.04), st.floats(0.001, 0.03))
def test_smile_score_grows_with_lift_and_width(width, lift, step):
    base = smile_score(mouth_landmarks(width, lift))
    lifted = smile_score(mouth_landmarks(width, lift + step))
    wider = smile_score(mouth_landmarks(width + 10 * step, lift))
    assert lifted.lift > base.lift and lifted.score > base.score
    assert wider.width > base.width and wider.score > base.score
    assert wider.lift == pytest.approx(base.lift, abs=1e-9)


@SETTINGS
@given(st.floats(0.2, 5.0), st.floats(-math.pi, math.pi), st.floats(-500, 500), st.floats(-500, 500),
       st.floats(0.8, 1.3), st.floats(-0.03, 0.03))
def test_smile_score_is_similarity_invariant(scale, angle, tx, ty, width, lift):
    lm = mouth_landmarks(width, lift)
    a = smile_score(lm)
    b = smile_score(transform(lm, scale, angle, tx, ty))
    assert b.lift == pytest.approx(a.lift, abs=1e-9)
    assert b.width == pytest.approx(a.width, rel=1e-9)


def test_smile_score_rejects_bad_landmarks():
    with pytest.raises(ValueError):
        smile_score(np.zeros((5, 2)))
    with pytest.raises(ValueError):
        smile_score(np.zeros((68, 2)))


def test_the_smile_direction_is_scored_by_the_smile_scorer_by_default():
    from counterface import scoring

    smile = counterface.create("direction", "smile")
    assert scoring.scorer_name_for(smile) == "smile"
    assert isinstance(scoring.scorer_for(smile), counterface.Scorer)
    smile.scorer = "none"  # a direction may turn its scoring off
    assert scoring.scorer_for(smile) is None


def test_lift_is_positive_when_the_corners_go_up_in_the_picture():
    up, flat, down = (smile_score(face_landmarks(lift=v)) for v in (6.0, 0.0, -6.0))
    assert up.lift == pytest.approx(0.1) and flat.lift == pytest.approx(0.0) and down.lift == pytest.approx(-0.1)
    assert up.width == pytest.approx(40 / 60)  # inter-ocular distance 60 px
