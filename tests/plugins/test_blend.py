"""The gaussian blender: m = 0 pixels are untouched, the unedited crop pastes back invisibly, masks in [0, 1]."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

import counterface
from counterface import geometry as g
from counterface.types import AlignedFace

finite = dict(allow_nan=False, allow_infinity=False)


def template_landmarks() -> np.ndarray:
    """A plausible frontal 68-point face in a unit frame (eyes at y=0, mouth at y~1.1)."""
    t = np.linspace(np.pi * 0.05, np.pi * 0.95, 17)
    jaw = np.stack([-1.05 * np.cos(t), -0.25 + 1.6 * np.sin(t)], 1)
    brow_l = np.stack([np.linspace(-0.95, -0.2, 5), -0.35 - 0.1 * np.sin(np.linspace(0, np.pi, 5))], 1)
    brow_r = brow_l[::-1] * [-1, 1]
    nose = np.stack([np.zeros(4), np.linspace(0.0, 0.6, 4)], 1)
    nostrils = np.stack([np.linspace(-0.25, 0.25, 5), 0.72 + 0.05 * np.abs(np.linspace(-1, 1, 5))], 1)
    a = np.linspace(0, 2 * np.pi, 7)[:-1]
    eye_l = np.stack([-0.5 + 0.2 * np.cos(a), 0.07 * np.sin(a)], 1)
    eye_r = eye_l * [-1, 1] + [0, 0]
    b = np.linspace(0, 2 * np.pi, 13)[:-1]
    mouth_o = np.stack([-0.45 * np.cos(b), 1.1 + 0.18 * np.sin(b)], 1)
    c = np.linspace(0, 2 * np.pi, 9)[:-1]
    mouth_i = np.stack([-0.3 * np.cos(c), 1.1 + 0.08 * np.sin(c)], 1)
    lm = np.concatenate([jaw, brow_l, brow_r, nose, nostrils, eye_l, eye_r, mouth_o, mouth_i])
    assert lm.shape == (68, 2)
    return lm


def make_face(image: np.ndarray, scale: float, angle: float, centre, size: int) -> AlignedFace:
    from counterface_align import crop

    lm = g.apply(g.similarity(scale, angle, *centre), template_landmarks())
    return crop.align_one(image, lm, size)


def smooth_image(h, w, seed, channels=3):
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    out = np.zeros((h, w, channels))
    for ch in range(channels):
        fx, fy, ph = rng.uniform(20, 60), rng.uniform(20, 60), rng.uniform(0, 6)
        out[..., ch] = 127.5 + 80 * np.sin(xx / fx + ph) * np.cos(yy / fy) + 30 * np.cos((xx - yy) / (fx + fy))
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


faces = st.tuples(
    st.floats(8.0, 90.0, **finite),  # scale: eye-to-eye/ (unit) -> face widths ~17-190 px
    st.floats(-0.8, 0.8, **finite),  # head tilt
    st.floats(-0.2, 1.2, **finite),  # centre x as a fraction of the width (may leave the photo)
    st.floats(-0.2, 1.2, **finite),
)
blenders = st.builds(
    dict,
    region=st.sampled_from(["hull", "square"]),
    margin=st.floats(-0.1, 0.2, **finite),
    feather=st.floats(0.0, 0.15, **finite),
    erode=st.floats(0.0, 3.0, **finite),
)


@settings(max_examples=40, deadline=None)
@given(faces, blenders, st.integers(0, 10**6), st.sampled_from([64, 128]))
def test_blend_leaves_every_m0_pixel_unchanged_and_masks_stay_in_unit_interval(face_p, params, seed, size):
    H, W = 150, 190
    image = np.random.default_rng(seed).integers(0, 256, (H, W, 3), dtype=np.uint8)
    scale, angle, fx, fy = face_p
    face = make_face(image, scale, angle, (fx * W, fy * H), size)
    edited = np.random.default_rng(seed + 1).integers(0, 256, (size, size, 3), dtype=np.uint8)
    blender = counterface.create("blender", "gaussian", **params)
    before = image.copy()
    out = blender.blend(image, edited, face)
    np.testing.assert_array_equal(image, before)  # input untouched
    assert out.shape == image.shape and out.dtype == image.dtype
    m = blender.mask(image.shape[:2], face)
    assert m.shape == (H, W) and m.dtype == np.float32
    assert np.all(m >= 0) and np.all(m <= 1) and np.all(np.isfinite(m))
    np.testing.assert_array_equal(out[m == 0], image[m == 0])
    # the paste stays inside the crop square
    square = g.apply(face.matrix, np.stack(np.meshgrid(np.arange(W), np.arange(H)), -1).reshape(-1, 2)).reshape(H, W, 2)
    outside = ((square < -0.5) | (square > size - 0.5)).any(-1)
    assert not np.any(m[outside])


@settings(max_examples=25, deadline=None)
@given(st.floats(25.0, 70.0, **finite), st.floats(-0.6, 0.6, **finite), st.integers(0, 10**6),
       st.sampled_from([256, 512]), st.sampled_from(["hull", "square"]))
@example(scale=25.0, angle=0.0, seed=489, size=256, region="hull")  # a mid-grey image: once failed a fixed bound
def test_blending_the_unedited_crop_back_changes_the_face_by_resampling_error_only(scale, angle, seed, size, region):
    H, W = 260, 300
    image = smooth_image(H, W, seed)
    face = make_face(image, scale, angle, (W / 2, H / 2 - 20), size)
    blender = counterface.create("blender", "gaussian", region=region)
    out = blender.blend(image, face.crop, face)
    m = blender.mask(image.shape[:2], face)
    diff = np.abs(out.astype(int) - image.astype(int)).max(-1)
    assert (m > 0).sum() > 100
    # resampling error of a smooth image: a couple of grey levels at most
    assert diff[m > 0].mean() < 1.0 and diff.max() <= 6
    # while a different crop does change the face region: the inverted crop moves a grey level v to
    # about 255 - v, so by |255 - 2v| (small where the smooth image happens to be mid-grey)
    out2 = blender.blend(image, 255 - face.crop, face)
    inner = m > 0.5
    expected = np.abs(255 - 2 * image.astype(int)).max(-1)[inner].mean()
    assert np.abs(out2.astype(int) - image.astype(int)).max(-1)[inner].mean() > 0.5 * expected > 5


def test_mask_is_one_inside_the_face_and_feathered_at_the_edge():
    image = smooth_image(300, 300, 0)
    face = make_face(image, 60.0, 0.0, (150, 120), 256)
    blender = counterface.create("blender", "gaussian", feather=0.05, erode=2.0)
    m = blender.mask(image.shape[:2], face)
    nose = np.rint(face.landmarks[30]).astype(int)
    assert m[nose[1], nose[0]] == pytest.approx(1.0, abs=1e-3)
    assert m[5, 5] == 0.0
    vals = m[(m > 0) & (m < 1)]
    assert vals.size > 100  # a soft edge, not a cut-out


def test_blend_handles_other_dtypes_channel_counts_and_crop_sizes():
    image = smooth_image(200, 220, 4)
    face = make_face(image, 40.0, 0.2, (110, 90), 128)
    blender = counterface.create("blender", "gaussian")
    edited = np.full((256, 256, 3), 200, np.uint8)  # generator output at another resolution
    ref = blender.blend(image, edited, face)
    m = blender.mask(image.shape[:2], face)
    assert np.all(ref[m == 1] == 200)
    img16 = image.astype(np.uint16) * 257
    out16 = blender.blend(img16, edited, face)
    assert out16.dtype == np.uint16 and np.all(out16[m == 1] == 200 * 257)
    np.testing.assert_array_equal(out16[m == 0], img16[m == 0])
    rgba = np.dstack([image, np.full(image.shape[:2], 77, np.uint8)])
    outa = blender.blend(rgba, edited, face)
    assert outa.shape == rgba.shape and np.all(outa[..., 3] == 77)
    gray = image[..., 0]
    outg = blender.blend(gray, edited, face)
    assert outg.shape == gray.shape and np.all(outg[m == 1] == 200)
    imgf = image.astype(np.float32) / 255
    outf = blender.blend(imgf, edited, face)
    assert outf.dtype == np.float32 and np.allclose(outf[m == 1], 200 / 255, atol=1e-6)


def test_face_outside_the_photo_changes_nothing():
    image = smooth_image(100, 100, 5)
    face = make_face(np.zeros((100, 100, 3), np.uint8), 20.0, 0.0, (500, 500), 64)
    blender = counterface.create("blender", "gaussian")
    np.testing.assert_array_equal(blender.blend(image, face.crop, face), image)


def test_bad_parameters_are_config_errors():
    with pytest.raises(counterface.ConfigError):
        counterface.create("blender", "gaussian", region="circle")
    with pytest.raises(counterface.ConfigError):
        counterface.create("blender", "gaussian", feather=-1)
