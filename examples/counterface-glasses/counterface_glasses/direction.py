"""An AttributeDirection whose vector comes from a user-supplied file."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

import counterface
from counterface.errors import ConfigError


class GlassesDirection(counterface.AttributeDirection):
    """Adds alpha * v to the chosen W+ rows; v is read from ``path`` (.npy or .pt)."""

    attribute = "glasses"

    def __init__(self, path: str | None = None, family: str = "stylegan2-ffhq-1024", layers: str | None = "0-5"):
        self.path = path
        self.family = family
        # Eyeglasses live in the coarse layers; keep the default editable.
        self.layers = layers
        self._v = None

    @property
    def default_layers(self):
        from counterface.config import parse_layers

        return parse_layers(self.layers)

    def vector(self):
        import torch

        if self._v is None:
            if not self.path:
                raise ConfigError("the glasses direction needs a file: --set direction.path=FILE.npy")
            p = Path(self.path)
            if not p.is_file():
                raise ConfigError(f"glasses direction file not found: {p}")
            try:
                if p.suffix == ".npy":
                    v = torch.from_numpy(np.load(p, allow_pickle=False).astype(np.float32))
                else:
                    v = torch.load(p, map_location="cpu", weights_only=True)
            except Exception as exc:  # noqa: BLE001
                raise ConfigError(f"cannot read glasses direction {p}: {exc}") from None
            if not isinstance(v, torch.Tensor):
                raise ConfigError(f"{p} does not hold a tensor")
            self._v = v.float().reshape(-1, v.shape[-1]) if v.dim() > 1 else v.float()[None]
        return self._v

    def apply(self, w, alpha: float, layers: Sequence[int] | None = None):
        v = self.vector().to(w.device, w.dtype)
        if v.shape[-1] != w.shape[-1]:
            raise ConfigError(f"direction has {v.shape[-1]} dims but the latent has {w.shape[-1]}")
        rows = list(range(w.shape[-2])) if (layers is None and self.default_layers is None) else list(
            layers if layers is not None else self.default_layers)
        if rows and max(rows) >= w.shape[-2]:
            raise ConfigError(f"layers {rows} out of range for {w.shape[-2]} W+ rows")
        out = w.clone()
        for r in rows:
            out[..., r, :] = out[..., r, :] + alpha * (v[r] if v.shape[0] > 1 else v[0])
        return out
