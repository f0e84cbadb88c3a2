"""`counterface batch` / `evaluate` end to end: real photos, broken files, resume, signals, shards."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from click.testing import CliRunner
from PIL import Image

from counterface import batch
from counterface.cli import cli
from tests.helpers import synthetic_photos, write_broken_images, write_manifest

#: the tiny preset with fewer optimisation steps: the same code path, a few seconds per photo
TINY = ["--preset", "tiny", "--set", "tuner.latent_steps=2", "--set", "tuner.tune_steps=2"]
GOOD_PHOTOS = ["astronaut_small.jpg", "astronaut_16bit.png", "astronaut_rgba.png", "two_people.jpg", "astronaut_gray.jpg"]


def make_broken(folder: Path, photos: Path) -> dict[str, str]:
    """Deliberately broken inputs (full paths) -> the failure reason each must get."""
    reasons = write_broken_images(folder, (photos / "astronaut.jpg").read_bytes())
    return {str(folder / name): reason for name, reason in reasons.items()}


def check_output(out: Path, expected_keys) -> list[dict]:
    """Every pair decodes, has a sidecar that names it, no row is duplicated, no temp file is left."""
    rows = batch.load_rows(out)
    raw = [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]
    assert len(raw) == len(rows), "a row was written twice"
    assert {r["key"] for r in rows} == set(expected_keys)
    for r in rows:
        for role in ("z1", "z0"):
            img = Image.open(out / r[role])
            img.load()
            side = json.loads((out / r[f"{role}_sidecar"]).read_text())
            assert side["role"] == role and side["input"]["sha256"] == r["sha256"]
            assert side["output"] == Path(r[role]).name
    files = sorted(p.name for p in (out / "pairs").iterdir())
    assert not [f for f in files if f.endswith(".tmp") or f.startswith(".")]
    assert len(files) == 4 * len(rows)  # z1, z0 and their sidecars, nothing else
    return rows


def run_cli(args, env=None, **kw):
    return subprocess.run([sys.executable, "-m", "counterface", *args], capture_output=True, text=True,
                          env={**os.environ, "COUNTERFACE_PROGRESS": "0", **(env or {})}, **kw)


# -- the acceptance batch ----------------------------------------------------------------------
@pytest.mark.slow
def test_tiny_batch_of_the_shared_photos_and_broken_files(photos, tmp_path):
    good = sorted(p for p in photos.iterdir() if p.suffix.lower() in (".jpg", ".png"))
    expected_fail = make_broken(tmp_path / "broken", photos)
    expected_fail[str(photos / "coffee-no-face.jpg")] = "no_face"
    expected_fail[str(photos / "astronaut_240p.jpg")] = "face_too_small"  # ~60 px face < --min-face 80
    files = good + [Path(p) for p in expected_fail if "broken" in p]
    manifest = write_manifest(tmp_path / "m.csv", files)
    out = tmp_path / "out"
    args = ["batch", str(manifest), "-o", str(out), *TINY, "--no-metrics", "--min-face", "80"]
    res = run_cli(args, timeout=1500)
    assert res.returncode == 0, res.stderr
    fails = batch.read_jsonl(out / "failures.jsonl")
    assert {f["key"]: f["reason"] for f in fails} == expected_fail
    assert all(f["message"] and f["politician"] for f in fails)
    ok_keys = [str(p) for p in good if str(p) not in expected_fail]
    rows = check_output(out, ok_keys)
    assert all(r["politician"] for r in rows)
    table = list(csv.DictReader(open(out / "results.csv")))
    assert len(table) == len(rows) and "seconds.tune" in table[0]

    before = {p: p.stat().st_mtime_ns for p in out.rglob("*") if p.is_file() and p.name != "batch.json"}
    jsonl = (out / "results.jsonl").read_bytes()
    again = run_cli(args, timeout=600)
    assert again.returncode == 0, again.stderr
    assert f"0 done (0 rows), 0 failed, {len(files)} already done" in again.stdout
    assert (out / "results.jsonl").read_bytes() == jsonl
    tables = ("results.csv", "results.parquet")  # regenerated from the JSONL on every run
    assert {p: p.stat().st_mtime_ns for p in before if p.name not in tables} == \
        {p: t for p, t in before.items() if p.name not in tables}


@pytest.mark.slow
@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT])
def test_a_killed_batch_resumes_with_every_pair_intact(photos, tmp_path, sig):
    files = [photos / n for n in GOOD_PHOTOS[:3]]  # killed after the first: some done, some left
    manifest = write_manifest(tmp_path / "m.csv", files)
    out = tmp_path / "out"
    args = ["batch", str(manifest), "-o", str(out), *TINY, "--no-metrics"]
    proc = subprocess.Popen([sys.executable, "-m", "counterface", *args], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "COUNTERFACE_PROGRESS": "0"})
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "results.jsonl").exists() and (out / "results.jsonl").read_text().count("\n") >= 1:
            break
        time.sleep(0.05)
    assert proc.poll() is None, f"finished before it could be interrupted: {proc.communicate()}"
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 128 + sig, stderr
    lines = [x for x in stderr.strip().splitlines() if x.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: interrupted by") and "rerun" in lines[0], stderr
    done_before = len(batch.load_rows(out))
    assert 1 <= done_before < len(files)

    res = run_cli(args, timeout=1200)
    assert res.returncode == 0, res.stderr
    assert f"{len(files) - done_before} done" in res.stdout and f"{done_before} already done" in res.stdout
    check_output(out, [str(p) for p in files])


@pytest.mark.slow
def test_shards_from_the_cli_cover_the_manifest_once(photos, tmp_path):
    files = [photos / n for n in GOOD_PHOTOS] + [photos / "coffee-no-face.jpg"]
    manifest = write_manifest(tmp_path / "m.csv", files)
    out = tmp_path / "out"
    seen = []
    for i in (1, 2):
        res = run_cli(["batch", str(manifest), "-o", str(out), *TINY, "--no-metrics", "--shard", f"{i}/2"], timeout=900)
        assert res.returncode == 0, res.stderr
        part = batch.read_jsonl(out / f"results.shard-{i}-of-2.jsonl") + \
            batch.read_jsonl(out / f"failures.shard-{i}-of-2.jsonl")
        seen.append({r["key"] for r in part})
    assert seen[0].isdisjoint(seen[1])
    assert seen[0] | seen[1] == {str(p) for p in files}
    table = list(csv.DictReader(open(out / "results.csv")))
    assert sorted(r["key"] for r in table) == sorted(str(photos / n) for n in GOOD_PHOTOS)


@pytest.mark.slow
def test_workers_give_the_same_bytes_as_one_process(photos, tmp_path):
    files = [photos / n for n in ("astronaut_small.jpg", "astronaut_rgba.png")]  # one per worker
    manifest = write_manifest(tmp_path / "m.csv", files + [tmp_path / "missing.jpg"])
    outs = {}
    for w in (0, 2):
        out = tmp_path / f"out{w}"
        res = run_cli(["batch", str(manifest), "-o", str(out), *TINY, "--no-metrics", "--workers", str(w)], timeout=900)
        assert res.returncode == 0, res.stderr
        outs[w] = out
        assert [f["reason"] for f in batch.read_jsonl(out / "failures.jsonl")] == ["unreadable"]
    rows = batch.load_rows(outs[0])
    assert sorted(r["key"] for r in rows) == sorted(str(p) for p in files)
    for r0 in rows:
        assert (outs[0] / r0["z1"]).read_bytes() == (outs[2] / r0["z1"]).read_bytes()
        assert (outs[0] / r0["z0"]).read_bytes() == (outs[2] / r0["z0"]).read_bytes()


# -- fast checks on the fake components (in process) -------------------------------------------------------
synthetic = synthetic_photos


def test_cli_batch_relative_paths_and_rerun(fakes, tmp_path, monkeypatch):
    synthetic(tmp_path / "in", 2)
    (tmp_path / "in" / "bad.jpg").write_text("x")
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, ["batch", "in", "-o", "in/out", "--preset", "fake", "--lpips", "random"])
    assert r.exit_code == 0, r.output
    assert "3 photos: 2 done (2 rows), 1 failed, 0 already done" in r.output
    rows = check_output(tmp_path / "in" / "out", ["p0.png", "p1.png"])
    assert all(r_["identity"] is not None and r_["lpips_net"] == "random" for r_ in rows)
    r = CliRunner().invoke(cli, ["batch", "in", "-o", "in/out", "--preset", "fake", "--lpips", "random"])
    assert r.exit_code == 0 and "0 done (0 rows), 0 failed, 3 already done" in r.output  # out/ not scanned


def test_cli_evaluate_fills_metrics_and_summarises(fakes, tmp_path):
    synthetic(tmp_path / "in", 2)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["batch", str(tmp_path / "in"), "-o", str(out), "--preset", "fake", "--no-metrics",
                                 "--alphas", "0,1.5"])
    assert r.exit_code == 0, r.output
    assert "identity" not in (out / "results.csv").read_text().splitlines()[0].split(",")
    r = CliRunner().invoke(cli, ["evaluate", str(out), "--lpips", "random", "--by", "alpha"])
    assert r.exit_code == 0, r.output
    assert "evaluated 4 row(s), 0 failed" in r.output and "alpha=1.5" in r.output
    table = list(csv.DictReader(open(out / "results.csv")))
    assert len(table) == 4 and all(float(t["identity"]) <= 1.0 + 1e-6 for t in table)
    zero = [t for t in table if float(t["alpha"]) == 0.0]
    assert all(float(t["identity"]) == pytest.approx(float(t["identity_z0"])) for t in zero)
    summary = json.loads((out / "summary.json").read_text())
    assert [g["alpha"] for g in summary["groups"]] == [0.0, 1.5]
    r = CliRunner().invoke(cli, ["evaluate", str(out), "--lpips", "none"])
    assert r.exit_code == 0 and "evaluated 0 row(s)" in r.output


@pytest.mark.parametrize("args,message", [
    (["batch", "nowhere", "-o", "out", "--preset", "fake"], "input not found"),
    (["batch", "IN", "-o", "out", "--preset", "fake", "--shard", "3/2"], "--shard expects I/N"),
    (["batch", "IN", "-o", "out", "--preset", "fake", "--alpha", "x"], "--alpha expects numbers"),
    (["evaluate", "IN"], "no results"),
])
def test_cli_errors_are_one_line(fakes, tmp_path, monkeypatch, args, message):
    synthetic(tmp_path / "IN", 1)
    monkeypatch.chdir(tmp_path)
    r = CliRunner().invoke(cli, args)
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in r.output
