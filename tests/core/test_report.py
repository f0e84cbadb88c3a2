"""`counterface report`: the static review page, its thumbnails and outliers, and the exclusion lists it
exports (accepted by `batch --exclude` and `evaluate --exclude`). The page itself is checked in a real
headless Chromium in tests/core/test_report_browser.py."""

from __future__ import annotations

import json
import os
import re
from urllib.parse import unquote

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface import batch, report
from counterface.batch.exclusions import exclusion_csv, read_exclusions
from counterface.cli import cli
from counterface.errors import ConfigError
from tests.helpers import synthetic_photos, write_manifest


def _rows_js(folder):
    text = (folder / "rows.js").read_text()
    assert text.startswith("window.REPORT = ") and text.rstrip().endswith(";")
    return json.loads(text[len("window.REPORT = "):].rstrip().rstrip(";"))


# -- pure parts ----------------------------------------------------------------------------------------
def test_outlier_flags_follow_the_documented_thresholds():
    good = {"z1": "pairs/a_z1.png", "alpha": 1.0, "identity": 0.9, "identity_z0": 0.95, "psnr_outside": 35.0,
            "unchanged_outside_blend": 1.0, "unchanged_outside_blend_z0": 1.0, "score_z": 0.1, "score_z1": 0.3,
            "score_z0": 0.1, "score_delta": 0.2, "scorer": "smile", "z0": "pairs/a_z0.png"}
    assert report.outlier_flags(good) == []
    assert report.outlier_flags({**good, "identity": 0.49}) == ["low_identity"]
    assert report.outlier_flags({**good, "identity": 0.49}, {"identity": 0.4, "psnr_outside": 20}) == []
    assert report.outlier_flags({**good, "identity_z1z0": 0.3}) == ["low_identity"]
    assert report.outlier_flags({**good, "identity_independent": 0.95, "identity_independent_z0": 0.9}) == ["low_identity"]
    assert report.outlier_flags({**good, "identity_independent": 0.95, "identity_independent_z1z0": 0.93}) == []
    assert report.outlier_flags({**good, "unchanged_outside_blend_z0": 0.999}) == ["changed_outside_blend"]
    # a lossy format always changes pixels: the unchanged fraction is not an outlier there, low PSNR is
    assert report.outlier_flags({**good, "z1": "pairs/a_z1.jpg", "unchanged_outside_blend": 0.3}) == []
    assert report.outlier_flags({**good, "psnr_outside": 12.0}) == ["low_psnr_outside"]
    assert report.outlier_flags({**good, "score_z1": None, "score_delta": None}) == ["not_scored"]
    assert report.outlier_flags({**good, "score_delta": -0.1}) == ["no_score_gain"]
    assert report.outlier_flags({**good, "alpha": -1.0, "score_delta": -0.1}) == []  # expected for alpha < 0
    # an attribute without a scorer: no score columns, no score flags
    unscored = {k: v for k, v in good.items() if not k.startswith("score")}
    assert report.outlier_flags(unscored) == []
    # several attributes: each prefixed attribute is checked
    two = {**unscored, "smile_score_z1": 0.3, "smile_score_z0": 0.1, "smile_score_delta": 0.2, "smile_scorer": "smile",
           "glasses_score_z1": 0.1, "glasses_score_z0": 0.2, "glasses_score_delta": -0.1, "glasses_scorer": "g"}
    assert report.outlier_flags(two) == ["no_score_gain"]
    assert report.outlier_flags({**two, "glasses_score_delta": 0.1, "smile_score_z0": None}) == ["not_scored"]
    assert report.outlier_flags({"z1": "pairs/a_z1.png", "alpha": 1.0}) == []  # not measured: nothing to say
    assert report.outlier_flags({"metrics_error": "OSError: gone"}) == ["metrics_error"]


@settings(max_examples=60, deadline=None)
@given(st.integers(8, 300), st.integers(8, 300), st.lists(st.tuples(st.floats(-50, 350), st.floats(-50, 350)),
                                                          min_size=1, max_size=8), st.floats(1.0, 3.0))
def test_crop_box_is_inside_the_image_and_holds_the_landmarks_inside_it(h, w, pts, growth):
    x0, y0, x1, y1 = report.crop_box(pts, (h, w), growth)
    assert 0 <= x0 < x1 <= w and 0 <= y0 < y1 <= h
    a = np.array(pts)
    inside = (a[:, 0] >= 0) & (a[:, 0] <= w - 1) & (a[:, 1] >= 0) & (a[:, 1] <= h - 1)
    lo, hi = a.min(axis=0), a.max(axis=0)
    if inside.all() and (hi - lo).max() >= 1:
        for x, y in a:  # every landmark within the photo is within the crop
            assert x0 <= x <= x1 and y0 <= y <= y1


