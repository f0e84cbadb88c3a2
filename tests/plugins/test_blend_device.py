"""The gaussian blender's torch paste-back (the device path) against the OpenCV path on the CPU:
every pixel outside the mask bit for bit the photo's, inside within a stated tolerance."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import counterface
from tests.plugins.test_blend import make_face, smooth_image

finite = dict(allow_nan=False, allow_infinity=False)

#: the largest difference inside the mask, in grey levels (float32 torch vs OpenCV's uint8 stages)
TOLERANCE = 2


def both(image, crop, face, **params):
    torch_out = counterface.create("blender", "gaussian", on_device="always", **params).blend(image, crop, face)
    cv_out = counterface.create("blender", "gaussian", on_device="never", **params).blend(image, crop, face)
    mask = counterface.create("blender", "gaussian", **params).mask(image.shape[:2], face)
    return torch_out, cv_out, mask


@settings(max_examples=30, deadline=None)
@given(st.floats(8.0, 90.0, **finite), st.floats(-np.pi, np.pi, **finite), st.floats(-0.2, 1.2, **finite),
       st.floats(-0.2, 1.2, **finite), st.sampled_from([32, 64, 128, 256]), st.integers(0, 10**6),
       st.sampled_from(["hull", "square"]))
def test_torch_blend_matches_opencv_within_tolerance_and_copies_m0_pixels(scale, angle, fx, fy, size, seed, region):
    H, W = 150, 190
    image = smooth_image(H, W, seed)
    face = make_face(image, scale, angle, (fx * W, fy * H), size)
    crop = smooth_image(size, size, seed + 1)
    before = image.copy()
    t, c, m = both(image, crop, face, region=region)
    np.testing.assert_array_equal(image, before)
    outside = m == 0
    np.testing.assert_array_equal(t[outside], image[outside])  # bit for bit
    np.testing.assert_array_equal(c[outside], image[outside])
    diff = np.abs(t.astype(int) - c.astype(int))
    assert diff.max() <= TOLERANCE, (diff.max(), scale, size)


def test_a_random_crop_stays_within_tolerance_and_mostly_exact():
    rng = np.random.default_rng(3)
    image = rng.integers(0, 256, (200, 240, 3), dtype=np.uint8)
    face = make_face(image, 40.0, 0.3, (120, 90), 256)  # a 256 crop shrunk onto a ~90 px face
    crop = smooth_image(256, 256, 7)
    t, c, m = both(image, crop, face)
    diff = np.abs(t.astype(int) - c.astype(int))[m > 0]
    assert diff.size > 1000 and diff.max() <= TOLERANCE
    assert np.mean(diff == 0) > 0.5  # most pixels agree exactly


def test_auto_uses_opencv_for_arrays_and_torch_for_tensors():
    torch = pytest.importorskip("torch")
    image = smooth_image(120, 120, 1)
    face = make_face(image, 30.0, 0.0, (60, 60), 64)
    crop = smooth_image(64, 64, 2)
    auto = counterface.create("blender", "gaussian")
    assert not auto._use_torch(image, crop) and not auto._use_torch(image, torch.as_tensor(crop))
    assert counterface.create("blender", "gaussian", on_device="always")._use_torch(image, crop)
    # a tensor crop on the CPU still blends (through OpenCV under auto), the same as the array
    np.testing.assert_array_equal(auto.blend(image, torch.as_tensor(crop), face), auto.blend(image, crop, face))
    with pytest.raises(counterface.errors.ConfigError):
        counterface.create("blender", "gaussian", on_device="gpu")
