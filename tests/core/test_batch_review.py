"""Batch bookkeeping found wrong in the correctness review: each test failed before its fix."""

from __future__ import annotations

import json

import numpy as np
import pytest
from PIL import Image

from counterface import batch, metrics
from counterface.pipeline import Pipeline
from tests.helpers import synthetic_photos




def _runner(cfg, out, with_metrics=True, alphas=None, **kw):
    from counterface.settings import EditSettings

    pipe = Pipeline(EditSettings.from_config(cfg, alphas=alphas))
    ev = None
    if with_metrics:
        ev = metrics.Evaluator(identity=pipe.component("identity"), lpips=None, aligner=pipe.component("aligner"), size=64)
    return batch.Runner(pipe, out, evaluator=ev, **kw)


def test_a_user_column_named_like_a_metric_is_kept_apart(fake_cfg, tmp_path):
    """A face data set's manifest may well have an ``identity`` column (the person's name): it must not
    overwrite the identity similarity, nor stop ``evaluate`` from measuring the row."""
    synthetic_photos(tmp_path / "img", 1, size=(60, 80), prefix="photo")
    (tmp_path / "m.csv").write_text("path,identity,score_z1,smile_score_delta\nimg/photo0.png,Ann,big,huge\n")
    items = batch.read_manifest(tmp_path / "m.csv")
    _runner(fake_cfg, tmp_path / "with").run(items)
    row = batch.load_rows(tmp_path / "with")[0]
    assert isinstance(row["identity"], float) and row["user_identity"] == "Ann"
    assert row["user_score_z1"] == "big" and row.get("score_z1") != "big"
    assert row["user_smile_score_delta"] == "huge" and "smile_score_delta" not in row
    _runner(fake_cfg, tmp_path / "without", with_metrics=False).run(items)
    n, failed, rows = batch.evaluate_folder(tmp_path / "without", lpips_net="none")
    assert (n, failed) == (1, 0) and isinstance(rows[0]["identity"], float) and rows[0]["user_identity"] == "Ann"


def test_a_changed_photo_does_not_overwrite_the_pair_of_its_earlier_row(fake_cfg, tmp_path):
    """Both versions of a photo stay in the table, so each row must keep pointing at its own images."""
    paths = synthetic_photos(tmp_path / "in", 1, size=(60, 80), prefix="photo")
    items = batch.read_manifest(tmp_path / "in")
    out = tmp_path / "out"
    _runner(fake_cfg, out, with_metrics=False).run(items)
    Image.fromarray(np.full((60, 80, 3), 200, np.uint8)).save(paths[0])
    _runner(fake_cfg, out, with_metrics=False).run(items)
    rows = batch.load_rows(out)
    assert len(rows) == 2 and len({r["z1"] for r in rows}) == 2
    for r in rows:
        for role in ("z1", "z0"):
            side = json.loads((out / r[f"{role}_sidecar"]).read_text())
            assert side["input"]["sha256"] == r["sha256"] and side["batch"]["job"] == r["job"]


def test_another_configuration_does_not_overwrite_the_pairs_of_the_first(fake_cfg, tmp_path):
    synthetic_photos(tmp_path / "in", 1, size=(60, 80), prefix="photo")
    items = batch.read_manifest(tmp_path / "in")
    out = tmp_path / "out"
    _runner(fake_cfg, out, with_metrics=False, alphas=[1.0]).run(items)
    _runner(fake_cfg, out, with_metrics=False, alphas=[2.0]).run(items)
    rows = batch.load_rows(out)
    assert len({r["job"] for r in rows}) == 2 and len({r["z1"] for r in rows}) == 2
    for r in rows:
        assert json.loads((out / r["z1_sidecar"]).read_text())["alpha"] == r["alpha"]


def test_evaluate_refuses_to_measure_against_a_photo_that_changed(fake_cfg, tmp_path):
    paths = synthetic_photos(tmp_path / "in", 1, size=(60, 80), prefix="photo")
    items = batch.read_manifest(tmp_path / "in")
    out = tmp_path / "out"
    _runner(fake_cfg, out, with_metrics=False).run(items)
    Image.fromarray(np.full((60, 80, 3), 200, np.uint8)).save(paths[0])
    n, failed, rows = batch.evaluate_folder(out, lpips_net="none")
    assert (n, failed) == (0, 1)
    assert "changed" in rows[0]["metrics_error"] and rows[0].get("identity") is None


def test_pair_sidecars_agree(fake_cfg, tmp_path):
    """Both sidecars of a pair: same input, face, matrix, alpha, configuration and pivot."""
    synthetic_photos(tmp_path / "in", 1, size=(60, 80), prefix="photo")
    out = tmp_path / "out"
    _runner(fake_cfg, out, with_metrics=False).run(batch.read_manifest(tmp_path / "in"))
    r = batch.load_rows(out)[0]
    s1, s0 = (json.loads((out / r[f"{x}_sidecar"]).read_text()) for x in ("z1", "z0"))
    assert (s1["role"], s0["role"]) == ("z1", "z0")
    for k in ("input", "face", "config", "edit", "alpha", "pivot"):
        assert s1[k] == s0[k], k
    assert s1["batch"]["pair"] == r["z0"] and s0["batch"]["pair"] == r["z1"]


def test_one_photo_given_through_a_symlink_is_read_from_the_link(tmp_path):
    real = synthetic_photos(tmp_path / "data", 1, size=(60, 80), prefix="real")[0]
    link = tmp_path / "work" / "photo.png"
    link.parent.mkdir()
    link.symlink_to(real)
    (item,) = batch.read_manifest(link)
    assert item.path.is_file() and item.key == "photo.png"


def test_metrics_describe_the_files_written_even_when_lossy(fake_cfg, tmp_path):
    """--format jpg: the numbers in the table must be those of the JPEGs on disk (what is published),
    i.e. what `evaluate --force` measures from the files, not those of the arrays before encoding."""
    synthetic_photos(tmp_path / "in", 1, size=(60, 80), prefix="photo")
    out = tmp_path / "out"
    _runner(fake_cfg, out, image_format="jpg").run(batch.read_manifest(tmp_path / "in"))
    during = batch.load_rows(out)[0]
    assert during["unchanged_outside_blend"] < 1.0  # JPEG touched pixels the blender left alone
    batch.evaluate_folder(out, lpips_net="none", force=True, size=64)
    after = batch.load_rows(out, "metrics")[0]
    for k in ("unchanged_outside_blend", "psnr_outside", "identity"):
        assert during[k] == pytest.approx(after[k], abs=1e-9), k
