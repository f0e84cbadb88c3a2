"""Reference networks in pure PyTorch, with upstream parameter names (a plain library: no hooks).

Modules: :mod:`.stylegan2` (rosinality Generator; :mod:`.stylegan2_load` reads its files), :mod:`.irse` (InsightFace IR-SE50 Backbone),
:mod:`.e4e` (Encoder4Editing + pSp wrapper logic), :mod:`.ops` (FIR filters, fused bias-act),
:mod:`.checkpoints` (safe loading). The loaders below are the public entry points; they import the
network modules lazily so ``import counterface_nets`` stays cheap.
"""

from __future__ import annotations


def load_generator(path, device="cpu", **kwargs):
    """StyleGAN2 generator from a rosinality file (``{'g_ema': ...}``) or an e4e/pSp file (``decoder.*``)."""
    from . import stylegan2_load

    return stylegan2_load.load_generator(path, device=device, **kwargs)


def load_e4e(path, device="cpu", **kwargs):
    """e4e encoder (with its ``latent_avg``) from ``e4e_ffhq_encode.pt``."""
    from . import e4e

    return e4e.load_e4e(path, device=device, **kwargs)


def load_arcface(path, device="cpu", **kwargs):
    """ArcFace IR-SE50 backbone from ``model_ir_se50.pth``."""
    from . import irse

    return irse.load_arcface(path, device=device, **kwargs)


__all__ = ["load_generator", "load_e4e", "load_arcface"]
