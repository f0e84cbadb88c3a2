"""counterface-glasses: registers the ``glasses`` attribute direction."""

import counterface


@counterface.hookimpl
def register_directions(register):
    from .direction import GlassesDirection

    register("glasses", GlassesDirection, description="Eyeglasses direction loaded from a file (example plugin)")
