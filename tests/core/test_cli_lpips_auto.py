"""``--lpips auto``: the metric backbone follows the run's tuner (random trunk for the offline tiny preset)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

from counterface import batch
from counterface.cli.batch import _lpips_for


def test_auto_follows_the_tuner_and_explicit_choices_win():
    assert _lpips_for("auto", {"tuner": {"name": "pti", "lpips_pretrained": False}}) == "random"
    assert _lpips_for("auto", {"tuner": {"name": "pti"}}) == "alex"
    assert _lpips_for("auto", None) == "alex"
    assert _lpips_for("none", {"tuner": {"lpips_pretrained": False}}) == "none"
    assert _lpips_for("vgg", {}) == "vgg"


def test_tiny_batch_and_evaluate_measure_lpips_offline_by_default(photos, tmp_path):
    env = dict(os.environ, COUNTERFACE_OFFLINE="1", COUNTERFACE_PROGRESS="0", TORCH_HOME=str(tmp_path / "torch"))
    out = tmp_path / "out"
    run = lambda *a: subprocess.run([sys.executable, "-m", "counterface", *map(str, a)], capture_output=True,
                                    text=True, timeout=900, env=env)
    # one optimisation step each: the metric backbone, not the tuning, is under test
    r = run("batch", photos / "astronaut_small.jpg", "-o", out, "--preset", "tiny", "--set", "tuner.latent_steps=1",
            "--set", "tuner.tune_steps=1")
    assert r.returncode == 0, r.stderr
    rows = [json.loads(line) for line in (out / "results.jsonl").read_text().splitlines() if line.strip()]
    assert rows and all(isinstance(row.get("lpips_outside"), float) for row in rows), rows[0].keys()
    assert rows[0]["lpips_net"] == "random" and isinstance(rows[0]["recon_lpips"], float)
    r = run("evaluate", out, "--force")
    assert r.returncode == 0, r.stderr
    assert "evaluated 1 row(s), 0 failed" in r.stdout, r.stdout
    again = batch.load_rows(out)
    assert [row["lpips_net"] for row in again] == ["random"] and isinstance(again[0]["lpips_outside"], float)
