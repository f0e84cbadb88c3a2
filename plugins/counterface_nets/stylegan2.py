"""StyleGAN2 generator with rosinality/stylegan2-pytorch parameter names (MIT-licensed design).

The module tree and state-dict keys equal rosinality's ``model.Generator`` (``style.*``,
``input.input``, ``conv1``, ``to_rgb1``, ``convs.*``, ``upsamples``, ``to_rgbs.*``,
``noises.noise_*``), so ``stylegan2-ffhq-config-f.pt`` (``g_ema``) and the ``decoder.*`` part of
e4e/pSp files load with ``strict=True``. Any power-of-two resolution and channel width works.

Two synthesis paths compute the same function:

* the default fast path (:meth:`Generator.synthesize`): one sample at a time, the modulation and
  demodulation folded into the conv weight, the up-sampling conv as a strided transposed conv followed
  by a depthwise FIR conv that also adds the activation bias (on CUDA: ONE transposed conv whose 6x6
  kernel is the 3x3 weight composed with the 4x4 blur, see :meth:`ModulatedConv2d.fused_up` and
  :meth:`Generator.set_kernels`), noise and leaky ReLU in place, the
  ``sqrt(2)`` activation gain folded into the next layer's weight, channels-last memory. It is
  differentiable (the PTI tuner backprops through it) and fast under ``torch.inference_mode``.
* the batched path (``synthesize(ws, impl="batched")``): a layer whose weight is shared runs as the
  plain modulated convolution (activations scaled by the style, one ordinary batched conv, then the
  demodulation as a per-sample scale); per-sample weights run as one grouped convolution per layer
  (``impl="grouped"`` forces the grouped form everywhere). Any parameter may carry a leading batch dimension of per-sample copies (``weight``
  (B, out, in, k, k) -- rosinality's own leading 1 --, ``modulation.weight`` (B, in, style),
  ``modulation.bias``/``activate.bias`` (B, C), ``noise.weight`` (B,), ``to_rgb*.bias`` (B, 3, 1, 1),
  ``input.input`` (B, C, 4, 4)). With :func:`torch.func.functional_call` this runs B differently
  tuned generators at once: batched pivotal tuning (``--tune-batch``) uses it.
* the literal path (``synthesize(ws, impl="reference")``): rosinality's batched grouped-conv math with
  the general :func:`~counterface_nets.ops.upfirdn2d`; the oracle in the tests and the "before" column
  of the benchmark.

Loading released files: :mod:`counterface_nets.stylegan2_load` (``counterface_nets.load_generator``).
"""

from __future__ import annotations

import math
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from . import ops

BLUR_KERNEL = (1, 3, 3, 1)
#: kernel choices of :meth:`Generator.set_kernels`
KERNELS = ("auto", "fused", "exact")
FFHQ_CONFIG = dict(size=1024, style_dim=512, n_mlp=8, channel_multiplier=2, max_channels=512)


