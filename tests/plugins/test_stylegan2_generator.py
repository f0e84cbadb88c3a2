"""The ``stylegan2`` generator plugin on small random networks, and the FIR ops it is built from."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import counterface
from counterface_nets import ops, stylegan2

TINY = dict(weights=None, size=64, style_dim=64, n_mlp=2, channel_multiplier=1, max_channels=32)


def _tiny(**kw):
    return counterface.create("generator", "stylegan2", **{**TINY, **kw})


def _ws(g, n=1, seed=0):
    z = torch.randn(n, g.w_dim, generator=torch.Generator().manual_seed(seed))
    with torch.no_grad():
        w = g.mapping(z)
    return w[:, None].repeat(1, g.num_ws, 1) + 0.3 * torch.randn(n, g.num_ws, g.w_dim, generator=torch.Generator().manual_seed(seed + 1))


# ---------------------------------------------------------------------------------------- ops

def _literal_upfirdn(x, k, up, down, pad):
    """Direct sum: out[n] = sum_i x[i] k[n*down + K-1-p0 - up*i] per axis (the op's definition)."""
    x, k = np.asarray(x, np.float64), np.asarray(k, np.float64)
    px0, px1, py0, py1 = pad
    h, w = x.shape[-2:]
    kh, kw = k.shape
    oh, ow = (h * up + py0 + py1 - kh) // down + 1, (w * up + px0 + px1 - kw) // down + 1
    out = np.zeros(x.shape[:-2] + (oh, ow))
    for oy in range(oh):
        for ox in range(ow):
            acc = 0.0
            for iy in range(h):
                ty = oy * down + kh - 1 - py0 - up * iy
                if not 0 <= ty < kh:
                    continue
                for ix in range(w):
                    tx = ox * down + kw - 1 - px0 - up * ix
                    if 0 <= tx < kw:
                        acc = acc + x[..., iy, ix] * k[ty, tx]
            out[..., oy, ox] = acc
    return out


@pytest.mark.parametrize("up,down,pad", [(2, 1, (2, 1, 2, 1)), (1, 1, (1, 1, 1, 1)), (1, 2, (1, 1, 1, 1)),
                                         (2, 1, (1, 1, 1, 1)), (1, 1, (2, 2, 0, 1)), (2, 2, (1, 2, 1, 2)),
                                         (1, 1, (-1, 2, 1, -1))])
def test_upfirdn2d_matches_definition(up, down, pad):
    g = torch.Generator().manual_seed(up * 10 + down)
    x = torch.randn(2, 3, 5, 6, generator=g, dtype=torch.float64)
    k = torch.randn(4, 3, generator=g, dtype=torch.float64)  # asymmetric, non-square: catches flips
    got = ops.upfirdn2d(x, k, up=up, down=down, pad=pad)
    np.testing.assert_allclose(got.numpy(), _literal_upfirdn(x.numpy(), k.numpy(), up, down, pad), atol=1e-12)


@pytest.mark.parametrize("pad", [(2, 1), (1, 1), (1, 2), (3, 0), (0, 0)])
def test_fir_upsample_equals_upfirdn2d(pad):
    g = torch.Generator().manual_seed(sum(pad))
    x = torch.randn(2, 4, 6, 5, generator=g, dtype=torch.float64)
    k = torch.randn(4, 4, generator=g, dtype=torch.float64)
    want = ops.upfirdn2d(x, k, up=2, pad=pad)
    got = ops.fir_upsample(x, k, 2, pad)
    assert got.shape == want.shape
    torch.testing.assert_close(got, want, atol=1e-12, rtol=0)
    xc = x.contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(ops.fir_upsample(xc, k, 2, pad), want, atol=1e-12, rtol=0)


@pytest.mark.parametrize("pad", [(1, 1), (2, 1), (0, 0), (-1, 2)])
def test_fir_filter_equals_upfirdn2d(pad):
    g = torch.Generator().manual_seed(7)
    x = torch.randn(1, 3, 7, 8, generator=g, dtype=torch.float64)
    k = torch.randn(4, 4, generator=g, dtype=torch.float64)
    torch.testing.assert_close(ops.fir_filter(x, k, pad), ops.upfirdn2d(x, k, pad=pad), atol=1e-12, rtol=0)


def test_fused_leaky_relu_formula():
    x = torch.linspace(-2, 2, 24).reshape(1, 3, 2, 4)
    b = torch.tensor([0.5, -0.25, 0.0])
    y = ops.fused_leaky_relu(x, b, 0.2, 2 ** 0.5)
    v = x + b.view(1, 3, 1, 1)
    torch.testing.assert_close(y, torch.where(v > 0, v, 0.2 * v) * 2 ** 0.5)


def test_make_kernel():
    k = ops.make_kernel([1, 3, 3, 1])
    assert k.shape == (4, 4) and abs(float(k.sum()) - 1) < 1e-7 and float(k[1, 1]) == 9 / 64


# ---------------------------------------------------------------------------------------- plugin

def test_registered_and_attributes():
    assert "stylegan2" in counterface.available("generator")
    g = _tiny()
    assert isinstance(g, counterface.Generator)
    assert (g.num_ws, g.w_dim, g.resolution) == (10, 64, 64)
    assert g.family == "stylegan2-random-s64-d64-seed0"
    assert isinstance(g.module, stylegan2.Generator)
    assert g.w_avg.shape == (64,)
    assert g.describe()["size"] == 64


def test_shapes_and_batch_consistency():
    g = _tiny()
    ws = _ws(g, 3)
    with torch.inference_mode():
        img = g.synthesize(ws)
        one = g.synthesize(ws[1:2])
        w = g.mapping(torch.randn(5, 64))
    assert img.shape == (3, 3, 64, 64) and img.dtype == torch.float32 and img.is_contiguous()
    assert w.shape == (5, 64)
    torch.testing.assert_close(one, img[1:2], atol=1e-5, rtol=0)
    assert float(img.abs().max()) < 4  # nominally [-1, 1]; the random net's ToRGB is scaled down


def test_deterministic_and_seeded():
    ws = _ws(_tiny(), 2)
    with torch.inference_mode():
        a = _tiny().synthesize(ws)
        b = _tiny().synthesize(ws)
        c = _tiny(seed=1).synthesize(ws)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c)
    assert torch.equal(_tiny().w_avg, _tiny().w_avg)
    assert _tiny(seed=1).family != _tiny().family


