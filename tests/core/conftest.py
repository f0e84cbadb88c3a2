"""Fixtures for core tests: fake installed distributions that advertise counterface entry points."""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import pytest

from counterface import config, plugins
from tests.helpers import fake_components


def make_distribution(root: Path, name: str, version: str, entry_points: dict[str, str],
                      modules: dict[str, str]) -> Path:
    """Write modules plus a ``<name>-<version>.dist-info`` (METADATA, entry_points.txt) into ``root``.

    Putting ``root`` on ``sys.path`` (or PYTHONPATH) makes ``importlib.metadata`` see an installed
    distribution: exactly what ``pip install`` of a plugin produces.
    """
    root.mkdir(parents=True, exist_ok=True)
    for mod, src in modules.items():
        (root / f"{mod}.py").write_text(textwrap.dedent(src))
    info = root / f"{name.replace('-', '_')}-{version}.dist-info"
    info.mkdir(exist_ok=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")
    eps = "[counterface]\n" + "".join(f"{k} = {v}\n" for k, v in entry_points.items())
    (info / "entry_points.txt").write_text(eps)
    return root


@pytest.fixture
def plugin_env(tmp_path, monkeypatch):
    """Install fake plugin distributions for one test; plugin state is reset before and after."""
    roots: list[Path] = []

    def install(name, version, entry_points, modules):
        root = make_distribution(tmp_path / f"site-{len(roots)}", name, version, entry_points, modules)
        monkeypatch.syspath_prepend(str(root))
        roots.append(root)
        plugins.reset()
        return root

    plugins.reset()
    yield install
    for mod in [m for m in sys.modules if m.startswith("cfplug_")]:
        del sys.modules[mod]
    plugins.reset()


@pytest.fixture(scope="module")
def fake_cfg():
    """The `fake` preset's resolved configuration, with the fake components registered for the module."""
    with fake_components():
        yield config.resolve(preset="fake")
