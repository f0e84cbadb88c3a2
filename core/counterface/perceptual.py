"""LPIPS (Zhang et al. 2018, v0.1) in plain PyTorch: the tuner's loss and the evaluation metric.

The same network as ``lpips.LPIPS(net='alex'|'vgg', version='0.1')`` with the same parameter names
(``net.sliceK.N.*``, ``linK.model.1.weight``, ``scaling_layer.*``) and the same arithmetic, so distances are identical,
without importing the ``lpips`` package: it imports torchvision, which imports ``torch._dynamo``
(about 5 s per process on a small machine, most of the ``tiny`` preset's run time).

* the calibrated linear heads are read from the installed ``lpips`` package's files
  (``lpips/weights/v0.1/<net>.pth``, located without importing it; ``torch.load(weights_only=True)``);
* the AlexNet/VGG16 trunk is torchvision's ImageNet file (``alexnet-owt-7be5be79.pth`` /
  ``vgg16-397923af.pth``) fetched through :mod:`counterface.weights` (cache, a lab's
  ``locate_weights`` mirror, or a download; offline and missing: one-line WeightsError);
* ``pretrained=False`` draws the trunk from ``seed`` instead (offline; tests and the ``tiny`` preset
  only: the loss is then not perceptual). The draw is the one ``lpips.LPIPS(pnet_rand=True)`` makes
  after ``torch.manual_seed(seed)``, without touching the global random state.
"""

from __future__ import annotations

import threading
from pathlib import Path

import torch
from torch import nn

from .errors import ConfigError, WeightsError

#: torchvision's ImageNet trunk file per network (registered in the weights registry by the pti plugin)
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
#: channels of the five tapped ReLU outputs and the trunk ``features`` indices of each slice (lpips 0.1)
CHANNELS = {"alex": (64, 192, 384, 256, 256), "vgg": (64, 128, 256, 512, 512)}
SLICES = {"alex": (0, 2, 5, 8, 10, 12), "vgg": (0, 4, 9, 16, 23, 30)}
#: AlexNet's pooling needs at least this many pixels a side; smaller inputs are upsampled first
MIN_SIDE = 32

_cache: dict[tuple, "LPIPS"] = {}
_lock = threading.Lock()


def trunk_features(net: str) -> nn.Sequential:
    """torchvision's ``alexnet().features`` / ``vgg16().features`` layer for layer (default init)."""
    if net == "alex":
        return nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
    if net == "vgg":  # configuration "D"
        layers: list[nn.Module] = []
        cin = 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
            if v == "M":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            else:
                layers += [nn.Conv2d(cin, v, kernel_size=3, padding=1), nn.ReLU(inplace=True)]
                cin = v
        return nn.Sequential(*layers)
    raise ConfigError(f"unknown LPIPS network {net!r}; valid: {', '.join(BACKBONE_FILES)}")


class _Trunk(nn.Module):
    """The trunk cut into the five slices whose outputs LPIPS compares (``sliceK.N`` = ``features.N``)."""

    def __init__(self, net: str):
        super().__init__()
        features = trunk_features(net)
        bounds = SLICES[net]
        for k in range(5):
            s = nn.Sequential()
            for i in range(bounds[k], bounds[k + 1]):
                s.add_module(str(i), features[i])
            self.add_module(f"slice{k + 1}", s)

    def forward(self, x):
        outs = []
        for k in range(5):
            x = getattr(self, f"slice{k + 1}")(x)
            outs.append(x)
        return outs


class _Scaling(nn.Module):
    def __init__(self):
        super().__init__()
        self.register_buffer("shift", torch.tensor([-.030, -.088, -.188])[None, :, None, None])
        self.register_buffer("scale", torch.tensor([.458, .448, .450])[None, :, None, None])

    def forward(self, x):
        return (x - self.shift) / self.scale


