"""Helpers shared by several test files: synthetic photos, manifests, broken image files, the fakes.

Import as ``from tests.helpers import ...``.
"""

from __future__ import annotations

import contextlib
import csv
import struct
import zlib
from pathlib import Path
from typing import Iterable, Iterator, Sequence

import numpy as np


def png_header(w: int, h: int, *, idat: bool = False) -> bytes:
    """A PNG whose header claims ``w`` x ``h`` RGB pixels (a decompression bomb when large).

    ``idat`` adds a tiny image-data chunk, so a decoder gets past the chunk scan to the size check.
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    ihdr = chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    body = chunk(b"IDAT", zlib.compress(b"\0" * 64)) if idat else b""
    return b"\x89PNG\r\n\x1a\n" + ihdr + body + chunk(b"IEND", b"")


def synthetic_photos(folder: Path, n: int, *, size: tuple[int, int] = (60, 80), prefix: str = "p") -> list[Path]:
    """``n`` noise PNGs ``<prefix><i>.png`` (seeded by ``i``) in ``folder``: faces for the fake aligner."""
    from PIL import Image

    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(n):
        p = folder / f"{prefix}{i}.png"
        Image.fromarray((np.random.default_rng(i).random((*size, 3)) * 255).astype(np.uint8)).save(p)
        paths.append(p)
    return paths


def write_manifest(path: Path, files: Iterable, labels: Sequence[str] | None = None) -> Path:
    """A CSV manifest ``path,politician``; the label defaults to the file stem up to its first ``_``."""
    files = list(files)
    labels = labels or [Path(p).stem.split("_")[0] for p in files]
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["path", "politician"])
        w.writerows([str(p), label] for p, label in zip(files, labels, strict=True))
    return path


def write_broken_images(folder: Path, jpeg: bytes) -> dict[str, str]:
    """Broken inputs built from a real JPEG's bytes -> the batch failure reason each must get."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"truncated.jpg": jpeg[: len(jpeg) // 3], "text.jpg": b"not a photo, just text\n", "zero.jpg": b""}
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return {name: "unreadable" for name in files}


@contextlib.contextmanager
def fake_components() -> Iterator[None]:
    """The fake components of ``counterface.testing`` registered (preset ``fake``), removed afterwards."""
    from counterface import registry, testing

    testing.install()
    try:
        yield
    finally:
        testing.uninstall()
        registry.reset()


# -- latents ---------------------------------------------------------------------------------------------
def planted(d=512, n=6000, b=0.3, noise=0.05, seed=0, normal=None):
    """Gaussian latents labelled by sign(normal . w + b), a fraction ``noise`` of labels flipped."""
    rng = np.random.default_rng(seed)
    if normal is None:
        normal = rng.normal(size=d)
        normal /= np.linalg.norm(normal)
    x = rng.normal(size=(n, d))
    y = (x @ normal + b > 0).astype(np.int64)
    flip = rng.random(n) < noise
    y[flip] = 1 - y[flip]
    return x, y, normal


def pair_digests(out: Path) -> dict[str, str]:
    """sha256 of every pair image of a batch folder, by name (sidecars left out: their timings differ)."""
    import hashlib

    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted((Path(out) / "pairs").iterdir())
            if p.suffix != ".json"}


# -- landmarks of synthetic faces ---------------------------------------------------------------------
def mouth_landmarks(width: float = 1.0, lift: float = 0.0, opening: float = 0.0, size: int = 256) -> np.ndarray:
    """Canonical landmarks with the mouth reshaped: ``width`` scales the corner-to-corner distance,
    ``lift`` raises the corners (fraction of the crop), ``opening`` drops the lower lip."""
    lm = _canonical(size).copy()
    mouth = lm[48:68]
    centre = mouth.mean(0)
    mouth[:, 0] = centre[0] + (mouth[:, 0] - centre[0]) * width
    for i in (0, 6, 12, 16):  # outer/inner corners 48, 54, 60, 64
        mouth[i, 1] -= lift * size
    for i in (7, 8, 9, 10, 11, 17, 18, 19):  # lower outer 55-59 and lower inner 65-67
        mouth[i, 1] += opening * size
    lm[48:68] = mouth
    return lm


def face_landmarks(lift=0.0, width=40.0, cx=100.0, eye_y=80.0, mouth_y=140.0):
    """68 iBUG landmarks of an upright face in image coordinates (y grows downward)."""
    lm = np.zeros((68, 2))
    lm[:17] = np.c_[np.linspace(50, 150, 17), np.linspace(80, 170, 17)]
    lm[36:42] = [cx - 30, eye_y]
    lm[42:48] = [cx + 30, eye_y]
    lm[48:68] = [cx, mouth_y]
    lm[48] = [cx - width / 2, mouth_y - lift]  # lift > 0: corners higher in the picture = smaller y
    lm[54] = [cx + width / 2, mouth_y - lift]
    lm[51], lm[57] = [cx, mouth_y - 6], [cx, mouth_y + 6]
    return lm


def _canonical(size: int) -> np.ndarray:
    from counterface.testing import canonical_landmarks

    return canonical_landmarks(size)
