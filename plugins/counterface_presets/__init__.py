"""counterface reference plugin: the ``smilegan-pti`` and ``tiny`` presets.

Hook implementations only; the compositions are in :mod:`counterface_presets.presets`.
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_presets(register):
    from . import presets

    register("smilegan-pti", presets.smilegan_pti, description="SmileGAN-PTI on the released FFHQ networks")
    register("tiny", presets.tiny, description="the same code path on small random networks (offline, seconds)")
