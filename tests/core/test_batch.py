"""The batch runner on the fake components: manifests, shards, failures, resume, interruption."""

from __future__ import annotations

import io
import json
import os
import signal
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from counterface import batch, metrics
from counterface.errors import ConfigError, CounterfaceError
from counterface.pipeline import Pipeline
from counterface.rows import MalformedRowWarning
from counterface.settings import EditSettings
from tests.helpers import synthetic_photos, write_broken_images




def make_photos(folder, n=3, size=(60, 80)):
    return synthetic_photos(folder, n, size=size, prefix="photo")


def make_broken(folder):
    """A truncated JPEG, a text file named .jpg, an empty file and a photo too small to hold a face."""
    buf = io.BytesIO()
    Image.open(folder / "photo0.png").convert("RGB").save(buf, "JPEG", quality=90)
    reasons = write_broken_images(folder, buf.getvalue())
    Image.fromarray(np.full((10, 10, 3), 90, np.uint8)).save(folder / "noface.png")  # fake aligner: < 16 px
    return {**reasons, "noface.png": "no_face"}


# -- manifests -------------------------------------------------------------------------------------
def test_folder_manifest_skips_hidden_non_images_and_the_output(tmp_path):
    make_photos(tmp_path / "in", 2)
    (tmp_path / "in" / "notes.txt").write_text("x")
    (tmp_path / "in" / ".hidden.png").write_bytes(b"x")
    make_photos(tmp_path / "in" / "sub", 1)
    make_photos(tmp_path / "in" / "out" / "pairs", 1)
    items = batch.read_manifest(tmp_path / "in", exclude=[tmp_path / "in" / "out"])
    assert [it.key for it in items] == ["photo0.png", "photo1.png", "sub/photo0.png"]


def test_csv_and_jsonl_manifests_carry_user_columns(tmp_path):
    make_photos(tmp_path / "img", 2)
    (tmp_path / "m.csv").write_text("path,politician,outlet\nimg/photo0.png,Ann,Daily\nimg/photo1.png,Bob,Weekly\n")
    items = batch.read_manifest(tmp_path / "m.csv")
    assert [it.key for it in items] == ["img/photo0.png", "img/photo1.png"]
    assert items[1].path == tmp_path / "img" / "photo1.png"
    assert dict(items[0].meta) == {"politician": "Ann", "outlet": "Daily"}
    lines = [{"path": str(tmp_path / "img" / "photo0.png"), "id": "a", "year": 2020}, {"path": "img/photo1.png", "id": "b"}]
    (tmp_path / "m.jsonl").write_text("\n".join(json.dumps(x) for x in lines) + "\n\n")
    items = batch.read_manifest(tmp_path / "m.jsonl")
    assert [it.key for it in items] == ["a", "b"] and items[0].meta["year"] == 2020


@pytest.mark.parametrize("text,match", [
    ("file_name,x\na.png,1\n", "column named"),
    ("path\na.png\na.png\n", "appears twice"),
])
def test_bad_csv_manifests_are_config_errors(tmp_path, text, match):
    (tmp_path / "m.csv").write_text(text)
    with pytest.raises(ConfigError, match=match):
        batch.read_manifest(tmp_path / "m.csv")


def test_bad_manifests_are_config_errors(tmp_path):
    (tmp_path / "m.jsonl").write_text('{"path": "a.png"}\n{oops\n')
    with pytest.raises(ConfigError, match="invalid JSON"):
        batch.read_manifest(tmp_path / "m.jsonl")
    (tmp_path / "m.txt").write_text("a.png\n")
    with pytest.raises(ConfigError, match="folder, a .csv or a .jsonl"):
        batch.read_manifest(tmp_path / "m.txt")
    with pytest.raises(ConfigError, match="not found"):
        batch.read_manifest(tmp_path / "missing")


