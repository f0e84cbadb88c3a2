"""counterface reference plugin: the counterfactual operators pi_1 and pi_0.

pi_1: ``shift`` (alpha along the normal; the default), ``on`` (to the boundary's on_distance).
pi_0: ``original`` (the photo), ``reconstruction`` (no move), ``negate`` (-alpha), ``off`` (to the
boundary's off_distance), ``neutral`` (onto the boundary). Any of them may fill either role.

Hook implementations only; the code is in :mod:`counterface_operators.operators`.
"""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_operators(register):
    from . import operators as o

    register("shift", o.Shift, description="d + alpha: alpha along the unit normal (pi_1 default)")
    register("on", o.On, description="d -> on_distance (or --distance D): the attribute typically on")
    register("original", o.Original, description="the photo itself (no latent)")
    register("reconstruction", o.Reconstruction, description="d unchanged: the pivot's render through the same blend")
    register("negate", o.Negate, description="d - alpha: the edit at -alpha")
    register("off", o.Off, description="d -> off_distance (or --distance D): the attribute typically off")
    register("neutral", o.Neutral, description="d -> 0: onto the boundary")
