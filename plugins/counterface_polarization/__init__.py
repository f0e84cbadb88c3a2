"""counterface reference plugin (polarization): embedders and the outlet model of ``counterface polarization``.

Embedders (kind ``embedder``): ``pixels`` (downsampled pixels, offline), ``arcface`` (the identity
network), ``resnet18`` and ``resnet50`` (torchvision ImageNet ResNets through the weights manager).
Outlet model (kind ``outlet_model``): ``logistic``, a regularised, class-weighted multinomial
logistic regression with image x politician interactions.
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_embedders(register):
    from . import embedders

    register("pixels", embedders.PixelEmbedder, description="downsampled RGB pixels (offline; tests and smoke runs)")
    register("arcface", embedders.ArcFaceEmbedder,
             description="ArcFace IR-SE50 identity embeddings (the identity network)")
    register("resnet18", embedders.resnet18, description="torchvision ImageNet ResNet-18, pooled 512-d features")
    register("resnet50", embedders.resnet50, description="torchvision ImageNet ResNet-50, pooled 2048-d features")


@counterface.hookimpl
def register_outlet_models(register):
    from .outlet_model import LogisticOutletModel

    register("logistic", LogisticOutletModel,
             description="multinomial logistic regression (scikit-learn, L2, class-weighted), image x politician")


@counterface.hookimpl
def register_weights(register):
    from .embedders import WEIGHTS

    for spec in WEIGHTS.values():
        register(spec)
