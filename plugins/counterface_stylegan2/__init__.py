"""counterface reference plugin (stylegan2): registers the ``stylegan2`` generator and its weights files.

Hook implementations only; the component lives in :mod:`counterface_stylegan2.generator` and the
network in :mod:`counterface_nets.stylegan2` (both imported lazily, so start-up stays cheap).
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_generators(register):
    from .generator import StyleGAN2Generator

    register("stylegan2", StyleGAN2Generator,
             description="StyleGAN2 (rosinality layout): FFHQ 1024 from e4e_ffhq_encode.pt, or a random network")


@counterface.hookimpl
def register_weights(register):
    from counterface_nets import known_weights

    for name in ("e4e_ffhq_encode.pt", "stylegan2-ffhq-config-f.pt"):
        register(known_weights.SPECS[name])
