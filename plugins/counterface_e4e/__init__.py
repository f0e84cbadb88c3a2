"""counterface reference plugin (e4e): the ``e4e`` inverter."""

from __future__ import annotations

import counterface


@counterface.hookimpl
def register_inverters(register):
    from .inverter import E4EInverter

    register("e4e", E4EInverter, description="Encoder4Editing (e4e_ffhq_encode.pt): aligned face -> W+")


@counterface.hookimpl
def register_weights(register):
    from counterface_nets import known_weights

    register(known_weights.SPECS["e4e_ffhq_encode.pt"])