def test_heat_map_is_black_where_identical_and_a_single_changed_pixel_survives_the_thumbnail():
    a = (np.random.default_rng(0).random((300, 200, 3)) * 255).astype(np.uint8)
    assert not report.heat_map(a, a).any()
    b = a.copy()
    b[123, 45, 1] ^= 1  # one level in one channel of one pixel
    heat = report.heat_map(a, b)
    assert heat.any(axis=2).sum() == 1 and heat[123, 45, 0] > 0
    small = report._max_pool(heat, 32)
    assert max(small.shape[:2]) <= 32 and small.any()
    big = a.copy()
    big[0, 0] = 255 - big[0, 0]
    assert report.heat_map(a, big)[0, 0].tolist() > heat[123, 45].tolist()  # larger difference, brighter


# -- exclusion lists -----------------------------------------------------------------------------------
def test_exclusion_list_round_trip_and_matching(tmp_path):
    text = exclusion_csv([{"key": "a,1.jpg", "face": 0, "alpha": 1.0, "decision": "reject", "job": "j1", "sha256": "s"},
                          {"key": "b.jpg", "face": 0, "alpha": 1.0, "decision": "accept"},
                          {"key": "c.jpg", "decision": "reject"}])
    (tmp_path / "x.csv").write_text(text)
    ex = read_exclusions(tmp_path / "x.csv")
    assert ex.reviewed == 3 and len(ex.rejections) == 2
    row = {"key": "a,1.jpg", "face": 0, "alpha": 1.0, "job": "j1", "sha256": "s"}
    assert ex.rejects(row)
    assert not ex.rejects({**row, "alpha": 2.0}) and not ex.rejects({**row, "face": 1})
    assert not ex.rejects({**row, "job": "j2"})  # another configuration's pair was not reviewed
    assert not ex.rejects({**row, "key": "b.jpg"})  # accepted
    assert ex.rejects({"key": "c.jpg", "face": 3, "alpha": -2.0})  # empty face/alpha: the whole photo
    assert ex.rejects_photo("a,1.jpg") and ex.rejects_photo("c.jpg") and not ex.rejects_photo("b.jpg")
    kept, dropped = ex.split([row, {**row, "alpha": 2.0}])
    assert dropped == 1 and kept == [{**row, "alpha": 2.0}]


@pytest.mark.parametrize("text,message", [
    ("path,decision\nx,reject\n", "needs the columns key and decision"),
    ("key,decision\nx,maybe\n", "unknown decision 'maybe'"),
    ("key,face,decision\nx,first,reject\n", "face must be an integer"),
])
def test_bad_exclusion_lists_are_one_line_errors(tmp_path, text, message):
    (tmp_path / "x.csv").write_text(text)
    with pytest.raises(ConfigError, match=message):
        read_exclusions(tmp_path / "x.csv")
    r = CliRunner().invoke(cli, ["evaluate", str(tmp_path), "--exclude", str(tmp_path / "x.csv")])
    assert r.exit_code == 2 and len(r.output.strip().splitlines()) == 1 and message.split("'")[0] in r.output


# -- the page from a batch (fake components: fast) -------------------------------------------------------
@pytest.fixture
def fake_batch(fakes, tmp_path):
    files = synthetic_photos(tmp_path / "in", 3)
    manifest = write_manifest(tmp_path / "in" / "m.csv", files, ["Ann", "Bob", "Cy"])
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(out), "--preset", "fake", "--lpips", "none",
                                 "--alphas", "0,1"])
    assert r.exit_code == 0, r.output
    return manifest, out


def test_report_writes_one_row_per_pair_with_thumbnails_made_once(fake_batch):
    _, out = fake_batch
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    rows = batch.merged_rows(out)
    data = _rows_js(out / "report")
    assert len(data["rows"]) == len(rows) == 6
    assert [(d["key"], d["alpha"]) for d in data["rows"]] == [(x["key"], x["alpha"]) for x in rows]
    assert {"politician"} <= set(data["meta"]["manifest_columns"])
    kinds = {c["name"]: c["kind"] for c in data["meta"]["columns"]}
    assert kinds["politician"] == "manifest" and kinds["identity"] == "metric" and kinds["key"] == "run"
    html = (out / "report" / "index.html").read_text()
    assert 'src="rows.js"' in html and 'src="report.js"' in html and "base64" not in html
    thumbs = sorted((out / "report" / "thumbs").iterdir())
    for d in data["rows"]:
        assert set(d["thumbs"]) == {"z", "z1", "z0", "diff"} and all(d["thumbs"].values())
        for role in ("z", "z1", "z0"):  # full-size images are links to the files, never copies
            target = (out / "report" / unquote(d["links"][role])).resolve()
            assert target.is_file() and "report" not in target.relative_to(out.parent).parts
    # the photo's thumbnail is shared by its alphas; Z1, Z0 and the heat map differ per pair
    assert len(thumbs) == 3 + 6 * 3
    assert all(p.read_bytes()[:3] == b"\xff\xd8\xff" for p in thumbs)
    assert re.search(r"21 thumbnails made, 0 up to date", r.output)
    stamps = {p.name: p.stat().st_mtime_ns for p in thumbs}
    again = CliRunner().invoke(cli, ["report", str(out)])
    assert again.exit_code == 0 and "0 thumbnails made, 21 up to date" in again.output
    assert {p.name: p.stat().st_mtime_ns for p in (out / "report" / "thumbs").iterdir()} == stamps
    # a pair written again: its thumbnails are made again, the stale ones removed
    z1 = out / rows[0]["z1"]
    os.utime(z1, ns=(z1.stat().st_atime_ns, z1.stat().st_mtime_ns + 10**9))
    third = CliRunner().invoke(cli, ["report", str(out)])
    assert "2 thumbnails made, 19 up to date" in third.output  # Z1 and the heat map of that pair
    assert len(list((out / "report" / "thumbs").iterdir())) == 21


