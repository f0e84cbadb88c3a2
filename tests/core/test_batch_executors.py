"""`batch --executor ray|slurm`: the same pairs as `local`, into the same resumable store; a missing
extra or sbatch is one clear line."""

from __future__ import annotations

import builtins
import json
import os
import subprocess
import sys

import pytest
from click.testing import CliRunner

from counterface import batch
from counterface.cli import cli
from tests.helpers import write_manifest

TINY = ["--preset", "tiny", "--set", "tuner.latent_steps=2", "--set", "tuner.tune_steps=2", "--no-metrics"]
PHOTOS = ["astronaut_small.jpg", "two_people.jpg"]


def run_cli(args, **env):
    return subprocess.run([sys.executable, "-m", "counterface", *args], capture_output=True, text=True, timeout=1200,
                          env={**os.environ, "COUNTERFACE_PROGRESS": "0", **env})


def pairs(out):
    """(key, face, alpha) -> the z1 and z0 bytes."""
    rows = [json.loads(x) for f in batch.table_files(out, "results") for x in f.read_text().splitlines() if x.strip()]
    table = {}
    for r in rows:
        k = (r["key"], r["face"], r["alpha"])
        assert k not in table, f"row {k} written twice"
        table[k] = ((out / r["z1"]).read_bytes(), (out / r["z0"]).read_bytes())
    return table


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    here = tmp_path_factory.mktemp("local")
    photos = os.path.join(os.path.dirname(__file__), "..", "data", "photos")
    manifest = write_manifest(here / "m.csv", [os.path.abspath(os.path.join(photos, n)) for n in PHOTOS])
    out = here / "out"
    res = run_cli(["batch", str(manifest), "-o", str(out), *TINY])
    assert res.returncode == 0, res.stderr
    return manifest, pairs(out)


@pytest.mark.ray
def test_a_local_ray_cluster_writes_the_pairs_of_local(local_run, tmp_path):
    pytest.importorskip("ray")
    manifest, expected = local_run
    out = tmp_path / "out"
    args = ["batch", str(manifest), "-o", str(out), *TINY, "--executor", "ray", "--ray-workers", "2"]
    res = run_cli(args, RAY_AUTH_MODE="disabled")
    assert res.returncode == 0, res.stderr
    assert "2 done (" in res.stdout, res.stdout
    got = pairs(out)
    assert set(got) == set(expected)
    assert got == expected  # the same bytes: one store, the same pivots
    res = run_cli(["batch", str(manifest), "-o", str(out), *TINY])  # nothing left, whoever runs it
    assert res.returncode == 0 and "0 done (0 rows), 0 failed, 2 already done" in res.stdout, res.stdout


def test_submitit_local_executor_runs_the_shard_jobs(local_run, tmp_path):
    pytest.importorskip("submitit")
    manifest, expected = local_run
    out = tmp_path / "out"
    args = ["batch", str(manifest), "-o", str(out), *TINY, "--executor", "slurm", "--slurm-local", "--slurm-jobs", "2"]
    res = run_cli(args)
    assert res.returncode == 0, res.stderr
    assert "submitted 2 job(s)" in res.stdout and "2 done (" in res.stdout, res.stdout
    got = pairs(out)
    assert got == expected
    assert sorted(p.name for p in out.glob("results.shard-*.jsonl"))  # each job wrote its shard's table
    res = run_cli(args)
    assert res.returncode == 0 and "0 done (0 rows), 0 failed, 2 already done" in res.stdout, res.stdout
    assert "submitted" not in res.stdout  # nothing left: no job submitted


def test_slurm_without_sbatch_is_one_line(fakes, tmp_path, monkeypatch):
    pytest.importorskip("submitit")
    from tests.helpers import synthetic_photos

    synthetic_photos(tmp_path / "in", 1)
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("COUNTERFACE_SLURM_LOCAL", raising=False)
    r = CliRunner().invoke(cli, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--preset", "fake",
                                 "--no-metrics", "--executor", "slurm"])
    assert r.exit_code == 2 and "sbatch not found" in r.output and "Traceback" not in r.output, r.output


@pytest.mark.parametrize("executor,module,extra", [("ray", "ray", "counterface[ray]"), ("slurm", "submitit", "counterface[slurm]")])
def test_a_missing_extra_is_one_line(fakes, tmp_path, monkeypatch, executor, module, extra):
    from tests.helpers import synthetic_photos

    synthetic_photos(tmp_path / "in", 1)
    real_import = builtins.__import__

    def no_module(name, *args, **kwargs):
        if name == module or name.startswith(module + "."):
            raise ImportError(f"No module named {module!r}")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_module)
    r = CliRunner().invoke(cli, ["batch", str(tmp_path / "in"), "-o", str(tmp_path / "out"), "--preset", "fake",
                                 "--no-metrics", "--executor", executor, "--slurm-local"])
    assert r.exit_code == 2 and extra in r.output, r.output
    assert len(r.output.strip().splitlines()) == 1
