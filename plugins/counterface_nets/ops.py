"""StyleGAN2 low-level ops in plain PyTorch (no C++/CUDA build).

Written from the documented semantics of the upfirdn2d and fused_bias_act ops (NVIDIA's own
kernels are under a non-commercial licence and are not used or copied here):

* :func:`upfirdn2d` -- upsample by zero insertion, pad (negative pads crop), convolve with a 2-D FIR
  kernel (a true convolution: the kernel is flipped), then keep every ``down``-th sample. This is the
  literal, general version; it is the oracle the fast paths are tested against.
* :func:`fir_filter` and :func:`fir_upsample` -- the two special cases StyleGAN2 uses, expressed as a
  single depthwise ``conv2d`` / strided ``conv_transpose2d``: no zero-inserted intermediate, no
  reshapes, works in channels-last memory and with autograd.
* :func:`up_kernel` / :func:`up_padding` -- a stride-2 transposed convolution followed by a FIR filter
  is ONE stride-2 transposed convolution whose kernel is the full 2-D convolution of the two kernels
  (exact: both are linear and shift-invariant per phase); used by the fused up-sampling conv.
* :func:`fused_leaky_relu` -- ``leaky_relu(x + bias, slope) * scale`` with ``bias`` along dim 1.

Kernels are 2-D tensors (as stored in the checkpoints' ``kernel`` buffers; :func:`make_kernel`
builds one from a 1-D tap list the way rosinality does).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

SQRT2 = math.sqrt(2.0)


def make_kernel(taps: Sequence[float] | torch.Tensor) -> torch.Tensor:
    """2-D FIR kernel from 1-D taps (outer product), normalised to sum 1 (float32)."""
    k = torch.as_tensor(taps, dtype=torch.float32)
    if k.ndim == 1:
        k = k[None, :] * k[:, None]
    return k / k.sum()


def _pads(pad) -> tuple[int, int, int, int]:
    """(x0, x1, y0, y1) from a 2-tuple (same on both axes) or a 4-tuple."""
    pad = tuple(int(p) for p in pad)
    if len(pad) == 2:
        return pad[0], pad[1], pad[0], pad[1]
    if len(pad) == 4:
        return pad
    raise ValueError(f"pad must have 2 or 4 entries, got {pad}")


def _depthwise(kernel: torch.Tensor, channels: int, like: torch.Tensor) -> torch.Tensor:
    k = kernel.to(device=like.device, dtype=like.dtype)
    return k[None, None].expand(channels, 1, k.shape[0], k.shape[1])


def upfirdn2d(x: torch.Tensor, kernel: torch.Tensor, up: int = 1, down: int = 1, pad=(0, 0)) -> torch.Tensor:
    """Upsample (zero insertion), pad, FIR-filter (true convolution), downsample; NCHW.

    Same result as the reference op for equal factors on both axes: output side
    ``(in * up + pad0 + pad1 - k) // down + 1``.
    """
    n, c, h, w = x.shape
    px0, px1, py0, py1 = _pads(pad)
    kh, kw = kernel.shape
    out = x.reshape(n * c, 1, h, 1, w, 1)
    if up > 1:
        out = F.pad(out, [0, up - 1, 0, 0, 0, up - 1])
    out = out.reshape(n * c, 1, h * up, w * up)
    out = F.pad(out, [max(px0, 0), max(px1, 0), max(py0, 0), max(py1, 0)])
    out = out[:, :, max(-py0, 0): out.shape[2] - max(-py1, 0), max(-px0, 0): out.shape[3] - max(-px1, 0)]
    weight = torch.flip(kernel, [0, 1]).to(out.dtype)[None, None]
    out = F.conv2d(out, weight)
    out = out[:, :, ::down, ::down]
    return out.reshape(n, c, out.shape[2], out.shape[3])


def fir_filter(x: torch.Tensor, kernel: torch.Tensor, pad=(0, 0), bias: torch.Tensor | None = None) -> torch.Tensor:
    """``upfirdn2d(x, kernel, pad=pad) + bias`` as one depthwise convolution (keeps the memory format)."""
    px0, px1, py0, py1 = _pads(pad)
    c = x.shape[1]
    weight = _depthwise(torch.flip(kernel, [0, 1]), c, x)
    if px0 == px1 == py0 == py1 and px0 >= 0:
        return depthwise_conv(x, weight, bias, px0)
    x = F.pad(x, [px0, px1, py0, py1])
    return depthwise_conv(x, weight, bias, 0)


def depthwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: int) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding, groups=C)`` for a fixed (C, 1, k, k) FIR ``weight``.

    Same forward; when gradients are recorded, the input gradient is computed as another depthwise
    *forward* convolution (the flipped kernel, padding ``k - 1 - padding``) instead of CPU
    ``convolution_backward``, which is about 10x slower for depthwise kernels in channels-last memory.
    """
    needs_grad = torch.is_grad_enabled() and (x.requires_grad or (bias is not None and bias.requires_grad))
    if (not needs_grad or weight.requires_grad or weight.shape[-1] != weight.shape[-2]
            or padding > weight.shape[-1] - 1):
        return F.conv2d(x, weight, bias, padding=padding, groups=x.shape[1])
    return _DepthwiseFIR.apply(x, weight, bias, padding)


