"""LPIPS through the ``lpips`` package, with an offline-friendly error and a per-process cache.

The package ships only the calibrated linear heads; its AlexNet/VGG backbone is torchvision's
ImageNet download (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth`` in
``$TORCH_HOME/hub/checkpoints``), fetched here through :mod:`counterface.weights` (cache, a lab's
``locate_weights`` mirror, or a download; offline and missing: one-line WeightsError).
``pretrained=False`` builds the backbone with random weights from ``seed`` (offline; tests and the
tiny preset only: the loss is then not perceptual).
"""

from __future__ import annotations

import contextlib
import threading
import warnings

from counterface import ConfigError, WeightsError

BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
_cache: dict[tuple, object] = {}
_lock = threading.Lock()


class _FeaturesOnly:
    """Stands in for ``torchvision.models`` inside ``lpips.pretrained_networks`` while building: its
    ``alexnet``/``vgg16`` return only the convolutional ``features`` (what LPIPS uses), skipping the
    ImageNet classifier heads whose random initialisation (60-120 M parameters) took seconds."""

    def __init__(self, tv):
        self._tv = tv

    def __getattr__(self, name):
        return getattr(self._tv, name)

    def alexnet(self, *args, **kwargs):
        from torch import nn

        features = nn.Sequential(
            nn.Conv2d(3, 64, kernel_size=11, stride=4, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(64, 192, kernel_size=5, padding=2), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
            nn.Conv2d(192, 384, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(384, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.Conv2d(256, 256, kernel_size=3, padding=1), nn.ReLU(inplace=True),
            nn.MaxPool2d(kernel_size=3, stride=2),
        )
        return _Trunk(features)

    def vgg16(self, *args, **kwargs):
        from torchvision.models import vgg

        return _Trunk(vgg.make_layers(vgg.cfgs["D"], batch_norm=False))


class _Trunk:
    def __init__(self, features):
        self.features = features


@contextlib.contextmanager
def _trunk_features_only():
    import lpips.pretrained_networks as pn

    original = pn.tv
    pn.tv = _FeaturesOnly(original)
    try:
        yield
    finally:
        pn.tv = original


def load_backbone(model, path) -> None:
    """Copy torchvision's ``features.N.*`` tensors into lpips' ``net.sliceK.N.*`` (strict)."""
    from counterface_nets.checkpoints import require_mapping, safe_load

    sd = require_mapping(safe_load(path, what="torchvision backbone"), path, "torchvision state dict")
    own = model.net.state_dict()
    mapped = {}
    for key in own:
        _, idx, param = key.split(".", 2)  # sliceK, N, weight|bias
        src = f"features.{idx}.{param}"
        if src not in sd or tuple(sd[src].shape) != tuple(own[key].shape):
            raise WeightsError(f"{path}: not the expected torchvision backbone (no {src} of shape {tuple(own[key].shape)})")
        mapped[key] = sd[src]
    model.net.load_state_dict(mapped, strict=True)


def build_lpips(net: str = "alex", pretrained: bool = True, seed: int = 0, device: str = "cpu"):
    """A frozen ``lpips.LPIPS`` in eval mode on ``device`` (cached per process)."""
    import torch

    if net not in BACKBONE_FILES:
        raise ConfigError(f"unknown LPIPS network {net!r}; valid: {', '.join(BACKBONE_FILES)}")
    key = (net, bool(pretrained), int(seed), str(device))
    with _lock:
        if key in _cache:
            return _cache[key]
        import lpips

        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")
            torch.manual_seed(int(seed))
            # Always build offline (random trunk), then load the ImageNet trunk ourselves from the file
            # the weights manager found: a lab mirror works, and nothing is unpickled beyond tensors.
            with _trunk_features_only():
                model = lpips.LPIPS(net=net, pnet_rand=True, verbose=False)
        if pretrained:
            from counterface import weights

            load_backbone(model, weights.fetch(BACKBONE_FILES[net]))
        model.requires_grad_(False).eval().to(device)
        _cache[key] = model
        return model


#: AlexNet's pooling needs at least this many pixels a side; smaller inputs are upsampled first
MIN_SIDE = 32


def distance(model, a, b):
    """Mean LPIPS between two NCHW batches in [-1, 1] (inputs below ``MIN_SIDE`` are upsampled)."""
    if min(a.shape[-2:]) < MIN_SIDE:
        from torch.nn import functional as F

        a = F.interpolate(a, size=(MIN_SIDE, MIN_SIDE), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(MIN_SIDE, MIN_SIDE), mode="bilinear", align_corners=False)
    return model(a, b).mean()
