"""The ``e4e`` inverter and ``arcface`` identity encoder plugins on small random networks."""

from __future__ import annotations

import pytest
import torch

import counterface
from counterface import testing
from counterface.errors import ConfigError, WeightsError
from counterface_nets import irse


@pytest.fixture
def fake_gen():
    return testing.FakeGenerator(resolution=32, w_dim=16)  # num_ws 8


def _faces(n=2, s=64, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(n, 3, s, s, generator=g) * 2 - 1


def test_plugins_are_registered_with_their_weights():
    from counterface import weights as W

    assert "e4e" in counterface.available("inverter")
    assert "arcface" in counterface.available("identity")
    assert {"e4e_ffhq_encode.pt", "model_ir_se50.pth"} <= set(W.specs())


def test_file_inverter_declares_the_ffhq_family():
    inv = counterface.create("inverter", "e4e")  # lazy: nothing is loaded yet
    assert inv.family == "stylegan2-ffhq-1024" and inv.weights == "e4e_ffhq_encode.pt"
    assert inv.describe()["input_size"] == 256


# -- e4e -----------------------------------------------------------------------------------------
def test_random_e4e_takes_shape_and_mean_from_the_generator(fake_gen):
    inv = counterface.create("inverter", "e4e", weights=None, input_size=64)
    assert inv.family == "any"
    w = inv.invert(_faces(3), fake_gen)
    assert w.shape == (3, fake_gen.num_ws, fake_gen.w_dim)
    assert w.dtype == torch.float32 and w.device.type == "cpu" and torch.isfinite(w).all()
    codes = w - fake_gen.w_avg
    assert codes.abs().max() > 0  # the encoder contributes something on top of w_avg
    # row 0 is w0 and every later row is w0 + its own delta: rows differ
    assert not torch.allclose(codes[:, 0], codes[:, -1])


def test_random_e4e_is_deterministic_in_its_seed(fake_gen):
    x = _faces(2)
    a = counterface.create("inverter", "e4e", weights=None, input_size=64, seed=1).invert(x, fake_gen)
    b = counterface.create("inverter", "e4e", weights=None, input_size=64, seed=1).invert(x, fake_gen)
    c = counterface.create("inverter", "e4e", weights=None, input_size=64, seed=2).invert(x, fake_gen)
    assert torch.equal(a, b) and not torch.equal(a, c)


@pytest.mark.parametrize("size", [32, 48, 100, 256])
def test_any_crop_size_is_resized_to_the_input(fake_gen, size):
    inv = counterface.create("inverter", "e4e", weights=None, input_size=64)
    w = inv.invert(_faces(1, size), fake_gen)
    assert w.shape == (1, 8, 16) and torch.isfinite(w).all()


def test_integer_downscale_is_the_box_average(fake_gen):
    inv = counterface.create("inverter", "e4e", weights=None, input_size=64)
    x = _faces(1, 128)
    pooled = torch.nn.functional.avg_pool2d(x, 2)
    torch.testing.assert_close(inv.invert(x, fake_gen), inv.invert(pooled, fake_gen), atol=1e-6, rtol=0)


def test_random_e4e_with_the_stylegan2_plugin():
    gen = counterface.create("generator", "stylegan2", weights=None, size=64, style_dim=32, n_mlp=2,
                             channel_multiplier=1, max_channels=32)
    inv = counterface.create("inverter", "e4e", weights=None, input_size=64)
    w = inv.invert(_faces(1), gen)
    assert w.shape == (1, gen.num_ws, gen.w_dim) == (1, 10, 32)
    with torch.no_grad():
        assert gen.synthesize(w).shape == (1, 3, 64, 64)


def test_random_e4e_needs_the_generator():
    inv = counterface.create("inverter", "e4e", weights=None, input_size=64)
    with pytest.raises(ConfigError, match="generator"):
        inv.invert(_faces(1))


def test_file_e4e_rejects_a_generator_of_another_shape(tmp_path, fake_gen):
    from counterface_nets import e4e

    torch.manual_seed(0)
    enc = e4e.Encoder4Editing(style_count=10, w_dim=16, units=(1, 1, 1, 1), width=0.25, input_size=64)
    ck = {"state_dict": {"encoder." + k: v for k, v in enc.state_dict().items()},
          "opts": {"stylegan_size": 64, "start_from_latent_avg": True}, "latent_avg": torch.zeros(16)}
    p = tmp_path / "tiny_e4e.pt"
    torch.save(ck, p)
    inv = counterface.create("inverter", "e4e", weights=str(p), input_size=64, units=[1, 1, 1, 1], width=0.25)
    with pytest.raises(ConfigError, match="10 x 16"):
        inv.invert(_faces(1), fake_gen)  # fake generator has 8 rows
    assert inv.invert(_faces(1)).shape == (1, 10, 16)


@pytest.mark.parametrize("bad", [torch.zeros(3, 64, 64), torch.zeros(1, 1, 64, 64), torch.zeros(1, 3, 64, 32)])
def test_bad_face_tensors_are_config_errors(fake_gen, bad):
    inv = counterface.create("inverter", "e4e", weights=None, input_size=64)
    with pytest.raises(ConfigError):
        inv.invert(bad, fake_gen)
    with pytest.raises(ConfigError):
        counterface.create("identity", "arcface", weights=None).embed(bad)


@pytest.mark.parametrize("kind, name", [("inverter", "e4e"), ("identity", "arcface")])
def test_missing_registry_weights_are_a_weights_error(monkeypatch, fake_gen, kind, name):
    monkeypatch.setenv("COUNTERFACE_OFFLINE", "1")
    comp = counterface.create(kind, name)
    with pytest.raises(WeightsError) as ei:
        comp.invert(_faces(1), fake_gen) if kind == "inverter" else comp.embed(_faces(1))
    assert ("e4e_ffhq_encode.pt" if name == "e4e" else "model_ir_se50.pth") in str(ei.value)


@pytest.mark.parametrize("params", [{"input_size": 48}, {"units": [1, 1]}, {"width": 0}])
def test_bad_architecture_parameters_are_config_errors(params):
    with pytest.raises(ConfigError):
        counterface.create("inverter", "e4e", weights=None, **params)


# -- arcface --------------------------------------------------------------------------------------
@pytest.mark.parametrize("size", [64, 112, 256, 300, 1024])
def test_random_arcface_gives_unit_embeddings_at_any_size(size):
    ident = counterface.create("identity", "arcface", weights=None)
    e = ident.embed(_faces(2, size))
    assert e.shape == (2, 512)
    torch.testing.assert_close(e.norm(dim=1), torch.ones(2), atol=1e-5, rtol=0)


def test_identity_crop_matches_the_id_loss_recipe():
    x = _faces(1, 256)
    ref = torch.nn.functional.adaptive_avg_pool2d(x[:, :, 35:223, 32:220], 112)
    assert torch.equal(irse.identity_crop(x), ref)
    big = torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
    torch.testing.assert_close(irse.identity_crop(big), ref, atol=1e-6, rtol=0)


def test_gradient_flows_through_embed_and_paths_agree():
    ident = counterface.create("identity", "arcface", weights=None, seed=3)
    a, b = _faces(1, 128, seed=1), _faces(1, 128, seed=2)
    x = a.clone().requires_grad_(True)
    loss = 1 - (ident.embed(x) * ident.embed(b)).sum()
    loss.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    assert all(p.grad is None for p in ident.module.parameters())  # the network itself stays frozen
    with torch.no_grad():  # the folded-BatchNorm inference path agrees with the autograd path
        fast = ident.embed(a)
    with torch.enable_grad():
        slow = ident.embed(a)
    torch.testing.assert_close(fast, slow.detach(), atol=1e-5, rtol=0)


def test_random_arcface_is_deterministic_in_its_seed():
    x = _faces(1, 112)
    e = [counterface.create("identity", "arcface", weights=None, seed=s).embed(x) for s in (0, 0, 1)]
    assert torch.equal(e[0], e[1]) and not torch.equal(e[0], e[2])


def test_tiny_arcface_file_through_the_plugin(tmp_path):
    torch.manual_seed(5)
    net = irse.Backbone(units=(1, 1, 1, 1), width=0.25).eval()
    p = tmp_path / "tiny_arc.pth"
    torch.save(net.state_dict(), p)
    ident = counterface.create("identity", "arcface", weights=str(p), units=[1, 1, 1, 1], width=0.25)
    x = _faces(2, 256)
    with torch.no_grad():
        torch.testing.assert_close(ident.embed(x), net(irse.identity_crop(x)), atol=1e-5, rtol=0)


def test_e4e_inference_path_equals_the_reference_path():
    """Folded BatchNorm, matrix SE gates and matrix upsampling change only float rounding."""
    from counterface_nets import e4e, irse

    torch.manual_seed(0)
    enc = e4e.Encoder4Editing(style_count=10, w_dim=32, units=(1, 2, 2, 1), width=0.25, input_size=64).eval()
    with torch.no_grad():  # non-trivial BatchNorm statistics, so folding matters
        for m in enc.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
                m.weight.uniform_(0.5, 1.5)
                m.bias.uniform_(-0.2, 0.2)
    x = _faces(2, 64)
    with torch.inference_mode():
        fast = enc(x)
        ref = irse.set_fast(enc, False)(x)
    assert not torch.equal(fast, ref)  # the two paths really differ in their arithmetic
    torch.testing.assert_close(fast, ref, atol=1e-5, rtol=1e-5)
