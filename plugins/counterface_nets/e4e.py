"""Encoder4Editing (e4e) with the pSp wrapper logic, with omertov/encoder4editing parameter names.

``Encoder4Editing`` maps an aligned face (N, 3, 256, 256) in [-1, 1] to W+ codes (N, 18, 512): an
IR-SE50 body (blocks from :mod:`counterface_nets.irse`), a small feature pyramid (``latlayer1``,
``latlayer2``) and one ``GradualStyleBlock`` per W+ row (``styles.i``). Row 0 is predicted from the
coarsest features and copied to every row; rows 1.. add their own delta ("progressive stage" =
Inference: every head is used). pSp then adds ``latent_avg`` (18, 512) on all rows when the training
options say ``start_from_latent_avg``: :meth:`Encoder4Editing.encode` returns that W+.

The released ``e4e_ffhq_encode.pt`` is ``{'state_dict': pSp.state_dict() ('encoder.*' then
'decoder.*'), 'opts': dict, 'latent_avg': (18, 512)}``; :func:`load_e4e` reads the encoder part.
The ``decoder.*`` part is the StyleGAN2 generator (``counterface_nets.load_generator``).

Small configurations (tests, the tiny preset) keep the names: fewer body ``units``, a ``width`` scale
of the body, any power-of-two ``input_size`` >= 32, ``style_count`` (= the generator's num_ws) and
``w_dim``.
"""

from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

import torch
import torch.nn.functional as F
from torch import nn

from counterface.errors import WeightsError

from . import irse

COARSE_IND = 3
MIDDLE_IND = 7


class EqualLinear(nn.Module):
    """rosinality ``EqualLinear`` without activation: ``x @ (W / sqrt(in) * lr_mul).T + b * lr_mul``."""

    def __init__(self, in_dim: int, out_dim: int, lr_mul: float = 1.0):
        super().__init__()
        self.weight = nn.Parameter(torch.randn(out_dim, in_dim) / lr_mul)
        self.bias = nn.Parameter(torch.zeros(out_dim))
        self.lr_mul = lr_mul
        self.scale = (1 / math.sqrt(in_dim)) * lr_mul

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, self.weight * self.scale, self.bias * self.lr_mul)


