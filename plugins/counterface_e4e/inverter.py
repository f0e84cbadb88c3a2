"""The ``e4e`` inverter: Encoder4Editing + pSp's ``latent_avg`` (step 2 of SmileGAN-PTI)."""

from __future__ import annotations

from typing import Sequence

import counterface
from counterface.errors import ConfigError

#: latent space of the released ``e4e_ffhq_encode.pt`` (its decoder is the FFHQ-1024 StyleGAN2)
FAMILY = "stylegan2-ffhq-1024"
WEIGHTS = "e4e_ffhq_encode.pt"


def check_faces(faces, what: str):
    import torch

    if not isinstance(faces, torch.Tensor) or faces.ndim != 4 or faces.shape[1] != 3:
        shape = tuple(faces.shape) if hasattr(faces, "shape") else type(faces).__name__
        raise ConfigError(f"{what} expects faces of shape (N, 3, S, S), got {shape}")
    if faces.shape[-1] != faces.shape[-2]:
        raise ConfigError(f"{what} expects square faces, got {tuple(faces.shape[-2:])}")


class E4EInverter(counterface.Inverter):
    """Encoder4Editing (IR-SE50 + progressive style heads): aligned face -> W+ = codes + latent_avg.

    :param weights: registry name or path of an e4e checkpoint (``e4e_ffhq_encode.pt``); ``None``
        (or ``"none"``/``"random"``) builds a deterministic random network from ``seed`` (tests, the ``tiny`` preset) whose
        ``num_ws``/``w_dim``/``latent_avg`` come from the generator passed to :meth:`invert`.
    :param input_size: side of the encoder input; faces of any size are resized to it.
    :param units: IR-SE units per stage (4 ints); default: the file's 50-layer body, or
        ``(1, 1, 1, 1)`` for a random network.
    :param width: channel scale of the body; default 1, or 0.25 for a random network.
    :param seed: seed of the random network.
    :param device: torch device the encoder runs on; results are returned on CPU.
    """

    def __init__(self, *, weights: str | None = WEIGHTS, input_size: int = 256,
                 units: Sequence[int] | None = None, width: float | None = None, seed: int = 0,
                 device: str = "cpu"):
        if input_size < 32 or int(input_size) & (int(input_size) - 1):
            raise ConfigError(f"e4e input_size must be a power of two >= 32, got {input_size}")
        from counterface_nets import checkpoints

        self.weights = checkpoints.weights_arg(weights)
        self.input_size = int(input_size)
        self.units, self.width = checkpoints.check_body(units, width, "e4e")
        self.seed = int(seed)
        self.device = str(device)
        self.family = FAMILY if self.weights is not None else "any"
        self._model = None
        self._key = None

    # -- network -------------------------------------------------------------------------------
    def _arch(self) -> dict:
        from counterface_nets import checkpoints

        return {"input_size": self.input_size, **checkpoints.body_arch(self.weights is None, self.units, self.width)}

    def encoder(self, generator=None):
        """The loaded (or random) :class:`counterface_nets.e4e.Encoder4Editing`, built once."""
        import torch

        from counterface_nets import checkpoints, e4e

        if self.weights is not None:
            if self._model is None:
                self._model = e4e.load_e4e(checkpoints.resolve_weights(self.weights), device=self.device, **self._arch())
            return self._model
        if generator is None:
            raise ConfigError("the e4e inverter with weights=None needs the generator (for num_ws, w_dim, w_avg)")
        key = (int(generator.num_ws), int(generator.w_dim))
        if self._model is None or self._key != key:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.seed)
                model = e4e.Encoder4Editing(style_count=key[0], w_dim=key[1], **self._arch())
            self._model, self._key = model.eval().requires_grad_(False).to(self.device), key
        with torch.no_grad():
            self._model.latent_avg.copy_(generator.w_avg.detach().to(self.device).float().expand(*key))
        return self._model

    @property
    def module(self):
        """The encoder network (a file's is loaded on first use; a random one exists after ``invert``)."""
        return self.encoder() if self.weights is not None else self._model

    # -- Inverter contract -----------------------------------------------------------------------
    def invert(self, faces, generator=None):
        import torch

        check_faces(faces, "the e4e inverter")
        model = self.encoder(generator)
        if generator is not None and (model.style_count, model.w_dim) != (generator.num_ws, generator.w_dim):
            raise ConfigError(
                f"e4e encodes {model.style_count} x {model.w_dim} W+ but the generator "
                f"{getattr(generator, 'name', '')!r} has {generator.num_ws} x {generator.w_dim}"
            )
        from counterface_nets import irse

        x = irse.resize_square(faces.to(self.device, torch.float32), self.input_size)
        with torch.inference_mode():
            w = model.encode(x.contiguous())
        return w.float().cpu().clone()