def channel_count(res: int, channel_multiplier: int = 2, max_channels: int = 512) -> int:
    """Feature channels at resolution ``res``: rosinality's table (512 up to 32, then
    ``2**14 * channel_multiplier / res``), clipped to ``max_channels`` (512 reproduces rosinality)."""
    return int(max(1, min(512, max_channels, (2 ** 14 * channel_multiplier) // res)))


# ----------------------------------------------------------------------------------------- layers

def capturing(t: torch.Tensor) -> bool:
    """Whether ``t`` is a CUDA tensor and the current CUDA stream is capturing a graph, or is a side
    stream (where a graph's warm-up runs): then the static weights are computed, not cached. Under
    capture a cache is a host-side decision the graph would freeze; in the warm-up, computing them
    runs every kernel the capture will run (cuDNN autotunes those shapes before the capture, where
    autotuning is illegal) and keeps cache entries off the side stream's memory."""
    if not (t.is_cuda and torch.cuda.is_available()):
        return False
    return bool(torch.cuda.is_current_stream_capturing()
                or torch.cuda.current_stream(t.device) != torch.cuda.default_stream(t.device))


def _per_sample(bias: torch.Tensor) -> torch.Tensor:
    """A channel bias (C,) or per-sample biases (B, C) shaped to broadcast over (B, C, H, W)."""
    return bias.reshape(bias.shape[0] if bias.ndim == 2 else 1, -1, 1, 1)


class PixelNorm(nn.Module):
    def forward(self, x):
        return x * torch.rsqrt(torch.mean(x * x, dim=1, keepdim=True) + 1e-8)


class EqualLinear(nn.Module):
    """Linear layer with equalized learning rate: stored ``weight`` is scaled by ``lr_mul/sqrt(in)``."""

    def __init__(self, in_dim, out_dim, bias=True, bias_init=0.0, lr_mul=1.0, activation=None):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim).div_(lr_mul))
        self.bias = nn.Parameter(torch.full((out_dim,), float(bias_init))) if bias else None
        self.activation = activation
        self.scale = (1.0 / math.sqrt(in_dim)) * lr_mul
        self.lr_mul = lr_mul

    def forward(self, x):
        if self.weight.ndim == 3:  # per-sample copies (B, out, in): x (B, in)
            out = torch.einsum("bi,boi->bo", x, self.weight * self.scale)
            if self.bias is not None:
                out = out + self.bias * self.lr_mul  # (out,) or (B, out)
            return ops.fused_leaky_relu(out) if self.activation else out
        bias = self.bias * self.lr_mul if self.bias is not None else None
        if self.activation:
            return ops.fused_leaky_relu(F.linear(x, self.weight * self.scale), bias)
        return F.linear(x, self.weight * self.scale, bias)


class Blur(nn.Module):
    """FIR low-pass (the ``kernel`` buffer is ``make_kernel(taps) * factor**2``)."""

    def __init__(self, kernel=BLUR_KERNEL, pad=(1, 1), upsample_factor=1):
        super().__init__()
        self.register_buffer("kernel", ops.make_kernel(kernel) * (upsample_factor ** 2))
        self.pad = tuple(pad)

    def forward(self, x):
        return ops.fir_filter(x, self.kernel, self.pad)


class Upsample(nn.Module):
    """2x FIR up-sampling of the RGB skip (upfirdn2d with up=2, pad=(2, 1) for 4 taps)."""

    def __init__(self, kernel=BLUR_KERNEL, factor=2):
        super().__init__()
        self.factor = factor
        k = ops.make_kernel(kernel) * (factor ** 2)
        self.register_buffer("kernel", k)
        p = k.shape[0] - factor
        self.pad = ((p + 1) // 2 + factor - 1, p // 2)

    def forward(self, x):
        return ops.fir_upsample(x, self.kernel, self.factor, self.pad)


class ConstantInput(nn.Module):
    def __init__(self, channel, size=4):
        super().__init__()
        self.input = nn.Parameter(torch.randn(1, channel, size, size))

    def forward(self, batch):
        return self.input.expand(batch, -1, -1, -1)


class NoiseInjection(nn.Module):
    def __init__(self):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(1))


class FusedLeakyReLU(nn.Module):
    def __init__(self, channel):
        super().__init__()
        self.bias = nn.Parameter(torch.zeros(channel))

    def forward(self, x):
        return ops.fused_leaky_relu(x, self.bias)


class ModulatedConv2d(nn.Module):
    """Style-modulated convolution, optionally demodulated and/or 2x up-sampling."""

    def __init__(self, in_channel, out_channel, kernel_size, style_dim, demodulate=True, upsample=False,
                 blur_kernel=BLUR_KERNEL):
        super().__init__()
        self.eps = 1e-8
        self.kernel_size = kernel_size
        self.in_channel = in_channel
        self.out_channel = out_channel
        self.upsample = upsample
        if upsample:
            factor = 2
            p = (len(blur_kernel) - factor) - (kernel_size - 1)
            self.blur = Blur(blur_kernel, pad=((p + 1) // 2 + factor - 1, p // 2 + 1), upsample_factor=factor)
        self.scale = 1.0 / math.sqrt(in_channel * kernel_size ** 2)
        self.padding = kernel_size // 2
        self.weight = nn.Parameter(torch.randn(1, out_channel, in_channel, kernel_size, kernel_size))
        self.modulation = EqualLinear(style_dim, in_channel, bias_init=1)
        self.demodulate = demodulate
        #: "auto" (fused up-sampling on CUDA, plain modulated batches), "fused" (both everywhere) or
        #: "exact" (neither: the arithmetic of the two-op path and grouped batches); see KERNELS
        self.kernels = "auto"
        self._up_pads = ops.up_padding(kernel_size, len(blur_kernel), self.blur.pad) if upsample else None

    def fused_up(self, x: torch.Tensor) -> bool:
        """Whether this up-sampling conv runs as ONE transposed conv with the composed 6x6 kernel
        (:func:`~counterface_nets.ops.up_kernel`) instead of a 3x3 transposed conv + the 4x4 FIR blur.

        The composed conv does 4x the multiply-adds of the 3x3 transposed conv (the blur's work moves
        into the full-channel conv) but saves a kernel launch and a pass over the activations: a win
        on a GPU, a loss on a CPU (measured: +~1.7 s per 1024 synthesis at 1 thread), so ``auto``
        fuses on CUDA only."""
        if not self.upsample or self._up_pads is None or self.kernels == "exact":
            return False
        return self.kernels == "fused" or x.device.type == "cuda"

    def _static(self, fused: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
        """The weight in the memory order the conv wants for channels-last activations, and the
        per-(out, in) sum of its squares over the kernel taps.

        Plain convs get (out, kh, kw, in), transposed (up-sampling) convs (in, kh, kw, out): the
        per-(out, in) modulation is then a vectorised multiply and the conv needs no reorder copy.
        ``fused``: the up-sampling weight composed with the blur (6x6 taps; the sums of squares are
        still the 3x3 weight's, which the demodulation is defined on).
        Cached while no gradient is needed; the cache key is the parameter's version counter, so
        in-place updates (a tuner's optimizer step, ``load_tensors``) invalidate it.
        """
        order = (1, 2, 3, 0) if self.upsample else (0, 2, 3, 1)
        weight = self.weight[0]
        if (weight.requires_grad and torch.is_grad_enabled()) or self.weight.is_inference() \
                or not isinstance(self.weight, nn.Parameter) or capturing(weight):
            # (inference tensors, from a module built under inference_mode, track no versions; a
            # tensor swapped in by functional_call is new each call and may reuse an address; a CUDA
            # graph must not read a cache entry that a later version bump frees, and the version
            # check itself is a host decision that a graph would freeze: under capture the static
            # weight is computed in the graph, from the parameter as it is at every replay)
            return self._static_compute(weight, order, fused)
        key = (self.weight._version, self.weight.data_ptr(), self.weight.dtype, self.weight.device)
        caches = self.__dict__.setdefault("_weight_cache", {})
        cache = caches.get(fused)
        if cache is None or cache[0] != key:
            with torch.no_grad():
                cache = (key, *self._static_compute(weight.detach(), order, fused))
            caches[fused] = cache
        return cache[1], cache[2]

    def _static_compute(self, weight, order, fused=False):
        w = weight.permute(*order).contiguous()
        wsq = torch.sum(w * w, dim=(1, 2))
        if fused:
            w = ops.up_kernel(weight, self.blur.kernel).permute(*order).contiguous()
        return w, (wsq.t() if self.upsample else wsq)

    def modulated_weight(self, w: torch.Tensor, gain: float = 1.0, fused: bool = False) -> torch.Tensor:
        """Weight for ONE latent ``w`` (1, style_dim): (out, in, k, k), or for an up-sampling conv the
        (in, out, k, k) ``conv_transpose2d`` weight (``fused``: composed with the blur, k + 3 taps);
        channels-last strides either way.

        ``scale * weight * style`` demodulated per output channel, times ``gain`` (the previous
        layer's activation gain, which is linear in the input and so can live in the weight).
        """
        style = self.modulation(w)[0]  # (in,)
        wst, wsq = self._static(fused)
        coef = (self.scale * gain) * style  # (in,)
        if self.demodulate:
            # sum over (in, kh, kw) of (scale * W * style)^2 = scale^2 * sum_in style^2 * sum_k W^2
            demod = torch.rsqrt(torch.mv(wsq, style * style) * (self.scale ** 2) + self.eps)  # (out,)
            coef = demod[:, None] * coef[None, :]
        else:
            coef = coef[None, :]
        if self.upsample:
            coef = coef.t()  # (in, out)
        return (wst * coef[:, None, None, :]).permute(0, 3, 1, 2)

    def modulated_weights(self, w: torch.Tensor, gain: float = 1.0, fused: bool = False) -> torch.Tensor:
        """Per-sample weights (B, out, in, k, k) for latents ``w`` (B, style_dim): ``scale * weight *
        style`` demodulated per output channel, times ``gain`` (outside the demodulation, as in
        :meth:`modulated_weight`). ``self.weight`` may be shared (1, ...) or per sample (B, ...).
        ``fused``: the kernels composed with the up-sampling blur (k + 3 taps)."""
        style = self.modulation(w)  # (B, in)
        weight = self.weight
        coef = (self.scale * gain) * style  # (B, in)
        if self.demodulate:
            wsq = weight.pow(2).sum(dim=(3, 4))  # (1|B, out, in)
            demod = torch.rsqrt((wsq * (style * style)[:, None, :]).sum(2) * (self.scale ** 2) + self.eps)  # (B, out)
            coef = demod[:, :, None] * coef[:, None, :]  # (B, out, in)
        else:
            coef = coef[:, None, :]
        if fused:
            weight = ops.up_kernel(weight, self.blur.kernel)
        return weight * coef[:, :, :, None, None]

    def forward_many(self, x, w, gain=1.0, bias=None, grouped=False):
        """Batched path: x (B, in, H, W), w (B, style_dim); ``bias`` (out,) or (B, out) is added at the end.

        A shared weight (the parameter's own (1, out, in, k, k), i.e. a frozen layer or one not being
        tuned per face) runs as the plain modulated convolution (:meth:`forward_plain`): an ordinary
        batched conv. Per-sample weights (B, ...) run as one grouped conv; so does everything with
        ``grouped`` or ``kernels == "exact"``."""
        if self.weight.shape[0] == 1 and not grouped and self.kernels != "exact":
            return self.forward_plain(x, w, gain, bias)
        batch, in_ch, height, width = x.shape
        fused = self.fused_up(x)
        weight = self.modulated_weights(w, gain, fused)
        k = weight.shape[-1]
        x = x.reshape(1, batch * in_ch, height, width)
        if self.upsample:
            weight = weight.transpose(1, 2).reshape(batch * in_ch, self.out_channel, k, k)
            if fused:
                pad, extra = self._up_pads
                out = F.conv_transpose2d(x, weight, stride=2, padding=pad, output_padding=extra, groups=batch)
                out = out.view(batch, self.out_channel, out.shape[-2], out.shape[-1])
            else:
                out = F.conv_transpose2d(x, weight, stride=2, groups=batch)
                out = out.view(batch, self.out_channel, out.shape[-2], out.shape[-1])
                out = ops.fir_filter(out, self.blur.kernel, self.blur.pad)
        else:
            out = F.conv2d(x, weight.reshape(batch * self.out_channel, in_ch, k, k), padding=self.padding, groups=batch)
            out = out.view(batch, self.out_channel, out.shape[-2], out.shape[-1])
        if bias is not None:
            out = out + _per_sample(bias)
        return out

    def forward_plain(self, x, w, gain=1.0, bias=None):
        """The plain modulated convolution for a SHARED weight: modulate the activations instead of
        the weight (``x * style``), one ordinary conv with the static weight for the whole batch, then
        the demodulation as a per-(sample, out) scale. The same function as :meth:`forward_many`
        (the conv is linear in each input channel); no per-sample weights are built, and with a
        frozen weight no weight gradient is computed. x (B, in, H, W), w (B, style_dim); ``bias``
        (out,) or (B, out) is added at the end."""
        style = self.modulation(w)  # (B, in)
        fused = self.fused_up(x)
        wst, wsq = self._static(fused)  # conv layout, channels-last strides; wsq (out, in)
        x = x * ((self.scale * gain) * style)[:, :, None, None]
        weight = wst.permute(0, 3, 1, 2)  # (out, in, k, k) or, transposed, (in, out, k, k)
        if not self.upsample:
            out = F.conv2d(x, weight, padding=self.padding)
        elif fused:
            pad, extra = self._up_pads
            out = F.conv_transpose2d(x, weight, stride=2, padding=pad, output_padding=extra)
        else:
            out = ops.fir_filter(F.conv_transpose2d(x, weight, stride=2), self.blur.kernel, self.blur.pad)
        if self.demodulate:
            demod = torch.rsqrt(torch.mm(style * style, wsq.t()) * (self.scale ** 2) + self.eps)  # (B, out)
            if bias is not None:
                return torch.addcmul(_per_sample(bias), out, demod[:, :, None, None])
            return out * demod[:, :, None, None]
        return out if bias is None else out + _per_sample(bias)

    def forward_one(self, x, w, gain=1.0, bias=None):
        """Fast path for one sample: x (1, in, H, W), w (1, style_dim); ``bias`` is added at the end."""
        fused = self.fused_up(x)
        weight = self.modulated_weight(w, gain, fused)
        if not self.upsample:
            return F.conv2d(x, weight, bias, padding=self.padding)
        if fused:
            pad, extra = self._up_pads
            return F.conv_transpose2d(x, weight, bias, stride=2, padding=pad, output_padding=extra)
        out = F.conv_transpose2d(x, weight, stride=2)
        return ops.fir_filter(out, self.blur.kernel, self.blur.pad, bias)

    def forward(self, x, style):
        """rosinality's batched ("fused") path: grouped conv over the batch (the literal reference)."""
        batch, in_ch, height, width = x.shape
        style = self.modulation(style).view(batch, 1, in_ch, 1, 1)
        weight = self.scale * self.weight * style
        if self.demodulate:
            demod = torch.rsqrt(weight.pow(2).sum([2, 3, 4]) + self.eps)
            weight = weight * demod.view(batch, self.out_channel, 1, 1, 1)
        k = self.kernel_size
        if self.upsample:
            x = x.reshape(1, batch * in_ch, height, width)
            weight = weight.transpose(1, 2).reshape(batch * in_ch, self.out_channel, k, k)
            out = F.conv_transpose2d(x, weight, padding=0, stride=2, groups=batch)
            out = out.view(batch, self.out_channel, out.shape[-2], out.shape[-1])
            return ops.upfirdn2d(out, self.blur.kernel, pad=self.blur.pad)
        x = x.reshape(1, batch * in_ch, height, width)
        out = F.conv2d(x, weight.view(batch * self.out_channel, in_ch, k, k), padding=self.padding, groups=batch)
        return out.view(batch, self.out_channel, out.shape[-2], out.shape[-1])


class StyledConv(nn.Module):
    def __init__(self, in_channel, out_channel, kernel_size, style_dim, upsample=False, blur_kernel=BLUR_KERNEL,
                 demodulate=True):
        super().__init__()
        self.conv = ModulatedConv2d(in_channel, out_channel, kernel_size, style_dim, demodulate=demodulate,
                                    upsample=upsample, blur_kernel=blur_kernel)
        self.noise = NoiseInjection()
        self.activate = FusedLeakyReLU(out_channel)

    def forward_one(self, x, w, noise, gain=1.0):
        """Fast path: returns ``leaky_relu(conv + noise + bias)`` WITHOUT the sqrt(2) gain (the caller
        passes it on to the next layer as ``gain``)."""
        out = self.conv.forward_one(x, w, gain, self.activate.bias)
        out = out.add_(noise * self.noise.weight)
        return F.leaky_relu_(out, 0.2)

    def forward_many(self, x, w, noise, gain=1.0, grouped=False):
        """Batched path (per-sample parameters allowed); like :meth:`forward_one`, without the gain."""
        out = self.conv.forward_many(x, w, gain, self.activate.bias, grouped)
        out = out + noise * self.noise.weight.reshape(-1, 1, 1, 1)
        return F.leaky_relu(out, 0.2)

    def forward(self, x, style, noise):
        out = self.conv(x, style)
        out = out + self.noise.weight * noise
        return self.activate(out)


class ToRGB(nn.Module):
    def __init__(self, in_channel, style_dim, upsample=True, blur_kernel=BLUR_KERNEL):
        super().__init__()
        if upsample:
            self.upsample = Upsample(blur_kernel)
        self.conv = ModulatedConv2d(in_channel, 3, 1, style_dim, demodulate=False)
        self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

    def forward_one(self, x, w, skip=None, gain=1.0):
        weight = self.conv.modulated_weight(w, gain)  # (3, in, 1, 1)
        if x.shape[0] == 1 and x.is_contiguous(memory_format=torch.channels_last):
            # a 1x1 conv on channels-last memory is a (H*W, in) @ (in, 3) matrix product
            _, c, h, wd = x.shape
            out = torch.addmm(self.bias.view(1, 3), x.permute(0, 2, 3, 1).reshape(h * wd, c), weight.view(3, c).t())
            out = out.view(1, h, wd, 3).permute(0, 3, 1, 2)
        else:
            out = F.conv2d(x, weight, self.bias.view(3))
        if skip is not None:
            out = out.add_(self.upsample(skip))
        return out

    def forward_many(self, x, w, skip=None, gain=1.0, grouped=False):
        """Batched path (per-sample parameters allowed)."""
        out = self.conv.forward_many(x, w, gain, grouped=grouped) + self.bias  # bias (1|B, 3, 1, 1)
        if skip is not None:
            out = out + self.upsample(skip)
        return out

    def forward(self, x, style, skip=None):
        out = self.conv(x, style) + self.bias
        if skip is not None:
            out = out + ops.upfirdn2d(skip, self.upsample.kernel, up=self.upsample.factor, pad=self.upsample.pad)
        return out


# -------------------------------------------------------------------------------------- generator

class Generator(nn.Module):
    """rosinality ``Generator`` (mapping + synthesis). ``max_channels`` (default 512 = rosinality) caps
    every layer's width so small test networks stay small.

    ``mapping(z) -> w`` (N, style_dim); ``synthesize(ws) -> image`` (N, 3, size, size) from W+
    (N, num_ws, style_dim) with the stored noise buffers; ``forward(ws)`` = ``synthesize(ws)``.
    """

    def __init__(self, size=1024, style_dim=512, n_mlp=8, channel_multiplier=2, blur_kernel=BLUR_KERNEL,
                 lr_mlp=0.01, max_channels=512):
        super().__init__()
        log_size = int(math.log2(size))
        if size < 8 or 2 ** log_size != size:
            raise ValueError(f"size must be a power of two >= 8, got {size}")
        self.size = size
        self.style_dim = style_dim
        self.n_mlp = n_mlp
        self.channel_multiplier = channel_multiplier
        self.max_channels = max_channels
        self.style = nn.Sequential(
            PixelNorm(), *[EqualLinear(style_dim, style_dim, lr_mul=lr_mlp, activation="fused_lrelu")
                           for _ in range(n_mlp)])
        self.channels = {2 ** i: channel_count(2 ** i, channel_multiplier, max_channels)
                         for i in range(2, log_size + 1)}
        self.input = ConstantInput(self.channels[4])
        self.conv1 = StyledConv(self.channels[4], self.channels[4], 3, style_dim, blur_kernel=blur_kernel)
        self.to_rgb1 = ToRGB(self.channels[4], style_dim, upsample=False)
        self.log_size = log_size
        self.num_layers = (log_size - 2) * 2 + 1
        self.convs = nn.ModuleList()
        self.upsamples = nn.ModuleList()
        self.to_rgbs = nn.ModuleList()
        self.noises = nn.Module()
        for layer_idx in range(self.num_layers):
            res = (layer_idx + 5) // 2
            self.noises.register_buffer(f"noise_{layer_idx}", torch.randn(1, 1, 2 ** res, 2 ** res))
        in_channel = self.channels[4]
        for i in range(3, log_size + 1):
            out_channel = self.channels[2 ** i]
            self.convs.append(StyledConv(in_channel, out_channel, 3, style_dim, upsample=True, blur_kernel=blur_kernel))
            self.convs.append(StyledConv(out_channel, out_channel, 3, style_dim, blur_kernel=blur_kernel))
            self.to_rgbs.append(ToRGB(out_channel, style_dim))
            in_channel = out_channel
        self.n_latent = log_size * 2 - 2
        self.latent_avg: torch.Tensor | None = None  # set by load_generator when the file has one

    # -- public API
    @property
    def num_ws(self) -> int:
        return self.n_latent

    @property
    def resolution(self) -> int:
        return self.size

    def config(self) -> dict:
        return dict(size=self.size, style_dim=self.style_dim, n_mlp=self.n_mlp,
                    channel_multiplier=self.channel_multiplier, max_channels=self.max_channels)

    def set_kernels(self, mode: str) -> "Generator":
        """Which kernels the fast and batched paths use (every modulated conv): ``"auto"`` (default:
        the up-sampling conv fused with its blur on CUDA, shared weights as plain modulated convs),
        ``"fused"`` (both, on any device) or ``"exact"`` (the two-op up-sampling and grouped batches:
        the arithmetic of the exact path). All compute the same function within float rounding."""
        if mode not in KERNELS:
            raise ValueError(f"kernels must be one of {', '.join(KERNELS)}, got {mode!r}")
        for m in self.modules():
            if isinstance(m, ModulatedConv2d):
                m.kernels = mode
        return self

    def mapping(self, z: torch.Tensor) -> torch.Tensor:
        """z (N, style_dim) -> w (N, style_dim)."""
        return self.style(z)

    def forward(self, ws: torch.Tensor, impl: str = "fast") -> torch.Tensor:
        return self.synthesize(ws, impl=impl)

    def synthesize(self, ws: torch.Tensor, impl: str = "fast") -> torch.Tensor:
        """W+ (N, num_ws, style_dim) -> images (N, 3, size, size), stored noise, truncation 1.

        A (N, style_dim) input is broadcast to all layers (rosinality's single-style case).
        """
        if ws.ndim == 2:
            ws = ws[:, None, :].expand(-1, self.n_latent, -1)
        if ws.ndim != 3 or ws.shape[1] != self.n_latent or ws.shape[2] != self.style_dim:
            raise ValueError(f"ws must be (N, {self.n_latent}, {self.style_dim}), got {tuple(ws.shape)}")
        if impl == "reference":
            return self._synthesize_reference(ws)
        if impl in ("batched", "grouped"):
            return self._synthesize_batched(ws, grouped=impl == "grouped")
        if impl != "fast":
            raise ValueError(f"impl must be 'fast', 'batched', 'grouped' or 'reference', got {impl!r}")
        images = [self._synthesize_one(ws[i:i + 1]) for i in range(ws.shape[0])]
        return images[0] if len(images) == 1 else torch.cat(images, 0)

    def _noise(self, i: int) -> torch.Tensor:
        return getattr(self.noises, f"noise_{i}")

    def _synthesize_one(self, ws: torch.Tensor) -> torch.Tensor:
        gain = ops.SQRT2  # the activation gain of the layer before, applied inside the next weights
        x = self.input.input.contiguous(memory_format=torch.channels_last)
        x = self.conv1.forward_one(x, ws[:, 0], self._noise(0))
        skip = self.to_rgb1.forward_one(x, ws[:, 1], gain=gain)
        i = 1
        for j, to_rgb in enumerate(self.to_rgbs):
            conv_up, conv = self.convs[2 * j], self.convs[2 * j + 1]
            x = conv_up.forward_one(x, ws[:, i], self._noise(2 * j + 1), gain)
            x = conv.forward_one(x, ws[:, i + 1], self._noise(2 * j + 2), gain)
            skip = to_rgb.forward_one(x, ws[:, i + 2], skip, gain)
            i += 2
        return skip.contiguous()

    def _synthesize_batched(self, ws: torch.Tensor, grouped: bool = False) -> torch.Tensor:
        gain = ops.SQRT2
        x = self.input.input
        x = x.expand(ws.shape[0], -1, -1, -1) if x.shape[0] == 1 else x
        x = self.conv1.forward_many(x, ws[:, 0], self._noise(0), grouped=grouped)
        skip = self.to_rgb1.forward_many(x, ws[:, 1], gain=gain, grouped=grouped)
        i = 1
        for j, to_rgb in enumerate(self.to_rgbs):
            x = self.convs[2 * j].forward_many(x, ws[:, i], self._noise(2 * j + 1), gain, grouped)
            x = self.convs[2 * j + 1].forward_many(x, ws[:, i + 1], self._noise(2 * j + 2), gain, grouped)
            skip = to_rgb.forward_many(x, ws[:, i + 2], skip, gain, grouped)
            i += 2
        return skip

    def _synthesize_reference(self, ws: torch.Tensor) -> torch.Tensor:
        out = self.input(ws.shape[0])
        out = self.conv1(out, ws[:, 0], self._noise(0))
        skip = self.to_rgb1(out, ws[:, 1])
        i = 1
        for j, to_rgb in enumerate(self.to_rgbs):
            out = self.convs[2 * j](out, ws[:, i], self._noise(2 * j + 1))
            out = self.convs[2 * j + 1](out, ws[:, i + 1], self._noise(2 * j + 2))
            skip = to_rgb(out, ws[:, i + 2], skip)
            i += 2
        return skip


def per_sample(module: nn.Module, stacked: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Per-sample parameter copies in the layout the batched path reads.

    ``stacked`` maps parameter names to B copies stacked along a new leading dimension (B, *shape).
    Parameters whose own first dimension is 1 (``conv.weight``, ``input.input``, ``to_rgb*.bias``,
    ``noise.weight``) use that dimension for the batch instead: (B, *shape[1:]). Use the result with
    ``torch.func.functional_call(module, result, (ws,), {"impl": "batched"})``.
    """
    params = dict(module.named_parameters())
    out = {}
    for name, value in stacked.items():
        shape = tuple(params[name].shape)
        if tuple(value.shape[1:]) != shape:
            raise ValueError(f"{name}: per-sample copies must have shape (B, *{shape}), got {tuple(value.shape)}")
        out[name] = value.reshape(value.shape[0], *shape[1:]) if shape and shape[0] == 1 else value
    return out


def random_generator(seed: int = 0, device="cpu", **config) -> Generator:
    """A generator with rosinality's random initialisation drawn from ``seed`` (for tests/tiny presets).

    Noise strengths are set to 0.1 (rosinality starts them at 0) so the noise path is exercised, and
    the ToRGB weights are scaled by 0.25 so images stay roughly in [-1, 1].
    """
    with torch.random.fork_rng(devices=[]), torch.inference_mode(False):
        torch.manual_seed(int(seed))
        gen = Generator(**config)
        with torch.no_grad():
            for name, p in gen.named_parameters():
                if name.endswith("noise.weight"):
                    p.fill_(0.1)
                elif name.startswith("to_rgb") and name.endswith("conv.weight"):
                    p.mul_(0.25)
        return gen.to(device).eval()


__all__ = ["Generator", "per_sample", "random_generator", "channel_count", "FFHQ_CONFIG"]