class _Lin(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.model = nn.Sequential(nn.Dropout(), nn.Conv2d(channels, 1, 1, stride=1, padding=0, bias=False))

    def forward(self, x):
        return self.model(x)


class LPIPS(nn.Module):
    """``lpips.LPIPS(net, version='0.1', lpips=True, spatial=False)``: ``forward(a, b)`` -> (N, 1, 1, 1)
    distances of NCHW images in [-1, 1] (``normalize=True``: in [0, 1])."""

    def __init__(self, net: str = "alex"):
        super().__init__()
        self.scaling_layer = _Scaling()
        self.net = _Trunk(net)
        for k, c in enumerate(CHANNELS[net]):
            self.add_module(f"lin{k}", _Lin(c))

    def forward(self, in0, in1, normalize: bool = False):
        if normalize:
            in0, in1 = 2 * in0 - 1, 2 * in1 - 1
        outs0, outs1 = self.net(self.scaling_layer(in0)), self.net(self.scaling_layer(in1))
        val = 0
        for k in range(5):
            d = (_unit(outs0[k]) - _unit(outs1[k])) ** 2
            val += getattr(self, f"lin{k}")(d).mean([2, 3], keepdim=True)
        return val


def _unit(x, eps: float = 1e-10):
    return x / (torch.sqrt(torch.sum(x ** 2, dim=1, keepdim=True)) + eps)


def head_file(net: str) -> Path:
    """The calibrated linear heads shipped inside the installed ``lpips`` package (not imported)."""
    import importlib.util

    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("LPIPS needs the 'lpips' package (its calibrated linear heads): pip install lpips")
    path = Path(list(spec.submodule_search_locations)[0]) / "weights" / "v0.1" / f"{net}.pth"
    if not path.is_file():
        raise WeightsError(f"the lpips package has no linear heads for {net!r} ({path})")
    return path


def _load_tensors(path, what: str) -> dict:
    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and runtime errors alike
        raise WeightsError(f"{path}: not a readable {what} ({' '.join(str(exc).split())[:160]})") from None
    if not isinstance(sd, dict):
        raise WeightsError(f"{path}: expected a {what} state dict, found {type(sd).__name__}")
    return sd


def load_backbone(model: LPIPS, path) -> None:
    """Copy torchvision's ``features.N.*`` tensors into ``net.sliceK.N.*`` (strict)."""
    sd = _load_tensors(path, "torchvision backbone")
    own = model.net.state_dict()
    mapped = {}
    for key in own:
        _, idx, param = key.split(".", 2)  # sliceK, N, weight|bias
        src = f"features.{idx}.{param}"
        if src not in sd or tuple(sd[src].shape) != tuple(own[key].shape):
            raise WeightsError(f"{path}: not the expected torchvision backbone (no {src} of shape {tuple(own[key].shape)})")
        mapped[key] = sd[src]
    model.net.load_state_dict(mapped, strict=True)


def build(net: str = "alex", pretrained: bool = True, seed: int = 0, device: str = "cpu") -> LPIPS:
    """A frozen :class:`LPIPS` in eval mode on ``device`` (cached per process; treat it as read-only)."""
    if net not in BACKBONE_FILES:
        raise ConfigError(f"unknown LPIPS network {net!r}; valid: {', '.join(BACKBONE_FILES)}")
    key = (net, bool(pretrained), int(seed), str(device))
    with _lock:
        if key in _cache:
            return _cache[key]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(int(seed))
            model = LPIPS(net)
        heads = _load_tensors(head_file(net), "LPIPS linear-head file")
        missing = model.load_state_dict(heads, strict=False).missing_keys
        if any(k.startswith("lin") for k in missing):
            raise WeightsError(f"{head_file(net)}: LPIPS heads lack {[k for k in missing if k.startswith('lin')][:3]}")
        if pretrained:
            from . import weights

            load_backbone(model, weights.fetch(BACKBONE_FILES[net]))
        model.requires_grad_(False).eval().to(device)
        _cache[key] = model
        return model


def distance(model, a, b):
    """Mean LPIPS between two NCHW batches in [-1, 1] (inputs below ``MIN_SIDE`` are upsampled)."""
    if min(a.shape[-2:]) < MIN_SIDE:
        from torch.nn import functional as F

        a = F.interpolate(a, size=(MIN_SIDE, MIN_SIDE), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(MIN_SIDE, MIN_SIDE), mode="bilinear", align_corners=False)
    return model(a, b).mean()
