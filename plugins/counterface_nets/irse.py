"""IR-SE ResNet (ArcFace IR-SE50 ``Backbone``) with TreB1eN/InsightFace_Pytorch parameter names.

The real network is ``Backbone(input_size=112, num_layers=50, drop_ratio=0.6, mode='ir_se')``, stored
in ``model_ir_se50.pth`` as a bare state dict. e4e/pSp use the same body (a copy lives in
``models/encoders/model_irse.py``), so :mod:`counterface_nets.e4e` builds its encoder from the blocks
defined here.

Parameter names (``input_layer.*``, ``body.N.shortcut_layer.*``, ``body.N.res_layer.*`` with the
squeeze-excitation ``res_layer.5.fc1/fc2``, ``output_layer.*``) equal the checkpoint's, so a file
loads with ``load_state_dict(strict=True)``.

Small configurations for tests keep the same structure and names with fewer units per stage
(``units``) and narrower stages (``width``); ``Backbone(num_layers=50)`` with the defaults is the
real network.

Inference fast path: :meth:`IRSEUnit.forward` uses BatchNorm folded into the adjacent convolutions
when no gradient is being recorded (``torch.no_grad``/``torch.inference_mode``) and the module is in
eval mode. The folding is exact algebra (float32 rounding differs at the 1e-6 level); with gradients
enabled the plain reference path runs, so training-style use and ``autograd`` see the original graph.
"""

from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from counterface.errors import WeightsError

#: Units per stage of the IR(-SE) ResNets, as in ``get_blocks(num_layers)``.
UNITS_BY_LAYERS: dict[int, tuple[int, int, int, int]] = {
    50: (3, 4, 14, 3),
    100: (3, 13, 30, 3),
    152: (3, 8, 36, 3),
}
#: Output channels of the four stages (and the stem) at width 1.
STAGE_DEPTHS = (64, 128, 256, 512)
SE_REDUCTION = 16


def stage_depths(width: float = 1.0) -> tuple[int, int, int, int]:
    """Channels of the four stages at a width scale (each at least ``SE_REDUCTION``)."""
    return tuple(max(SE_REDUCTION, int(round(d * width))) for d in STAGE_DEPTHS)  # type: ignore[return-value]


def resolve_units(num_layers: int = 50, units: Sequence[int] | None = None) -> tuple[int, ...]:
    """Units per stage: ``units`` when given (4 positive ints), else the standard table."""
    if units is not None:
        units = tuple(int(u) for u in units)
        if len(units) != 4 or min(units) < 1:
            raise ValueError(f"units must be 4 positive integers, got {units}")
        return units
    if num_layers not in UNITS_BY_LAYERS:
        raise ValueError(f"num_layers must be one of {sorted(UNITS_BY_LAYERS)}, got {num_layers}")
    return UNITS_BY_LAYERS[num_layers]


def unit_specs(units: Sequence[int], depths: Sequence[int]) -> list[tuple[int, int, int]]:
    """``(in_channels, depth, stride)`` of every unit: each stage starts with a stride-2 unit."""
    specs = []
    in_c = depths[0]
    for n, depth in zip(units, depths):
        specs.append((in_c, depth, 2))
        specs.extend((depth, depth, 1) for _ in range(n - 1))
        in_c = depth
    return specs


def stage_ends(units: Sequence[int]) -> list[int]:
    """Index in ``body`` of the last unit of each stage (for 50 layers: 2, 6, 20, 23)."""
    out, total = [], 0
    for n in units:
        total += n
        out.append(total - 1)
    return out


def use_fast(module: nn.Module) -> bool:
    """Whether ``module`` runs its folded inference path: eval mode, no autograd recording, and its
    ``fast`` flag (default on; :func:`set_fast` turns it off for the plain reference path)."""
    return not module.training and not torch.is_grad_enabled() and getattr(module, "fast", True)


def set_fast(model: nn.Module, enabled: bool = True) -> nn.Module:
    """Enable or disable the folded inference path of every IR-SE block in ``model`` (benchmarks,
    tests); returns ``model``."""
    for m in model.modules():
        m.fast = bool(enabled)
    return model


