"""No command writes over an input (issue 21): each route where an output could land on an input file
(its path, a symlink or a hard link to it) is refused in one line with exit 2, and every input
file's sha256 is unchanged afterwards."""

from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from counterface.cli import cli
from tests.helpers import synthetic_photos, write_manifest

FAKE = ["--preset", "fake"]


def sha(p: Path) -> str:
    return hashlib.sha256(Path(p).read_bytes()).hexdigest()


def run(args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    return r


def refused(r):
    assert r.exit_code == 2, r.output
    lines = r.stderr.strip().splitlines()
    assert any("refusing to overwrite an input file" in line for line in lines), r.output
    return r


@pytest.fixture
def run_dir(fakes, tmp_path):
    """A finished batch over two photos (fake preset): OUT with results.csv, results.jsonl..."""
    photos = synthetic_photos(tmp_path / "in", 2)
    manifest = write_manifest(tmp_path / "m.csv", photos)
    out = tmp_path / "out"
    r = run(["batch", manifest, "-o", out, *FAKE, "--no-metrics"])
    assert r.exit_code == 0, r.output
    return out


@pytest.mark.parametrize("name", ["results.csv", "results.jsonl", "failures.jsonl"])
@pytest.mark.parametrize("how", ["same", "symlink", "hardlink"])
def test_batch_never_writes_over_its_own_manifest(run_dir, tmp_path, name, how):
    """`batch OUT/results.csv -o OUT`: the results table is a valid manifest (it has a path column)."""
    table = run_dir / name
    if not table.exists():
        table.write_text('{"path": "x.png"}\n')
    manifest = table
    if how == "symlink":
        manifest = tmp_path / f"link{table.suffix}"
        manifest.symlink_to(table)
    elif how == "hardlink":
        manifest = tmp_path / f"hard{table.suffix}"
        os.link(table, manifest)
    before = {p: sha(p) for p in run_dir.iterdir() if p.is_file()}
    r = refused(run(["batch", manifest, "-o", run_dir, *FAKE, "--no-metrics"]))
    assert len(r.stderr.strip().splitlines()) == 1
    assert {p: sha(p) for p in before} == before


def test_batch_exclude_list_is_an_input_too(run_dir):
    exclude = run_dir / "results.csv"
    before = sha(exclude)
    manifest = run_dir.parent / "m.csv"
    refused(run(["batch", manifest, "-o", run_dir, *FAKE, "--no-metrics", "--exclude", exclude]))
    assert sha(exclude) == before


def test_evaluate_never_writes_over_its_exclusion_list(run_dir):
    exclude = run_dir / "results.csv"
    before = sha(exclude)
    refused(run(["evaluate", run_dir, "--lpips", "none", "--identity-independent", "none", "--exclude", exclude]))
    assert sha(exclude) == before


def test_figures_never_write_over_a_photo_of_the_run(run_dir, tmp_path):
    """`figures OUT -o photos/` where a photo of the run is named figure2.png."""
    photos = tmp_path / "in2"
    (photo,) = synthetic_photos(photos, 1, prefix="figure")
    victim = photos / "figure2.png"
    shutil.move(photo, victim)
    out = tmp_path / "out2"
    assert run(["batch", photos, "-o", out, *FAKE, "--no-metrics"]).exit_code == 0
    before = sha(victim)
    refused(run(["figures", out, "-o", photos]))
    assert sha(victim) == before


def test_report_never_writes_over_a_photo_of_the_run(run_dir, tmp_path):
    photos = tmp_path / "in3"
    (photo,) = synthetic_photos(photos, 1)
    victim = photos / "index.html.png"
    shutil.move(photo, victim)
    (photos / "index.html").symlink_to(victim)  # report's index.html would land on the photo
    out = tmp_path / "out3"
    assert run(["batch", photos, "-o", out, *FAKE, "--no-metrics"]).exit_code == 0
    before = sha(victim)
    refused(run(["report", out, "-o", photos, "--no-figures"]))
    assert sha(victim) == before


@pytest.mark.parametrize("command,suffix", [("edit", "_face0_z1.png"), ("pairs", "_face0_z0.png"),
                                            ("sweep", "_face0_a+1.png")])
@pytest.mark.parametrize("how", ["same", "hardlink"])
def test_edit_pairs_sweep_never_write_over_another_input_photo(fakes, tmp_path, command, suffix, how):
    a, b = synthetic_photos(tmp_path / "in", 2)
    victim = tmp_path / "in" / f"{a.stem}{suffix}"
    if how == "same":
        b.rename(victim)
        inputs = [a, victim]
    else:
        os.link(b, victim)
        inputs = [a, b]
    before = {p: sha(p) for p in (tmp_path / "in").iterdir()}
    extra = ["--alphas", "0,1"] if command == "sweep" else []
    r = run([command, *inputs, *FAKE, *extra, "-o", tmp_path / "in"])
    assert r.exit_code == 2 and "refusing to overwrite an input file" in r.stderr, r.output
    assert {p: sha(p) for p in before} == before


def test_save_pivot_never_writes_over_the_photo(fakes, tmp_path):
    (a,) = synthetic_photos(tmp_path / "in", 1)
    before = sha(a)
    r = run(["edit", a, *FAKE, "--save-pivot", a, "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "refusing to overwrite an input file" in r.stderr, r.output
    assert sha(a) == before


def test_align_never_writes_over_another_input_photo(fakes, tmp_path):
    a, b = synthetic_photos(tmp_path / "in", 2)
    victim = tmp_path / "in" / f"{a.stem}_face0.png"
    os.link(b, victim)
    before = sha(b)
    r = run(["align", a, b, *FAKE, "--aligner", "fake", "-o", tmp_path / "in"])
    assert r.exit_code == 2 and "refusing to overwrite an input file" in r.stderr, r.output
    assert sha(b) == before


def test_weights_import_of_the_cached_file_itself_changes_nothing(tmp_path, monkeypatch):
    from counterface import weights

    monkeypatch.setenv("COUNTERFACE_HOME", str(tmp_path / "home"))
    weights.reset()
    spec = weights.WeightsSpec("i21-test.bin", "a test file", urls=(), licence="test")
    weights.register_spec(spec)
    try:
        src = tmp_path / "w.bin"
        src.write_bytes(b"abc" * 100)
        assert run(["weights", "import", "i21-test.bin", src]).exit_code == 0
        cached = weights.target(spec)
        hard = tmp_path / "hard.bin"
        os.link(cached, hard)
        before = sha(cached)
        for again in (cached, hard):
            assert run(["weights", "import", "i21-test.bin", again]).exit_code == 0
            assert sha(cached) == before and sha(hard) == before and sha(src) == before
    finally:
        weights.unregister_spec("i21-test.bin")
        weights.reset()
