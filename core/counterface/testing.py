"""Small, honest fakes of every component kind, for plugin authors' tests (and ours).

Each fake really implements its kind's contract (shapes, ranges, exactness rules) with tiny pure
torch / numpy code, so a plugin under test can be composed with them in a real
:class:`~counterface.pipeline.Pipeline` without weights, downloads or face detectors::

    from counterface import testing
    testing.install()                       # registers the fakes under the name "fake" + preset "fake"
    pipe = Pipeline.from_preset("fake")     # fake aligner/inverter/generator/blender/identity
                                            # + the reference pti tuner, vector direction, pi0

or use the classes directly (``testing.FakeGenerator(resolution=32)``).

:class:`FakeGenerator` is a miniature StyleGAN2 (modulated convolutions, skip ToRGB, one W+ row per
layer) whose parameter names follow rosinality's (``conv1.conv.weight``, ``convs.3.conv.modulation
.weight``, ``to_rgbs.1.conv.weight``, ``style.1.weight``), so code that selects parameters by name or
resolution can be tested on it. Everything is deterministic given ``seed``.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from .components import Aligner, Blender, Generator, IdentityEncoder, Inverter
from .hookspecs import hookimpl
from .types import AlignedFace, Preset

__all__ = [
    "FakeAligner",
    "FakeBlender",
    "FakeGenerator",
    "FakeIdentityEncoder",
    "FakeInverter",
    "FakePlugin",
    "canonical_landmarks",
    "install",
    "uninstall",
]


# ---------------------------------------------------------------------------------------------
# generator
# ---------------------------------------------------------------------------------------------
def _build_network(resolution: int, w_dim: int, channels: int, n_mlp: int):
    import torch
    from torch import nn
    from torch.nn import functional as F

    class ModConv(nn.Module):
        """Input-modulated convolution: conv(x * s(w)) with s = affine(w) (bias initialised to 1)."""

        def __init__(self, cin: int, cout: int, k: int):
            super().__init__()
            self.weight = nn.Parameter(torch.randn(1, cout, cin, k, k))
            self.modulation = nn.Linear(w_dim, cin)
            nn.init.ones_(self.modulation.bias)
            self.scale = 1.0 / math.sqrt(cin * k * k)
            self.pad = k // 2

        def forward(self, x, w):
            s = self.modulation(w)[:, :, None, None]
            return F.conv2d(x * s, self.weight[0] * self.scale, padding=self.pad)

    class Noise(nn.Module):
        def __init__(self):
            super().__init__()
            self.weight = nn.Parameter(torch.zeros(1))

    class Bias(nn.Module):
        def __init__(self, ch: int):
            super().__init__()
            self.bias = nn.Parameter(torch.zeros(ch))

    class StyledConv(nn.Module):
        def __init__(self, cin: int, cout: int, upsample: bool):
            super().__init__()
            self.upsample = upsample
            self.conv = ModConv(cin, cout, 3)
            self.noise = Noise()
            self.activate = Bias(cout)

        def forward(self, x, w, noise):
            if self.upsample:
                x = F.interpolate(x, scale_factor=2, mode="bilinear", align_corners=False)
            x = self.conv(x, w) + self.noise.weight * noise
            return F.leaky_relu(x + self.activate.bias[None, :, None, None], 0.2) * math.sqrt(2)

    class ToRGB(nn.Module):
        def __init__(self, cin: int):
            super().__init__()
            self.conv = ModConv(cin, 3, 1)
            self.bias = nn.Parameter(torch.zeros(1, 3, 1, 1))

        def forward(self, x, w, skip=None):
            out = self.conv(x, w) + self.bias
            if skip is not None:
                out = out + F.interpolate(skip, scale_factor=2, mode="bilinear", align_corners=False)
            return out

    class ConstantInput(nn.Module):
        def __init__(self, ch: int):
            super().__init__()
            self.input = nn.Parameter(torch.randn(1, ch, 4, 4))

    class PixelNorm(nn.Module):
        def forward(self, x):
            return x * torch.rsqrt(x.pow(2).mean(dim=1, keepdim=True) + 1e-8)

    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            log = int(math.log2(resolution))
            layers: list[nn.Module] = [PixelNorm()]
            for _ in range(n_mlp):
                layers += [nn.Linear(w_dim, w_dim), nn.LeakyReLU(0.2)]
            self.style = nn.Sequential(*layers)
            self.input = ConstantInput(channels)
            self.conv1 = StyledConv(channels, channels, upsample=False)
            self.to_rgb1 = ToRGB(channels)
            self.convs = nn.ModuleList()
            self.to_rgbs = nn.ModuleList()
            for i in range(3, log + 1):
                self.convs.append(StyledConv(channels, channels, upsample=True))
                self.convs.append(StyledConv(channels, channels, upsample=False))
                self.to_rgbs.append(ToRGB(channels))
                res = 2**i
                self.register_buffer(f"noise_{2 * (i - 3) + 1}", torch.randn(1, 1, res, res))
                self.register_buffer(f"noise_{2 * (i - 3) + 2}", torch.randn(1, 1, res, res))
            self.register_buffer("noise_0", torch.randn(1, 1, 4, 4))
            self.num_ws = 2 * log - 2

        def forward(self, ws):
            n = ws.shape[0]
            x = self.input.input.expand(n, -1, -1, -1)
            x = self.conv1(x, ws[:, 0], self.noise_0)
            skip = self.to_rgb1(x, ws[:, 1])
            i = 1
            for k, to_rgb in enumerate(self.to_rgbs):
                x = self.convs[2 * k](x, ws[:, i], getattr(self, f"noise_{2 * k + 1}"))
                x = self.convs[2 * k + 1](x, ws[:, i + 1], getattr(self, f"noise_{2 * k + 2}"))
                skip = to_rgb(x, ws[:, i + 2], skip)
                i += 2
            return skip

    return Net()


class FakeGenerator(Generator):
    """A miniature StyleGAN2 with rosinality parameter names; deterministic from ``seed``.

    ``resolution`` (power of two >= 8) gives ``num_ws = 2 * log2(resolution) - 2`` W+ rows, as in
    StyleGAN2. Output roughly in [-1, 1]: the ToRGB skip sum (no ``tanh``) times 0.5.
    """

    def __init__(self, *, resolution: int = 32, w_dim: int = 16, channels: int = 16, n_mlp: int = 2,
                 seed: int = 0, family: str = "fake", device: str = "cpu"):
        import torch

        if resolution < 8 or resolution & (resolution - 1):
            from .errors import ConfigError

            raise ConfigError(f"FakeGenerator resolution must be a power of two >= 8, got {resolution}")
        self.resolution = int(resolution)
        self.w_dim = int(w_dim)
        self.channels = int(channels)
        self.n_mlp = int(n_mlp)
        self.seed = int(seed)
        self.family = family
        self.device = device
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            net = _build_network(self.resolution, self.w_dim, self.channels, self.n_mlp)
            z = torch.randn(256, self.w_dim)
        net.requires_grad_(False)
        net.eval()
        self._net = net.to(device)
        self.num_ws = net.num_ws
        with torch.no_grad():
            self._w_avg = self.mapping(z.to(device)).mean(0)

    def mapping(self, z):
        return self._net.style(z)

    def synthesize(self, ws):
        if ws.dim() != 3 or ws.shape[1:] != (self.num_ws, self.w_dim):
            from .errors import ConfigError

            raise ConfigError(f"expected W+ of shape (N, {self.num_ws}, {self.w_dim}), got {tuple(ws.shape)}")
        return self._net(ws.to(self.w_avg.device)) * 0.5

    @property
    def w_avg(self):
        return self._w_avg

    @property
    def module(self):
        return self._net


# ---------------------------------------------------------------------------------------------
# aligner
# ---------------------------------------------------------------------------------------------
def canonical_landmarks(size: int) -> np.ndarray:
    """A plausible 68-point iBUG layout in crop pixels of a ``size`` x ``size`` FFHQ-style crop."""
    s = float(size)
    pts = []
    for t in np.linspace(0.0, 1.0, 17):  # jaw 0-16
        ang = math.pi * (1.0 - t)
        pts.append((0.5 + 0.33 * math.cos(ang), 0.45 + 0.38 * math.sin(ang)))
    for x0 in (0.25, 0.57):  # brows 17-26
        pts += [(x0 + 0.045 * k, 0.36 - 0.02 * math.sin(math.pi * k / 4)) for k in range(5)]
    pts += [(0.5, 0.42 + 0.04 * k) for k in range(4)]  # nose bridge 27-30
    pts += [(0.44 + 0.03 * k, 0.59) for k in range(5)]  # nostrils 31-35
    for cx in (0.36, 0.64):  # eyes 36-47
        for k in range(6):
            ang = 2 * math.pi * k / 6
            pts.append((cx + 0.05 * math.cos(ang + math.pi), 0.44 + 0.02 * math.sin(ang)))
    for k in range(12):  # outer lips 48-59
        ang = 2 * math.pi * k / 12
        pts.append((0.5 - 0.1 * math.cos(ang), 0.74 + 0.045 * math.sin(ang)))
    for k in range(8):  # inner lips 60-67
        ang = 2 * math.pi * k / 8
        pts.append((0.5 - 0.07 * math.cos(ang), 0.74 + 0.02 * math.sin(ang)))
    return np.asarray(pts, dtype=np.float64) * s


class FakeAligner(Aligner):
    """Treats the centred square (``fraction`` of the shorter side) as the one face.

    Returns one :class:`AlignedFace` with an exact similarity matrix, landmarks from
    :func:`canonical_landmarks` mapped back to the photo, and a dilated mouth ``region_mask``; no face when the
    photo is smaller than ``min_size`` pixels on a side.
    """

    def __init__(self, *, size: int = 32, fraction: float = 0.8, min_size: int = 16):
        self.size = int(size)
        self.fraction = float(fraction)
        self.min_size = int(min_size)

    def align(self, image, size=None):
        import cv2

        size = int(size or self.size)
        h, w = image.shape[:2]
        if min(h, w) < self.min_size:
            return []
        side = self.fraction * min(h, w)
        x0, y0 = (w - side) / 2.0, (h - side) / 2.0
        s = size / side
        matrix = np.array([[s, 0.0, -x0 * s], [0.0, s, -y0 * s]])
        crop = cv2.warpAffine(image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
        crop_lm = canonical_landmarks(size)
        inv = cv2.invertAffineTransform(matrix)
        lm = crop_lm @ inv[:, :2].T + inv[:, 2]
        mask = np.zeros((size, size), np.uint8)
        cv2.fillConvexPoly(mask, np.round(crop_lm[48:60]).astype(np.int32), 255)
        k = max(3, size // 16) | 1
        mask = cv2.dilate(mask, np.ones((k, k), np.uint8))
        face = AlignedFace(landmarks=lm, matrix=matrix, crop=np.ascontiguousarray(crop), crop_landmarks=crop_lm,
                           region_mask=(mask.astype(np.float32) / 255.0), box=(x0, y0, x0 + side, y0 + side),
                           score=1.0, index=0)
        return [face]


# ---------------------------------------------------------------------------------------------
# inverter, identity
# ---------------------------------------------------------------------------------------------
class FakeInverter(Inverter):
    """``w_avg`` plus a fixed random linear function of the 4x4-pooled face, on every W+ row."""

    def __init__(self, *, seed: int = 0, strength: float = 0.5, family: str = "fake", device: str = "cpu"):
        self.seed = int(seed)
        self.strength = float(strength)
        self.family = family
        self.device = device

    def invert(self, faces, generator=None):
        import torch
        from torch.nn import functional as F

        if generator is None:
            from .errors import ConfigError

            raise ConfigError("the fake inverter needs the generator (for w_avg and num_ws)")
        g = torch.Generator().manual_seed(self.seed)
        proj = torch.randn(48, generator.w_dim, generator=g) / math.sqrt(48)
        feats = F.adaptive_avg_pool2d(faces.float().cpu(), 4).flatten(1)
        w = generator.w_avg.detach().cpu()[None] + self.strength * torch.tanh(feats @ proj)
        return w[:, None, :].repeat(1, generator.num_ws, 1).contiguous()


class FakeIdentityEncoder(IdentityEncoder):
    """A fixed random conv + pooling + linear embedding, unit-normalised (differentiable)."""

    def __init__(self, *, dim: int = 32, seed: int = 0, device: str = "cpu"):
        import torch
        from torch import nn

        self.dim = int(dim)
        self.seed = int(seed)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.seed)
            self._net = nn.Sequential(nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(4),
                                      nn.Flatten(), nn.Linear(128, self.dim))
        self._net.requires_grad_(False).eval().to(device)

    def embed(self, faces):
        from torch.nn import functional as F

        e = self._net(faces.to(next(self._net.parameters()).device))
        return F.normalize(e, dim=1)

    @property
    def module(self):
        return self._net


# ---------------------------------------------------------------------------------------------
# blender
# ---------------------------------------------------------------------------------------------
class FakeBlender(Blender):
    """Pastes the crop back inside a soft disc (``radius`` of the crop, feathered over ``feather``)."""

    def __init__(self, *, radius: float = 0.4, feather: float = 0.1):
        self.radius = float(radius)
        self.feather = float(feather)

    def _crop_mask(self, size: int) -> np.ndarray:
        yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
        c = (size - 1) / 2.0
        r = np.hypot(xx - c, yy - c) / size
        return np.clip((self.radius - r) / max(self.feather, 1e-6), 0.0, 1.0).astype(np.float32)

    def mask(self, shape, face):
        import cv2

        h, w = int(shape[0]), int(shape[1])
        m = cv2.warpAffine(self._crop_mask(face.size), np.asarray(face.matrix, np.float64), (w, h),
                           flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_CONSTANT, borderValue=0)
        return np.clip(m, 0.0, 1.0).astype(np.float32)

    def blend(self, image, edited_crop, face):
        import cv2

        h, w = image.shape[:2]
        m = self.mask((h, w), face)
        if edited_crop.shape[0] != face.size:
            edited_crop = cv2.resize(edited_crop, (face.size, face.size), interpolation=cv2.INTER_AREA)
        back = cv2.warpAffine(edited_crop, np.asarray(face.matrix, np.float64), (w, h),
                              flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP, borderMode=cv2.BORDER_REPLICATE)
        mixed = (1.0 - m[..., None]) * image.astype(np.float32) + m[..., None] * back.astype(np.float32)
        out = np.where(m[..., None] > 0, np.clip(np.rint(mixed), 0, 255).astype(np.uint8), image)
        return np.ascontiguousarray(out)


# ---------------------------------------------------------------------------------------------
# registration
# ---------------------------------------------------------------------------------------------
def fake_preset(**edit: Any) -> Preset:
    """Fake aligner/inverter/generator/blender/identity with the reference pti, vector and pi0."""
    return Preset(
        components={
            "aligner": {"name": "fake", "size": 32},
            "inverter": {"name": "fake"},
            "generator": {"name": "fake", "resolution": 32},
            "identity": {"name": "fake"},
            "blender": {"name": "fake"},
            "tuner": {"name": "pti", "latent_steps": 8, "tune_steps": 8, "lpips_pretrained": False,
                      "lpips_net": "alex", "resolution": None, "tune_min_resolution": 16, "lpips_threshold": 0.0},
            "direction": {"name": "vector", "dim": 16, "seed": 1, "layers": "2-4"},
            "pi1": {"name": "shift"},
            "pi0": {"name": "reconstruction"},
        },
        edit={"alpha": 1.0, **edit},
        description="fakes from counterface.testing + the reference tuner/direction/pi0 (tests only)",
    )


class FakePlugin:
    """A plugin object registering every fake under the name ``fake`` and the preset ``fake``."""

    @hookimpl
    def register_aligners(self, register):
        register("fake", FakeAligner, description="centred-square fake aligner (tests)")

    @hookimpl
    def register_inverters(self, register):
        register("fake", FakeInverter, description="fake inverter (tests)")

    @hookimpl
    def register_generators(self, register):
        register("fake", FakeGenerator, description="miniature StyleGAN2 (tests)")

    @hookimpl
    def register_identity_encoders(self, register):
        register("fake", FakeIdentityEncoder, description="fake identity encoder (tests)")

    @hookimpl
    def register_blenders(self, register):
        register("fake", FakeBlender, description="soft-disc fake blender (tests)")

    @hookimpl
    def register_presets(self, register):
        register("fake", fake_preset, description="fakes + reference tuner (tests)")


_INSTALLED = "counterface.testing.fakes"


def install() -> str:
    """Register :class:`FakePlugin` (idempotent). Returns the plugin name."""
    from . import plugins

    pm = plugins.get_plugin_manager()
    if pm.get_plugin(_INSTALLED) is None:
        plugins.register_plugin(FakePlugin(), name=_INSTALLED, package="counterface")
    return _INSTALLED


def uninstall() -> None:
    from . import plugins

    pm = plugins.get_plugin_manager()
    if pm.get_plugin(_INSTALLED) is not None:
        plugins.unregister_plugin(_INSTALLED)

