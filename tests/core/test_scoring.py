"""Evaluation follows the attribute: each direction's scorer (its own, or its attribute's registered
default), generic ``score_*`` columns, none for an attribute without a scorer."""

from __future__ import annotations

import csv
from types import SimpleNamespace

import numpy as np
import pytest
from click.testing import CliRunner

import counterface
from counterface import plugins, scoring
from counterface.cli import cli
from tests.helpers import planted


class GlassesScorer(counterface.Scorer):
    """A scorer plugins register for a new attribute: the mean level of the image."""

    attribute = "glasses"

    def score(self, images):
        return np.array([float(np.mean(im)) for im in images])


class _GlassesPlugin:
    @counterface.hookimpl
    def register_scorers(self, register):
        register("dark-frames", GlassesScorer, description="test: glasses by mean level")


@pytest.fixture
def glasses_scorer():
    name = plugins.register_plugin(_GlassesPlugin(), name="test-glasses-scorer")
    try:
        yield
    finally:
        plugins.unregister_plugin(name)


def direction(attribute, scorer=None):
    return SimpleNamespace(attribute=attribute, scorer=scorer)


def test_a_direction_names_its_scorer_or_gets_its_attributes_default(glasses_scorer):
    assert scoring.scorer_name_for(direction("smile")) == "smile"  # registered under the attribute's name
    assert scoring.scorer_name_for(direction("glasses")) == "dark-frames"  # the one scorer of that attribute
    assert scoring.scorer_name_for(direction("glasses", scorer="smile")) == "smile"  # the direction's own choice
    assert scoring.scorer_name_for(direction("smile", scorer="none")) is None  # turned off
    assert scoring.scorer_name_for(direction("beard")) is None  # no scorer: no score columns
    assert isinstance(scoring.scorer_for(direction("glasses")), GlassesScorer)
    assert scoring.scorer_for(direction("beard")) is None


def test_without_the_plugin_glasses_has_no_scorer():
    assert scoring.scorer_name_for(direction("glasses")) is None


def test_columns_are_prefixed_by_the_attribute_only_when_several_are_edited(glasses_scorer):
    crops = [np.full((8, 8, 3), v, np.uint8) for v in (10, 30, 20)]
    (one,) = scoring.scored_attributes([direction("glasses")])
    assert one.measure(crops) == {"score_z": 10.0, "score_z1": 30.0, "score_z0": 20.0, "score_delta": 10.0,
                                  "scorer": "dark-frames"}
    two = scoring.scored_attributes([direction("glasses"), direction("beard"), direction("glasses")])
    assert [s.prefix for s in two] == ["glasses_"]  # beard has no scorer; glasses counted once
    assert set(two[0].measure(crops[:2])) == {"glasses_score_z", "glasses_score_z1", "glasses_scorer"}
    assert scoring.parse_score_column("glasses_score_delta") == ("glasses_", "score_delta")
    assert scoring.parse_score_column("score_z0") == ("", "score_z0")
    assert scoring.parse_score_column("target_score") is None and scoring.parse_score_column("identity") is None


def test_a_scorer_returning_the_wrong_number_of_scores_is_refused():
    bad = scoring.ScoredAttribute("x", "bad", SimpleNamespace(score=lambda images: np.zeros(1)))
    with pytest.raises(counterface.ConfigError, match="returned 1 scores for 3 images"):
        bad.measure([np.zeros((4, 4, 3), np.uint8)] * 3)


def _learn(tmp_path, attribute):
    x, y, _ = planted(d=64, n=400, seed=1)
    np.savez(tmp_path / "planted.npz", latents=x.astype(np.float32), labels=y)
    out = tmp_path / f"{attribute}.safetensors"
    res = CliRunner().invoke(cli, ["directions", "learn", str(tmp_path / "planted.npz"), "--attribute", attribute,
                                   "-o", str(out)])
    assert res.exit_code == 0, res.output
    return out


def test_pipeline_scorers_follow_the_boundary_attribute(tmp_path):
    from counterface import config
    from counterface.pipeline import Pipeline

    for attribute, expected in (("glasses", []), ("smile", ["smile"])):
        path = _learn(tmp_path, attribute)
        pipe = Pipeline(config.resolve(preset="tiny", components={"direction": str(path)}))
        assert [s.scorer_name for s in scoring.pipeline_scorers(pipe)] == expected


