"""The example plugin, registered through the real entry-point mechanism in a temporary site dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

try:
    import tomllib
except ImportError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parents[1]
PHOTO = HERE.parents[1] / "tests" / "data" / "photos" / "astronaut_small.jpg"  # counterface's test data


@pytest.fixture
def shared_photo():
    assert PHOTO.is_file(), f"test photo missing: {PHOTO}"
    return str(PHOTO)


def _install(site: Path) -> dict:
    """What `pip install` would leave: the package importable plus a dist-info with the entry point."""
    info = site / "counterface_glasses-0.1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: counterface-glasses\nVersion: 0.1.0\n")
    eps = tomllib.loads((HERE / "pyproject.toml").read_text())["project"]["entry-points"]["counterface"]
    (info / "entry_points.txt").write_text("[counterface]\n" + "".join(f"{k} = {v}\n" for k, v in eps.items()))
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join([str(site), str(HERE), env.get("PYTHONPATH", "")])
    env["COUNTERFACE_PROGRESS"] = "0"
    return env


def _run(env, *args):
    return subprocess.run([sys.executable, "-m", "counterface", *args],
                          env=env, capture_output=True, text=True, timeout=300)


def test_plugins_lists_the_example(tmp_path):
    env = _install(tmp_path / "site")
    r = _run(env, "plugins", "--json")
    assert r.returncode == 0, r.stderr
    rows = {(c["kind"], c["name"]): c for c in json.loads(r.stdout)["components"]}
    assert rows[("direction", "glasses")]["package"] == "counterface-glasses"
    assert rows[("direction", "glasses")]["version"] == "0.1.0"
    r = _run(env, "plugins")
    assert r.returncode == 0, r.stderr
    assert "glasses" in r.stdout and "counterface-glasses 0.1.0" in r.stdout


def _boundary(path: Path, normal, intercept=0.5) -> str:
    from counterface.boundary import Boundary, save_boundary

    b = Boundary(normal=torch.as_tensor(normal, dtype=torch.float32), intercept=torch.tensor([intercept]),
                 attribute="glasses", layers=[0, 1, 2, 3, 4, 5], on_distance=2.0, off_distance=-2.0)
    return str(save_boundary(b, path))


def test_direction_option_selects_it(tmp_path):
    env = _install(tmp_path / "site")
    f = _boundary(tmp_path / "g.safetensors", np.ones(64, np.float32))
    r = _run(env, "config", "--preset", "tiny", "--direction", "glasses", "--set", f"direction.path=\"{f}\"", "--check")
    assert r.returncode == 0, r.stderr
    cfg = json.loads(r.stdout)
    assert cfg["direction"] == {"name": "glasses", "path": f}
    r = _run(env, "config", "--preset", "tiny", "--direction", "glases")
    assert r.returncode != 0 and "did you mean 'glasses'" in r.stderr and "Traceback" not in r.stderr
    r = _run(env, "config", "--preset", "tiny", "--direction", "glasses", "--check")  # no file shipped, none given
    assert r.returncode == 2 and "boundary file" in r.stderr and "Traceback" not in r.stderr


def test_selecting_the_plugin_keeps_the_reference_plugins(tmp_path):
    """COUNTERFACE_PLUGINS=glasses chooses among third-party plugins: the glasses direction still
    finds the reference `boundary` direction it builds on."""
    env = {**_install(tmp_path / "site"), "COUNTERFACE_PLUGINS": "glasses"}
    env.pop("COUNTERFACE_DISABLE_PLUGINS", None)
    r = _run(env, "plugins", "--json")
    assert r.returncode == 0, r.stderr
    data = json.loads(r.stdout)
    names = {(c["kind"], c["name"]) for c in data["components"]}
    assert {("direction", "glasses"), ("direction", "boundary"), ("generator", "stylegan2")} <= names
    assert data["skipped"] == [] and data["failures"] == []
    f = _boundary(tmp_path / "g.safetensors", np.ones(64, np.float32))
    r = _run(env, "config", "--preset", "tiny", "--direction", "glasses", "--set", f"direction.path=\"{f}\"", "--check")
    assert r.returncode == 0, r.stderr
    r = _run({**env, "COUNTERFACE_PLUGINS": "other"}, "plugins", "--json")  # the example left out
    assert r.returncode == 0 and json.loads(r.stdout)["skipped"] == ["glasses"]


def test_pairs_end_to_end_with_the_plugin(tmp_path, shared_photo):
    """--direction glasses --pi1 on --pi0 off: the boundary's distances reached, the eye region used."""
    env = _install(tmp_path / "site")
    f = _boundary(tmp_path / "g.safetensors", np.linspace(-1, 1, 64).astype(np.float32))  # the tiny w_dim
    out = tmp_path / "out"
    r = _run(env, "pairs", shared_photo, "--preset", "tiny", "--direction", "glasses", "--set",
             f"direction.path=\"{f}\"", "--pi1", "on", "--pi0", "off", "-o", str(out))
    assert r.returncode == 0, r.stderr
    for role, target in (("z1", 2.0), ("z0", -2.0)):
        side = json.loads(next(out.glob(f"*_{role}.json")).read_text())
        comp = side["components"]["direction"]
        assert comp["name"] == "glasses" and comp["package"] == "counterface-glasses" and comp["version"] == "0.1.0"
        assert comp["params"]["region"] == "eyes"
        a = side["attributes"][0]
        assert a["attribute"] == "glasses" and a["layers"] == [0, 1, 2, 3, 4, 5]
        assert np.allclose(a["distance_after"], target, atol=1e-3)


def test_factory_moves_only_the_boundarys_rows(tmp_path):
    sys.path.insert(0, str(HERE))
    try:
        from counterface_glasses import glasses
    finally:
        sys.path.remove(str(HERE))
    v = np.linspace(-1, 1, 8).astype(np.float32)
    d = glasses(path=_boundary(tmp_path / "v.safetensors", v), layers="1-2")
    assert d.region == "eyes" and d.boundary.has_intercept
    w = torch.randn(2, 5, 8)
    out = d.apply(w, 2.0)
    assert torch.equal(out[:, [0, 3, 4]], w[:, [0, 3, 4]])
    n = torch.from_numpy(v / np.linalg.norm(v))
    assert torch.allclose(out[:, 1:3] - w[:, 1:3], 2.0 * n.expand(2, 2, 8), atol=1e-6)
    assert torch.equal(d.apply(w, 0.0), w)
    with pytest.raises(Exception, match="8 dimensions but the latent has 4"):
        d.apply(torch.zeros(1, 5, 4), 1.0)
