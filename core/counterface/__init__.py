"""counterface: counterfactual face-attribute editing.

Public API::

    import counterface
    counterface.available("aligner")            # registered names of a kind
    aligner = counterface.create("aligner", "dlib", upsample=1)
    preset = counterface.get_preset("smilegan-pti")

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
    "Pivot",
    "PluginError",
    "Preset",
    "Scorer",
    "Tuner",
    "UnknownComponentError",
    "WeightsError",
    "available",
    "create",
    "get_preset",
    "hookimpl",
    "presets",
    "read_image",
    "write_image",
    "__version__",
]
