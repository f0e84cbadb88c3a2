"""counterface reference plugin (dlib_identity): the ``dlib`` identity encoder.

dlib's ResNet face descriptor, an identity network the tuner never optimised: the independent
evidence of ``counterface evaluate`` (``identity_independent``) and the default recogniser of
``--face match``. Needs ``pip install 'counterface[dlib]'`` (dlib-bin + face-recognition-models).
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_identity_encoders(register):
    from .descriptor import DlibIdentity

    register("dlib", DlibIdentity, description="dlib ResNet face descriptor (128-d, offline; not differentiable)")


@counterface.hookimpl
def register_weights(register):
    from .descriptor import WEIGHTS

    for spec in WEIGHTS:
        register(spec)
