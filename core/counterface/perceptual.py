"""LPIPS for the tuner's loss and the evaluation metrics, through the ``lpips`` package.

The package ships the calibrated linear heads (v0.1); its AlexNet/VGG16 trunk is torchvision's
ImageNet file (``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``), which torchvision would
download at build time. Here the network is always built offline (``pnet_rand=True``: the package's
heads, a trunk drawn from ``seed``) and, for ``pretrained=True``, the trunk tensors are then copied
from the file :mod:`counterface.weights` provides (cache, a lab's ``locate_weights`` mirror, or a
download, with its hash checked; offline and missing: a one-line WeightsError). Nothing beyond
tensors is unpickled. ``pretrained=False`` keeps the seeded random trunk: offline tests and the
``tiny`` preset only (the loss is then not perceptual).
"""

from __future__ import annotations

import threading
import warnings

from .errors import ConfigError, WeightsError
from .errors import reason as _reason

#: torchvision's ImageNet trunk file per network (registered in the weights registry by the pti plugin)
BACKBONE_FILES = {"alex": "alexnet-owt-7be5be79.pth", "vgg": "vgg16-397923af.pth"}
#: AlexNet's pooling needs at least this many pixels a side; smaller inputs are upsampled first
MIN_SIDE = 32

_cache: dict[tuple, object] = {}
_lock = threading.Lock()


def _load_tensors(path, what: str) -> dict:
    import torch

    try:
        sd = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - pickle, zip and runtime errors alike
        raise WeightsError(f"{path}: not a readable {what} ({_reason(exc)})") from None
    if not isinstance(sd, dict):
        raise WeightsError(f"{path}: expected a {what} state dict, found {type(sd).__name__}")
    return sd


def load_backbone(model, path) -> None:
    """Copy torchvision's ``features.N.*`` tensors into lpips' ``net.sliceK.N.*`` (strict)."""
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


def build(net: str = "alex", pretrained: bool = True, seed: int = 0, device: str = "cpu"):
    """A frozen ``lpips.LPIPS`` in eval mode on ``device`` (cached per process; treat it as read-only).

    The global random state is left as it was: the random trunk is drawn inside a forked RNG.
    """
    import torch

    if net not in BACKBONE_FILES:
        raise ConfigError(f"unknown LPIPS network {net!r}; valid: {', '.join(BACKBONE_FILES)}")
    key = (net, bool(pretrained), int(seed), str(device))
    with _lock:
        if key in _cache:
            return _cache[key]
        try:
            import lpips
        except ImportError:  # pragma: no cover - a declared dependency
            raise ConfigError("LPIPS needs the 'lpips' package: pip install lpips") from None
        with warnings.catch_warnings(), torch.random.fork_rng(devices=[]):
            warnings.simplefilter("ignore")  # torchvision's 'pretrained' deprecation notices
            torch.manual_seed(int(seed))
            model = lpips.LPIPS(net=net, version="0.1", pretrained=True, pnet_rand=True, verbose=False)
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
