"""counterface reference plugin: the ``gaussian`` blender (step 7, paste-back)."""

import counterface


@counterface.hookimpl
def register_blenders(register):
    from .gaussian import GaussianBlender

    register("gaussian", GaussianBlender, description="feathered face-mask paste-back; m = 0 pixels unchanged")
