"""The batch pivot store: reruns with another alpha, operator or direction tune nothing and give the
pairs of a fresh run; the key; float16 storage within tolerance; `counterface pivots list|prune`."""

from __future__ import annotations

import json
import os
import time

import numpy as np
import pytest
from click.testing import CliRunner

from counterface import batch
from counterface.batch import pivots as pv
from counterface.cli import cli
from tests.helpers import synthetic_photos

TINY = ["--preset", "tiny", "--set", "tuner.latent_steps=2", "--set", "tuner.tune_steps=2", "--no-metrics"]
FAKE = ["--preset", "fake", "--no-metrics"]


def invoke(args):
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 0, (r.output, r.exception)
    return r


def rows_of(out, **where):
    return [r for r in batch.read_jsonl(out / "results.jsonl") if all(r.get(k) == v for k, v in where.items())]


def test_tiny_rerun_with_another_alpha_tunes_nothing_and_equals_a_fresh_run(photos, tmp_path):
    """The pinned check: alpha 1, then the same OUT at alpha 2: every new row reuses its pivot, the
    alpha-2 pairs are written, and they are the bytes of a fresh alpha-2 run that tuned."""
    src = tmp_path / "in"
    src.mkdir()
    (src / "a.jpg").write_bytes((photos / "astronaut_small.jpg").read_bytes())
    out, fresh = tmp_path / "out", tmp_path / "fresh"
    invoke(["batch", str(src), "-o", str(out), *TINY, "--alpha", "1"])
    first = rows_of(out)
    assert [r["pivot"] for r in first] == ["tuned"] and first[0]["seconds"]["tune"] > 0
    invoke(["batch", str(src), "-o", str(out), *TINY, "--alpha", "2"])
    second = rows_of(out, alpha=2.0)
    assert second and all(r["pivot"] == "reused" and r["seconds"]["tune"] == 0 for r in second)
    assert all((out / r["z1"]).is_file() and (out / r["z0"]).is_file() for r in second)
    invoke(["batch", str(src), "-o", str(fresh), *TINY, "--alpha", "2"])
    tuned = rows_of(fresh)
    assert [r["pivot"] for r in tuned] == ["tuned"]
    for role in ("z1", "z0"):
        assert (out / second[0][role]).read_bytes() == (fresh / tuned[0][role]).read_bytes()


def test_operator_direction_format_and_alpha_list_reuse_a_shared_store(fakes, tmp_path):
    synthetic_photos(tmp_path / "in", 2)
    store = tmp_path / "store"
    invoke(["batch", str(tmp_path / "in"), "-o", str(tmp_path / "o1"), *FAKE, "--pivots", str(store)])
    assert {r["pivot"] for r in rows_of(tmp_path / "o1")} == {"tuned"}
    for n, extra in enumerate([["--alphas", "0.5,1.5"], ["--pi0", "negate"], ["--format", "jpg"]]):
        out = tmp_path / f"o{n + 2}"
        invoke(["batch", str(tmp_path / "in"), "-o", str(out), *FAKE, "--pivots", str(store), *extra])
        rows = rows_of(out)
        assert rows and all(r["pivot"] == "reused" and r["seconds"]["tune"] == 0 for r in rows), extra
    assert not (tmp_path / "o2" / "pivots").exists()  # --pivots: nothing under OUT
    # what shapes the pivot is in the key: another seed tunes again
    out = tmp_path / "seed"
    invoke(["batch", str(tmp_path / "in"), "-o", str(out), *FAKE, "--pivots", str(store), "--set", "edit.seed=3"])
    assert {r["pivot"] for r in rows_of(out)} == {"tuned"}
    assert len(list(store.iterdir())) == 2  # two configurations


