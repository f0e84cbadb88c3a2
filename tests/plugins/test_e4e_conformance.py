"""e4e: the real-format ``e4e_ffhq_encode.pt`` loads through the public loader and matches the goldens.

The checkpoint is rebuilt from ``tests/data/conformance/e4e_ffhq_encode.json`` (detweights) in the real
layout ``{'state_dict': encoder.* + decoder.*, 'opts': dict, 'latent_avg': (18, 512)}``. Goldens and
tolerances are those of the conformance README. The full-size tests are marked slow (the file is
about 1.2 GB and takes ~20 s to rebuild).
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import counterface
import counterface_nets
from counterface.errors import WeightsError
from tests import conformance as cf
from counterface_nets import e4e

ATOL = 2e-4        # e4e_codes_raw, e4e_wplus, *_pool256
ATOL_IMG16 = 3e-3  # float16-stored full-resolution windows of the 1024 images


@pytest.fixture(scope="module")
def goldens(conformance_dir):
    return cf.load_goldens(conformance_dir)


@pytest.fixture(scope="module")
def manifest(conformance_dir):
    return json.loads((conformance_dir / "e4e_ffhq_encode.json").read_text())


@pytest.fixture(scope="module")
def encoder(det_e4e_file):
    return counterface_nets.load_e4e(det_e4e_file)


@pytest.fixture(scope="module")
def encoded(encoder, goldens):
    """(raw codes, W+) of the golden input, computed once."""
    x = _t(goldens, "e4e_x")
    with torch.inference_mode():
        return encoder(x), encoder.encode(x)


def _t(goldens, name):
    return torch.from_numpy(np.asarray(goldens[name], dtype=np.float32))


def test_parameter_names_shapes_and_order_equal_the_manifest(manifest):
    with torch.device("meta"):
        own = e4e.Encoder4Editing().state_dict()
    enc = [k for k in manifest["state_dict"] if k.startswith("encoder.")]
    assert ["encoder." + k for k in own] == enc
    for k, v in own.items():
        assert list(v.shape) == manifest["state_dict"]["encoder." + k]["shape"], k
    assert own["latlayer1.weight"].shape == (512, 256, 1, 1)
    assert len([k for k in own if k.endswith("num_batches_tracked")]) == 1 + 24 * 2 + 3  # stem, units, shortcuts


@pytest.mark.slow
def test_loader_returns_eval_module_with_latent_avg(encoder, goldens):
    assert isinstance(encoder, e4e.Encoder4Editing) and not encoder.training
    assert (encoder.style_count, encoder.w_dim) == (18, 512)
    assert torch.equal(encoder.latent_avg, _t(goldens, "e4e_latent_avg"))
    assert next(encoder.parameters()).device.type == "cpu"


@pytest.mark.slow
def test_codes_and_wplus_match_goldens(encoded, goldens):
    codes, wplus = encoded
    torch.testing.assert_close(codes, _t(goldens, "e4e_codes_raw"), atol=ATOL, rtol=0)
    torch.testing.assert_close(wplus, _t(goldens, "e4e_wplus"), atol=ATOL, rtol=0)
    # the distinct latent_avg rows make a wrong per-layer add visible
    assert (wplus - codes - _t(goldens, "e4e_latent_avg")).abs().max() < 1e-5


@pytest.mark.slow
def test_reference_path_matches_goldens_too(encoder, goldens):
    """With autograd recording, the unfolded BatchNorm path runs; it must agree as well."""
    x = _t(goldens, "e4e_x")[:1]
    with torch.enable_grad():
        codes = encoder(x)
    torch.testing.assert_close(codes.detach(), _t(goldens, "e4e_codes_raw")[:1], atol=ATOL, rtol=0)


@pytest.mark.slow
def test_inverter_plugin_gives_the_golden_wplus(det_e4e_file, encoder, goldens, monkeypatch):
    import counterface_nets.e4e as mod

    monkeypatch.setattr(mod, "load_e4e", lambda path, device="cpu", **kw: encoder)  # reuse the loaded one
    inv = counterface.create("inverter", "e4e", weights=str(det_e4e_file))
    assert inv.family == "stylegan2-ffhq-1024"
    x = _t(goldens, "e4e_x")
    w = inv.invert(x)
    assert w.dtype == torch.float32 and w.device.type == "cpu"
    torch.testing.assert_close(w, _t(goldens, "e4e_wplus"), atol=ATOL, rtol=0)
    # a 512 crop is box-averaged back to the same 256 input
    big = x[:1].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    torch.testing.assert_close(inv.invert(big), w[:1], atol=1e-5, rtol=0)


@pytest.mark.slow
def test_decoded_image_matches_goldens(det_e4e_file, encoded, goldens):
    """The e4e file's decoder.* part (H1's StyleGAN2 loader) decodes our W+ to the golden image."""
    from counterface_nets import stylegan2

    gen = counterface_nets.load_generator(det_e4e_file)
    assert isinstance(gen, stylegan2.Generator)
    with torch.inference_mode():
        img = gen.synthesize(encoded[1])
    torch.testing.assert_close(torch.nn.functional.adaptive_avg_pool2d(img, 256), _t(goldens, "e4e_img_pool256"),
                               atol=ATOL, rtol=0)
    torch.testing.assert_close(torch.from_numpy(cf.windows(img)), _t(goldens, "e4e_img_windows"), atol=ATOL_IMG16,
                               rtol=0)


# -- small files in the real layout: opts handling and wrong files ----------------------------------
TINY = {"units": (1, 1, 1, 1), "width": 0.25, "input_size": 64}


def _tiny_ckpt(style_count=8, w_dim=16, opts=None, latent_avg="rows"):
    torch.manual_seed(0)
    enc = e4e.Encoder4Editing(style_count=style_count, w_dim=w_dim, **TINY)
    sd = {"encoder." + k: v for k, v in enc.state_dict().items()}
    sd["decoder.style.1.weight"] = torch.zeros(w_dim, w_dim)
    size = 2 ** ((style_count + 2) // 2)
    ck = {"state_dict": sd,
          "opts": {"encoder_type": "Encoder4Editing", "stylegan_size": size, "start_from_latent_avg": True,
                   "dataset_type": "ffhq_encode", "some_future_option": [1, 2], "device": "cuda:0"}}
    ck["opts"].update(opts or {})
    if latent_avg == "rows":
        ck["latent_avg"] = torch.arange(style_count * w_dim, dtype=torch.float32).reshape(style_count, w_dim)
    elif latent_avg == "vector":
        ck["latent_avg"] = torch.arange(w_dim, dtype=torch.float32)
    return ck, enc


def _save(tmp_path, obj, name="e4e_ffhq_encode.pt"):
    p = tmp_path / name
    torch.save(obj, p)
    return p


def test_tiny_file_loads_with_opts_and_latent_avg(tmp_path):
    ck, ref = _tiny_ckpt()
    m = counterface_nets.load_e4e(_save(tmp_path, ck), **TINY)
    assert (m.style_count, m.w_dim) == (8, 16)
    x = torch.rand(2, 3, 64, 64) * 2 - 1
    with torch.no_grad():
        torch.testing.assert_close(m(x), ref.eval()(x), atol=1e-5, rtol=0)
        torch.testing.assert_close(m.encode(x), m(x) + ck["latent_avg"], atol=0, rtol=0)


def test_stylegan_size_sets_the_number_of_rows(tmp_path):
    ck, _ = _tiny_ckpt(style_count=10)  # stylegan_size 64 -> 10 rows
    assert ck["opts"]["stylegan_size"] == 64
    assert counterface_nets.load_e4e(_save(tmp_path, ck), **TINY).style_count == 10


def test_vector_latent_avg_is_added_to_every_row(tmp_path):
    ck, _ = _tiny_ckpt(latent_avg="vector")
    m = counterface_nets.load_e4e(_save(tmp_path, ck), **TINY)
    assert torch.equal(m.latent_avg, ck["latent_avg"].expand(8, 16))


def test_without_start_from_latent_avg_wplus_is_the_codes(tmp_path):
    ck, _ = _tiny_ckpt(opts={"start_from_latent_avg": False}, latent_avg=None)
    m = counterface_nets.load_e4e(_save(tmp_path, ck), **TINY)
    x = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.equal(m.encode(x), m(x))


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda ck: ck["state_dict"].pop("encoder.styles.3.linear.bias") is None, ["missing", "styles.3.linear.bias"]),
        (lambda ck: ck["state_dict"].update({"encoder.styles.99.linear.bias": torch.zeros(1)}),
         ["unexpected", "styles.99.linear.bias"]),
        (lambda ck: ck["state_dict"].update({"encoder.latlayer1.weight": torch.zeros(2, 2)}),
         ["shape", "latlayer1.weight"]),
        (lambda ck: ck.pop("latent_avg") is None, ["latent_avg"]),
        (lambda ck: ck.update({"latent_avg": torch.zeros(3, 16)}), ["latent_avg", "(3, 16)"]),
        (lambda ck: ck["opts"].update({"encoder_type": "GradualStyleEncoder"}), ["GradualStyleEncoder"]),
        (lambda ck: ck.update({"opts": "not a dict"}), ["opts"]),
    ],
    ids=["missing", "extra", "shape", "no-latent-avg", "bad-latent-avg", "psp-encoder", "bad-opts"],
)
def test_wrong_checkpoint_is_one_clear_error(tmp_path, mutate, words):
    ck, _ = _tiny_ckpt()
    mutate(ck)
    p = _save(tmp_path, ck)
    with pytest.raises(WeightsError) as ei:
        counterface_nets.load_e4e(p, **TINY)
    msg = str(ei.value)
    assert str(p) in msg and "\n" not in msg
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize(
    "obj, words",
    [
        ({"g_ema": {"style.1.weight": torch.zeros(2, 2)}, "latent_avg": torch.zeros(512)}, ["state_dict", "g_ema"]),
        ({"input_layer.0.weight": torch.zeros(64, 3, 3, 3)}, ["state_dict", "input_layer.0.weight"]),
        ({"state_dict": {"decoder.style.1.weight": torch.zeros(2, 2)}}, ["encoder", "decoder.style.1.weight"]),
    ],
    ids=["stylegan2-file", "arcface-file", "decoder-only"],
)
def test_another_network_is_one_clear_error(tmp_path, obj, words):
    p = _save(tmp_path, obj)
    with pytest.raises(WeightsError) as ei:
        counterface_nets.load_e4e(p)
    for w in [str(p), *words]:
        assert w in str(ei.value), str(ei.value)


def test_real_architecture_rejects_a_tiny_file_naming_keys(tmp_path):
    ck, _ = _tiny_ckpt(style_count=18)
    ck["opts"]["stylegan_size"] = 1024
    p = _save(tmp_path, ck)
    with pytest.raises(WeightsError) as ei:
        counterface_nets.load_e4e(p)
    assert str(p) in str(ei.value) and "body." in str(ei.value)


def test_truncated_and_random_files_are_clear_errors(tmp_path):
    good = _save(tmp_path, _tiny_ckpt()[0], "good.pt").read_bytes()
    trunc = tmp_path / "trunc.pt"
    trunc.write_bytes(good[: len(good) // 3])
    noise = tmp_path / "noise.pt"
    noise.write_bytes(np.random.default_rng(1).bytes(8192))
    for p in (trunc, noise, tmp_path / "absent.pt"):
        with pytest.raises(WeightsError) as ei:
            counterface_nets.load_e4e(p, **TINY)
        assert str(p) in str(ei.value)