# -- shards ----------------------------------------------------------------------------------------
@settings(max_examples=50, deadline=None)
@given(st.lists(st.text(min_size=1, max_size=30), unique=True, max_size=60), st.integers(1, 9), st.randoms())
def test_shards_cover_every_key_exactly_once_whatever_the_order(keys, n, rnd):
    items = [batch.Item(key=k, path=Path(k)) for k in keys]
    parts = [batch.select_shard(items, i, n) for i in range(1, n + 1)]
    assert sorted(k.key for p in parts for k in p) == sorted(keys)
    shuffled = list(items)
    rnd.shuffle(shuffled)
    for i in range(1, n + 1):
        assert {k.key for k in batch.select_shard(shuffled, i, n)} == {k.key for k in parts[i - 1]}


def test_shards_are_roughly_balanced():
    keys = [f"img{i:05d}.jpg" for i in range(2000)]
    sizes = [sum(batch.shard_of(k, 4) == s for k in keys) for s in range(1, 5)]
    assert min(sizes) > 400


@pytest.mark.parametrize("bad", ["0/2", "3/2", "1", "a/b", "1/0"])
def test_parse_shard_rejects_bad_specs(bad):
    with pytest.raises(ConfigError):
        batch.parse_shard(bad)
    assert batch.parse_shard("2/3") == (2, 3) and batch.parse_shard(None) == (1, 1)


# -- the runner -----------------------------------------------------------------------------------------
def run(cfg, items, out, **kw):
    calls = []
    runner = batch.Runner(Pipeline(cfg), out, on_photo=lambda item, status: calls.append((item.key, status)), **kw)
    return runner.run(items), calls


def check_pairs(out, rows):
    keys = [batch.row_key(r) for r in rows]
    assert len(keys) == len(set(keys)), "duplicated rows"
    for r in rows:
        for role in ("z1", "z0"):
            img = np.asarray(Image.open(out / r[role]))
            assert img.ndim == 3 and img.shape[2] == 3
            side = json.loads((out / r[f"{role}_sidecar"]).read_text())
            assert side["role"] == role and side["input"]["sha256"] == r["sha256"]
    leftovers = [p.name for p in (out / "pairs").iterdir() if p.name.endswith(".tmp")]
    assert not leftovers


def test_failures_are_recorded_and_a_rerun_does_no_work(fake_cfg, tmp_path):
    make_photos(tmp_path / "in", 2)
    broken = make_broken(tmp_path / "in")
    items = batch.read_manifest(tmp_path / "in")
    out = tmp_path / "out"
    summary, calls = run(fake_cfg, items, out)
    assert (summary.done, summary.failed, summary.skipped) == (2, 4, 0)
    fails = batch.read_jsonl(out / "failures.jsonl")
    assert {f["key"]: f["reason"] for f in fails} == broken
    assert all(f["message"] for f in fails)
    rows = batch.load_rows(out)
    assert {r["key"] for r in rows} == {"photo0.png", "photo1.png"}
    check_pairs(out, rows)
    csv_text = (out / "results.csv").read_text()
    assert csv_text.count("\n") == 3 and "seconds.tune" in csv_text.splitlines()[0]

    before = {p.name: p.stat().st_mtime_ns for p in (out / "pairs").iterdir()}
    summary2, calls2 = run(fake_cfg, items, out)
    assert (summary2.done, summary2.failed, summary2.skipped) == (0, 0, 6) and calls2 == []
    assert {p.name: p.stat().st_mtime_ns for p in (out / "pairs").iterdir()} == before
    assert len(batch.read_jsonl(out / "failures.jsonl")) == 4


def test_face_too_small_is_its_own_reason(fake_cfg, tmp_path):
    make_photos(tmp_path / "in", 1, size=(40, 40))
    make_photos(tmp_path / "big", 1, size=(100, 100))
    items = batch.read_manifest(tmp_path / "in") + [batch.Item("big.png", tmp_path / "big" / "photo0.png")]
    cfg = {**fake_cfg, "edit": {**fake_cfg["edit"], "min_face": 50}}  # fake faces: 0.8 * side * 0.66 wide
    summary, _ = run(cfg, items, tmp_path / "out")
    fails = batch.read_jsonl(tmp_path / "out" / "failures.jsonl")
    assert [(f["key"], f["reason"]) for f in fails] == [("photo0.png", "face_too_small")]
    assert summary.done == 1


