"""`--precision` / `--deterministic` through the CLI: the sidecar records which numerics ran."""

from __future__ import annotations

import json

from click.testing import CliRunner

from counterface.cli import cli

NO_TUNING = ["--set", "tuner.latent_steps=0", "--set", "tuner.tune_steps=0"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_exact_path_flags_are_recorded(photos, tmp_path):
    r = invoke("edit", photos / "astronaut.jpg", "--preset", "tiny", *NO_TUNING, "--precision", "fp32",
               "--deterministic", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    side = json.loads((tmp_path / "astronaut_face0_z1.json").read_text())
    assert side["edit"]["precision"] == "fp32" and side["edit"]["deterministic"] is True


def test_default_on_the_cpu_is_exact_and_cuda_formats_are_refused(photos, tmp_path):
    r = invoke("edit", photos / "astronaut.jpg", "--preset", "tiny", "--precision", "tf32", "-o", tmp_path)
    assert r.exit_code == 2 and "needs CUDA" in r.output and "Traceback" not in r.output
    r = invoke("edit", photos / "astronaut.jpg", "--preset", "tiny", "--set", "edit.deterministic=maybe",
               "-o", tmp_path)
    assert r.exit_code == 2 and "deterministic" in r.output
