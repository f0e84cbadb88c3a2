"""counterface reference plugin (arcface): the ``arcface`` identity encoder."""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_identity_encoders(register):
    from .identity import ArcFaceIdentity

    register("arcface", ArcFaceIdentity, description="ArcFace IR-SE50 (model_ir_se50.pth) identity embeddings")


@counterface.hookimpl
def register_weights(register):
    from counterface_nets import known_weights

    register(known_weights.SPECS["model_ir_se50.pth"])
