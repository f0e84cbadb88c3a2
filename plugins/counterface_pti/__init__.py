"""counterface reference plugin: the ``pti`` tuner (latent refinement + pivotal generator tuning).

Hook implementations only; the code is in :mod:`counterface_pti.tuner`.
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_tuners(register):
    from .tuner import PTITuner

    register("pti", PTITuner, description="latent refinement + pivotal tuning of part of the generator (PTI)")


@counterface.hookimpl
def register_weights(register):
    from counterface_nets import known_weights

    for name in ("alexnet-owt-7be5be79.pth", "vgg16-397923af.pth"):
        register(known_weights.SPECS[name])
