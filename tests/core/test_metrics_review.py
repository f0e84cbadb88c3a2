"""Metric definitions checked in the correctness review (each test failed before its fix, or pins a
subtle convention)."""

from __future__ import annotations

import numpy as np
import pytest

from counterface import metrics, tables
from tests.helpers import face_landmarks


class _Blind:
    """An aligner that finds no face anywhere."""

    def align(self, image, size=256):
        return []


class _Face:
    def __init__(self, lm):
        self.landmarks, self.size = lm, 64
        self.matrix = np.array([[0.3, 0, 0], [0, 0.3, 0]], dtype=np.float64)
        self.crop = np.zeros((64, 64, 3), np.uint8)


class _ScoresOnlyZ:
    """A scorer that finds its attribute on the first image only (NaN on the outputs)."""

    def score(self, images):
        return np.array([1.0] + [np.nan] * (len(images) - 1))


def test_lost_faces_are_counted_missing_in_every_score_column():
    """The scorer cannot score the outputs: score_z1, score_z0 AND score_delta are None, so the
    summary counts it as missing in score_delta too (not silently fewer rows)."""
    from counterface.scoring import ScoredAttribute

    lm = face_landmarks()
    photo = np.full((200, 200, 3), 128, np.uint8)
    ev = metrics.Evaluator(aligner=_Blind(), size=64, scorers=[ScoredAttribute("smile", "only-z", _ScoresOnlyZ())])
    out = ev.evaluate(photo, _Face(lm), photo.copy(), photo.copy())
    assert out["score_z"] == 1.0 and out["scorer"] == "only-z"
    assert out["score_z1"] is None and out["score_z0"] is None and "score_delta" in out and out["score_delta"] is None
    s = tables.summarize([out, {**out, "score_delta": 0.5}])
    assert s[0]["score_delta"]["n"] == 1 and s[0]["score_delta"]["missing"] == 1
    assert "scorer" not in s[0]  # a name, not a number


def test_summary_keeps_configurations_apart_and_counts_a_replaced_photo_once():
    rows = [
        {"key": "a", "sha256": "old", "job": "j1", "face": 0, "alpha": 1.0, "identity": 0.1},
        {"key": "a", "sha256": "new", "job": "j1", "face": 0, "alpha": 1.0, "identity": 0.9},
        {"key": "b", "sha256": "x", "job": "j1", "face": 0, "alpha": 1.0, "identity": 0.7},
        {"key": "b", "sha256": "x", "job": "j2", "face": 0, "alpha": 1.0, "identity": 0.2},
    ]
    s = tables.summarize(rows)
    assert [(g["job"], g["alpha"]) for g in s] == [("j1", 1.0), ("j2", 1.0)]
    assert s[0]["rows"] == 2 and s[0]["identity"]["mean"] == pytest.approx(0.8)
    assert s[1]["identity"]["n"] == 1
    one = tables.summarize(rows[2:3])  # a single configuration: grouped by alpha only, as documented
    assert list(one[0]) [:2] == ["alpha", "rows"]
