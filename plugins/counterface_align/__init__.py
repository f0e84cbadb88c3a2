"""counterface reference plugin: the ``dlib`` and ``fan`` aligners (step 1, FFHQ crops)."""

import counterface


@counterface.hookimpl
def register_aligners(register):
    from .dlib_aligner import DlibAligner
    from .fan_aligner import FanAligner

    register("dlib", DlibAligner, description="dlib HOG detector + 68 landmarks (offline); FFHQ crops")
    register("fan", FanAligner, description="face-alignment 2D FAN 68 landmarks + S3FD/dlib detector; FFHQ crops")


@counterface.hookimpl
def register_weights(register):
    from counterface_nets import known_weights

    for name in known_weights.BY_PLUGIN["counterface_align"]:
        register(known_weights.SPECS[name])