def test_report_without_matplotlib_says_so_in_the_page(fake_batch, monkeypatch):
    import sys

    _, out = fake_batch
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    meta = _rows_js(out / "report")["meta"]
    assert meta["figures"] == [] and any("figures need matplotlib" in n for n in meta["notes"])


def test_report_with_figures_and_a_missing_pair(fake_batch):
    _, out = fake_batch
    rows = batch.merged_rows(out)
    (out / rows[-1]["z0"]).unlink()
    r = CliRunner().invoke(cli, ["report", str(out)])
    assert r.exit_code == 0, r.output
    data = _rows_js(out / "report")
    assert data["meta"]["figures"] == ["figures/figure2.png", "figures/figure3.png"]
    assert (out / "report" / "figures" / "figure3.png").is_file()
    broken = [d for d in data["rows"] if d.get("report_error")]
    assert len(broken) == 1 and broken[0]["z0"] == rows[-1]["z0"] and "1 row(s) without thumbnails" in r.output


def test_report_of_a_folder_without_rows_is_a_one_line_error(tmp_path):
    r = CliRunner().invoke(cli, ["report", str(tmp_path)])
    assert r.exit_code == 2 and r.output.startswith("error: ") and "counterface batch" in r.output


# -- the exported CSV as an exclusion list ---------------------------------------------------------------
def test_batch_and_evaluate_skip_what_the_review_rejected(fake_batch, tmp_path):
    manifest, out = fake_batch
    rows = batch.merged_rows(out)
    ann = [r for r in rows if r["politician"] == "Ann"]
    review = tmp_path / "review.csv"
    review.write_text(exclusion_csv([{**ann[1], "decision": "reject"}, {**ann[0], "decision": "accept"}]))
    r = CliRunner().invoke(cli, ["evaluate", str(out), "--lpips", "none", "--exclude", str(review)])
    assert r.exit_code == 0, r.output
    assert "1 row(s) excluded by" in r.output
    summary = json.loads((out / "summary.json").read_text())
    assert summary["excluded"]["rows"] == 1
    assert {g["alpha"]: g["rows"] for g in summary["groups"]} == {0.0: 3, 1.0: 2}
    # batch: a photo with a rejected pair is skipped (and counted) in a new run
    fresh = tmp_path / "fresh"
    r = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(fresh), "--preset", "fake", "--no-metrics",
                                 "--exclude", str(review)])
    assert r.exit_code == 0, r.output
    assert "1 photo(s) excluded by" in r.output
    assert {x["politician"] for x in batch.merged_rows(fresh)} == {"Bob", "Cy"}


def test_polarization_leaves_out_the_articles_whose_pairs_were_rejected(fake_batch, tmp_path):
    from counterface.polarization import build_study, read_pairs
    from counterface.polarization.synthetic import make_study

    # pair level on a sweep's batch folder: rejecting Ann's alpha-1 pair leaves her alpha-0 pair usable
    _, out = fake_batch
    rows = batch.merged_rows(out)
    ann1 = next(r for r in rows if r["politician"] == "Ann" and r["alpha"] == 1.0)
    review = tmp_path / "review.csv"
    review.write_text(exclusion_csv([{**ann1, "decision": "reject"}]))
    ex = read_exclusions(review)
    assert set(read_pairs(out, 1.0)) - set(read_pairs(out, 1.0, ex)) == {ann1["key"]}
    assert set(read_pairs(out, 0.0, ex)) == set(read_pairs(out, 0.0))
    # the study: the rejected articles are left out and counted, the others kept
    study = make_study(tmp_path / "study", articles=24, size=8)
    keys = ["a0003", "a0010", "a0011"]
    (tmp_path / "r2.csv").write_text(exclusion_csv([{"key": k, "decision": "reject"} for k in keys]
                                                   + [{"key": "a0004", "decision": "accept"}]))
    full = build_study(study["articles"], pairs=study["pairs"])
    cut = build_study(study["articles"], pairs=study["pairs"], exclude=read_exclusions(tmp_path / "r2.csv"))
    assert sorted(set(full.keys) - set(cut.keys)) == keys and len(cut.keys) == len(full.keys) - 3
    assert cut.counts["excluded"] == 3 and any("3 of 24 articles excluded" in n for n in cut.notes)
