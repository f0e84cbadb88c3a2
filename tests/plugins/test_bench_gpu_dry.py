"""benchmarks/bench_gpu.py runs on the CPU (the dry run of the GPU script), on the tiny preset."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_bench_gpu_dry_run_on_the_cpu(tmp_path):
    out = tmp_path / "dry.json"
    env = {**os.environ, "COUNTERFACE_PROGRESS": "0"}
    res = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--device", "cpu", "--quick",
                          "--preset", "tiny", "--out", str(out), "--photos", "1",
                          "--sections", "pi1_exact,batch_B1,reedit,drift,launches"],
                         capture_output=True, text=True, timeout=600, env=env)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.read_text())
    results = report["results"]
    assert "error" not in results["pi1_exact"], results["pi1_exact"]
    assert results["pi1_exact"]["numerics"]["precision"] == "fp32"
    assert results["pi1_exact"]["warm"]["full_s"] > 0  # extrapolated from the quick steps
    assert results["batch_B1"]["pairs"] == 1 and results["reedit"]["reused"] == results["reedit"]["pairs"] == 4
    assert "need CUDA" in results["drift"]["error"] and "CUDA only" in results["launches"]["error"]
    assert "| pi_1 at full steps, exact settings" in res.stdout and "kernel launches per step" in res.stdout
