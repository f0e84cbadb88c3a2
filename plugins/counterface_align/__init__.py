"""counterface reference plugin: the ``dlib`` and ``fan`` aligners (step 1, FFHQ crops)."""

import counterface


@counterface.hookimpl
def register_aligners(register):
    from .dlib_aligner import DlibAligner

    register("dlib", DlibAligner, description="dlib HOG detector + 68 landmarks (offline); FFHQ crops")
