"""pi_0 variants: which render they ask for, and that they never touch the photo."""

from __future__ import annotations

import numpy as np
import pytest

import counterface


def fake_render(calls):
    def render(a):
        calls.append(a)
        return np.full((4, 5, 3), int(100 + 10 * a), np.uint8)

    return render


@pytest.mark.parametrize("name,expected_calls,value", [("original", [], None), ("reconstruction", [0.0], 100),
                                                       ("negate", [-1.5], 85)])
def test_baselines(name, expected_calls, value):
    photo = np.arange(60, dtype=np.uint8).reshape(4, 5, 3)
    before = photo.copy()
    calls: list[float] = []
    out = counterface.create("pi0", name).make(photo, fake_render(calls), 1.5)
    assert calls == expected_calls
    assert np.array_equal(photo, before)
    if value is None:
        assert np.array_equal(out, photo) and out is not photo
    else:
        assert (out == value).all()


def test_registered_names():
    assert {"original", "reconstruction", "negate"} <= set(counterface.available("pi0"))