def test_a_changed_file_is_redone_and_unchanged_ones_are_not(fake_cfg, tmp_path):
    paths = make_photos(tmp_path / "in", 2)
    items = batch.read_manifest(tmp_path / "in")
    run(fake_cfg, items, tmp_path / "out")
    Image.fromarray(np.full((60, 80, 3), 200, np.uint8)).save(paths[1])
    summary, calls = run(fake_cfg, items, tmp_path / "out")
    assert calls == [("photo1.png", "done")] and summary.skipped == 1
    rows = batch.load_rows(tmp_path / "out")
    assert len([r for r in rows if r["key"] == "photo1.png"]) == 2  # one per content, both kept


def test_interrupted_run_resumes_without_losing_or_duplicating(fake_cfg, tmp_path):
    make_photos(tmp_path / "in", 4)
    items = batch.read_manifest(tmp_path / "in")
    out = tmp_path / "out"
    runner = batch.Runner(Pipeline(fake_cfg), out,
                          on_photo=lambda item, status: os.kill(os.getpid(), signal.SIGTERM) if item.key == "photo1.png" else None)
    with pytest.raises(batch.BatchInterrupted) as info:
        runner.run(items)
    assert info.value.exit_code == 128 + signal.SIGTERM and "rerun" in str(info.value)
    assert signal.getsignal(signal.SIGTERM) is signal.SIG_DFL  # handler restored
    assert {r["key"] for r in batch.load_rows(out)} == {"photo0.png", "photo1.png"}
    summary, calls = run(fake_cfg, items, out)
    assert summary.skipped == 2 and [c[0] for c in calls] == ["photo2.png", "photo3.png"]
    rows = batch.load_rows(out)
    assert sorted(r["key"] for r in rows) == [f"photo{i}.png" for i in range(4)]
    raw = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines()]
    assert len(raw) == 4  # nothing written twice
    check_pairs(out, rows)