def test_pivot_config_leaves_out_alpha_operators_direction_blender(fakes):
    from counterface import config as cfg_mod
    from counterface.pipeline import Pipeline

    base = cfg_mod.resolve(preset="fake")
    key = pv.PivotStore("/nonexistent", Pipeline(base)).config_key
    for section, value in (("edit", {**base["edit"], "alpha": 7.0}), ("pi0", {"name": "negate"}),
                           ("blender", {"name": "none"}), ("direction", {**base["direction"], "seed": 9})):
        assert pv.PivotStore("/nonexistent", Pipeline({**base, section: value})).config_key == key, section
    for section, value in (("tuner", {**base["tuner"], "steps": 99}), ("edit", {**base["edit"], "seed": 5})):
        assert pv.PivotStore("/nonexistent", Pipeline({**base, section: value})).config_key != key, section


def test_float16_store_round_trip_is_within_tolerance_and_keeps_w_float32():
    import torch

    from counterface.types import Pivot

    g = torch.Generator().manual_seed(0)
    p = Pivot(w=torch.randn(8, 16, generator=g), tensors={"conv.weight": torch.randn(4, 4, 3, 3, generator=g),
                                                          "steps": torch.arange(3)})
    back = pv.expand(pv.compact(p, "float16"))
    assert back.w.dtype == torch.float32 and torch.equal(back.w, p.w)
    assert back.tensors["conv.weight"].dtype == torch.float32 and torch.equal(back.tensors["steps"], p.tensors["steps"])
    err = (back.tensors["conv.weight"] - p.tensors["conv.weight"]).abs() / p.tensors["conv.weight"].abs().clamp_min(1e-3)
    assert float(err.max()) < 1e-3  # float16: 11 significant bits
    assert not torch.equal(back.tensors["conv.weight"], p.tensors["conv.weight"])  # it was rounded


def test_a_corrupt_stored_pivot_is_tuned_again(fakes, tmp_path):
    synthetic_photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    invoke(["batch", str(tmp_path / "in"), "-o", str(out), *FAKE, "--alpha", "1"])
    (path,) = list((out / "pivots").rglob("*.safetensors"))
    path.write_bytes(b"not a pivot")
    invoke(["batch", str(tmp_path / "in"), "-o", str(out), *FAKE, "--alpha", "2"])
    assert [r["pivot"] for r in rows_of(out, alpha=2.0)] == ["tuned"]
    from counterface.pivot import load_pivot

    assert load_pivot(path).meta["store"]["dtype"] == "float16"


def test_pivots_list_and_prune(fakes, tmp_path):
    synthetic_photos(tmp_path / "in", 3)
    out = tmp_path / "out"
    invoke(["batch", str(tmp_path / "in"), "-o", str(out), *FAKE])
    r = invoke(["pivots", "list", str(out), "--json"])
    info = json.loads(r.output)
    assert info["count"] == 3 and info["bytes"] > 0 and len(info["configs"]) == 1
    (cfg_name, cfg), = info["configs"].items()
    assert cfg["count"] == 3 and cfg["config"]["tuner"]["name"]
    r = invoke(["pivots", "list", str(out)])
    assert "3 pivot(s)" in r.output and cfg_name in r.output
    entries = sorted(pv.scan(out / "pivots"), key=lambda e: e.key)
    old = time.time() - 10 * 86400
    os.utime(entries[0].path, (old, old))
    r = invoke(["pivots", "prune", str(out), "--older-than", "5d"])
    assert "removed 1 pivot(s)" in r.output and not entries[0].path.exists()
    r = invoke(["pivots", "prune", str(out / "pivots"), "--max-size", str(entries[1].size), "--dry-run"])
    assert "would remove 1 pivot(s)" in r.output and entries[1].path.exists()
    invoke(["pivots", "prune", str(out), "--key", entries[1].key])
    assert not entries[1].path.exists() and entries[2].path.exists()
    invoke(["pivots", "prune", str(out), "--config", cfg_name])
    assert json.loads(invoke(["pivots", "list", str(out), "--json"]).output)["count"] == 0
    bad = CliRunner().invoke(cli, ["pivots", "prune", str(out)])
    assert bad.exit_code == 2 and "give --max-size" in bad.output
    bad = CliRunner().invoke(cli, ["pivots", "prune", str(out), "--max-size", "lots"])
    assert bad.exit_code == 2 and "--max-size" in bad.output


