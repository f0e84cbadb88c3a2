"""The ``gaussian`` blender's paste-back in torch, on the synthesis's device (a CUDA GPU in practice):
the inverse warp of the edited crop, the alpha blend and the rounding, with the same mask as the
OpenCV path (built once per face on the CPU, where the polygon is rasterised, and cached).

The warp follows :func:`counterface.geometry.warp` step for step: an integer area reduction by ``k``
and a Gaussian pre-filter of ``AA_SIGMA * sqrt(1 / resid^2 - 1)`` when the crop is shrunk, then
bilinear sampling of each window pixel at ``M^-1`` of its centre (OpenCV's ``warpAffine`` convention,
pixel centres at integers: ``grid_sample`` with ``align_corners=True``), replicated borders. It
computes in float32 without OpenCV's intermediate uint8 rounding and 1/32-pixel fixed point, so a
blended pixel may differ from the OpenCV path by a grey level or two (tests/plugins/test_blend_device.py
measures it); pixels where the mask is 0 are the photo's, bit for bit.
"""

from __future__ import annotations

import numpy as np

from counterface import geometry


def _gaussian_1d(sigma: float, ksize: int):
    import cv2

    return cv2.getGaussianKernel(ksize, sigma, cv2.CV_64F)[:, 0]


def warp_crop(crop, M, size: tuple[int, int]):
    """``crop`` (1, 3, S, S) float32 tensor resampled into a (h, w) destination with destination =
    ``M`` (source); returns (1, 3, h, w) float32 on the crop's device."""
    import torch
    import torch.nn.functional as F

    h_out, w_out = size
    M = np.asarray(M, np.float64)
    s = float(geometry.scale_of(M))
    k = max(int(np.floor(0.5 / s)), 1)
    resid = s * k
    sigma = geometry.AA_SIGMA * np.sqrt(1.0 / resid**2 - 1.0) if resid < 1.0 else 0.0
    x = crop
    if k > 1:
        rh, rw = x.shape[-2:]
        pad_h, pad_w = (-rh) % k, (-rw) % k
        if pad_h or pad_w:
            x = F.pad(x, (0, pad_w, 0, pad_h), mode="replicate")
        rh, rw = x.shape[-2:]
        small = (rw // k, rh // k)
        x = F.avg_pool2d(x, k)
        M = geometry.compose(geometry.invert(geometry.resize_matrix((rw, rh), small)), M)
    if sigma > 0.05:
        ksize = int(round(sigma * 3 * 2 + 1)) | 1  # OpenCV's size for 8-bit images (the crop is uint8)
        g = torch.as_tensor(_gaussian_1d(sigma, ksize), dtype=x.dtype, device=x.device)
        r = ksize // 2
        c = x.shape[1]
        x = F.pad(x, (r, r, r, r), mode="replicate")
        x = F.conv2d(x, g.view(1, 1, 1, -1).expand(c, 1, 1, ksize), groups=c)
        x = F.conv2d(x, g.view(1, 1, -1, 1).expand(c, 1, ksize, 1), groups=c)
    H, W = x.shape[-2:]
    inv = geometry.invert(M)  # destination pixel centre -> source pixel centre
    ys, xs = np.meshgrid(np.arange(h_out, dtype=np.float64), np.arange(w_out, dtype=np.float64), indexing="ij")
    u = inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]
    v = inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]
    grid = np.stack([2.0 * u / max(W - 1, 1) - 1.0, 2.0 * v / max(H - 1, 1) - 1.0], axis=-1)
    grid_t = torch.as_tensor(grid[None], dtype=torch.float32, device=x.device)
    return F.grid_sample(x, grid_t, mode="bilinear", padding_mode="border", align_corners=True)


def blend(image: np.ndarray, crop, face, window: tuple[int, int, int, int], m: np.ndarray, device=None) -> np.ndarray:
    """``(1 - m) * image + m * warp(crop)`` over ``window`` (the blender's mask window), on ``device``
    (default: the crop's when it is a tensor, else the CPU). ``image``: (H, W, 3) uint8; ``crop``:
    (S, S, 3) uint8 array or tensor. Returns a new (H, W, 3) uint8 array."""
    import torch

    out = image.copy()
    x0, y0, x1, y1 = window
    if m.size == 0:
        return out
    if device is None:
        device = crop.device if isinstance(crop, torch.Tensor) else torch.device("cpu")
    crop_t = torch.as_tensor(crop, device=device)
    S = int(crop_t.shape[0])
    crop_t = crop_t.permute(2, 0, 1)[None].to(torch.float32)
    M = geometry.compose(face.matrix, geometry.resize_matrix(face.size, S))  # photo -> edited crop
    to_window = geometry.compose(geometry.invert(M), geometry.translation(-x0, -y0))
    face_px = warp_crop(crop_t, to_window, (y1 - y0, x1 - x0))[0].permute(1, 2, 0)
    base = torch.as_tensor(np.ascontiguousarray(image[y0:y1, x0:x1]), device=device)
    bf = base.to(torch.float32)
    mm = torch.as_tensor(m, device=device)[:, :, None]
    mixed = torch.round(bf + mm * (face_px - bf)).clamp_(0, 255).to(torch.uint8)
    mixed = torch.where(mm == 0, base, mixed)
    out[y0:y1, x0:x1] = mixed.cpu().numpy()
    return out
