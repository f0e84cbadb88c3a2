"""Reference embedders: image -> feature row for the outlet model (contract: :class:`counterface.Embedder`)."""

from __future__ import annotations

from typing import Sequence

import numpy as np

import counterface
from counterface.errors import ConfigError, WeightsError
from counterface.errors import reason as _reason
from counterface.weights import WeightsSpec

_TORCHVISION = "BSD-3-Clause (torchvision); trained on ImageNet"

#: torchvision's ImageNet (IMAGENET1K_V1) files; torchvision's URL names carry the sha256 prefix
WEIGHTS: dict[str, WeightsSpec] = {
    "resnet18": WeightsSpec(
        name="resnet18-f37072fd.pth",
        description="ImageNet ResNet-18 (torchvision IMAGENET1K_V1), the resnet18 embedder of `polarization`",
        urls=("https://download.pytorch.org/models/resnet18-f37072fd.pth",),
        size=46830571,
        sha256="f37072fd47e89c5e827621c5baffa7500819f7896bbacec160b1a16c560e07ec",
        sha256_prefix="f37072fd",
        licence=_TORCHVISION,
        managed_by="torchvision",
    ),
    "resnet50": WeightsSpec(
        name="resnet50-0676ba61.pth",
        description="ImageNet ResNet-50 (torchvision IMAGENET1K_V1), the resnet50 embedder of `polarization`",
        urls=("https://download.pytorch.org/models/resnet50-0676ba61.pth",),
        size=102530333,
        sha256="0676ba61b6795bbe1773cffd859882e5e297624d384b6993f7c9e683e722fb8a",
        sha256_prefix="0676ba61",
        licence=_TORCHVISION,
        managed_by="torchvision",
    ),
}

_RANDOM = (None, "", "none", "random")


def _check_images(images: Sequence[np.ndarray], who: str) -> None:
    for im in images:
        if not isinstance(im, np.ndarray) or im.ndim != 3 or im.shape[2] != 3 or im.dtype != np.uint8:
            shape = getattr(im, "shape", type(im).__name__)
            raise ConfigError(f"the {who} embedder expects (H, W, 3) uint8 RGB images, got {shape}")


def _resize(image: np.ndarray, size: int) -> np.ndarray:
    import cv2

    interp = cv2.INTER_AREA if min(image.shape[:2]) >= size else cv2.INTER_LINEAR
    return cv2.resize(image, (size, size), interpolation=interp)


class PixelEmbedder(counterface.Embedder):
    """Downsampled pixels: the image resized to ``size`` x ``size`` (area averaging), RGB in [0, 1],
    flattened to ``3 * size**2`` features. Offline and instant; for tests, smoke runs and planted
    visual marks, not for real photos.

    :param size: side of the downsampled image.
    """

    def __init__(self, *, size: int = 16):
        self.size = int(size)
        if self.size < 1:
            raise ValueError("size must be >= 1")

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        _check_images(images, "pixels")
        if not len(images):
            return np.zeros((0, 3 * self.size ** 2), np.float32)
        return np.stack([_resize(im, self.size).astype(np.float32).ravel() / 255.0 for im in images])


class _TorchEmbedder(counterface.Embedder):
    """Shared batching: ``_forward(batch)`` maps (B, 3, S, S) float32 to (B, D)."""

    batch_size = 16
    device = "cpu"

    def _tensor(self, images: Sequence[np.ndarray], size: int):
        import torch

        arr = np.stack([_resize(im, size) for im in images]).astype(np.float32) / 255.0
        return torch.from_numpy(arr).permute(0, 3, 1, 2).contiguous()

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        import torch

        _check_images(images, self.name or type(self).__name__)
        rows = []
        with torch.no_grad():
            for i in range(0, len(images), self.batch_size):
                out = self._forward(self._tensor(images[i:i + self.batch_size], self._size))
                rows.append(out.detach().to("cpu", torch.float32).numpy())
        if not rows:
            return np.zeros((0, 0), np.float32)
        return np.concatenate(rows).astype(np.float32)