@pytest.mark.parametrize("cfg", [dict(), dict(size=32, max_channels=16, channel_multiplier=2, style_dim=32, n_mlp=1),
                                 dict(size=128, max_channels=64)])
def test_fast_path_equals_literal_reference(cfg):
    g = _tiny(**cfg)
    ws = _ws(g, 2)
    with torch.inference_mode():
        fast = g.module.synthesize(ws)
        ref = g.module.synthesize(ws, impl="reference")
    torch.testing.assert_close(fast, ref, atol=2e-5, rtol=0)


def test_gradients_match_reference_path():
    """The tuner backprops through synthesize: the fast path's gradients (folded gains, in-place ops)
    equal those of rosinality's literal math, for every synthesis parameter and for W+."""
    g = _tiny()
    mod = g.module
    ws = _ws(g, 1)
    target = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(3)) * 2 - 1
    grads = {}
    for impl in ("fast", "reference"):
        mod.zero_grad(set_to_none=True)
        w = ws.clone().requires_grad_(True)
        loss = (mod.synthesize(w, impl=impl) - target).square().mean()
        loss.backward()
        grads[impl] = {n: p.grad.clone() for n, p in mod.named_parameters() if p.grad is not None}
        grads[impl]["ws"] = w.grad.clone()
    mod.zero_grad(set_to_none=True)
    synth = [n for n, _ in mod.named_parameters() if not n.startswith("style.")]
    assert sorted(grads["fast"]) == sorted(synth + ["ws"])
    for n, gr in grads["reference"].items():
        scale = float(gr.abs().max()) + 1e-12
        assert float((grads["fast"][n] - gr).abs().max()) / scale < 1e-3, n
        assert float(gr.abs().max()) > 0, n


def test_plugin_synthesize_supports_autograd():
    g = _tiny()
    w = _ws(g, 1).requires_grad_(True)
    g.synthesize(w).mean().backward()
    assert w.grad is not None and float(w.grad.abs().sum()) > 0
    with torch.inference_mode():
        assert not g.synthesize(w.detach()).requires_grad


def test_stored_noise_is_used():
    g = _tiny()
    ws = _ws(g, 1)
    with torch.inference_mode():
        a = g.synthesize(ws)
        g.module.noises.noise_5.mul_(-1)
        b = g.synthesize(ws)
    assert not torch.allclose(a, b)


def test_load_tensors_restores():
    g = _tiny()
    ws = _ws(g, 1)
    with torch.inference_mode():
        before = g.synthesize(ws)
    name = "convs.3.conv.weight"
    new = dict(g.module.named_parameters())[name].detach() * 1.5 + 0.1
    with g.load_tensors({name: new}):
        with torch.inference_mode():
            inside = g.synthesize(ws)
    with torch.inference_mode():
        after = g.synthesize(ws)
    assert not torch.allclose(inside, before)
    assert torch.equal(after, before)


def test_bad_ws_shape_is_config_error():
    g = _tiny()
    with pytest.raises(counterface.ConfigError, match="ws must have shape"):
        g.synthesize(torch.zeros(1, 9, 64))


