"""Shared test fixtures.

``shared``: the test data in the repository, ``tests/data`` (conformance manifests and goldens,
redistributable photos, the published direction files; sources and licences in its README). A clone
runs every test without anything beside it.
``fakes``: the fake components of ``counterface.testing`` registered for one test.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT / "tests" / "data"
#: optional photos that cannot be redistributed (independent captures of the same people, see
#: tests/extra/): their tests are collected only when the photos are there, never skipped
EXTRA_PHOTOS = Path(os.environ.get("COUNTERFACE_SHARED", ROOT.parent / "shared")) / "photos"
collect_ignore_glob = [] if (EXTRA_PHOTOS / "biden.jpg").is_file() else ["extra/*"]

# One thread is faster than two on the 2-core CI machines (see docs/performance.md) and keeps
# results independent of the core count.
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def shared() -> Path:
    """``tests/data``: photos/, directions/, conformance/ (the repository's own copy, never skipped)."""
    assert DATA.is_dir(), f"test data folder missing: {DATA}"
    return DATA


@pytest.fixture(scope="session")
def conformance_dir(shared) -> Path:
    """Manifests and goldens; the deterministic weights are built by ``tests.conformance``."""
    return shared / "conformance"


@pytest.fixture(scope="session")
def photos(shared) -> Path:
    return shared / "photos"


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path_factory, monkeypatch):
    """Each test sees an empty weights cache and never touches the user's real one."""
    home = tmp_path_factory.mktemp("counterface-home")
    monkeypatch.setenv("COUNTERFACE_HOME", str(home))
    monkeypatch.setenv("COUNTERFACE_PROGRESS", "0")


@pytest.fixture
def fakes():
    """The fake components of ``counterface.testing`` (preset ``fake``) for one test."""
    from tests.helpers import fake_components

    with fake_components():
        yield
