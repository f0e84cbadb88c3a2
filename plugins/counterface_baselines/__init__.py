"""counterface reference plugin: pi_0 baselines (``original``, ``reconstruction``, ``negate``).

Hook implementations only; the code is in :mod:`counterface_baselines.baselines`.
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_baselines(register):
    from . import baselines as b

    register("original", b.Original, description="the photo itself")
    register("reconstruction", b.Reconstruction, description="alpha = 0 through the same tuned generator and blend")
    register("negate", b.Negate, description="the edit at -alpha (attribute removed)")