def test_a_line_cut_by_a_crash_is_ignored_and_the_photo_redone(fake_cfg, tmp_path):
    make_photos(tmp_path / "in", 2)
    items = batch.read_manifest(tmp_path / "in")
    out = tmp_path / "out"
    run(fake_cfg, items, out)
    lines = (out / "results.jsonl").read_text().splitlines()
    (out / "results.jsonl").write_text(lines[0] + "\n" + lines[1][: len(lines[1]) // 2])  # power cut mid-line
    with pytest.warns(MalformedRowWarning, match=r"results.jsonl:2: malformed row left out"):
        summary, calls = run(fake_cfg, items, out)
    assert [c[0] for c in calls] == ["photo1.png"]
    with pytest.warns(MalformedRowWarning):  # the cut line stays in the file; every reader leaves it out
        assert len(batch.read_jsonl(out / "results.jsonl")) == 2
        check_pairs(out, batch.load_rows(out))


def test_a_sweep_writes_one_row_per_alpha_and_metrics(fake_cfg, tmp_path):
    make_photos(tmp_path / "in", 1)
    items = batch.read_manifest(tmp_path / "in")
    pipe = Pipeline(EditSettings.from_config(fake_cfg, alphas=[-1.0, 0.0, 2.0]))
    ev = metrics.Evaluator(identity=pipe.component("identity"), lpips=None, aligner=pipe.component("aligner"), size=64)
    runner = batch.Runner(pipe, tmp_path / "out", evaluator=ev)
    runner.run(items)
    rows = batch.load_rows(tmp_path / "out")
    assert sorted(r["alpha"] for r in rows) == [-1.0, 0.0, 2.0]
    assert len({r["z1"] for r in rows}) == 3
    zero = next(r for r in rows if r["alpha"] == 0.0)
    # at alpha 0, pi_1 is pi_0's reconstruction itself: same image, same scores
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out" / zero["z1"])),
                          np.asarray(Image.open(tmp_path / "out" / zero["z0"])))
    assert not [k for k in zero if "score" in k]  # the fake direction's attribute has no scorer: no score columns
    assert zero["identity_z0"] == pytest.approx(zero["identity"], abs=1e-6)
    for r in rows:
        assert r["unchanged_outside_blend"] == 1.0 and r["recon_mse"] >= 0
        assert "psnr_outside" in r
    check_pairs(tmp_path / "out", rows)


def test_shard_runs_share_one_output_folder(fake_cfg, tmp_path):
    make_photos(tmp_path / "in", 5)
    items = batch.read_manifest(tmp_path / "in")
    out = tmp_path / "out"
    for i in (1, 2):
        run(fake_cfg, batch.select_shard(items, i, 2), out, shard=(i, 2))
    assert (out / "results.shard-1-of-2.jsonl").exists() and (out / "results.shard-2-of-2.jsonl").exists()
    batch.write_table(out)
    assert sorted(r["key"] for r in batch.load_rows(out)) == [it.key for it in items]
    summary, calls = run(fake_cfg, items, out)  # an unsharded rerun sees the shards' work
    assert calls == [] and summary.skipped == 5


def test_user_columns_reach_rows_failures_and_sidecars(fake_cfg, tmp_path):
    make_photos(tmp_path / "img", 1)
    (tmp_path / "m.csv").write_text("path,politician,key\nimg/photo0.png,Ann,k1\nimg/missing.png,Bob,k2\n")
    items = batch.read_manifest(tmp_path / "m.csv")
    run(fake_cfg, items, tmp_path / "out")
    row = batch.load_rows(tmp_path / "out")[0]
    assert row["politician"] == "Ann" and row["user_key"] == "k1" and row["key"] == "img/photo0.png"
    fail = batch.read_jsonl(tmp_path / "out" / "failures.jsonl")[0]
    assert fail["politician"] == "Bob" and fail["reason"] == "unreadable"
    side = json.loads((tmp_path / "out" / row["z1_sidecar"]).read_text())
    assert side["batch"]["meta"]["politician"] == "Ann"


def test_unexpected_errors_are_recorded_until_too_many_in_a_row(fake_cfg, tmp_path, monkeypatch):
    make_photos(tmp_path / "in", 4)
    items = batch.read_manifest(tmp_path / "in")
    pipe = Pipeline(fake_cfg)
    real = pipe.pivot
    monkeypatch.setattr(pipe, "pivot", lambda face, **kw: (_ for _ in ()).throw(RuntimeError("CUDA out of memory")))
    with pytest.raises(CounterfaceError, match="3 photos in a row failed"):
        batch.Runner(pipe, tmp_path / "out", max_consecutive_errors=3).run(items)
    fails = batch.read_jsonl(tmp_path / "out" / "failures.jsonl")
    assert [f["reason"] for f in fails] == ["error"] * 3 and "RuntimeError: CUDA out of memory" in fails[0]["message"]
    monkeypatch.setattr(pipe, "pivot", real)
    summary = batch.Runner(pipe, tmp_path / "out").run(items)  # 'error' photos are retried on a rerun
    assert summary.done == 4 and summary.skipped == 0


def test_errors_that_concern_every_photo_stop_the_batch(fake_cfg, tmp_path, monkeypatch):
    from counterface.errors import WeightsError

    make_photos(tmp_path / "in", 2)
    pipe = Pipeline(fake_cfg)
    monkeypatch.setattr(pipe, "pivot", lambda face, **kw: (_ for _ in ()).throw(WeightsError("e4e weights missing")))
    with pytest.raises(WeightsError):
        batch.Runner(pipe, tmp_path / "out").run(batch.read_manifest(tmp_path / "in"))
    assert batch.read_jsonl(tmp_path / "out" / "failures.jsonl") == []