def test_a_glasses_batch_has_no_smile_column(photos, tmp_path):
    """The issue's check: a learned glasses boundary drives a tiny batch, then evaluate; no column of
    results.csv names smile, and no score column exists (glasses has no scorer)."""
    g = _learn(tmp_path, "glasses")
    folder = tmp_path / "PHOTOS"
    folder.mkdir()
    for name in ("astronaut_small.jpg", "hopper.jpg"):
        (folder / name).write_bytes((photos / name).read_bytes())
    out = tmp_path / "OUT"
    res = CliRunner().invoke(cli, ["batch", str(folder), "--preset", "tiny", "--direction", str(g), "-o", str(out)])
    assert res.exit_code == 0, res.output
    res = CliRunner().invoke(cli, ["evaluate", str(out)])
    assert res.exit_code == 0, res.output
    with open(out / "results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert "psnr_outside" in header and "distance_after_glasses" in header  # measured, and the glasses edit
    assert not [c for c in header if "smile" in c], header
    assert not [c for c in header if scoring.parse_score_column(c)], header


def test_a_boundary_file_names_its_scorer(tmp_path, glasses_scorer):
    from counterface.boundary import load_boundary, save_boundary

    path = _learn(tmp_path, "beard")
    assert scoring.scorer_name_for(counterface.create("direction", "boundary", path=str(path))) is None
    b = load_boundary(path)
    b.meta["scorer"] = "dark-frames"  # as `directions calibrate --scorer dark-frames` records it
    save_boundary(b, tmp_path / "named.safetensors")
    named = counterface.create("direction", "boundary", path=str(tmp_path / "named.safetensors"))
    assert scoring.scorer_name_for(named) == "dark-frames"
    # a --direction value works too: a boundary file, or a registered direction's name
    assert isinstance(scoring.scorer_for(tmp_path / "named.safetensors"), GlassesScorer)
    assert scoring.scorer_name_for(str(path)) is None
    assert scoring.scorer_name_for("smile") == "smile"


class VectorScorer(counterface.Scorer):
    """A scorer for the fake preset's direction (attribute ``vector``): the mean level of the image."""

    attribute = "vector"

    def score(self, images):
        return np.array([float(np.mean(im)) for im in images])


class _VectorPlugin:
    @counterface.hookimpl
    def register_scorers(self, register):
        register("brightness", VectorScorer, description="test: mean level")


def test_a_batch_and_evaluate_score_the_direction_with_its_attributes_scorer(fakes, tmp_path):
    from counterface import batch
    from tests.helpers import synthetic_photos

    synthetic_photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    name = plugins.register_plugin(_VectorPlugin(), name="test-vector-scorer")
    try:
        res = CliRunner().invoke(cli, ["batch", str(tmp_path / "in"), "-o", str(out), "--preset", "fake",
                                       "--lpips", "none", "--identity-independent", "none"])
        assert res.exit_code == 0, res.output
        rows = batch.load_rows(out)
        assert len(rows) == 2
        for r in rows:
            assert r["scorer"] == "brightness"
            assert all(isinstance(r[c], float) for c in ("score_z", "score_z1", "score_z0"))
            assert r["score_delta"] == pytest.approx(r["score_z1"] - r["score_z0"])
        res = CliRunner().invoke(cli, ["evaluate", str(out), "--force", "--lpips", "none",
                                       "--identity-independent", "none"])
        assert res.exit_code == 0, res.output
        measured = batch.load_rows(out, "metrics")
        assert [m["scorer"] for m in measured] == ["brightness", "brightness"]
        assert [m["score_z1"] for m in measured] == pytest.approx([r["score_z1"] for r in rows], abs=0.5)
    finally:
        plugins.unregister_plugin(name)
    with open(out / "results.csv", newline="") as f:
        header = next(csv.reader(f))
    assert {"score_z", "score_z1", "score_z0", "score_delta", "scorer"} <= set(header)
