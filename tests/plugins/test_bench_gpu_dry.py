"""benchmarks/bench_gpu.py runs on the CPU (the dry run of the GPU script), on the tiny preset; a
failing section is recorded and the table still prints; an interrupted run still prints its table."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BENCH = str(ROOT / "benchmarks" / "bench_gpu.py")
ENV = {**os.environ, "COUNTERFACE_PROGRESS": "0"}
#: the rows the issue's "How it will be checked" names (the table must show every one)
ROWS = ("full pi_1 at", "default settings (s)", "full pi_1, exact settings", "refine / tune ms per step, default",
        "kernel launches per step", "`--tune-batch 1`", "`--tune-batch 4`", "`--tune-batch 8`",
        "best `--tune-batch`", "re-edits per hour", "peak GPU memory", "drift: default vs exact")


def test_bench_gpu_dry_run_on_the_cpu(tmp_path):
    out = tmp_path / "dry.json"
    res = subprocess.run([sys.executable, BENCH, "--device", "cpu", "--quick", "--preset", "tiny", "--out", str(out),
                          "--photos", "1", "--sections", "pi1_exact,batch_B1,reedit,drift,launches"],
                         capture_output=True, text=True, timeout=600, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.read_text())
    results = report["results"]
    assert "error" not in results["setup"] and "error" not in results["pi1_exact"], results
    assert results["pi1_exact"]["numerics"]["precision"] == "fp32"
    assert results["pi1_exact"]["warm"]["full_s"] > 0  # extrapolated from the quick steps
    assert results["batch_B1"]["pairs"] == 1 and results["reedit"]["reused"] == results["reedit"]["pairs"] == 4
    assert results["reedit_before"]["pairs"] == 4 and results["reedit"]["together"] is True
    assert "need CUDA" in results["drift"]["error"] and "CUDA only" in results["launches"]["error"]
    for row in ROWS:
        assert row in res.stdout, row
    assert report["table"] in res.stdout and report["partial"] is False
    # the sections ran in the order of the checks
    assert list(results)[:4] == ["setup", "batch_B1", "reedit", "drift"]


def test_a_failing_section_is_recorded_and_the_table_prints(tmp_path):
    out = tmp_path / "bad.json"
    # batch_B1 made to fail: recorded in the JSON and the table, and the next section still runs
    res = subprocess.run([sys.executable, BENCH, "--device", "cpu", "--quick", "--preset", "tiny", "--out", str(out),
                          "--photos", "1", "--sections", "batch_B1,pi1_exact", "--fail", "batch_B1"],
                         capture_output=True, text=True, timeout=600, env=ENV)
    assert res.returncode == 0, res.stderr[-2000:]
    report = json.loads(out.read_text())
    assert "injected failure" in report["results"]["batch_B1"]["error"], report["results"]
    assert "error" not in report["results"]["pi1_exact"]
    assert "errors:" in res.stdout and "- batch_B1:" in res.stdout and "| ERROR" in res.stdout


def test_an_interrupted_run_prints_its_table(tmp_path):
    out = tmp_path / "cut.json"
    proc = subprocess.Popen([sys.executable, BENCH, "--device", "cpu", "--quick", "--preset", "tiny", "--out", str(out),
                             "--photos", "1", "--sections", "pi1,batch_B1,reedit,pi1_exact"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ENV)
    deadline = time.time() + 300
    while time.time() < deadline and not (out.is_file() and "setup" in out.read_text()):
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    report = json.loads(out.read_text())
    assert "| measurement | value | goal |" in stdout
    assert report["meta"]["skipped"] or "Interrupted" in report["meta"].get("error", "") \
        or any("Interrupted" in str(v.get("error", "")) for v in report["results"].values())
    # --table-only prints the table of a JSON (gpu_check.sh's fallback after a hard kill)
    res = subprocess.run([sys.executable, BENCH, "--out", str(out), "--table-only"], capture_output=True, text=True,
                         timeout=120, env=ENV)
    assert res.returncode == 0 and "| measurement | value | goal |" in res.stdout


def test_a_section_cut_short_keeps_what_it_measured(tmp_path, monkeypatch):
    """drift fills its result as each setting finishes: a later setting that fails (here tf32, refused
    on the CPU) leaves the exact-vs-default numbers in the section's record, next to the error."""
    sys.path.insert(0, str(ROOT / "benchmarks"))
    import bench_gpu

    from counterface import registry, testing

    testing.install()
    try:
        monkeypatch.setattr(bench_gpu, "DRIFT", {"default": bench_gpu.DEFAULT, "tf32": {"precision": "tf32"}})
        photo = bench_gpu.photos(tmp_path / "photos", 1)[0]
        bench = bench_gpu.Bench("cpu", 600.0, tmp_path / "b.json")
        out: dict = {}
        res = bench.section("drift", bench_gpu.drift, "tiny", "cpu", None, {"latent_steps": 1, "tune_steps": 1},
                            photo, out, partial=out)
    finally:
        testing.uninstall()
        registry.reset()
    assert "needs CUDA" in res["error"] and res["default"]["max_abs_grey"] == 0  # the CPU default is the exact path
    assert set(res["seconds"]) == {"exact", "default", "tf32"} - {"tf32"}
    assert json.loads((tmp_path / "b.json").read_text())["results"]["drift"]["default"]["mean_abs_grey"] == 0
