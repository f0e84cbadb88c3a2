"""Shared test fixtures.

``shared``: the read-only ``../shared`` folder beside the checkout (conformance data, real photos,
published directions). Override with ``COUNTERFACE_SHARED``. Tests that need it are skipped when it
is absent, except under CI (``CI`` set), where a missing folder fails them.
``fakes``: the fake components of ``counterface.testing`` registered for one test.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("COUNTERFACE_SHARED", ROOT.parent / "shared"))

# One thread is faster than two on the 2-core CI machines (see docs/performance.md) and keeps
# results independent of the core count.
try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # pragma: no cover
    pass


@pytest.fixture(scope="session")
def shared() -> Path:
    if not SHARED.is_dir():
        message = f"shared data folder not found at {SHARED}"
        if os.environ.get("CI"):  # CI always has it: a missing folder must not silently skip half the suite
            pytest.fail(message + " (CI must provide it)")
        pytest.skip(message)
    return SHARED


@pytest.fixture(scope="session")
def conformance_dir(shared) -> Path:
    d = shared / "conformance"
    sys.path.insert(0, str(d))  # detweights.py is imported from there, never copied
    return d


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
