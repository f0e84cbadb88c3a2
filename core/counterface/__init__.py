"""counterface: counterfactual face-attribute editing.

Public API::

    import counterface
    counterface.available("aligner")            # registered names of a kind
    aligner = counterface.create("aligner", "dlib", upsample=1)
    preset = counterface.get_preset("smilegan-pti")
    r = counterface.pairs("photo.jpg", preset="tiny")   # Z1, Z0 as arrays; shows itself in Jupyter
    s = counterface.sweep("photo.jpg", alphas=[-2, 0, 2], preset="tiny")
    counterface.scoring.scorer_for(direction)          # the scorer of a direction's attribute

Kinds: ``aligner``, ``inverter``, ``tuner``, ``direction``, ``blender``, ``generator``,
``identity``, ``operator`` (roles ``pi1``/``pi0``); for ``counterface polarization``, ``embedder`` and ``outlet_model``; ``scorer`` (attribute scores).
Plugins register implementations through :mod:`counterface.hookspecs`.
"""

from __future__ import annotations

from .components import (
    Aligner,
    AttributeDirection,
    Blender,
    Component,
    Embedder,
    Generator,
    IdentityEncoder,
    Inverter,
    Operator,
    OutletModel,
    Scorer,
    Tuner,
)
from .errors import (
    ConfigError,
    CounterfaceError,
    ImageError,
    NoFaceError,
    OutputError,
    PluginError,
    UnknownComponentError,
    WeightsError,
)
from .api import Pairs, Sweep, pairs, sweep
from .hookspecs import hookimpl
from .imageio import read_image, write_image
from .kinds import KINDS
from .registry import available, create, get_preset, presets
from .types import AlignedFace, EditResult, Pivot, Preset

__version__ = "0.1.0"

__all__ = [
    "KINDS",
    "AlignedFace",
    "Aligner",
    "AttributeDirection",
    "Blender",
    "Component",
    "ConfigError",
    "CounterfaceError",
    "EditResult",
    "Embedder",
    "Generator",
    "IdentityEncoder",
    "ImageError",
    "Inverter",
    "NoFaceError",
    "Operator",
    "OutletModel",
    "OutputError",
    "Pairs",
    "Pivot",
    "PluginError",
    "Preset",
    "Scorer",
    "Sweep",
    "Tuner",
    "UnknownComponentError",
    "WeightsError",
    "available",
    "create",
    "get_preset",
    "hookimpl",
    "pairs",
    "presets",
    "read_image",
    "sweep",
    "write_image",
    "__version__",
]
