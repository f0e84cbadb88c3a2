"""`counterface figures`: Figure 2 (pairs) and Figure 3 (metrics against alpha) as PNGs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from counterface import figures
from counterface.cli import cli
from counterface.errors import ConfigError
from tests.helpers import synthetic_photos, write_manifest


def _photos(folder, n):
    """``n`` synthetic photos and a manifest naming a politician for each."""
    files = synthetic_photos(folder, n)
    return write_manifest(folder / "m.csv", files, [f"Politician {i}" for i in range(n)])


def _png(path):
    img = Image.open(path)
    img.load()
    assert img.format == "PNG"
    a = np.asarray(img.convert("RGB"))
    assert a.shape[0] > 200 and a.shape[1] > 300 and a.std() > 5  # a real drawing, not a blank canvas
    return a


def test_spread_is_the_per_alpha_median_and_quartiles():
    series = {("a", 0): {0.0: 1.0, 1.0: 2.0}, ("b", 0): {0.0: 3.0, 1.0: 4.0}, ("c", 0): {0.0: 5.0}}
    sp = figures.spread(np.array([0.0, 1.0]), series)
    assert sp["median"].tolist() == [3.0, 3.0] and sp["n"].tolist() == [3, 2]
    assert sp["q25"][0] == 2.0 and sp["q75"][0] == 4.0


def test_sweep_series_skips_missing_values():
    rows = [{"key": "a", "face": 0, "alpha": 1.0, "identity": 0.9}, {"key": "a", "face": 0, "alpha": 0.0, "identity": None},
            {"key": "b", "face": 0, "alpha": 0.0, "identity": 1.0}]
    xs, s = figures.sweep_series(rows, "identity")
    assert xs.tolist() == [0.0, 1.0] and s == {("a", 0): {1.0: 0.9}, ("b", 0): {0.0: 1.0}}


def test_figures_from_a_sweep_with_names(fakes, tmp_path):
    manifest = _photos(tmp_path / "in", 3)
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(out), "--preset", "fake", "--lpips", "none",
                                 "--alphas", "-1,0,1"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["figures", str(out), "--label", "politician"])
    assert r.exit_code == 0, r.output
    made = r.output.strip().splitlines()
    assert [p.rsplit("/", 1)[-1] for p in made] == ["figure2.png", "figure3.png"]
    f2, f3 = _png(out / "figures" / "figure2.png"), _png(out / "figures" / "figure3.png")
    assert f2.shape != f3.shape
    with pytest.raises(ConfigError, match="no column 'outlet'"):
        figures.figure2(out, tmp_path / "x.png", label="outlet")
    # Figure 2 from a one-alpha batch, Figure 3 from the sweep in another folder (--sweep)
    single = tmp_path / "single"
    r = CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(single), "--preset", "fake", "--no-metrics"])
    assert r.exit_code == 0, r.output
    r = CliRunner().invoke(cli, ["figures", str(single), "--sweep", str(out), "--label", "politician"])
    assert r.exit_code == 0, r.output
    assert _png(single / "figures" / "figure2.png").shape == f2.shape
    assert np.array_equal(_png(single / "figures" / "figure3.png"), f3)  # the same sweep, the same drawing


def test_figure3_needs_a_sweep_and_metrics(fakes, tmp_path):
    manifest = _photos(tmp_path / "in", 1)
    single, nometrics = tmp_path / "single", tmp_path / "nometrics"
    assert CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(single), "--preset", "fake", "--lpips", "none"]).exit_code == 0
    assert CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(nometrics), "--preset", "fake", "--no-metrics",
                                    "--alphas", "0,1"]).exit_code == 0
    r = CliRunner().invoke(cli, ["figures", str(single)])  # Figure 2 made, Figure 3 skipped with a warning
    assert r.exit_code == 0 and "figure 3 skipped" in r.output and (single / "figures" / "figure2.png").exists()
    assert not (single / "figures" / "figure3.png").exists()
    r = CliRunner().invoke(cli, ["figures", str(single), "--sweep", str(nometrics)])
    assert r.exit_code == 2 and "counterface evaluate" in r.output


def test_missing_matplotlib_is_a_one_line_error(fakes, tmp_path, monkeypatch):
    manifest = _photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    assert CliRunner().invoke(cli, ["batch", str(manifest), "-o", str(out), "--preset", "fake", "--lpips", "none"]).exit_code == 0
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    r = CliRunner().invoke(cli, ["figures", str(out)])
    assert r.exit_code == 2 and r.output.strip() == (
        "error: figures need matplotlib: pip install 'counterface[figures]' (or pip install matplotlib)")


@pytest.mark.slow
def test_figures_from_a_tiny_preset_sweep(photos, tmp_path):
    """The issue's check: both PNGs from a tiny-preset sweep of real photos (subprocesses). One sweep
    serves both figures; a separate one-alpha batch with ``--sweep`` is covered on the fakes above."""
    manifest = write_manifest(tmp_path / "m.csv", [photos / "astronaut_small.jpg", photos / "astronaut_rgba.png"],
                              ["Obama", "Miranda"])
    tiny = ["--preset", "tiny", "--set", "tuner.latent_steps=2", "--set", "tuner.tune_steps=2", "--lpips", "random"]
    run = lambda *a: subprocess.run([sys.executable, "-m", "counterface", *a], capture_output=True, text=True, timeout=1200)
    s = run("batch", str(manifest), "-o", str(tmp_path / "sweep"), *tiny, "--alphas=-2,0,2")
    assert s.returncode == 0, s.stderr
    f = run("figures", str(tmp_path / "sweep"), "--label", "politician")
    assert f.returncode == 0, f.stderr
    assert [p.rsplit("/", 1)[-1] for p in f.stdout.strip().splitlines()] == ["figure2.png", "figure3.png"]
    _png(tmp_path / "sweep" / "figures" / "figure2.png")
    _png(tmp_path / "sweep" / "figures" / "figure3.png")