class GradualStyleBlock(nn.Module):
    """``log2(spatial)`` stride-2 conv3x3 + LeakyReLU(0.01) down to 1x1, then an EqualLinear."""

    def __init__(self, in_c: int, out_c: int, spatial: int):
        super().__init__()
        self.out_c = out_c
        self.spatial = spatial
        n = int(math.log2(spatial))
        if 2**n != spatial or n < 1:
            raise ValueError(f"GradualStyleBlock spatial must be a power of two >= 2, got {spatial}")
        layers: list[nn.Module] = []
        for i in range(n):
            layers += [nn.Conv2d(in_c if i == 0 else out_c, out_c, 3, 2, 1), nn.LeakyReLU()]
        self.convs = nn.Sequential(*layers)
        self.linear = EqualLinear(out_c, out_c, lr_mul=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.linear(self.convs(x).reshape(-1, self.out_c))


def upsample_add(x: torch.Tensor, y: torch.Tensor, fast: bool = False) -> torch.Tensor:
    """pSp ``_upsample_add``: bilinear (align_corners=True) resize of ``x`` to ``y``'s size, plus ``y``.

    ``fast``: the same interpolation as two small matrix products (much faster on CPU than
    ``F.interpolate`` for 512 channels; equal up to float32 rounding of the weights).
    """
    if not fast:
        return F.interpolate(x, size=y.shape[-2:], mode="bilinear", align_corners=True) + y
    rh = _interp_matrix(x.shape[-2], y.shape[-2], x.dtype, x.device)
    rw = _interp_matrix(x.shape[-1], y.shape[-1], x.dtype, x.device)
    return torch.matmul(torch.matmul(rh, x), rw.t()) + y


_INTERP_CACHE: dict = {}


def _interp_matrix(n_in: int, n_out: int, dtype, device) -> torch.Tensor:
    """(n_out, n_in) linear-interpolation weights of ``align_corners=True`` resampling."""
    key = (n_in, n_out, dtype, str(device))
    m = _INTERP_CACHE.get(key)
    if m is None:
        scale = (n_in - 1) / (n_out - 1) if n_out > 1 else 0.0
        src = torch.arange(n_out, dtype=torch.float64) * scale
        lo = src.floor().long().clamp(max=n_in - 1)
        hi = (lo + 1).clamp(max=n_in - 1)
        frac = src - lo
        m = torch.zeros(n_out, n_in, dtype=torch.float64)
        rows = torch.arange(n_out)
        m.index_put_((rows, lo), 1 - frac, accumulate=True)
        m.index_put_((rows, hi), frac, accumulate=True)
        m = _INTERP_CACHE[key] = m.to(dtype=dtype, device=device)
    return m


class Encoder4Editing(nn.Module):
    """e4e encoder. ``Encoder4Editing()`` is the real FFHQ-1024 network (18 rows, 256 px input).

    ``forward(x)``: raw codes (N, style_count, w_dim). ``encode(x)``: codes + ``latent_avg`` (the W+
    that pSp decodes). ``latent_avg`` is a non-persistent buffer (not part of the encoder state dict;
    :func:`load_e4e` fills it from the checkpoint's top-level ``latent_avg``).
    """

    def __init__(self, num_layers: int = 50, *, style_count: int = 18, input_size: int = 256,
                 units: Sequence[int] | None = None, width: float = 1.0, w_dim: int = 512,
                 start_from_latent_avg: bool = True):
        super().__init__()
        if input_size < 32 or input_size & (input_size - 1):
            raise ValueError(f"input_size must be a power of two >= 32, got {input_size}")
        self.input_size = input_size
        self.units = irse.resolve_units(num_layers, units)
        self.depths = irse.stage_depths(width)
        self.style_count = style_count
        self.w_dim = w_dim
        self.start_from_latent_avg = start_from_latent_avg
        self.coarse_ind, self.middle_ind = COARSE_IND, MIDDLE_IND
        self.input_layer = irse.make_input_layer(self.depths[0])
        self.body = irse.make_body(self.units, self.depths)
        feat = self.depths[3]
        spatial = (input_size // 16, input_size // 8, input_size // 4)  # c3, p2, p1 grids
        self.styles = nn.ModuleList(
            GradualStyleBlock(feat, w_dim, spatial[0 if i < COARSE_IND else 1 if i < MIDDLE_IND else 2])
            for i in range(style_count)
        )
        self.latlayer1 = nn.Conv2d(self.depths[2], feat, 1, 1, 0)
        self.latlayer2 = nn.Conv2d(self.depths[1], feat, 1, 1, 0)
        _, e1, e2, e3 = irse.stage_ends(self.units)
        self._taps = (e1, e2, e3)
        self.register_buffer("latent_avg", torch.zeros(style_count, w_dim), persistent=False)

    # -- pyramid features ------------------------------------------------------------------------
    def pyramid(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """The body features ``c1`` (stride 4), ``c2`` (stride 8), ``c3`` (stride 16)."""
        x = irse.input_layer_forward(self.input_layer, x)
        e1, e2, e3 = self._taps
        c1 = c2 = None
        for i, unit in enumerate(self.body):
            x = unit(x)
            if i == e1:
                c1 = x
            elif i == e2:
                c2 = x
        return c1, c2, x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Raw codes (N, style_count, w_dim): w0 on every row plus the per-row deltas of rows 1.."""
        c1, c2, c3 = self.pyramid(x)
        fast = irse.use_fast(self)
        w0 = self.styles[0](c3)
        rows = [w0]
        features = c3
        p2 = None
        for i in range(1, self.style_count):
            if i == self.coarse_ind:
                p2 = features = upsample_add(c3, self.latlayer1(c2), fast)
            elif i == self.middle_ind:
                features = upsample_add(p2, self.latlayer2(c1), fast)
            rows.append(w0 + self.styles[i](features))
        return torch.stack(rows, dim=1)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """W+ (N, style_count, w_dim): the codes plus ``latent_avg`` on every row (pSp forward)."""
        codes = self(x)
        if self.start_from_latent_avg:
            codes = codes + self.latent_avg.unsqueeze(0)
        return codes


# -- loading ------------------------------------------------------------------------------------

_ENCODER_TYPES = ("Encoder4Editing",)


def _opts_config(opts: Any, path) -> dict[str, Any]:
    """Architecture settings read from the checkpoint's ``opts`` (unknown keys are ignored)."""
    if opts is None:
        opts = {}
    if not isinstance(opts, Mapping):
        raise WeightsError(f"{path}: e4e checkpoint 'opts' is a {type(opts).__name__}, expected a dict")
    enc = opts.get("encoder_type", "Encoder4Editing")
    if enc not in _ENCODER_TYPES:
        raise WeightsError(f"{path}: encoder_type {enc!r} is not supported (expected 'Encoder4Editing')")
    size = opts.get("stylegan_size", 1024)
    try:
        log_size = int(math.log2(int(size)))
    except (TypeError, ValueError):
        raise WeightsError(f"{path}: invalid stylegan_size {size!r} in opts") from None
    if 2**log_size != size:
        raise WeightsError(f"{path}: invalid stylegan_size {size!r} in opts")
    return {"style_count": 2 * log_size - 2, "start_from_latent_avg": bool(opts.get("start_from_latent_avg", True))}


def load_e4e(path, device="cpu", **arch) -> Encoder4Editing:
    """The e4e encoder from ``e4e_ffhq_encode.pt``, in eval mode with ``latent_avg`` attached.

    ``opts`` decides ``style_count`` (from ``stylegan_size``) and ``start_from_latent_avg``, the
    ``styles.0.linear`` head the ``w_dim``; ``arch``
    are further :class:`Encoder4Editing` keyword arguments for small files (tests, tiny preset) and
    override ``opts``. Only the ``encoder.*`` keys are read; a wrong file raises
    :class:`~counterface.errors.WeightsError` naming the file and the first offending keys.
    """
    from .checkpoints import wrap_errors

    return wrap_errors(path, "e4e checkpoint", lambda: _load_e4e(path, device, arch))


def _load_e4e(path, device, arch: dict) -> Encoder4Editing:
    from .checkpoints import load_strict, require_mapping, safe_load, strip_prefix

    what = "e4e checkpoint"
    ckpt = require_mapping(safe_load(path, what=what), path, what, keys=("state_dict",))
    sd = require_mapping(ckpt["state_dict"], path, f"{what} state_dict")
    enc_sd = strip_prefix(sd, "encoder.")
    if not enc_sd:
        found = ", ".join(list(map(str, sd))[:5])
        raise WeightsError(f"{path}: not an e4e checkpoint: no 'encoder.*' keys in state_dict (has: {found})")
    cfg = _opts_config(ckpt.get("opts"), path)
    head = enc_sd.get("styles.0.linear.weight")
    if isinstance(head, torch.Tensor) and head.ndim == 2:
        cfg["w_dim"] = int(head.shape[0])  # 512 for the released file; small test files differ
    cfg.update(arch)
    model = Encoder4Editing(**cfg)
    load_strict(model, enc_sd, path=path, what="e4e encoder")
    avg = ckpt.get("latent_avg")
    if avg is None:
        if model.start_from_latent_avg:
            raise WeightsError(f"{path}: e4e checkpoint has start_from_latent_avg but no 'latent_avg'")
    else:
        if not isinstance(avg, torch.Tensor):
            raise WeightsError(f"{path}: 'latent_avg' is a {type(avg).__name__}, not a tensor")
        shape = tuple(avg.shape)
        if shape == (model.w_dim,):
            avg = avg.expand(model.style_count, model.w_dim)
        elif shape != (model.style_count, model.w_dim):
            raise WeightsError(
                f"{path}: 'latent_avg' has shape {shape}, expected ({model.style_count}, {model.w_dim})"
            )
        model.latent_avg.copy_(avg.float())
    return model.eval().requires_grad_(False).to(device)


__all__ = ["Encoder4Editing", "GradualStyleBlock", "EqualLinear", "load_e4e", "upsample_add"]
