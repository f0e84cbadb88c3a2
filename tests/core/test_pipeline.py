"""The pipeline composed from the fakes of counterface.testing (+ the reference tuner/direction/operators)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from counterface import ConfigError, NoFaceError, testing
from counterface import pivot as pv
from counterface.pipeline import Pipeline
from tests.helpers import fake_components


@pytest.fixture(scope="module")
def fakes():
    with fake_components():
        yield


@pytest.fixture(scope="module")
def photo():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (12, 10, 3)).astype(np.float32)
    import cv2

    return np.ascontiguousarray(cv2.resize(base, (70, 84), interpolation=cv2.INTER_CUBIC).clip(0, 255).astype(np.uint8))


@pytest.fixture(scope="module")
def tuned(fakes, photo):
    pipe = Pipeline.from_preset("fake")
    face = pipe.faces(photo)[0]
    pivot, seconds = pipe.pivot(face)
    return pipe, face, pivot, seconds


def test_pivot_stages_and_seconds(tuned):
    pipe, face, pivot, seconds = tuned
    assert set(seconds) == {"invert", "tune"}
    assert pivot.generator["name"] == "fake"
    assert pivot.meta["losses"]["tune"]["loss"] < pivot.meta["losses_start"]["tune"]["loss"]


def test_pi1_size_and_mask(tuned, photo):
    pipe, face, pivot, _ = tuned
    res = pipe.pi1(photo, face, pivot, alpha=3.0)
    assert res.image.shape == photo.shape and res.image.dtype == np.uint8
    m = pipe.mask(photo, face)
    assert np.array_equal(res.image[m == 0], photo[m == 0])
    assert not np.array_equal(res.image, photo)


def test_alpha_zero_reconstruction_equals_pi0(tuned, photo):
    pipe, face, pivot, _ = tuned
    recon = pipe.render(photo, face, pivot, 0.0).image
    assert np.array_equal(pipe.pi0(photo, face, pivot, alpha=2.0).image, recon)
    assert np.array_equal(pipe.pi1(photo, face, pivot, alpha=0.0).image, recon)


def test_edit_touches_only_chosen_layers(tuned):
    pipe, face, pivot, _ = tuned
    w = pivot.w
    out = pipe.edit_latent(w, 2.0)
    changed = [i for i in range(w.shape[0]) if not torch.equal(out[i], w[i])]
    assert changed == [2, 3, 4]  # the fake preset's direction layers "2-4"
    pipe2 = Pipeline({**pipe.config, "edit": {**pipe.config["edit"], "layers": "6-7"}})
    out2 = pipe2.edit_latent(w, 2.0)
    assert [i for i in range(w.shape[0]) if not torch.equal(out2[i], w[i])] == [6, 7]


def test_saved_pivot_reloads_to_same_images(tuned, photo, tmp_path):
    pipe, face, pivot, _ = tuned
    path = pv.save_pivot(pivot, tmp_path / "p.safetensors")
    fresh = Pipeline.from_preset("fake")
    again = pv.load_pivot(path)
    fresh.check_pivot(again)
    assert np.array_equal(fresh.pi1(photo, face, again, 1.5).image, pipe.pi1(photo, face, pivot, 1.5).image)


def test_generator_untouched_by_render(tuned, photo):
    pipe, face, pivot, _ = tuned
    before = {n: p.clone() for n, p in pipe.generator.module.named_parameters()}
    pipe.pi1(photo, face, pivot, 1.0)
    assert all(torch.equal(before[n], p) for n, p in pipe.generator.module.named_parameters())


def test_same_seed_same_pivot(fakes, photo):
    a = Pipeline.from_preset("fake", seed=7)
    b = Pipeline.from_preset("fake", seed=7)
    fa, fb = a.faces(photo)[0], b.faces(photo)[0]
    pa, pb = a.pivot(fa)[0], b.pivot(fb)[0]
    assert torch.equal(pa.w, pb.w) and all(torch.equal(pa.tensors[k], pb.tensors[k]) for k in pa.tensors)
    assert np.array_equal(a.pi1(photo, fa, pa).image, b.pi1(photo, fb, pb).image)


def test_pivot_for_another_generator_rejected(tuned, fakes):
    pipe, face, pivot, _ = tuned
    other = Pipeline.from_preset("fake")
    other.config["generator"] = {**other.config["generator"], "seed": 5}
    with pytest.raises(ConfigError, match="other parameters"):
        other.check_pivot(pivot)
    wrong = testing.FakeGenerator(resolution=64)
    other2 = Pipeline.from_preset("fake")
    other2._components["generator"] = wrong
    wrong.name = "fake"
    with pytest.raises(ConfigError):
        other2.check_pivot(pivot)


def test_direction_family_mismatch(fakes, shared):
    pipe = Pipeline.from_preset("fake")
    pipe.config["direction"] = {"name": "smile", "weights": str(shared / "directions" / "smile.pt")}
    with pytest.raises(ConfigError, match="stylegan2-ffhq-1024"):
        pipe.edit_latent(torch.zeros(pipe.generator.num_ws, pipe.generator.w_dim), 1.0)


def test_no_face(fakes):
    pipe = Pipeline.from_preset("fake")
    with pytest.raises(NoFaceError):
        pipe.faces(np.zeros((8, 8, 3), np.uint8))


def test_sidecar_content(tuned, photo):
    pipe, face, pivot, seconds = tuned
    rec = pipe.sidecar(input_path="x.jpg", input_sha256="ab", face=face, alpha=1.0, role="z1", pivot=pivot,
                       seconds=seconds)
    assert rec["face"]["matrix"] == np.asarray(face.matrix).tolist()
    assert rec["losses"]["tune"] and rec["losses"]["refine"]
    assert rec["seed"] == 0
    assert rec["components"]["tuner"]["params"]["latent_steps"] == 8
    assert rec["components"]["tuner"]["package"] == "counterface"