@pytest.mark.parametrize("bad", [dict(size=48), dict(size=0), dict(style_dim=-1), dict(n_mlp=1.5)])
def test_bad_architecture_is_config_error(bad):
    with pytest.raises(counterface.ConfigError):
        _tiny(**bad)


def test_unknown_parameter_rejected():
    with pytest.raises(counterface.ConfigError, match="truncation_psi"):
        counterface.create("generator", "stylegan2", truncation_psi=0.7)


def test_rosinality_file_roundtrip(tmp_path):
    """A small network saved in rosinality's layout loads (architecture inferred) and matches."""
    g = _tiny(size=32, channel_multiplier=1, max_channels=24, seed=4)
    la = torch.full((64,), 0.25)
    p = tmp_path / "tiny-g.pt"
    torch.save({"g_ema": g.module.state_dict(), "latent_avg": la, "g": {}, "d": {}}, p)
    h = counterface.create("generator", "stylegan2", weights=str(p))
    assert (h.num_ws, h.w_dim, h.resolution) == (8, 64, 32)
    assert h.family.startswith("stylegan2-s32-")
    assert torch.equal(h.w_avg, la)
    ws = _ws(g, 2)
    with torch.inference_mode():
        torch.testing.assert_close(h.synthesize(ws), g.synthesize(ws), atol=0, rtol=0)
    # the same generator under e4e's 'decoder.' prefix, next to an encoder
    sd = {"encoder.body.0.weight": torch.zeros(2)} | {f"decoder.{k}": v for k, v in g.module.state_dict().items()}
    q = tmp_path / "tiny-e4e.pt"
    torch.save({"state_dict": sd, "opts": {"stylegan_size": 32}, "latent_avg": la.expand(8, 64).clone()}, q)
    e = counterface.create("generator", "stylegan2", weights=str(q))
    with torch.inference_mode():
        torch.testing.assert_close(e.synthesize(ws), g.synthesize(ws), atol=0, rtol=0)
    assert torch.equal(e.w_avg, la)


def test_missing_weights_give_weights_error(monkeypatch, tmp_path):
    monkeypatch.setenv("COUNTERFACE_OFFLINE", "1")
    g = counterface.create("generator", "stylegan2")  # creating never touches the disk
    with pytest.raises(counterface.WeightsError, match="e4e_ffhq_encode.pt"):
        g.module
    with pytest.raises(counterface.WeightsError):
        counterface.create("generator", "stylegan2", weights=str(tmp_path / "none.pt")).module


def test_tiny_network_is_small():
    """The tiny preset's generator stays small (timings live in benchmarks/, not in tests)."""
    g = _tiny()
    assert sum(p.numel() for p in g.module.parameters()) < 200_000
    assert max(m.conv.weight.shape[1] for m in g.module.convs) == 32


def test_first_use_under_inference_mode_still_allows_tuning():
    """The network is built lazily; building it inside inference_mode must not create inference
    tensors (a tuner later needs gradients through the same module)."""
    g = _tiny()
    ws = _ws(g, 1)
    h = _tiny()
    with torch.inference_mode():
        a = h.synthesize(ws)
    assert not next(h.module.parameters()).is_inference()
    w = ws.clone().requires_grad_(True)
    b = h.synthesize(w)
    b.mean().backward()
    assert w.grad is not None
    torch.testing.assert_close(a, b.detach(), atol=0, rtol=0)


def test_weights_none_string_means_random():
    a = counterface.create("generator", "stylegan2", **{**TINY, "weights": "none"})
    assert a.weights is None and a.family == _tiny().family


@pytest.mark.parametrize("pad", [(1, 1), (2, 2), (0, 0), (2, 1)])
def test_fir_filter_gradients(pad):
    """The custom depthwise backward (input and bias gradients) equals autograd's, and twice-differentiable."""
    g = torch.Generator().manual_seed(11)
    x = torch.randn(1, 3, 9, 8, generator=g, dtype=torch.float64, requires_grad=True)
    b = torch.randn(3, generator=g, dtype=torch.float64, requires_grad=True)
    k = torch.randn(4, 4, generator=g, dtype=torch.float64)
    assert torch.autograd.gradcheck(lambda x, b: ops.fir_filter(x, k, pad, b), (x, b))
    assert torch.autograd.gradgradcheck(lambda x, b: ops.fir_filter(x, k, pad, b), (x, b))
    up = torch.randn(F_conv_ref(x, k, pad, b).shape, generator=g, dtype=torch.float64)
    want = torch.autograd.grad((F_conv_ref(x, k, pad, b) * up).sum(), (x, b))
    got = torch.autograd.grad((ops.fir_filter(x, k, pad, b) * up).sum(), (x, b))
    for a, c in zip(got, want):
        torch.testing.assert_close(a, c)


def F_conv_ref(x, k, pad, b):
    return ops.upfirdn2d(x, k, pad=pad) + b.view(1, -1, 1, 1)
