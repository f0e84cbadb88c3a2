"""Image <-> tensor conversions shared by the pipeline and the metrics."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from counterface import metrics
from counterface.convert import to_image, to_tensor


@settings(max_examples=30, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 3), st.integers(1, 9), st.integers(1, 9), st.just(3))))
def test_batch_round_trip_and_single_equals_first_of_batch(batch):
    t = to_tensor(batch)
    assert t.shape == (batch.shape[0], 3, batch.shape[1], batch.shape[2]) and t.dtype == torch.float32
    assert float(t.min()) >= -1.0 and float(t.max()) <= 1.0
    for i in range(batch.shape[0]):
        assert np.array_equal(to_image(t[i]), batch[i])
        assert torch.equal(to_tensor(batch[i]), t[i:i + 1])
    assert torch.equal(metrics._to_tensor(batch), t)
    assert torch.equal(metrics._to_tensor(batch[0]), t[:1])


def test_metrics_rejects_other_layouts():
    with pytest.raises(ValueError):
        metrics._to_tensor(np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError):
        metrics._to_tensor(np.zeros((1, 4, 4, 4), np.uint8))


def test_memory_layout_is_pinned():
    """Convolutions choose kernels by layout: a different layout changes output bytes (seen in review)."""
    assert to_tensor(np.zeros((5, 7, 3), np.uint8)).stride() == (3, 1, 21, 3)
    assert to_tensor(np.zeros((2, 5, 7, 3), np.uint8)).stride() == (105, 1, 21, 3)