class ArcFaceEmbedder(_TorchEmbedder):
    """ArcFace IR-SE50 identity embeddings (the ``arcface`` identity component, unit 512-vectors).

    The network expects FFHQ-aligned faces: give ``aligner`` (e.g. ``dlib``) to crop each image's
    largest face first (an image without a face is embedded whole); without it the whole image is
    resized, which suits images that already are face crops.

    :param weights: passed to the identity component (``none`` builds its deterministic random
        network: tests only).
    :param aligner: name of an aligner component, or ``none``.
    :param seed: seed of the random network when ``weights`` is ``none``.
    """

    _size = 256

    def __init__(self, *, weights: str | None = "model_ir_se50.pth", aligner: str | None = None, seed: int = 0,
                 device: str = "cpu"):
        self.weights = None if weights in _RANDOM else str(weights)
        self.aligner = None if aligner in _RANDOM else str(aligner)
        self.seed = int(seed)
        self.device = str(device)
        self._identity = None
        self._aligner = None

    def embed(self, images: Sequence[np.ndarray]) -> np.ndarray:
        if self.aligner is not None:
            _check_images(images, "arcface")
            if self._aligner is None:
                self._aligner = counterface.create("aligner", self.aligner)
            crops = []
            for im in images:
                faces = self._aligner.align(im, self._size)
                crops.append(faces[0].crop if faces else im)
            images = crops
        return super().embed(images)

    def _forward(self, batch):
        if self._identity is None:
            self._identity = counterface.create("identity", "arcface", weights=self.weights or "none",
                                                seed=self.seed, device=self.device)
        return self._identity.embed(batch * 2.0 - 1.0)


class TorchvisionResNet(_TorchEmbedder):
    """A torchvision ImageNet ResNet without its classifier: globally pooled features (512-d for
    resnet18, 2048-d for resnet50) of the image resized to 224 x 224 with ImageNet normalisation.

    :param arch: ``resnet18`` or ``resnet50``.
    :param weights: registry name or path of torchvision's ImageNet file (fetched through
        ``counterface.weights`` on first use, a one-time download, loaded with
        ``weights_only=True``); ``none`` builds a seeded random network (tests only).
    :param seed: seed of the random network.
    """

    _size = 224

    def __init__(self, *, arch: str = "resnet18", weights: str | None = "default", seed: int = 0, device: str = "cpu"):
        if arch not in WEIGHTS:
            raise ValueError(f"arch must be one of {', '.join(WEIGHTS)}")
        self.arch = arch
        self.weights = None if weights in _RANDOM else (WEIGHTS[arch].name if weights == "default" else str(weights))
        self.seed = int(seed)
        self.device = str(device)
        self._model = None

    @property
    def module(self):
        if self._model is None:
            import torch
            import torchvision

            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = getattr(torchvision.models, self.arch)(weights=None)
            if self.weights is not None:
                from pathlib import Path

                from counterface import weights as wmod

                path = Path(self.weights).expanduser()
                if not path.is_file():  # a registry name: the cache, a lab mirror or a one-time download
                    path = wmod.fetch(self.weights)
                try:
                    sd = torch.load(str(path), map_location="cpu", weights_only=True)
                    model.load_state_dict(sd, strict=True)
                except Exception as exc:  # noqa: BLE001 - pickle, zip, key and shape errors alike
                    raise WeightsError(f"{path}: not torchvision's {self.arch} state dict "
                                       f"({_reason(exc)})") from None
            model.fc = torch.nn.Identity()
            self._model = model.eval().requires_grad_(False).to(self.device)
        return self._model

    def _forward(self, batch):
        import torch

        mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
        return self.module(((batch - mean) / std).to(self.device))


def resnet18(*, weights: str | None = "default", seed: int = 0, device: str = "cpu") -> TorchvisionResNet:
    """torchvision ImageNet ResNet-18 features (see :class:`TorchvisionResNet`)."""
    return TorchvisionResNet(arch="resnet18", weights=weights, seed=seed, device=device)


def resnet50(*, weights: str | None = "default", seed: int = 0, device: str = "cpu") -> TorchvisionResNet:
    """torchvision ImageNet ResNet-50 features (see :class:`TorchvisionResNet`)."""
    return TorchvisionResNet(arch="resnet50", weights=weights, seed=seed, device=device)
