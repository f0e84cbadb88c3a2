"""Properties of counterface.geometry: similarity estimation, composition, inversion, warping, FFHQ crop."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface import geometry as g
from tests.ffhq_reference import reference_quad

finite = dict(allow_nan=False, allow_infinity=False)
scales = st.floats(0.05, 20.0, **finite)
angles = st.floats(-np.pi, np.pi, **finite)
shifts = st.floats(-2000.0, 2000.0, **finite)


@st.composite
def similarities(draw):
    return g.similarity(draw(scales), draw(angles), draw(shifts), draw(shifts))


@st.composite
def point_sets(draw, n_min=3, n_max=40):
    n = draw(st.integers(n_min, n_max))
    seed = draw(st.integers(0, 2**32 - 1))
    pts = np.random.default_rng(seed).uniform(-500, 500, size=(n, 2))
    # keep the set non-degenerate (not all on one point)
    if np.ptp(pts, axis=0).max() < 1.0:
        pts[0] += 10.0
    return pts


@given(similarities(), point_sets())
def test_estimate_recovers_the_transform(M, pts):
    est = g.estimate_similarity(pts, g.apply(M, pts))
    np.testing.assert_allclose(est, M, rtol=1e-7, atol=1e-6 * (1 + np.abs(M).max()))


@given(st.lists(similarities(), min_size=1, max_size=4), point_sets())
def test_compose_is_sequential_application_and_invert_undoes_it(ms, pts):
    C = g.compose(*ms)
    seq = pts
    for M in ms:
        seq = g.apply(M, seq)
    np.testing.assert_allclose(g.apply(C, pts), seq, rtol=1e-9, atol=1e-6 * (1 + np.abs(seq).max()))
    tol = 1e-13 * (1 + np.abs(C).max()) * (1 + np.abs(g.invert(C)).max())  # float64 rounding
    np.testing.assert_allclose(g.compose(C, g.invert(C)), g.identity(), atol=max(tol, 1e-12))
    np.testing.assert_allclose(g.compose(g.invert(C), C), g.identity(), atol=max(tol, 1e-12))


@given(similarities(), point_sets())
def test_estimate_never_reflects_and_is_least_squares(M, pts):
    rng = np.random.default_rng(len(pts))
    mirrored = pts * np.array([-1.0, 1.0])  # best fit would be a reflection
    dst = g.apply(M, mirrored) + rng.normal(0, 1.0, pts.shape)
    est = g.estimate_similarity(pts, dst)
    A = est[:, :2]
    assert np.linalg.det(A) >= 0  # a rotation times a positive scale
    np.testing.assert_allclose(A[0, 0], A[1, 1], atol=1e-9 * (1 + abs(A).max()))
    np.testing.assert_allclose(A[0, 1], -A[1, 0], atol=1e-9 * (1 + abs(A).max()))
    # no nearby similarity fits better: perturb each of its four parameters (a, b, tx, ty) with
    # A = [[a, -b], [b, a]] (perturbing single matrix entries would leave the similarities)
    err = ((g.apply(est, pts) - dst) ** 2).sum()
    basis = [np.array([[1.0, 0, 0], [0, 1, 0]]), np.array([[0, -1.0, 0], [1, 0, 0]]),
             np.array([[0, 0, 1.0], [0, 0, 0]]), np.array([[0, 0, 0], [0, 0, 1.0]])]
    for d in basis:
        for step in (1e-3 * (1 + abs(A).max()), 1e-2 * (1 + abs(est[:, 2]).max())):
            for sign in (1, -1):
                P = est + sign * step * d
                assert ((g.apply(P, pts) - dst) ** 2).sum() >= err * (1 - 1e-9) - 1e-9


def test_batched_functions_match_loops():
    rng = np.random.default_rng(0)
    Ms = np.stack([g.similarity(*rng.uniform(0.5, 2, 1), rng.uniform(-3, 3), *rng.uniform(-9, 9, 2)) for _ in range(5)])
    pts = rng.uniform(-50, 50, (5, 7, 2))
    out = g.apply(Ms, pts)
    for i in range(5):
        np.testing.assert_allclose(out[i], g.apply(Ms[i], pts[i]))
        np.testing.assert_allclose(g.invert(Ms)[i], g.invert(Ms[i]))
    np.testing.assert_allclose(g.estimate_similarity(pts, out), Ms, atol=1e-9)


def _smooth(x, y):
    return 127.5 + 60 * np.sin(x / 37.0 + 0.3) * np.cos(y / 29.0) + 40 * np.cos((x + y) / 53.0)


@settings(max_examples=30, deadline=None)
@given(st.floats(0.3, 3.0, **finite), angles, st.floats(-20, 20, **finite), st.floats(-20, 20, **finite))
def test_warp_then_inverse_warp_returns_the_image_inside(scale, angle, dx, dy):
    H, W = 240, 260
    yy, xx = np.mgrid[0:H, 0:W]
    img = np.dstack([_smooth(xx, yy)] * 3).astype(np.float32)
    S = 128
    # a crop centred on the image centre
    M = g.similarity(scale * S / 200.0, angle)
    c = g.apply(M, [W / 2 + dx, H / 2 + dy])
    M = g.compose(M, g.translation(*((S - 1) / 2 - c)))
    crop = g.warp(img, M, S)
    # crop pixels match the analytic image at their source points (within interpolation error)
    src = g.grid_to_source(M, S)
    inside = g.outside_distance(src, img.shape) == 0
    ref = _smooth(src[..., 0], src[..., 1])
    assert np.abs(crop[..., 0] - ref)[inside].mean() < 1.5
    back = g.warp(crop, g.invert(M), (H, W), border="replicate")
    # photo pixels well inside the crop square come back
    cp = g.apply(M, np.stack([xx, yy], -1).reshape(-1, 2)).reshape(H, W, 2)
    core = (cp > 8).all(-1) & (cp < S - 9).all(-1)
    assert core.sum() > 50  # every drawn crop covers part of the photo
    assert np.abs(back[..., 0] - img[..., 0])[core].mean() < 2.5


def test_warp_keeps_dtype_and_channels():
    rng = np.random.default_rng(1)
    M = g.similarity(0.37, 0.2, 3, 4)
    for img in (rng.integers(0, 256, (90, 70, 3), dtype=np.uint8), rng.integers(0, 65536, (90, 70), dtype=np.uint16),
                rng.random((90, 70, 1)).astype(np.float32)):
        out = g.warp(img, M, (33, 41))
        assert out.dtype == img.dtype and out.shape[:2] == (33, 41) and out.ndim == img.ndim


def test_warp_antialiases_when_shrinking():
    N = 512
    yy, xx = np.mgrid[0:N, 0:N]
    stripes = np.where((xx // 1) % 2 == 0, 255, 0).astype(np.uint8)  # Nyquist stripes
    M = g.similarity(0.3)
    aa = g.warp(stripes, M, 150).astype(float)
    raw = g.warp(stripes, M, 150, antialias=False).astype(float)
    assert aa[5:-5, 5:-5].std() < 10 < raw[5:-5, 5:-5].std()


def test_warp_reflects_outside_the_image():
    img = np.arange(100, dtype=np.uint8).reshape(10, 10)
    out = g.warp(img, g.translation(3, 0), (10, 13), border="reflect")
    # destination column 2 is source column -1, which BORDER_REFLECT maps to column 0
    np.testing.assert_array_equal(out[:, 2], img[:, 0])
    np.testing.assert_array_equal(out[:, 3:], img[:, :10])


# -- FFHQ crop -------------------------------------------------------------------------------------
def _face(rng, scale=1.0, angle=0.0, centre=(500, 400), e2e=60.0, e2m=70.0):
    """68 points with the FFHQ-relevant ones placed exactly, the rest scattered around them."""
    lm = rng.normal(0, 20, (68, 2))
    lm[36:42] = [-e2e / 2, 0] + rng.normal(0, 3, (6, 2))
    lm[36:42] -= lm[36:42].mean(0) - [-e2e / 2, 0]
    lm[42:48] = [e2e / 2, 0] + rng.normal(0, 3, (6, 2))
    lm[42:48] -= lm[42:48].mean(0) - [e2e / 2, 0]
    lm[48] = [-25, e2m]
    lm[54] = [25, e2m]
    return g.apply(g.similarity(scale, angle, *centre), lm)




@given(st.integers(0, 10**6), st.floats(0.2, 8.0, **finite), angles, st.sampled_from([64, 256, 1024]))
def test_ffhq_matrix_maps_the_script_quad_onto_the_crop_edges(seed, scale, angle, size):
    lm = _face(np.random.default_rng(seed), scale, angle, e2e=float(np.random.default_rng(seed).uniform(30, 90)))
    quad = reference_quad(lm)
    np.testing.assert_allclose(g.ffhq_quad(lm), quad, rtol=1e-12, atol=1e-9)
    M = g.ffhq_matrix(lm, size)
    e = size - 0.5
    np.testing.assert_allclose(g.apply(M, quad), [[-0.5, -0.5], [-0.5, e], [e, e], [e, -0.5]], atol=1e-7 * size)
    A = M[:, :2]  # a proper similarity (no reflection): the crop is not mirrored
    assert np.linalg.det(A) > 0 and np.isclose(A[0, 0], A[1, 1]) and np.isclose(A[0, 1], -A[1, 0])
    # the inverse is exact
    np.testing.assert_allclose(g.apply(g.invert(M), g.apply(M, lm)), lm, atol=1e-8 * (1 + np.abs(lm).max()))


@given(st.integers(0, 10**6), st.floats(0.2, 8.0, **finite), angles)
def test_balanced_face_lands_on_the_canonical_points(seed, scale, angle):
    e2e = 60.0
    lm = _face(np.random.default_rng(seed), scale, angle, e2e=e2e, e2m=2 * e2e / 1.8)
    for size in (256, 1024):
        M = g.ffhq_matrix(lm, size)
        got = {k: g.apply(M, v) for k, v in g.face_points(lm).items()}
        want = g.canonical_points(size)
        for k in want:
            np.testing.assert_allclose(got[k], want[k], atol=1e-6 * size)
    can = g.canonical_points(1024)
    np.testing.assert_allclose(can["eye_left"], [383.5, 1024 / 2 - 1024 / 36 - 0.5])
    np.testing.assert_allclose(can["mouth"], [511.5, 767.5])


def test_batched_ffhq_matrix():
    rng = np.random.default_rng(3)
    lms = np.stack([_face(rng, s, a) for s, a in [(1, 0), (2, 0.5), (0.5, -1)]])
    Ms = g.ffhq_matrix(lms, 256)
    for i in range(3):
        np.testing.assert_allclose(Ms[i], g.ffhq_matrix(lms[i], 256))


def test_bad_inputs_raise():
    with pytest.raises(ValueError):
        g.ffhq_matrix(np.zeros((5, 2)))
    with pytest.raises(ValueError):
        g.invert(np.zeros((2, 3)))
    with pytest.raises(ValueError):
        g.estimate_similarity(np.zeros((1, 2)), np.zeros((1, 2)))
    with pytest.raises(ValueError):
        g.warp(np.zeros((4, 4, 3), np.uint8), g.identity(), 4, border="wrap")
