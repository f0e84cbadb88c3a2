"""The ``arcface`` identity encoder: ArcFace IR-SE50 with the pSp/e4e identity-loss crop."""

from __future__ import annotations

from typing import Sequence

import counterface
from counterface.errors import ConfigError

WEIGHTS = "model_ir_se50.pth"
ARC_SIZE = 112


def check_faces(faces):
    import torch

    if not isinstance(faces, torch.Tensor) or faces.ndim != 4 or faces.shape[1] != 3 \
            or faces.shape[-1] != faces.shape[-2]:
        shape = tuple(faces.shape) if hasattr(faces, "shape") else type(faces).__name__
        raise ConfigError(f"the arcface identity encoder expects square faces (N, 3, S, S), got {shape}")


class ArcFaceIdentity(counterface.IdentityEncoder):
    """ArcFace IR-SE50 embeddings (unit 512-vectors) of FFHQ-aligned faces, as pSp/e4e/PTI's ID loss.

    :param weights: registry name or path of ``model_ir_se50.pth``; ``None`` (or ``"none"``/``"random"``) builds a deterministic
        random network from ``seed`` (tests, the ``tiny`` preset).
    :param units: IR-SE units per stage (4 ints); default the 50-layer body, or ``(1, 1, 1, 1)`` when
        random.
    :param width: channel scale; default 1, or 0.25 when random.
    :param embedding_size: embedding dimension (512 for the real file).
    :param seed: seed of the random network.
    :param device: torch device; embeddings are returned on it (differentiable w.r.t. ``faces``).
    """

    def __init__(self, *, weights: str | None = WEIGHTS, units: Sequence[int] | None = None,
                 width: float | None = None, embedding_size: int = 512, seed: int = 0, device: str = "cpu"):
        from counterface_nets import checkpoints

        self.weights = checkpoints.weights_arg(weights)
        self.units, self.width = checkpoints.check_body(units, width, "arcface")
        self.embedding_size = int(embedding_size)
        self.seed = int(seed)
        self.device = str(device)
        self._model = None

    def _arch(self) -> dict:
        from counterface_nets import checkpoints

        return {"input_size": ARC_SIZE, "embedding_size": self.embedding_size,
                **checkpoints.body_arch(self.weights is None, self.units, self.width)}

    @property
    def module(self):
        """The :class:`counterface_nets.irse.Backbone` (built or loaded on first use)."""
        if self._model is None:
            import torch

            from counterface_nets import irse

            if self.weights is not None:
                from counterface_nets import checkpoints

                self._model = irse.load_arcface(checkpoints.resolve_weights(self.weights), device=self.device, **self._arch())
            else:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(self.seed)
                    model = irse.Backbone(**self._arch())
                self._model = model.eval().requires_grad_(False).to(self.device)
        return self._model

    def embed(self, faces):
        import torch

        from counterface_nets import irse

        check_faces(faces)
        model = self.module
        return model(irse.identity_crop(faces.to(self.device, torch.float32)))
