"""StyleGAN2 conformance: real-format det checkpoints through the public loader vs the goldens.

Goldens and tolerances: ``tests/data/conformance/README.md`` (sg_w and *_pool256: atol 2e-4; the
float16-stored full-resolution windows of the 1024 images: atol 3e-3 after casting to float32).
"""

from __future__ import annotations

import json
import os
import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import counterface
import counterface_nets
from counterface_nets import stylegan2
from tests import conformance as cf

ATOL = 2e-4
ATOL_FP16_IMG = 3e-3


@pytest.fixture(scope="module")
def goldens(conformance_dir):
    return cf.load_goldens(conformance_dir)


@pytest.fixture(scope="module")
def manifest(conformance_dir):
    return json.loads((conformance_dir / "stylegan2_ffhq_1024.json").read_text())


@pytest.fixture(scope="module")
def gen(det_stylegan2_file):
    return counterface_nets.load_generator(det_stylegan2_file)


@pytest.fixture(scope="module")
def det_raw(det_stylegan2_file):
    """The det checkpoint as a dict (to derive damaged copies from)."""
    return torch.load(det_stylegan2_file, map_location="cpu", weights_only=True)


def _pool256(img: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(img, img.shape[-1] // 256)


# ------------------------------------------------------------------------------------ layout

def test_state_dict_keys_shapes_and_order_equal_manifest(gen, manifest):
    sd = gen.state_dict()
    assert list(sd) == list(manifest["state_dict"])
    for k, spec in manifest["state_dict"].items():
        assert list(sd[k].shape) == spec["shape"], k
    # a freshly constructed FFHQ generator has the same layout (no file involved)
    with torch.device("meta"):
        fresh = stylegan2.Generator(**stylegan2.FFHQ_CONFIG)
    assert list(fresh.state_dict()) == list(manifest["state_dict"])
    assert sum(p.numel() for p in fresh.parameters()) == manifest["counts"]["parameters"]


def test_loader_result(gen, goldens):
    assert not gen.training
    assert gen.config() == stylegan2.FFHQ_CONFIG
    assert gen.num_ws == 18 and gen.resolution == 1024
    assert next(gen.parameters()).device.type == "cpu"
    np.testing.assert_array_equal(gen.latent_avg.numpy(), goldens["sg_latent_avg"])


def test_det_weights_loaded_bit_exact(gen, conformance_dir, manifest):
    assert cf.fingerprint(gen.state_dict()) == manifest["det_fingerprint_sha256"]


# ------------------------------------------------------------------------------------ goldens

def test_mapping_matches_golden(gen, goldens):
    with torch.inference_mode():
        w = gen.mapping(torch.from_numpy(goldens["sg_z"]))
    np.testing.assert_allclose(w.numpy(), goldens["sg_w"], rtol=0, atol=ATOL)


def test_synthesis_wplus_matches_golden(gen, goldens):
    with torch.inference_mode():
        img = gen.synthesize(torch.from_numpy(goldens["sg_wplus"]))
    assert img.shape == (2, 3, 1024, 1024) and img.dtype == torch.float32
    np.testing.assert_allclose(_pool256(img).numpy(), goldens["sg_img_wplus_pool256"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(cf.windows(img), goldens["sg_img_wplus_windows"].astype(np.float32), rtol=0,
                               atol=ATOL_FP16_IMG)


def test_synthesis_from_z_matches_golden(gen, goldens):
    """The z path: mapping, then the same w on all 18 layers (truncation 1)."""
    with torch.inference_mode():
        w = gen.mapping(torch.from_numpy(goldens["sg_z"]))
        img = gen.synthesize(w[:, None].expand(-1, gen.num_ws, -1))
    np.testing.assert_allclose(_pool256(img).numpy(), goldens["sg_img_z_pool256"], rtol=0, atol=ATOL)
    np.testing.assert_allclose(cf.windows(img), goldens["sg_img_z_windows"].astype(np.float32), rtol=0,
                               atol=ATOL_FP16_IMG)


@pytest.mark.slow
def test_e4e_file_decoder_matches_golden(det_e4e_file, goldens):
    """The ``decoder.*`` generator inside e4e_ffhq_encode.pt, with its (18, 512) latent_avg."""
    g = counterface_nets.load_generator(det_e4e_file)
    assert g.config() == stylegan2.FFHQ_CONFIG
    np.testing.assert_array_equal(g.latent_avg.numpy(), goldens["e4e_latent_avg"])
    with torch.inference_mode():
        img = g.synthesize(torch.from_numpy(goldens["e4e_wplus"][:1]))
    np.testing.assert_allclose(_pool256(img).numpy(), goldens["e4e_img_pool256"][:1], rtol=0, atol=ATOL)


def test_plugin_loads_file_path(det_stylegan2_file, goldens):
    g = counterface.create("generator", "stylegan2", weights=str(det_stylegan2_file))
    assert (g.num_ws, g.w_dim, g.resolution, g.family) == (18, 512, 1024, "stylegan2-ffhq-1024")
    np.testing.assert_array_equal(g.w_avg.numpy(), goldens["sg_latent_avg"])
    with torch.inference_mode():
        w = g.mapping(torch.from_numpy(goldens["sg_z"]))
    np.testing.assert_allclose(w.numpy(), goldens["sg_w"], rtol=0, atol=ATOL)


# ------------------------------------------------------------------------------------ bad files

def _expect_weights_error(path, *needles):
    with pytest.raises(counterface.WeightsError) as info:
        counterface_nets.load_generator(path)
    msg = str(info.value)
    assert str(path) in msg, msg
    for n in needles:
        assert n in msg, msg
    assert "\n" not in msg
    return msg


def _save_variant(tmp_path, det_raw, name, edit):
    sd = dict(det_raw["g_ema"])
    edit(sd)
    p = tmp_path / name
    torch.save({"g_ema": sd, "latent_avg": det_raw["latent_avg"]}, p)
    return p


def test_missing_key_is_named(tmp_path, det_raw):
    p = _save_variant(tmp_path, det_raw, "missing.pt", lambda sd: sd.pop("convs.7.noise.weight"))
    _expect_weights_error(p, "missing", "convs.7.noise.weight")


def test_extra_key_is_named(tmp_path, det_raw):
    p = _save_variant(tmp_path, det_raw, "extra.pt", lambda sd: sd.__setitem__("convs.3.conv.bias", torch.zeros(3)))
    _expect_weights_error(p, "unexpected", "convs.3.conv.bias")


def test_wrong_shape_is_named(tmp_path, det_raw):
    def edit(sd):
        sd["convs.8.conv.weight"] = sd["convs.8.conv.weight"][:, :128].clone()

    p = _save_variant(tmp_path, det_raw, "shape.pt", edit)
    msg = _expect_weights_error(p, "convs.8.conv.weight")
    assert "convs.9" not in msg  # the architecture was not re-guessed around the damage


def test_truncated_file(tmp_path, det_stylegan2_file):
    p = tmp_path / "truncated.pt"
    data = det_stylegan2_file.read_bytes()
    p.write_bytes(data[: len(data) // 2])
    _expect_weights_error(p, "truncated")


def test_random_bytes(tmp_path):
    p = tmp_path / "random.pt"
    p.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    _expect_weights_error(p)


def test_another_networks_file(det_arcface_file):
    """ArcFace's bare state dict: told it is not a StyleGAN2 checkpoint, with the keys it does have."""
    _expect_weights_error(det_arcface_file, "not a StyleGAN2", "input_layer")


def test_e4e_file_without_decoder(tmp_path):
    p = tmp_path / "encoder_only.pt"
    torch.save({"state_dict": {"encoder.conv.weight": torch.zeros(1)}, "opts": {}}, p)
    _expect_weights_error(p, "decoder", "encoder.conv.weight")


class _Payload:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.mkdir, (self.marker,))


def test_code_carrying_pickle_is_refused(tmp_path):
    marker = str(tmp_path / "pwned")
    p = tmp_path / "evil.pt"
    torch.save({"g_ema": _Payload(marker)}, p)
    _expect_weights_error(p, "refusing")
    assert not os.path.exists(marker)
    # and a plain pickle (not a torch zip) of the same is refused too
    p2 = tmp_path / "evil.pkl"
    p2.write_bytes(pickle.dumps({"g_ema": _Payload(marker)}))
    with pytest.raises(counterface.WeightsError):
        counterface_nets.load_generator(p2)
    assert not os.path.exists(marker)


def test_missing_file(tmp_path):
    _expect_weights_error(tmp_path / "nope.pt", "not found")
