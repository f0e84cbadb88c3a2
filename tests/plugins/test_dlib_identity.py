"""The ``dlib`` identity encoder: registered, offline, unit embeddings, and the same person scores
above a different person."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from counterface.errors import ConfigError
from counterface.imageio import read_image
from counterface.matching import crops
from counterface.registry import available, create, entry



@pytest.fixture(scope="module")
def dlib_identity():
    return create("identity", "dlib")


def embed_faces(enc, path: Path, flip: bool = False) -> np.ndarray:
    """(N, 128) embeddings of every face of a photo (largest first), from 256 px FFHQ crops."""
    photo = read_image(path)
    if flip:
        photo = np.ascontiguousarray(photo[:, ::-1])
    faces = create("aligner", "dlib").align(photo, size=64)
    return enc.embed_crops(crops(photo, faces))


def test_registered_through_its_entry_point():
    assert "dlib" in available("identity")
    e = entry("identity", "dlib")
    assert (e.plugin, e.package) == ("dlib_identity", "counterface")
    assert e.factory.__module__ == "counterface_dlib_identity.descriptor"


def test_unit_embeddings_deterministic_and_not_differentiable(dlib_identity, photos):
    import torch

    from counterface.convert import to_tensor

    photo = read_image(photos / "astronaut.jpg")
    face = create("aligner", "dlib").align(photo, size=64)[0]
    crop = crops(photo, [face])
    t = to_tensor(crop)
    a, b = dlib_identity.embed(t), dlib_identity.embed(t.clone())
    assert a.shape == (1, 128) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert abs(float(a.norm()) - 1.0) < 1e-5
    np.testing.assert_allclose(a.numpy()[0], dlib_identity.embed_crops(crop)[0], atol=1e-6)
    with pytest.raises(ConfigError, match="not differentiable"):
        dlib_identity.embed(t.clone().requires_grad_(True))
    with pytest.raises(ConfigError, match="square"):
        dlib_identity.embed(t[:, :, :10])


def test_same_person_scores_above_a_different_person(dlib_identity, photos):
    """The astronaut of astronaut.jpg against the astronaut and Hopper of two_people.jpg (another
    scale and JPEG), and a mirrored Hopper: the same person is above the threshold, the other below."""
    collins = embed_faces(dlib_identity, photos / "astronaut.jpg")[0]
    group = embed_faces(dlib_identity, photos / "two_people.jpg")  # [astronaut, Hopper]
    hopper_mirrored = embed_faces(dlib_identity, photos / "hopper.jpg", flip=True)[0]
    same, other = float(collins @ group[0]), float(collins @ group[1])
    assert same > other
    assert same >= dlib_identity.match_threshold > other
    assert float(hopper_mirrored @ group[1]) >= dlib_identity.match_threshold > float(hopper_mirrored @ group[0])


def test_metrics_identity_columns_with_the_dlib_encoder(dlib_identity, photos):
    from counterface.metrics import identity_columns

    photo = read_image(photos / "two_people.jpg")
    faces = create("aligner", "dlib").align(photo, size=64)
    c = crops(photo, faces)
    out = identity_columns(dlib_identity, [c[0], c[0], c[1]], "identity_independent")
    assert set(out) == {"identity_independent", "identity_independent_z0", "identity_independent_z1z0"}
    assert out["identity_independent"] == pytest.approx(1.0, abs=1e-6)  # Z1 is Z
    assert out["identity_independent_z0"] == pytest.approx(out["identity_independent_z1z0"], abs=1e-9)
    assert out["identity_independent_z0"] < dlib_identity.match_threshold  # Z0 is another person
