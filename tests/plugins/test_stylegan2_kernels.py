"""The fused up-sampling convolution (transposed conv + FIR blur composed into one kernel) and the
plain modulated convolution for shared weights: the same function as the exact two-op / grouped path."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from counterface_nets import ops, stylegan2

TOL = dict(rtol=1e-4, atol=1e-5)


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.mark.parametrize("kw", [1, 3, 5])
@pytest.mark.parametrize("pad", [(1, 1), (2, 1), (1, 2), (2, 2), (0, 0)])
@pytest.mark.parametrize("size", [4, 7])
def test_composed_kernel_equals_transposed_conv_then_fir(kw, pad, size):
    x = torch.randn(2, 3, size, size, dtype=torch.float64)
    w = torch.randn(3, 4, kw, kw, dtype=torch.float64)  # (in, out, kh, kw): conv_transpose2d layout
    fir = ops.make_kernel([1, 3, 3, 1]).double() * 4
    two_op = ops.upfirdn2d(F.conv_transpose2d(x, w, stride=2), fir, pad=pad)
    pads = ops.up_padding(kw, fir.shape[0], pad)
    if pads is None:  # no single transposed conv has these lengths: the fused path is not used then
        assert pad[1] - pad[0] not in (0, 1) or fir.shape[0] - 1 - pad[0] < 0
        return
    one = F.conv_transpose2d(x, ops.up_kernel(w, fir), stride=2, padding=pads[0], output_padding=pads[1])
    assert one.shape == two_op.shape
    torch.testing.assert_close(one, two_op, rtol=1e-10, atol=1e-10)


def test_composed_kernel_is_asymmetric_safe():
    """A non-symmetric FIR kernel (the blur is symmetric; the algebra must not rely on it)."""
    x = torch.randn(1, 2, 5, 5, dtype=torch.float64)
    w = torch.randn(2, 2, 3, 3, dtype=torch.float64)
    fir = torch.rand(4, 4, dtype=torch.float64)
    ref = ops.upfirdn2d(F.conv_transpose2d(x, w, stride=2), fir, pad=(1, 1))
    pads = ops.up_padding(3, 4, (1, 1))
    out = F.conv_transpose2d(x, ops.up_kernel(w, fir), stride=2, padding=pads[0], output_padding=pads[1])
    torch.testing.assert_close(out, ref, rtol=1e-10, atol=1e-10)


def _conv(demodulate=True, upsample=True, cin=6, cout=5, k=3):
    conv = stylegan2.ModulatedConv2d(cin, cout, k, 8, demodulate=demodulate, upsample=upsample)
    with torch.no_grad():
        conv.modulation.bias.add_(torch.randn(cin) * 0.3)
    return conv


@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("res", [4, 8, 16])
def test_fused_up_one_sample_equals_two_ops(demodulate, res):
    conv = _conv(demodulate)
    x = torch.randn(1, 6, res, res).contiguous(memory_format=torch.channels_last)
    w, bias = torch.randn(1, 8), torch.randn(5)
    conv.kernels = "exact"
    assert not conv.fused_up(x)
    ref = conv.forward_one(x, w, 1.4, bias)
    conv.kernels = "fused"
    assert conv.fused_up(x)
    out = conv.forward_one(x, w, 1.4, bias)
    assert out.shape == (1, 5, 2 * res, 2 * res)
    torch.testing.assert_close(out, ref, **TOL)
    with torch.no_grad():  # the cached composed weight follows in-place updates of the parameter
        conv.forward_one(x, w, 1.4, bias)
        assert True in conv.__dict__["_weight_cache"]
        conv.weight.add_(torch.randn_like(conv.weight))
        conv.kernels = "exact"
        ref2 = conv.forward_one(x, w, 1.4, bias)
        conv.kernels = "fused"
        torch.testing.assert_close(conv.forward_one(x, w, 1.4, bias), ref2, **TOL)
    assert not torch.allclose(ref, ref2)


@pytest.mark.parametrize("upsample", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
def test_grouped_per_sample_fused_equals_exact(upsample, demodulate):
    """Per-sample weights (B, out, in, k, k), as batched tuning swaps them in: grouped convs."""
    conv = _conv(demodulate, upsample)
    batch = 3
    per = {"weight": conv.weight.detach()[0][None].repeat(batch, 1, 1, 1, 1) + 0.1 * torch.randn(batch, 5, 6, 3, 3)}
    x, w, bias = torch.randn(batch, 6, 8, 8), torch.randn(batch, 8), torch.randn(batch, 5)
    outs = {}
    for mode in ("exact", "fused"):
        conv.kernels = mode
        outs[mode] = _call_many(conv, per, x, w, bias)
    torch.testing.assert_close(outs["fused"], outs["exact"], **TOL)
    # each sample equals the one-sample path with its own weight
    for i in range(batch):
        one = _conv(demodulate, upsample)
        one.load_state_dict({**conv.state_dict(), "weight": per["weight"][i][None]})
        one.kernels = "exact"
        torch.testing.assert_close(one.forward_one(x[i:i + 1], w[i:i + 1], 1.2, bias[i]), outs["exact"][i:i + 1], **TOL)


def _call_many(conv, per, x, w, bias):
    saved = conv.weight
    try:
        del conv.weight
        conv.weight = per["weight"]
        return conv.forward_many(x, w, 1.2, bias)
    finally:
        del conv.weight
        conv.weight = saved


@pytest.mark.parametrize("upsample", [True, False])
@pytest.mark.parametrize("demodulate", [True, False])
@pytest.mark.parametrize("mode", ["auto", "fused"])
def test_plain_modulated_conv_equals_grouped(upsample, demodulate, mode):
    conv = _conv(demodulate, upsample)
    conv.kernels = mode
    x, w = torch.randn(4, 6, 8, 8), torch.randn(4, 8)
    for bias in (None, torch.randn(5), torch.randn(4, 5)):
        plain = conv.forward_many(x, w, 1.3, bias)
        grouped = conv.forward_many(x, w, 1.3, bias, grouped=True)
        torch.testing.assert_close(plain, grouped, **TOL)
        torch.testing.assert_close(conv.forward_plain(x, w, 1.3, bias), grouped, **TOL)


TINY = [dict(size=16, style_dim=16, n_mlp=2, channel_multiplier=1, max_channels=16),
        dict(size=32, style_dim=8, n_mlp=1, channel_multiplier=1, max_channels=8)]


@pytest.mark.parametrize("cfg", TINY)
def test_generator_kernels_agree(cfg):
    gen = stylegan2.random_generator(seed=3, **cfg)
    ws = torch.randn(3, gen.num_ws, gen.style_dim)
    with torch.no_grad():
        gen.set_kernels("exact")
        ref = gen.synthesize(ws, impl="reference")
        exact_fast = gen.synthesize(ws)
        exact_batched = gen.synthesize(ws, impl="batched")
        gen.set_kernels("fused")
        fused_fast = gen.synthesize(ws)
        fused_batched = gen.synthesize(ws, impl="batched")
        fused_grouped = gen.synthesize(ws, impl="grouped")
    for out in (exact_fast, exact_batched, fused_fast, fused_batched, fused_grouped):
        torch.testing.assert_close(out, ref, rtol=1e-4, atol=2e-5)
    with pytest.raises(ValueError):
        gen.set_kernels("fast")


def test_refine_gradient_plain_equals_grouped():
    """Refinement: frozen generator, gradient to the latents only, several faces as one batch."""
    gen = stylegan2.random_generator(seed=1, **TINY[0]).requires_grad_(False)
    ws0 = torch.randn(3, gen.num_ws, gen.style_dim)
    grads = {}
    for impl in ("batched", "grouped"):
        ws = ws0.clone().requires_grad_(True)
        gen.synthesize(ws, impl=impl).square().mean().backward()
        grads[impl] = ws.grad
    torch.testing.assert_close(grads["batched"], grads["grouped"], rtol=1e-4, atol=1e-7)
    assert all(p.grad is None for p in gen.parameters())  # no weight gradients


def test_exact_kernels_reproduce_the_two_op_path_bit_for_bit():
    """``exact``: the arithmetic of the pre-fusion path (no fused kernel, grouped batches)."""
    gen = stylegan2.random_generator(seed=2, **TINY[0])
    ws = torch.randn(2, gen.num_ws, gen.style_dim)
    with torch.no_grad():
        gen.set_kernels("exact")
        a = gen.synthesize(ws, impl="batched")
        b = gen.synthesize(ws, impl="grouped")
    assert torch.equal(a, b)


def test_parameter_names_unchanged():
    gen = stylegan2.random_generator(seed=0, **TINY[0])
    keys = set(gen.state_dict())
    assert not any("cache" in k or "pads" in k or "kernels" in k for k in keys)
    assert "convs.0.conv.weight" in keys and "convs.0.conv.blur.kernel" in keys


def test_plugin_kernels_follow_the_run_numerics():
    """The exact path (fp32 + deterministic) switches the network to the exact kernels; else auto."""
    from counterface import device
    from counterface_stylegan2.generator import StyleGAN2Generator

    gen = StyleGAN2Generator(weights=None, **TINY[0])
    ws = torch.zeros(1, gen.num_ws, gen.w_dim)
    saved = device.numerics()
    try:
        device.configure_backends("cpu", "fp32", True)
        gen.synthesize(ws)
        assert {m.kernels for m in gen.module.modules() if isinstance(m, stylegan2.ModulatedConv2d)} == {"exact"}
        device.configure_backends("cpu", "fp32", False)
        gen.synthesize(ws)
        assert {m.kernels for m in gen.module.modules() if isinstance(m, stylegan2.ModulatedConv2d)} == {"auto"}
    finally:
        device._NUMERICS.clear()
        device._NUMERICS.update(saved)


def test_swapped_in_weights_are_never_cached():
    """functional_call's per-sample copies (batch 1 takes the plain path) are new tensors every call,
    possibly at a freed copy's address: the static-weight cache must not serve them."""
    gen = stylegan2.random_generator(seed=4, **TINY[0])
    ws = torch.randn(1, gen.num_ws, gen.style_dim)
    name = "convs.0.conv.weight"
    base = dict(gen.named_parameters())[name].detach().clone()
    other = base + torch.randn_like(base)  # not a scale: the demodulation would cancel that
    with torch.no_grad():
        outs = [torch.func.functional_call(gen, stylegan2.per_sample(gen, {name: w[None]}), (ws,),
                                           {"impl": "batched"}) for w in (base, other, base)]
        assert not gen.convs[0].conv.__dict__.get("_weight_cache")
        for value, out in zip((base, other), outs):
            with _swap(gen, name, value):
                torch.testing.assert_close(out, gen.synthesize(ws, impl="grouped"), rtol=1e-4, atol=2e-5)
    assert not torch.allclose(outs[0], outs[1])
    torch.testing.assert_close(outs[0], outs[2])


class _swap:
    def __init__(self, gen, name, value):
        self.p, self.value = dict(gen.named_parameters())[name], value

    def __enter__(self):
        self.saved = self.p.detach().clone()
        self.p.data.copy_(self.value)

    def __exit__(self, *exc):
        self.p.data.copy_(self.saved)