def _bn_affine(bn: nn.BatchNorm2d | nn.BatchNorm1d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode BatchNorm as ``x * scale + shift``."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


class SEModule(nn.Module):
    """Squeeze-and-excitation: ``x * sigmoid(fc2(relu(fc1(mean(x)))))`` (1x1 convs, no bias)."""

    def __init__(self, channels: int, reduction: int = SE_REDUCTION):
        super().__init__()
        self.fc1 = nn.Conv2d(channels, channels // reduction, 1, bias=False)
        self.fc2 = nn.Conv2d(channels // reduction, channels, 1, bias=False)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        if use_fast(self):  # 1x1 convs on a 1x1 map are matrix products
            s = x.mean(dim=(2, 3))
            s = F.linear(F.relu(F.linear(s, self.fc1.weight.flatten(1))), self.fc2.weight.flatten(1))
            return torch.sigmoid(s)[:, :, None, None]
        s = x.mean(dim=(2, 3), keepdim=True)
        return torch.sigmoid(self.fc2(F.relu(self.fc1(s))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gate(x)


class IRSEUnit(nn.Module):
    """``bottleneck_IR_SE``: ``res_layer(x) + shortcut_layer(x)``.

    ``res_layer`` = BN, conv3x3, PReLU, conv3x3(stride), BN, SE. The shortcut is a stride-``stride``
    subsampling (``MaxPool2d(1, stride)``) when the channel count is kept, else conv1x1(stride) + BN.
    """

    def __init__(self, in_channel: int, depth: int, stride: int):
        super().__init__()
        self.stride = stride
        if in_channel == depth:
            self.shortcut_layer = nn.MaxPool2d(1, stride)
        else:
            self.shortcut_layer = nn.Sequential(
                nn.Conv2d(in_channel, depth, 1, stride, bias=False), nn.BatchNorm2d(depth)
            )
        self.res_layer = nn.Sequential(
            nn.BatchNorm2d(in_channel),
            nn.Conv2d(in_channel, depth, 3, 1, 1, bias=False),
            nn.PReLU(depth),
            nn.Conv2d(depth, depth, 3, stride, 1, bias=False),
            nn.BatchNorm2d(depth),
            SEModule(depth),
        )
        self._fused: tuple | None = None
        self._fused_key: tuple | None = None

    # -- reference path -----------------------------------------------------------------------
    def forward_reference(self, x: torch.Tensor) -> torch.Tensor:
        return self.res_layer(x) + self.shortcut_layer(x)

    # -- folded inference path ----------------------------------------------------------------
    def _state_key(self) -> tuple:
        return tuple((t.data_ptr(), t._version) for t in self.state_dict(keep_vars=True).values()
                     if isinstance(t, torch.Tensor))

    def _folded(self) -> tuple:
        key = self._state_key()
        if self._fused is None or self._fused_key != key:
            with torch.no_grad():
                bn0, conv1, prelu, conv2, bn4, _se = self.res_layer
                s0, t0 = _bn_affine(bn0)
                s4, t4 = _bn_affine(bn4)
                w2 = (conv2.weight * s4.view(-1, 1, 1, 1)).contiguous()
                if isinstance(self.shortcut_layer, nn.Sequential):
                    conv_s, bn_s = self.shortcut_layer
                    ss, ts = _bn_affine(bn_s)
                    short = ((conv_s.weight * ss.view(-1, 1, 1, 1)).contiguous(), ts.contiguous())
                else:
                    short = None
                self._fused = (s0.view(1, -1, 1, 1).clone(), t0.view(1, -1, 1, 1).clone(),
                               conv1.weight.detach(), prelu.weight.detach(), w2, t4.contiguous(), short)
            self._fused_key = key
        return self._fused

    def forward_folded(self, x: torch.Tensor) -> torch.Tensor:
        s0, t0, w1, a, w2, b2, short = self._folded()
        # The leading BN stays an explicit affine: folding it into conv1 would change the zero padding.
        r = torch.addcmul(t0, x, s0)
        r = F.prelu(F.conv2d(r, w1, None, 1, 1), a)
        r = F.conv2d(r, w2, b2, self.stride, 1)
        r = r * self.res_layer[5].gate(r)
        if short is None:
            sc = x if self.stride == 1 else x[:, :, :: self.stride, :: self.stride]
        else:
            sc = F.conv2d(x, short[0], short[1], self.stride)
        return r.add_(sc)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not use_fast(self):
            return self.forward_reference(x)
        return self.forward_folded(x)


def make_input_layer(out_channels: int = 64) -> nn.Sequential:
    """``input_layer``: conv3x3 (3 -> 64, no bias), BN, PReLU."""
    return nn.Sequential(nn.Conv2d(3, out_channels, 3, 1, 1, bias=False), nn.BatchNorm2d(out_channels),
                         nn.PReLU(out_channels))


def input_layer_forward(layer: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layer(x)``, with the BN folded into the conv when no gradient is recorded."""
    if not use_fast(layer):
        return layer(x)
    conv, bn, prelu = layer
    s, t = _bn_affine(bn)
    return F.prelu(F.conv2d(x, conv.weight * s.view(-1, 1, 1, 1), t, 1, 1), prelu.weight)


def make_body(units: Sequence[int], depths: Sequence[int]) -> nn.Sequential:
    """``body``: the IR-SE units of all four stages, in order."""
    return nn.Sequential(*(IRSEUnit(i, d, s) for i, d, s in unit_specs(units, depths)))


def l2_norm(x: torch.Tensor, axis: int = 1) -> torch.Tensor:
    """``x / ||x||`` along ``axis`` (InsightFace ``l2_norm``)."""
    return x / torch.norm(x, 2, axis, keepdim=True)


class Backbone(nn.Module):
    """ArcFace IR-SE backbone: (N, 3, S, S) in [-1, 1] -> unit-norm (N, embedding_size).

    ``Backbone()`` is the real IR-SE50 at 112 px. ``units`` (4 ints) and ``width`` shrink it for
    tests; ``input_size`` must be a multiple of 16 (the output layer flattens an S/16 grid).
    ``drop_ratio`` is recorded for completeness: dropout is inactive in eval mode.
    """

    def __init__(self, input_size: int = 112, num_layers: int = 50, drop_ratio: float = 0.6,
                 mode: str = "ir_se", *, units: Sequence[int] | None = None, width: float = 1.0,
                 embedding_size: int = 512):
        super().__init__()
        if mode != "ir_se":
            raise ValueError(f"only mode='ir_se' is implemented, got {mode!r}")
        if input_size % 16:
            raise ValueError(f"input_size must be a multiple of 16, got {input_size}")
        self.input_size = input_size
        self.units = resolve_units(num_layers, units)
        self.depths = stage_depths(width)
        self.embedding_size = embedding_size
        # Registration order = checkpoint key order: input_layer, output_layer, body (as upstream).
        self.input_layer = make_input_layer(self.depths[0])
        grid = input_size // 16
        self.output_layer = nn.Sequential(
            nn.BatchNorm2d(self.depths[3]),
            nn.Dropout(drop_ratio),
            nn.Flatten(),
            nn.Linear(self.depths[3] * grid * grid, embedding_size),
            nn.BatchNorm1d(embedding_size),
        )
        self.body = make_body(self.units, self.depths)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Output of the body: (N, 512, S/16, S/16)."""
        return self.body(input_layer_forward(self.input_layer, x))

    def forward_prenorm(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding before L2 normalisation."""
        return self.output_layer(self.features(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return l2_norm(self.forward_prenorm(x))


# -- face preprocessing ---------------------------------------------------------------------------
#: pSp/e4e ``IDLoss.extract_feats``: the face region of a 256 px FFHQ-aligned crop, pooled to 112
ID_CROP_SIZE = 256
ID_CROP_ROWS = (35, 223)
ID_CROP_COLS = (32, 220)
ID_INPUT_SIZE = 112


def resize_square(faces: torch.Tensor, size: int) -> torch.Tensor:
    """(N, C, S, S) -> (N, C, size, size), differentiably; a no-op when S == size.

    Integer downscales use the exact box average (pSp's ``AdaptiveAvgPool2d`` face pool), other
    sizes antialiased bilinear (close to PIL's resize, which e4e's data transforms use).
    """
    s = faces.shape[-1]
    if tuple(faces.shape[-2:]) == (size, size):
        return faces
    if faces.shape[-2] == s and s > size and s % size == 0:
        return F.adaptive_avg_pool2d(faces, size)
    return F.interpolate(faces, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


def identity_crop(faces: torch.Tensor) -> torch.Tensor:
    """FFHQ-aligned faces (N, 3, S, S) -> the (N, 3, 112, 112) ArcFace input of pSp/e4e's ID loss.

    Resize to 256 (:func:`resize_square`), keep rows 35:223 and columns 32:220 (188 x 188), then
    ``AdaptiveAvgPool2d(112)`` (uneven windows, as in ``IDLoss.extract_feats``). Differentiable.
    """
    x = resize_square(faces, ID_CROP_SIZE)
    x = x[:, :, ID_CROP_ROWS[0]:ID_CROP_ROWS[1], ID_CROP_COLS[0]:ID_CROP_COLS[1]]
    return F.adaptive_avg_pool2d(x, ID_INPUT_SIZE)


def load_arcface(path, device="cpu", **arch) -> Backbone:
    """The ArcFace IR-SE backbone from a bare state dict (``model_ir_se50.pth``), in eval mode.

    ``arch`` are :class:`Backbone` keyword arguments for non-standard files (tests, tiny preset).
    The file may lack BatchNorm ``num_batches_tracked`` entries (torch 0.4 checkpoints). Any other
    mismatch raises :class:`~counterface.errors.WeightsError` naming the file and the first keys.
    """
    from .checkpoints import wrap_errors

    return wrap_errors(path, "ArcFace IR-SE backbone", lambda: _load_arcface(path, device, arch))


def _load_arcface(path, device, arch: dict) -> Backbone:
    from .checkpoints import load_strict, require_mapping, safe_load

    what = "ArcFace IR-SE backbone"
    sd = require_mapping(safe_load(path, what=what), path, f"{what} state dict")
    if "state_dict" in sd or "g_ema" in sd:
        top = ", ".join(sorted(map(str, sd))[:5])
        raise WeightsError(f"{path}: not a bare {what} state dict (top-level keys: {top})")
    model = Backbone(**arch)
    load_strict(model, sd, path=path, what=what)
    return model.eval().requires_grad_(False).to(device)


__all__ = [
    "Backbone", "IRSEUnit", "identity_crop", "resize_square", "SEModule", "UNITS_BY_LAYERS", "l2_norm", "load_arcface", "make_body",
    "make_input_layer", "resolve_units", "set_fast", "use_fast", "stage_depths", "stage_ends", "unit_specs",
]