@pytest.mark.parametrize("text,value", [("500M", 500 * 1024**2), ("2G", 2 * 1024**3), ("1024", 1024), ("1.5KB", 1536)])
def test_parse_size(text, value):
    from counterface.cli.pivots import parse_size

    assert parse_size(text) == value


def test_face_digest_ignores_float_noise_but_not_another_face():
    from counterface.types import AlignedFace

    rng = np.random.default_rng(0)
    lm = rng.uniform(0, 100, (68, 2))
    m = np.array([[1.0, 0.0, 3.0], [0.0, 1.0, 4.0]])
    crop = np.zeros((8, 8, 3), np.uint8)
    face = AlignedFace(landmarks=lm, matrix=m, crop=crop, crop_landmarks=lm)
    noisy = AlignedFace(landmarks=lm + 1e-9, matrix=m, crop=crop, crop_landmarks=lm)
    other = AlignedFace(landmarks=lm + 1.0, matrix=m, crop=crop, crop_landmarks=lm)
    assert pv.face_digest(face) == pv.face_digest(noisy) != pv.face_digest(other)


def test_batched_tuning_fills_the_store_and_a_rerun_tunes_nothing(fakes, tmp_path, monkeypatch):
    from counterface.pipeline import Pipeline

    synthetic_photos(tmp_path / "in", 3)
    out = tmp_path / "out"
    invoke(["batch", str(tmp_path / "in"), "-o", str(out), *FAKE, "--alpha", "1", "--tune-batch", "2"])
    assert [r["pivot"] for r in rows_of(out)] == ["tuned"] * 3
    assert len(list((out / "pivots").rglob("*.safetensors"))) == 3

    calls = []

    def no_tuning(*args, **kwargs):
        calls.append(args)
        raise AssertionError("tuned although every pivot is stored")

    monkeypatch.setattr(Pipeline, "pivot", no_tuning)
    monkeypatch.setattr(Pipeline, "pivots", no_tuning)
    invoke(["batch", str(tmp_path / "in"), "-o", str(out), *FAKE, "--alpha", "2", "--tune-batch", "2"])
    again = rows_of(out, alpha=2.0)
    assert len(again) == 3 and all(r["pivot"] == "reused" and r["seconds"]["tune"] == 0 for r in again)
    assert not calls  # not even a batched tuning of the stored faces


def test_float16_renders_stay_within_the_stated_tolerance_on_the_tiny_preset(photos):
    """The documented measurement, as a check: renders from the stored (float16) pivot are within
    TOLERANCE grey levels of the float32 pivot's, at several alphas."""
    from counterface import config as cfg_mod
    from counterface.imageio import read_image
    from counterface.pipeline import Pipeline

    cfg = cfg_mod.resolve(preset="tiny")
    cfg["tuner"] = {**cfg["tuner"], "latent_steps": 3, "tune_steps": 3}
    pipe = Pipeline(cfg)
    photo = read_image(photos / "astronaut_small.jpg")
    face = pipe.faces(photo)[0]
    pivot, _ = pipe.pivot(face)
    stored = pv.expand(pv.compact(pivot, "float16"))
    changed = any(not bool((stored.tensors[k] == t).all()) for k, t in pivot.tensors.items())
    assert changed  # float16 did round something
    for alpha in (0.0, 1.0, 3.0):
        a = pipe.render(photo, face, pivot, alpha).crop.astype(np.float64)
        b = pipe.render(photo, face, stored, alpha).crop.astype(np.float64)
        assert np.abs(a - b).max() <= pv.TOLERANCE, alpha
