"""LPIPS for the tuner: :mod:`counterface.perceptual` (shared with the evaluation metrics).

Kept as the tuner's import point; ``build_lpips(net, pretrained, seed, device)`` is
:func:`counterface.perceptual.build`. See that module for where the heads and trunk come from.
"""

from __future__ import annotations

from counterface.perceptual import BACKBONE_FILES, MIN_SIDE, distance, load_backbone
from counterface.perceptual import build as build_lpips

__all__ = ["BACKBONE_FILES", "MIN_SIDE", "build_lpips", "distance", "load_backbone"]