class _DepthwiseFIR(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, weight, bias, padding):
        ctx.save_for_backward(weight)
        ctx.padding = padding
        ctx.has_bias = bias is not None
        return F.conv2d(x, weight, bias, padding=padding, groups=x.shape[1])

    @staticmethod
    def backward(ctx, grad):
        (weight,) = ctx.saved_tensors
        grad_x = grad_b = None
        if ctx.needs_input_grad[0]:
            # adjoint of a stride-1 correlation: correlate with the flipped kernel, complementary padding
            grad_x = depthwise_conv(grad, torch.flip(weight, [2, 3]), None, weight.shape[-1] - 1 - ctx.padding)
        if ctx.has_bias and ctx.needs_input_grad[2]:
            grad_b = grad.sum(dim=(0, 2, 3))
        return grad_x, None, grad_b, None


def fir_upsample(x: torch.Tensor, kernel: torch.Tensor, factor: int = 2, pad=(0, 0)) -> torch.Tensor:
    """``upfirdn2d(x, kernel, up=factor, pad=pad)`` as one strided depthwise transposed convolution.

    Derivation: with zero insertion, ``out[n] = sum_i x[i] * k[n + K - 1 - pad0 - factor*i]``, which is
    ``conv_transpose2d`` with weight ``k`` (unflipped) and padding ``K - 1 - pad0``; the output length
    difference is fixed with ``output_padding`` (or the literal op when the pads fall outside that).
    """
    px0, px1, py0, py1 = _pads(pad)
    kh, kw = kernel.shape
    ph, pw = kh - 1 - py0, kw - 1 - px0
    dh, dw = py1 - py0 + factor - 1, px1 - px0 + factor - 1
    if ph < 0 or pw < 0 or not (0 <= dh < factor) or not (0 <= dw < factor):
        return upfirdn2d(x, kernel, up=factor, pad=(px0, px1, py0, py1))
    c = x.shape[1]
    weight = _depthwise(kernel, c, x)
    return F.conv_transpose2d(x, weight, stride=factor, padding=(ph, pw), output_padding=(dh, dw), groups=c)


def up_padding(conv_kernel: int, fir_kernel: int, pad, factor: int = 2) -> tuple[int, int] | None:
    """(padding, output_padding) of the ONE transposed convolution equal to ``conv_transpose2d(x, w,
    stride=factor)`` followed by ``upfirdn2d(., fir, pad=pad)``; None when no such pair exists.

    Derivation (one axis): ``y[n] = sum_i x[i] w[n - f*i]``; the filter (a true convolution after
    padding ``p0``) gives ``z[m] = sum_j y[m + j - p0] k[K - 1 - j]``, so ``z[m] = sum_i x[i] c[m - f*i
    + K - 1 - p0]`` with ``c = w * k`` the full convolution (length ``Kw + K - 1``): a transposed conv
    with kernel ``c``, padding ``K - 1 - p0`` and output padding ``p1 - p0`` (the lengths then agree).
    """
    px0, px1, py0, py1 = _pads(pad)
    if (px0, px1) != (py0, py1):
        return None
    padding, extra = fir_kernel - 1 - px0, px1 - px0
    if padding < 0 or not 0 <= extra < factor:
        return None
    return padding, extra


def up_kernel(weight: torch.Tensor, fir: torch.Tensor) -> torch.Tensor:
    """The full 2-D convolution of every (.., kh, kw) kernel in ``weight`` with the FIR kernel ``fir``:
    (..., kh + K - 1, kw + K - 1). Differentiable in ``weight`` (per-sample copies may be tuned)."""
    *lead, kh, kw = weight.shape
    k = fir.to(device=weight.device, dtype=weight.dtype)
    kr, kc = k.shape
    flat = weight.reshape(-1, 1, kh, kw)
    # full convolution = correlation of the zero-padded input with the flipped kernel
    out = F.conv2d(F.pad(flat, [kc - 1, kc - 1, kr - 1, kr - 1]), torch.flip(k, [0, 1])[None, None])
    return out.reshape(*lead, kh + kr - 1, kw + kc - 1)


def fused_leaky_relu(x: torch.Tensor, bias: torch.Tensor | None = None, negative_slope: float = 0.2,
                     scale: float = SQRT2) -> torch.Tensor:
    """``leaky_relu(x + bias, negative_slope) * scale``, ``bias`` broadcast along dim 1."""
    if bias is not None:
        x = x + bias.view(1, -1, *([1] * (x.ndim - 2)))
    return F.leaky_relu(x, negative_slope) * scale
