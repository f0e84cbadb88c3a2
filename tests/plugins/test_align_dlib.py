"""The dlib aligner on the real photos in tests/data/photos (offline)."""

from __future__ import annotations

import numpy as np
import pytest

import counterface
from counterface import geometry as g
from counterface.matching import select_faces
from tests.ffhq_reference import reference_quad

import dlib  # noqa: E402,F401  (in the test extra: missing must fail, not skip)

#: file -> number of faces (tests/data/README.md)
EXPECTED = {
    "astronaut.jpg": 1,
    "astronaut_tall.jpg": 1,
    "two_people.jpg": 2,
    "astronaut_small.jpg": 1,
    "astronaut_240p.jpg": 1,
    "astronaut_partial_face.jpg": 1,
    "astronaut_rgba.png": 1,
    "hopper_rgba.png": 1,
    "coffee-no-face.jpg": 0,
    "astronaut_gray.jpg": 1,
    "astronaut_cmyk.jpg": 1,
    "astronaut_exif_rotated.jpg": 1,
    "astronaut_16bit.png": 1,
}
SIZE = 1024


@pytest.fixture(scope="module")
def aligner():
    return counterface.create("aligner", "dlib")


@pytest.fixture(scope="module")
def aligned(photos, aligner):
    """file -> (image, faces) for every photo, aligned once per test module."""
    out = {}
    for name in EXPECTED:
        image = counterface.read_image(photos / name)
        before = image.copy()
        faces = aligner.align(image, size=SIZE)
        np.testing.assert_array_equal(image, before)  # the aligner must not modify its input
        out[name] = (image, faces)
    return out




def _quad_to_crop(quad, p, size):
    """Where the script's QUAD transform puts photo point p (crop pixel-edge -> centre coordinates)."""
    origin, down, right = quad[0], quad[1] - quad[0], quad[3] - quad[0]
    a, b = np.linalg.solve(np.stack([right, down], 1), p - origin)
    return np.array([a * size - 0.5, b * size - 0.5])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_listed_face_is_found(aligned, name):
    image, faces = aligned[name]
    assert len(faces) == EXPECTED[name]
    for i, f in enumerate(faces):
        assert f.index == i
        assert f.crop.shape == (SIZE, SIZE, 3) and f.crop.dtype == np.uint8
        assert f.landmarks.shape == (68, 2) and f.crop_landmarks.shape == (68, 2)
        assert f.matrix.shape == (2, 3)
        mouth = f.region("mouth")
        assert mouth.shape == (SIZE, SIZE) and mouth.dtype == np.float32
        assert 0.0 <= mouth.min() and mouth.max() <= 1.0
        # the mouth region covers every mouth landmark and little else
        pts = np.rint(f.crop_landmarks[48:68]).astype(int)
        assert np.all(mouth[pts[:, 1], pts[:, 0]] == 1.0)
        assert 0.005 < mouth.mean() < 0.15
        np.testing.assert_allclose(g.apply(f.matrix, f.landmarks), f.crop_landmarks, atol=1e-9)
        assert f.box is not None and f.score is not None


@pytest.mark.parametrize("name", sorted(n for n, k in EXPECTED.items() if k))
def test_crops_put_eyes_and_mouth_where_the_ffhq_crop_does(aligned, name):
    _, faces = aligned[name]
    can = g.canonical_points(SIZE)
    for f in faces:
        quad = reference_quad(f.landmarks)
        pts = g.face_points(f.crop_landmarks)
        for key, photo_pt in g.face_points(f.landmarks).items():
            # exactly where the script's quad transform puts them
            np.testing.assert_allclose(pts[key], _quad_to_crop(quad, photo_pt, SIZE), atol=0.01)
        # and near the canonical FFHQ positions (real faces differ by their proportions)
        for key in ("eye_left", "eye_right"):
            assert np.abs(pts[key] - can[key]).max() < 0.015 * SIZE, (key, pts[key], can[key])
        assert abs(pts["mouth"][0] - can["mouth"][0]) < 0.015 * SIZE
        # a broad smile with a short chin (the astronaut) puts the mouth at about 0.69 S
        assert 0.68 * SIZE < pts["mouth"][1] < can["mouth"][1] + 0.01 * SIZE


