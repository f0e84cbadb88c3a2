"""counterface-glasses: the ``glasses`` attribute, as a plugin author writes one.

Three things: a boundary file (``counterface directions learn`` on latents or photos labelled with
glasses; ship it next to this module as ``glasses.safetensors``, or pass ``path``), the region
where the attribute lives (the eyes: the tuner's region loss and the metrics follow it), and the
register call.
"""

from pathlib import Path

import counterface

BOUNDARY = Path(__file__).with_name("glasses.safetensors")


def glasses(*, path: str | None = None, layers=None):
    """Eyeglasses: a boundary file applied on the eye region (``path`` defaults to the shipped file)."""
    if path is None and not BOUNDARY.is_file():
        raise counterface.ConfigError("the glasses direction needs a boundary file: --set direction.path=FILE "
                                      "(make one with `counterface directions learn`)")
    return counterface.create("direction", "boundary", path=str(path or BOUNDARY), layers=layers, region="eyes")


@counterface.hookimpl
def register_directions(register):
    register("glasses", glasses, description="Eyeglasses boundary on the eye region (example plugin)")
