"""counterface reference plugin: latent directions (``smile``, ``age``, ``pose``, ``vector``, ``boundary``).

Hook implementations only; the code is in :mod:`counterface_directions.directions`.
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_directions(register):
    from . import directions as d

    register("smile", d.SmileDirection, description="InterFaceGAN smile for the FFHQ StyleGAN2 (W+ rows 4-6)")
    register("age", d.AgeDirection, description="InterFaceGAN age for the FFHQ StyleGAN2 (all W+ rows)")
    register("pose", d.PoseDirection, description="InterFaceGAN pose for the FFHQ StyleGAN2 (all W+ rows)")
    register("vector", d.VectorDirection, description="any direction from a .pt/.npy file, or a seeded random one")
    register("boundary", d.BoundaryDirection,
             description="a boundary file from `counterface directions learn/calibrate` (--direction FILE)")


@counterface.hookimpl
def register_weights(register):
    from counterface_nets import known_weights

    for name in ("smile.pt", "age.pt", "pose.pt", "ffhq_pca.pt"):
        register(known_weights.SPECS[name])
