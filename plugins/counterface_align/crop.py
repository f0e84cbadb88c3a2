"""From 68 landmarks to a :class:`counterface.AlignedFace`: the part both aligners share.

The crop geometry is :func:`counterface.geometry.ffhq_matrix` (the FFHQ dataset script's oriented
square, as an exact 2x3 similarity). The pixels follow the script where it matters:

* shrinking is antialiased (area reduction + small Gaussian in :func:`counterface.geometry.warp`);
* outside the photo the crop is filled by reflection, then faded toward a blurred copy and the
  median colour as the distance from the photo grows (the script's ``enable_padding`` look:
  blur sigma 2 % of the crop, full fade at 30 % of the crop side beyond the photo edge).

The matrix stays exact whatever the pixels look like, so the paste-back is exact too.
"""

from __future__ import annotations

from typing import Iterable, Sequence

import numpy as np

from counterface import geometry
from counterface.types import AlignedFace


def as_rgb_uint8(image) -> np.ndarray:
    """Accept what Python callers pass (gray, RGBA, 16-bit, float in [0, 1]) and return (H, W, 3)
    uint8 RGB. Photos read with :func:`counterface.read_image` are already in that form."""
    img = np.asarray(image)
    if img.ndim == 2:
        img = img[:, :, None]
    if img.ndim != 3 or img.shape[2] not in (1, 2, 3, 4) or img.shape[0] == 0 or img.shape[1] == 0:
        raise ValueError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image, got shape {img.shape}")
    if img.shape[2] in (2, 4):  # drop alpha
        img = img[:, :, :-1]
    if img.shape[2] == 1:
        img = np.repeat(img, 3, axis=2)
    if img.dtype == np.uint8:
        return np.ascontiguousarray(img)
    if img.dtype == np.uint16:
        return np.ascontiguousarray((img >> 8).astype(np.uint8))
    if np.issubdtype(img.dtype, np.floating):
        hi = 1.0 if float(np.nanmax(img, initial=0.0)) <= 1.0 else 255.0
        return np.ascontiguousarray(np.clip(np.rint(np.nan_to_num(img) * (255.0 / hi)), 0, 255).astype(np.uint8))
    return np.ascontiguousarray(np.clip(img, 0, 255).astype(np.uint8))


def ffhq_crop(image: np.ndarray, matrix, size: int, fade: bool = True) -> np.ndarray:
    """The ``size`` x ``size`` crop of ``image`` under ``matrix`` (photo -> crop), with the FFHQ
    script's look outside the photo when ``fade`` is on."""
    import cv2

    crop = geometry.warp(image, matrix, size, border="reflect")
    if not fade:
        return crop
    src = geometry.grid_to_source(matrix, size)
    dist = geometry.outside_distance(src, image.shape)
    worst = float(dist.max())
    if worst <= 0.0:
        return crop
    side = size / geometry.scale_of(matrix)  # the crop square's side in photo pixels
    pad = max(0.3 * side, worst)
    m = np.clip(dist / pad, 0.0, 1.0).astype(np.float32)[:, :, None]
    cf = crop.astype(np.float32)
    sigma = 0.02 * size
    blurred = cv2.GaussianBlur(cf, (0, 0), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT)
    cf += (blurred - cf) * np.clip(3.0 * m, 0.0, 1.0)
    median = np.median(crop.reshape(-1, crop.shape[2]), axis=0).astype(np.float32)
    cf += (median - cf) * m
    return np.clip(np.rint(cf), 0, 255).astype(np.uint8)


def quad_side(landmarks: np.ndarray) -> float:
    """Side of the FFHQ crop square in photo pixels (how big a face is, for ordering)."""
    x = geometry.ffhq_vectors(landmarks)["x"]
    return float(2.0 * np.linalg.norm(x))


def usable(landmarks: np.ndarray) -> bool:
    """Finite landmarks whose crop square is at least 2 photo pixels wide."""
    lm = np.asarray(landmarks, dtype=np.float64)
    return lm.shape == (68, 2) and bool(np.all(np.isfinite(lm))) and quad_side(lm) >= 2.0


def align_one(image: np.ndarray, landmarks, size: int, *, box=None, score=None, index: int = 0,
              fade: bool = True) -> AlignedFace:
    """One :class:`AlignedFace` from 68 landmarks in photo pixels. Its edit regions are built from the
    landmarks when asked for (``face.region(...)``; a :class:`counterface.types.Region` carries its
    own dilation)."""
    lm = np.asarray(landmarks, dtype=np.float64).reshape(68, 2)
    M = geometry.ffhq_matrix(lm, size)
    crop_lm = geometry.apply(M, lm)
    return AlignedFace(
        landmarks=lm,
        matrix=M,
        crop=ffhq_crop(image, M, size, fade=fade),
        crop_landmarks=crop_lm,
        box=None if box is None else tuple(float(v) for v in box),
        score=None if score is None else float(score),
        index=index,
    )


def align_all(image: np.ndarray, found: Iterable[tuple[np.ndarray, Sequence[float] | None, float | None]],
              size: int, *, fade: bool = True) -> list[AlignedFace]:
    """Align every ``(landmarks, box, score)``; largest face (crop square) first, ``index`` set."""
    kept = [(np.asarray(lm, dtype=np.float64).reshape(68, 2), box, score) for lm, box, score in found]
    kept = [k for k in kept if usable(k[0])]
    kept.sort(key=lambda k: -quad_side(k[0]))
    return [align_one(image, lm, size, box=box, score=score, index=i, fade=fade)
            for i, (lm, box, score) in enumerate(kept)]
