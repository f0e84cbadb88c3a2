"""Loading StyleGAN2 generators from released files (rosinality ``g_ema``, the ``decoder.*`` part of
e4e/pSp files, bare state dicts): the architecture inferred from the tensors, strict key/shape checks,
nothing in the file executed. The network itself is :mod:`counterface_nets.stylegan2`.
"""

from __future__ import annotations

import re
from typing import Mapping

import torch

from . import checkpoints
from .stylegan2 import FFHQ_CONFIG, Generator

_STYLE_RE = re.compile(r"^style\.(\d+)\.weight$")
_NOISE_RE = re.compile(r"^noises\.noise_(\d+)$")


def _meta_generator(**cfg) -> Generator:
    with torch.device("meta"):
        return Generator(**cfg)


def infer_config(sd: Mapping[str, torch.Tensor]) -> dict:
    """Constructor arguments that best explain a generator state dict.

    Size comes from the number of noise buffers / ToRGB layers, ``style_dim`` and ``n_mlp`` from the
    mapping layers, ``max_channels`` from the constant input; the channel multiplier is the candidate
    whose key/shape set matches the most entries (so a single damaged tensor is reported by name
    instead of changing the architecture). Falls back to the FFHQ-1024 configuration.
    """
    cfg = dict(FFHQ_CONFIG)

    def shape(k):
        v = sd.get(k)
        return tuple(v.shape) if isinstance(v, torch.Tensor) else None

    n_mlp = sum(1 for k in sd if _STYLE_RE.match(k))
    if n_mlp and shape("style.1.weight") and len(shape("style.1.weight")) == 2:
        cfg["n_mlp"] = n_mlp
        cfg["style_dim"] = shape("style.1.weight")[1]
    n_noise = sum(1 for k in sd if _NOISE_RE.match(k))
    n_rgb = sum(1 for k in sd if re.match(r"^to_rgbs\.\d+\.bias$", k))
    if n_noise >= 3 and n_noise % 2 == 1:
        cfg["size"] = 2 ** ((n_noise - 1) // 2 + 2)
    elif n_rgb:
        cfg["size"] = 2 ** (n_rgb + 2)
    s = shape("input.input")
    if s and len(s) == 4 and 0 < s[1] < 512:
        cfg["max_channels"] = s[1]
    best, best_score = cfg, -1
    for cm in (2, 1, 4, 8):
        cand = dict(cfg, channel_multiplier=cm)
        try:
            own = _meta_generator(**cand).state_dict()
        except (ValueError, RuntimeError):
            continue
        score = sum(1 for k, v in own.items() if shape(k) == tuple(v.shape))
        if score > best_score:
            best, best_score = cand, score
    return best


def _generator_state(ckpt, path, prefix):
    """(state dict, latent_avg or None, what) from a loaded checkpoint object."""
    checkpoints.require_mapping(ckpt, path, "StyleGAN2 checkpoint")
    latent_avg = ckpt.get("latent_avg")
    if prefix is not None:
        sd = checkpoints.require_mapping(ckpt.get("state_dict", ckpt), path, "state dict")
        return checkpoints.strip_prefix(sd, prefix), latent_avg, f"StyleGAN2 generator (prefix {prefix!r})"
    if "g_ema" in ckpt:
        sd = checkpoints.require_mapping(ckpt["g_ema"], path, "rosinality g_ema state dict")
        return sd, latent_avg, "StyleGAN2 generator ('g_ema')"
    if "state_dict" in ckpt:
        sd = checkpoints.require_mapping(ckpt["state_dict"], path, "e4e/pSp state dict")
        if any(str(k).startswith("decoder.") for k in sd):
            return checkpoints.strip_prefix(sd, "decoder."), latent_avg, "StyleGAN2 generator (e4e 'decoder.')"
        first = ", ".join(list(map(str, sd))[:5])
        raise checkpoints.WeightsError(
            f"{path}: not a StyleGAN2 checkpoint: its 'state_dict' has no 'decoder.*' keys (first keys: {first})")
    if "style.1.weight" in ckpt:  # a bare generator state dict
        return dict(ckpt), None, "StyleGAN2 generator state dict"
    first = ", ".join(list(map(str, ckpt))[:5])
    raise checkpoints.WeightsError(
        f"{path}: not a StyleGAN2 checkpoint: expected top-level 'g_ema' (rosinality) or 'state_dict' with "
        f"'decoder.*' keys (e4e/pSp); first keys: {first}")


def load_generator(path, device="cpu", prefix: str | None = None, **config) -> Generator:
    """Load a StyleGAN2 :class:`Generator` (eval mode, on ``device``) from a checkpoint file.

    Accepts rosinality files ``{'g_ema': sd, 'latent_avg': (512,), ['g', 'd']}`` (only ``g_ema`` and
    ``latent_avg`` are read), e4e/pSp files ``{'state_dict': {'encoder.*', 'decoder.*'}, 'opts',
    'latent_avg'}`` (the ``decoder.`` part), a bare generator state dict, or any file with ``prefix``.
    The architecture is inferred from the tensors unless given in ``config``. ``latent_avg`` (if the
    file has one) is attached as ``module.latent_avg``. Errors are :class:`counterface.WeightsError`
    naming the file and the first offending keys; nothing in the file is executed.
    """
    with torch.inference_mode(False):  # normal tensors even when called under inference_mode (tuners need them)
        return checkpoints.wrap_errors(path, "StyleGAN2 checkpoint",
                                       lambda: _load_generator(path, device, prefix, config))


def _load_generator(path, device, prefix, config) -> Generator:
    ckpt = checkpoints.safe_load(path, what="StyleGAN2 checkpoint")
    sd, latent_avg, what = _generator_state(ckpt, path, prefix)
    cfg = infer_config(sd)
    cfg.update(config)
    try:
        gen = _meta_generator(**cfg)
    except ValueError as exc:
        raise checkpoints.WeightsError(f"{path}: cannot build a StyleGAN2 generator for it ({exc})") from None
    gen = gen.to_empty(device="cpu")
    checkpoints.load_strict(gen, sd, path=path, what=what)
    if latent_avg is not None:
        if not isinstance(latent_avg, torch.Tensor) or latent_avg.shape[-1] != gen.style_dim:
            raise checkpoints.WeightsError(f"{path}: 'latent_avg' is not a (..., {gen.style_dim}) tensor")
        gen.latent_avg = latent_avg.detach().to(device=device, dtype=torch.float32).clone()  # own memory, not the file map
    return gen.to(device).eval()


__all__ = ["infer_config", "load_generator"]
