"""Metric functions: perfect scores for identical inputs, the right direction under perturbations."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from counterface import metrics, tables
from counterface.testing import FakeAligner, FakeIdentityEncoder, canonical_landmarks
from tests.helpers import mouth_landmarks

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])


# -- synthetic faces -------------------------------------------------------------------------------
def textured(h: int = 64, w: int = 64, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(xx / 5.0)[..., None] * np.cos(yy / 7.0)[..., None] * np.array([1.0, 0.7, 0.4])
    return np.clip(base + rng.normal(0, 10, (h, w, 3)), 0, 255).astype(np.uint8)


images = st.integers(0, 2**31 - 1).map(lambda s: textured(32, 40, s))


# -- pixel metrics ---------------------------------------------------------------------------------
@SETTINGS
@given(images)
def test_identical_images_give_perfect_pixel_scores(img):
    assert metrics.mse(img, img.copy()) == 0.0
    assert metrics.psnr(img, img.copy()) == math.inf
    assert metrics.psnr(img, img.copy(), cap=100.0) == 100.0
    assert metrics.unchanged_fraction(img, img.copy()) == 1.0


@SETTINGS
@given(images, st.integers(0, 2**31 - 1), st.floats(1.0, 40.0))
def test_psnr_falls_as_noise_grows(img, seed, amp):
    noise = np.random.default_rng(seed).normal(0, 1, img.shape)
    small = np.clip(img + amp * noise, 0, 255).round().astype(np.uint8)
    big = np.clip(img + 3 * amp * noise, 0, 255).round().astype(np.uint8)
    assume(not np.array_equal(small, img))
    assert metrics.psnr(img, small) > metrics.psnr(img, big)
    assert metrics.mse(img, small) < metrics.mse(img, big)


@SETTINGS
@given(images, st.integers(1, 31))
def test_changes_outside_the_region_do_not_count(img, rows):
    region = np.zeros(img.shape[:2], bool)
    region[rows:] = True
    edited = img.copy()
    edited[:rows] = 255 - edited[:rows]  # change only the excluded rows
    assert metrics.psnr(img, edited, region) == math.inf
    assert metrics.unchanged_fraction(img, edited, region) == 1.0
    assert metrics.unchanged_fraction(img, edited, ~region) < 1.0


@SETTINGS
@given(images, st.sets(st.tuples(st.integers(0, 31), st.integers(0, 39)), min_size=1, max_size=50))
def test_unchanged_fraction_counts_changed_pixels_exactly(img, pixels):
    edited = img.copy()
    for y, x in pixels:
        edited[y, x, 1] ^= 1  # flip one bit in one channel
    n = img.shape[0] * img.shape[1]
    assert metrics.unchanged_fraction(img, edited) == pytest.approx(1 - len(pixels) / n)


def test_empty_region_is_nan_and_shapes_are_checked():
    img = textured(8, 8)
    assert math.isnan(metrics.psnr(img, img, np.zeros((8, 8), bool)))
    with pytest.raises(ValueError):
        metrics.mse(img, textured(8, 9))
    with pytest.raises(ValueError):
        metrics.unchanged_fraction(img, img, np.ones((4, 4)))


def test_outside_blend_is_exactly_the_zero_weight_pixels():
    m = np.array([[0.0, 0.001], [1.0, 0.0]], np.float32)
    assert metrics.outside_blend(m).tolist() == [[True, False], [False, True]]


# -- regions ---------------------------------------------------------------------------------------
def test_landmark_region_covers_every_mouth_and_grows_with_dilation():
    a, b = mouth_landmarks(), mouth_landmarks(width=1.4, lift=0.03)
    tight = metrics.landmark_region([a, b], 256, range(48, 68), dilate=0.0)
    loose = metrics.landmark_region([a, b], 256, range(48, 68), dilate=0.3)
    for lm in (a, b):
        for x, y in np.round(lm[48:60]).astype(int):
            assert tight[y, x]
    assert loose.sum() > tight.sum() and np.all(loose[tight])
    assert not loose[10, 10]  # far from the mouth


# -- re-detection -----------------------------------------------------------------------------------
class _ShiftedAligner:
    """Returns fixed faces (landmarks in the coordinates of the region it is given)."""

    def __init__(self, faces):
        self.faces = faces
        self.calls = []

    def align(self, image, size=None):
        self.calls.append(image.shape)
        return self.faces(image)


def _face(lm):
    from counterface.types import AlignedFace

    return AlignedFace(landmarks=lm, matrix=np.eye(2, 3), crop=np.zeros((4, 4, 3), np.uint8), crop_landmarks=lm)


def test_redetect_maps_back_and_picks_the_nearest_face():
    photo = textured(400, 600)
    near = canonical_landmarks(100) + [250, 150]
    ext = np.ptp(near, axis=0).max()
    offset = np.maximum(np.floor(near.min(0) - 0.6 * ext), 0)  # where the searched region starts

    def faces(region):  # the true face (in region coordinates) and a decoy in the region's corner
        h, w = region.shape[:2]
        return [_face(canonical_landmarks(30) + [w - 31, h - 31]), _face(near - offset)]

    al = _ShiftedAligner(faces)
    got = metrics.redetect_landmarks(al, photo, near)
    assert got is not None
    np.testing.assert_allclose(got, near, atol=1e-9)
    assert al.calls[0][0] < photo.shape[0] and al.calls[0][1] < photo.shape[1]  # only a region was searched


def test_redetect_returns_none_without_a_face_nearby():
    photo = textured(200, 200)
    near = canonical_landmarks(60) + [70, 70]
    assert metrics.redetect_landmarks(_ShiftedAligner(lambda r: []), photo, near) is None


# -- network metrics ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def encoder():
    return FakeIdentityEncoder(dim=32, seed=3)


@pytest.fixture(scope="module")
def lp():
    return metrics.lpips_model("random")


def test_identity_similarity_is_one_for_identical_faces_and_symmetric(encoder):
    a, b = textured(64, 64, 1), textured(64, 64, 2)
    assert metrics.identity_similarity(encoder, a, a.copy()) == pytest.approx(1.0, abs=1e-6)
    assert metrics.identity_similarity(encoder, a, b) == pytest.approx(metrics.identity_similarity(encoder, b, a), abs=1e-6)
    batch = metrics.identity_similarity(encoder, np.stack([a, b]), np.stack([a, a]))
    assert batch.shape == (2,) and batch[0] == pytest.approx(1.0, abs=1e-6) and batch[1] < 1.0


@settings(max_examples=15, deadline=None)
@given(st.integers(0, 2**31 - 1))
def test_identity_similarity_falls_as_the_face_is_replaced(encoder, seed):
    a, other = textured(64, 64, seed), textured(64, 64, seed + 1)[::-1].copy()
    sims = []
    for t in (0.0, 0.3, 0.6, 1.0):
        mixed = np.rint((1 - t) * a + t * other).astype(np.uint8)
        sims.append(metrics.identity_similarity(encoder, a, mixed))
    assume(sims[-1] < 0.999)
    assert sims[0] == pytest.approx(1.0, abs=1e-6)
    assert sims[0] >= sims[1] - 1e-6 and sims[1] >= sims[-1] - 1e-6


def test_cosine_is_scale_invariant():
    rng = np.random.default_rng(0)
    a, b = rng.normal(size=(3, 8)), rng.normal(size=(3, 8))
    np.testing.assert_allclose(metrics.cosine(a, b), metrics.cosine(5 * a, 0.1 * b))


def test_masked_lpips_is_zero_when_the_region_is_unchanged(lp):
    img = textured(64, 64, 4)
    region = np.zeros((64, 64), bool)
    region[:, :32] = True
    edited = img.copy()
    edited[:, 40:] = 0  # change only outside the region
    assert metrics.masked_lpips(lp, img, img.copy(), region) == 0.0
    assert metrics.masked_lpips(lp, img, edited, region) == 0.0
    assert metrics.masked_lpips(lp, img, edited, ~region) > 0.0


def test_lpips_grows_with_the_perturbation(lp):
    img = textured(64, 64, 5)
    noise = np.random.default_rng(0).normal(0, 1, img.shape)
    dists = [metrics.lpips_distance(lp, img, np.clip(img + a * noise, 0, 255).astype(np.uint8)) for a in (0, 8, 40)]
    assert dists[0] == pytest.approx(0.0, abs=1e-7)
    assert dists[0] < dists[1] < dists[2]


def test_lpips_model_rejects_unknown_nets():
    from counterface.errors import ConfigError

    assert metrics.lpips_model("none") is None
    with pytest.raises(ConfigError):
        metrics.lpips_model("resnet")


def test_reconstruction_is_perfect_for_the_crop_itself(lp):
    crop = textured(64, 64, 6)
    perfect = metrics.reconstruction(crop, crop.copy(), lp)
    assert perfect == {"recon_mse": 0.0, "recon_lpips": pytest.approx(0.0, abs=1e-7)}
    worse = metrics.reconstruction(crop, np.clip(crop.astype(int) + 30, 0, 255).astype(np.uint8), lp)
    assert worse["recon_mse"] > 0 and worse["recon_lpips"] > 0
    resized = metrics.reconstruction(crop, textured(32, 32, 6))  # generator at another resolution
    assert set(resized) == {"recon_mse"}


# -- the evaluator --------------------------------------------------------------------------------------
def _face_and_photo():
    photo = textured(120, 160, 7)
    face = FakeAligner(size=32).align(photo, size=32)[0]
    return photo, face


def test_evaluator_gives_perfect_scores_for_an_unedited_photo(encoder, lp):
    photo, face = _face_and_photo()
    ev = metrics.Evaluator(identity=encoder, lpips=lp, aligner=FakeAligner(size=32), size=64)
    out = ev.evaluate(photo, face, photo.copy(), photo.copy(), blend_mask=np.ones(photo.shape[:2], np.float32) * 0,
                      recon_crop=face.crop.copy())
    assert out["identity"] == pytest.approx(1.0, abs=1e-6)
    assert out["psnr_outside"] == 100.0 and out["lpips_outside"] == 0.0
    assert out["unchanged_outside_blend"] == 1.0 and out["unchanged_outside_blend_z0"] == 1.0
    assert out["recon_mse"] == 0.0
    assert not any(k.startswith("score") for k in out)  # no scorer given: no score columns


def test_evaluator_sees_a_change_outside_the_mouth_but_not_inside(encoder, lp):
    photo, face = _face_and_photo()
    ev = metrics.Evaluator(identity=encoder, lpips=lp, size=64, region="mouth")
    mouth = metrics.landmark_region([metrics.transform_points(face.landmarks, metrics.scale_matrix(face.matrix, 2.0))],
                                    64, range(48, 68))
    # edit inside the mouth only: paint the mouth region (mapped back to the photo) black
    import cv2

    inv = cv2.invertAffineTransform(metrics.scale_matrix(face.matrix, 2.0))
    m_photo = cv2.warpAffine(mouth.astype(np.uint8), inv, (photo.shape[1], photo.shape[0]), flags=cv2.INTER_NEAREST) > 0
    m_photo = cv2.erode(m_photo.astype(np.uint8), np.ones((5, 5), np.uint8)) > 0
    inside = photo.copy()
    inside[m_photo] = 0
    out_in = ev.evaluate(photo, face, inside)
    assert out_in["psnr_outside"] > 40 and out_in["lpips_outside"] < 1e-3
    # edit outside: brighten the upper half of the face
    outside = photo.copy()
    outside[30:60] = np.clip(outside[30:60].astype(int) + 40, 0, 255)
    out_out = ev.evaluate(photo, face, outside)
    assert out_out["psnr_outside"] < 30 and out_out["lpips_outside"] > out_in["lpips_outside"]
    assert out_out["identity"] < 1.0


def test_summarize_groups_and_skips_missing_values():
    rows = [{"alpha": 1.0, "identity": 0.9, "score_delta": 0.2}, {"alpha": 1.0, "identity": 0.7, "score_delta": None},
            {"alpha": 0.0, "identity": 1.0}]
    s = tables.summarize(rows)
    assert [g["alpha"] for g in s] == [0.0, 1.0]
    one = s[1]
    assert one["rows"] == 2 and one["identity"]["mean"] == pytest.approx(0.8)
    assert one["score_delta"] == {"n": 1, "missing": 1, "mean": 0.2, "std": 0.0, "median": 0.2, "p05": 0.2, "p95": 0.2}
    assert "score_delta" not in s[0]
