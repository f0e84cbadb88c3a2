"""The ``stylegan2`` generator component: rosinality's StyleGAN2 behind :class:`counterface.Generator`."""

from __future__ import annotations

import counterface

#: The FFHQ 1024 generator's latent-space name; directions and inverters for it declare the same.
FFHQ_FAMILY = "stylegan2-ffhq-1024"
#: Samples averaged for ``w_avg`` when the weights carry no ``latent_avg``.
W_AVG_SAMPLES = 4096


class StyleGAN2Generator(counterface.Generator):
    """StyleGAN2 (rosinality layout): FFHQ 1024 from e4e_ffhq_encode.pt by default, or a random network.

    Parameters (keyword only, all optional):

    - ``weights``: a registered weights name (``"e4e_ffhq_encode.pt"``, ``"stylegan2-ffhq-config-f.pt"``)
      or a file path (rosinality ``{'g_ema': ...}`` or an e4e/pSp file); ``None`` builds a randomly
      initialised network from ``seed`` and the architecture parameters below (tests, the tiny preset);
      the strings ``"none"``/``"random"`` mean the same (TOML has no null).
    - ``size``, ``style_dim``, ``n_mlp``, ``channel_multiplier``, ``max_channels``: architecture of a
      random network (a file's architecture is read from the file). A tiny, fast network:
      ``size=64, style_dim=64, n_mlp=2, channel_multiplier=1, max_channels=32``.
    - ``seed``: random initialisation seed (``weights=None``) and the ``w_avg`` sampling seed.
    - ``device``: torch device string.

    The network is built lazily on first use, so creating the component never touches the disk.
    ``synthesize`` uses the stored noise buffers (deterministic) and supports autograd; wrap calls in
    ``torch.inference_mode()`` when no gradients are needed (it is much faster and lighter then).
    """

    def __init__(self, *, weights: str | None = "e4e_ffhq_encode.pt", size: int = 1024, style_dim: int = 512,
                 n_mlp: int = 8, channel_multiplier: int = 2, max_channels: int = 512, seed: int = 0,
                 device: str = "cpu"):
        from counterface_nets import checkpoints

        self.weights = checkpoints.weights_arg(weights)  # "none"/"random" = None (TOML and --set have no null)
        self.seed = int(seed)
        self.device = str(device)
        self._module = None
        self._w_avg = None
        if self.weights is None:
            for name, v in (("size", size), ("style_dim", style_dim), ("n_mlp", n_mlp),
                            ("channel_multiplier", channel_multiplier), ("max_channels", max_channels)):
                if not isinstance(v, int) or isinstance(v, bool) or v < 1:
                    raise counterface.ConfigError(f"stylegan2: {name} must be a positive integer, got {v!r}")
            if size < 8 or size & (size - 1):
                raise counterface.ConfigError(f"stylegan2: size must be a power of two >= 8, got {size}")
            self.size, self.style_dim, self.n_mlp = size, style_dim, n_mlp
            self.channel_multiplier, self.max_channels = channel_multiplier, max_channels
            self.family = f"stylegan2-random-s{size}-d{style_dim}-seed{self.seed}"
        else:
            self.family = FFHQ_FAMILY  # checked against the file's architecture when it is loaded

    # ------------------------------------------------------------------ lazy network
    @property
    def module(self):
        """The ``counterface_nets.stylegan2.Generator`` (eval mode); built or loaded on first access."""
        if self._module is None:
            self._module = self._build()
        return self._module

    def _build(self):
        from counterface_nets import stylegan2

        if self.weights is None:
            return stylegan2.random_generator(
                seed=self.seed, device=self.device, size=self.size, style_dim=self.style_dim, n_mlp=self.n_mlp,
                channel_multiplier=self.channel_multiplier, max_channels=self.max_channels)
        from counterface_nets import checkpoints, stylegan2_load

        gen = stylegan2_load.load_generator(checkpoints.resolve_weights(self.weights), device=self.device)
        cfg = gen.config()
        if cfg != stylegan2.FFHQ_CONFIG:
            self.family = "stylegan2-s{size}-d{style_dim}-m{n_mlp}-c{channel_multiplier}".format(**cfg)
        return gen

    @property
    def num_ws(self) -> int:
        if self.weights is None:
            return 2 * (self.size.bit_length() - 1) - 2
        return self.module.num_ws

    @property
    def w_dim(self) -> int:
        return self.style_dim if self.weights is None else self.module.style_dim

    @property
    def resolution(self) -> int:
        return self.size if self.weights is None else self.module.size

    # ------------------------------------------------------------------ API
    def mapping(self, z):
        """z (N, w_dim) -> w (N, w_dim)."""
        return self.module.mapping(z.to(self.device, dtype=self._dtype()))

    def synthesize(self, ws):
        """W+ (N, num_ws, w_dim) -> images (N, 3, R, R), stored noise, nominally in [-1, 1]."""
        mod = self.module
        if ws.ndim != 3 or ws.shape[1:] != (mod.num_ws, mod.style_dim):
            raise counterface.ConfigError(
                f"stylegan2: ws must have shape (N, {mod.num_ws}, {mod.style_dim}), got {tuple(ws.shape)}")
        mode = self._kernels()
        ws = ws.to(self.device, dtype=self._dtype())
        if ws.shape[0] > 1 and ws.device.type in self.batched_devices and mode != "exact":
            return mod.synthesize(ws, impl="batched")  # shared weights: plain modulated convs, one batch
        return mod.synthesize(ws)

    def _kernels(self) -> str:
        """The network's kernels follow the run's numerics (:func:`counterface.device.numerics`):
        ``exact`` for the exact path (fp32 + deterministic), else ``auto`` (fused up-sampling
        convolutions on CUDA, plain modulated convolutions for shared weights)."""
        from counterface.device import numerics

        mode = "exact" if numerics().get("exact") else "auto"
        mod = self.module
        if mod.__dict__.get("_kernels_mode") != mode:
            mod.set_kernels(mode)
            mod.__dict__["_kernels_mode"] = mode
        return mode

    #: device types that use the batched path in synthesize_tuned
    batched_devices = ("cuda",)

    def synthesize_tuned(self, ws, tensors=None):
        """W+ (B, num_ws, w_dim) through B differently tuned copies of the network at once: the
        batched path (one grouped convolution per layer; the modulated convolution builds per-sample
        weights anyway), with ``tensors`` {name: (B, *shape)} swapped in by
        :func:`torch.func.functional_call`. Differentiable in ``ws`` and ``tensors``.

        Layers whose weights are shared (not in ``tensors``) run as plain modulated convolutions (an
        ordinary batch; no weight gradients when frozen) unless the run is exact.
        On CUDA only: elsewhere the one-sample fast path is faster (measured on the CPU: grouped
        convolutions lose to channels-last one-sample convolutions), so samples go one at a time."""
        import torch
        from counterface_nets import stylegan2

        mod = self.module
        if ws.ndim != 3 or ws.shape[1:] != (mod.num_ws, mod.style_dim):
            raise counterface.ConfigError(
                f"stylegan2: ws must have shape (N, {mod.num_ws}, {mod.style_dim}), got {tuple(ws.shape)}")
        ws = ws.to(self.device, dtype=self._dtype())
        self._kernels()
        if ws.device.type not in self.batched_devices:
            return super().synthesize_tuned(ws, tensors)
        if not tensors:
            return mod.synthesize(ws, impl="batched")
        return torch.func.functional_call(mod, stylegan2.per_sample(mod, tensors), (ws,), {"impl": "batched"})

    @property
    def w_avg(self):
        """(w_dim,) mean latent: the file's ``latent_avg`` (averaged over rows for an e4e (18, 512) one),
        else the mean of ``mapping`` over ``W_AVG_SAMPLES`` z drawn from ``seed``."""
        if self._w_avg is None:
            import torch

            mod = self.module
            la = getattr(mod, "latent_avg", None)
            if la is not None:
                w = la.reshape(-1, mod.style_dim).mean(0)
            else:
                g = torch.Generator().manual_seed(self.seed)
                z = torch.randn(W_AVG_SAMPLES, mod.style_dim, generator=g)
                with torch.inference_mode():
                    w = mod.mapping(z.to(self.device)).mean(0)
                w = w.clone()
            self._w_avg = w.detach().to(self.device)
        return self._w_avg

    def _dtype(self):
        return next(self.module.parameters()).dtype

    def describe(self) -> dict:
        d = {"weights": self.weights, "seed": self.seed, "family": self.family}
        if self.weights is None:
            d.update(size=self.size, style_dim=self.style_dim, n_mlp=self.n_mlp,
                     channel_multiplier=self.channel_multiplier, max_channels=self.max_channels)
        return d
