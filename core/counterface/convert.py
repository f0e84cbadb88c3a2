"""Image <-> tensor conversions shared by the pipeline, the metrics and face matching.

Convention (stated once): images are (H, W, 3) uint8 RGB arrays; tensors are (N, 3, H, W) float32 in
[-1, 1].
"""

from __future__ import annotations

import numpy as np


def to_tensor(image: np.ndarray):
    """(H, W, 3) or (N, H, W, 3) uint8 -> (1 or N, 3, H, W) float32 in [-1, 1] (on the CPU).

    The result keeps the photo's pixel-interleaved memory order (a permuted view), and the two input
    ranks give different strides; convolutions pick their kernels by memory layout, so changing
    this changes downstream float rounding (and so output bytes).
    """
    import torch

    a = np.ascontiguousarray(image)
    if a.ndim == 3:
        return (torch.from_numpy(a).permute(2, 0, 1).float() / 127.5 - 1.0).unsqueeze(0)
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_image(t) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float in [-1, 1], on any device -> (H, W, 3) uint8 (round half to
    even, clamped)."""
    import torch

    if t.dim() == 4:
        t = t[0]
    x = ((t.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(dtype=torch.uint8)
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())