@pytest.mark.parametrize("name", ["astronaut.jpg", "two_people.jpg", "astronaut_240p.jpg", "astronaut_tall.jpg"])
def test_crop_pixels_show_the_face_where_the_matrix_says(aligned, aligner, name):
    """Landmarks found again *on the crop* agree with the transformed photo landmarks: the pixels
    of the crop are where the matrix says (a few pixels at 1024). The partial face is left out: its
    mirrored padding is a second half-face that pulls dlib's landmarks, not a geometry error."""
    _, faces = aligned[name]
    for f in faces:
        again = aligner.align(f.crop, size=256)
        assert again, "no face found on the aligned crop"
        lm = again[0].landmarks
        for key, p in g.face_points(lm).items():
            want = g.face_points(f.crop_landmarks)[key]
            assert np.linalg.norm(p - want) < 8.0, (name, key, p, want)
        # and no systematic shift or scale: the best similarity between the two sets is ~identity
        E = g.estimate_similarity(f.crop_landmarks, lm)
        assert abs(g.scale_of(E) - 1) < 0.02
        assert np.abs(g.apply(E, [SIZE / 2, SIZE / 2]) - SIZE / 2).max() < 4.0


def test_several_faces_largest_first_and_selection(aligned):
    _, faces = aligned["two_people.jpg"]
    sides = [np.linalg.norm(f.landmarks[16] - f.landmarks[0]) for f in faces]
    assert g.scale_of(faces[0].matrix) <= g.scale_of(faces[1].matrix)  # larger face -> smaller scale
    assert len(sides) == 2 and abs(faces[0].landmarks[:, 0].mean() - faces[1].landmarks[:, 0].mean()) > 200
    assert select_faces(faces, "largest") == faces[:1]
    assert select_faces(faces, "all") == faces
    assert select_faces(faces, "1") == faces[1:]
    with pytest.raises(counterface.NoFaceError):
        select_faces(faces, 2)


def test_orientation_and_modes_give_the_same_face(aligned):
    ref = aligned["astronaut.jpg"][1][0].landmarks
    for name in ("astronaut_exif_rotated.jpg", "astronaut_gray.jpg", "astronaut_cmyk.jpg"):
        lm = aligned[name][1][0].landmarks
        assert np.abs(lm - ref).mean() < 3.0, name
    lm16 = aligned["astronaut_16bit.png"][1][0].landmarks
    img16 = aligned["astronaut_16bit.png"][0]
    k = img16.shape[1] / aligned["astronaut.jpg"][0].shape[1]
    assert np.abs(lm16 / k - ref).mean() < 4.0


def test_small_face_is_upsampled_into_the_crop(aligned):
    image, faces = aligned["astronaut_240p.jpg"]
    f = faces[0]
    assert f.face_width < 80
    assert g.scale_of(f.matrix) > 4  # 1024 crop from a ~60 px face


def test_partial_face_crop_leaves_the_photo_and_fades(aligned):
    image, faces = aligned["astronaut_partial_face.jpg"]
    f = faces[0]
    src = g.grid_to_source(f.matrix, SIZE)
    far = g.outside_distance(src, image.shape) > 0.3 * SIZE / g.scale_of(f.matrix)
    inside = g.outside_distance(src, image.shape) == 0
    assert far.sum() > 1000 and inside.sum() > 1000
    grad = np.abs(np.diff(f.crop.astype(float), axis=1)).sum(-1)
    # outside the photo the crop is the blurred, median-faded padding: almost no detail
    assert grad[far[:, 1:]].mean() < 0.25 * grad[inside[:, 1:]].mean()


def test_no_face_is_an_empty_list_and_a_no_face_error(aligned):
    image, faces = aligned["coffee-no-face.jpg"]
    assert faces == []
    with pytest.raises(counterface.NoFaceError):
        select_faces(faces, "largest")


def test_odd_arrays_from_python_callers(aligner, aligned):
    image, faces = aligned["astronaut_small.jpg"]
    ref = faces[0].landmarks
    gray = image[..., 0]
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    for arr in (rgba, image.astype(np.float32) / 255.0):
        got = aligner.align(arr, size=64)
        assert len(got) == 1 and np.abs(got[0].landmarks - ref).max() < 1e-6
    assert len(aligner.align(gray, size=64)) == 1


def test_missing_predictor_is_a_weights_error(tmp_path):
    a = counterface.create("aligner", "dlib", predictor=str(tmp_path / "nope.dat"))
    with pytest.raises(counterface.WeightsError, match="nope.dat"):
        a.align(np.zeros((64, 64, 3), np.uint8))
    with pytest.raises(counterface.ConfigError):
        counterface.create("aligner", "dlib", detector="yolo")
