"""The reference operators (pi_1 / pi_0): the signed-distance step each asks for, and the one clear
error of the target operators without an intercept."""

from __future__ import annotations

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import counterface
from counterface.boundary import Boundary

REFERENCE = {"shift", "on", "original", "reconstruction", "negate", "off", "neutral"}


def boundary(on=2.5, off=-1.5):
    return Boundary(normal=torch.ones(1, 4), intercept=torch.tensor([0.3]), attribute="smile", on_distance=on,
                    off_distance=off)


def test_registered_names_one_kind():
    assert REFERENCE <= set(counterface.available("operator"))
    assert all(isinstance(counterface.create("operator", n), counterface.Operator) for n in REFERENCE)


distances = st.lists(st.floats(-50, 50), min_size=1, max_size=6)


@settings(max_examples=40, deadline=None)
@given(d=distances, alpha=st.floats(-5, 5))
def test_steps(d, alpha):
    d = torch.tensor(d, dtype=torch.float64)
    b = boundary()
    step = {n: counterface.create("operator", n).step(d, alpha=alpha, boundary=b, rows=len(d)) for n in REFERENCE}
    assert torch.equal(step["shift"], torch.full_like(d, alpha))
    assert torch.equal(step["negate"], torch.full_like(d, -alpha))
    assert torch.equal(step["reconstruction"], torch.zeros_like(d))
    assert torch.allclose(d + step["on"], torch.full_like(d, 2.5), atol=1e-9)
    assert torch.allclose(d + step["off"], torch.full_like(d, -1.5), atol=1e-9)
    assert torch.allclose(d + step["neutral"], torch.zeros_like(d), atol=1e-9)


def test_distance_parameter_and_one_per_direction():
    d = torch.tensor([1.0, 2.0], dtype=torch.float64)
    assert torch.allclose(d + counterface.create("operator", "on", distance=4.0).step(d, alpha=1, boundary=boundary()),
                          torch.tensor([4.0, 4.0], dtype=torch.float64))
    off = counterface.create("operator", "off", distance=[-1.0, -3.0])
    assert torch.allclose(d + off.step(d, alpha=1, boundary=boundary(), index=1), torch.tensor([-3.0, -3.0], dtype=torch.float64))
    with pytest.raises(counterface.ConfigError):
        off.step(d, alpha=1, boundary=boundary(), index=2)


def test_flags():
    assert counterface.create("operator", "original").returns_photo
    for n in ("on", "off", "neutral"):
        assert counterface.create("operator", n).needs_intercept
    for n in ("shift", "negate", "reconstruction", "original"):
        assert not counterface.create("operator", n).needs_intercept


def test_missing_targets_are_config_errors():
    d = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(counterface.ConfigError, match="on_distance"):
        counterface.create("operator", "on").step(d, alpha=1, boundary=boundary(on=None))
    with pytest.raises(counterface.ConfigError, match="signed distance"):
        counterface.create("operator", "off").step(None, alpha=1, boundary=boundary(), rows=3)
    with pytest.raises(counterface.ConfigError):
        counterface.create("operator", "on", distance=float("nan"))
