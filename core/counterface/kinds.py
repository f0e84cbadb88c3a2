"""The component kinds, each declared once.

A :class:`Kind` says everything counterface needs to know about one kind of component: its name, its
contract class, the hook that registers its factories, the configuration sections that name one
(the operator's two roles ``pi1``/``pi0``; a kind's own name otherwise), whether the pipeline
commands have a ``--NAME`` option for it, which command's ``--set KIND.PARAM=VALUE`` configures it,
and whether its configuration is part of a pivot's identity. The hook specifications
(:mod:`counterface.hookspecs`), the registry, the CLI options, ``counterface polarization``'s
``--set`` sections and the pivot store all derive from :data:`KINDS`.

A plugin adds a kind through the ``register_kinds`` hook; the registry then calls the new kind's
registration hook like any other (see docs/plugins.md).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Iterable

from .components import (
    Aligner,
    AttributeDirection,
    Blender,
    Embedder,
    Generator,
    IdentityEncoder,
    Inverter,
    Operator,
    OutletModel,
    Scorer,
    Tuner,
)

#: the commands whose ``--set KIND.PARAM=VALUE`` configures a kind
PIPELINE = "pipeline"  # edit, pairs, sweep, batch, config (and TOML ``[KIND]`` tables)
POLARIZATION = "polarization"  # counterface polarization
#: names a kind may not take: configuration sections and tables that are not kinds
RESERVED = ("edit", "preset", "kind")
NAME = re.compile(r"^[a-z][a-z0-9_]*$")


@dataclass(frozen=True)
class Kind:
    """One kind of component.

    ``name``: the kind (``create(name, ...)``, ``counterface plugins``). ``contract``: the base class
    whose docstring is the contract. ``hook``: the registration hook, ``hook(register)``.
    ``description``: one line for the documentation. ``note``: what a plugin must know when it
    registers one (goes into the hook's docstring). ``roles``: the configuration sections that each
    name one component of this kind (empty: the kind's own name). ``option``: the pipeline commands
    have ``--SECTION NAME`` for each section. ``scope``: which command's ``--set`` configures it
    (:data:`PIPELINE` or :data:`POLARIZATION`). ``pivot``: its configuration shapes the pivot (the
    batch pivot store keys on it). ``plugin``: the plugin that declared it (None: counterface).
    """

    name: str
    contract: type
    hook: str
    description: str = ""
    note: str = ""
    roles: tuple[str, ...] = ()
    option: bool = False
    scope: str = PIPELINE
    pivot: bool = False
    plugin: str | None = None

    @property
    def sections(self) -> tuple[str, ...]:
        """The configuration sections naming one component of this kind."""
        return self.roles or (self.name,)


def _table(*kinds: Kind) -> dict[str, Kind]:
    return {k.name: k for k in kinds}


#: every kind of counterface itself (in the order of the CLI options and of `counterface plugins`)
KINDS: dict[str, Kind] = _table(
    Kind("aligner", Aligner, "register_aligners", "finds faces and warps each into the canonical crop",
         "Each factory, called with keyword parameters, returns an object implementing ``align``.",
         option=True, pivot=True),
    Kind("inverter", Inverter, "register_inverters", "encodes aligned faces into W+", option=True, pivot=True),
    Kind("tuner", Tuner, "register_tuners", "refines the latent and tunes the generator around it",
         option=True, pivot=True),
    Kind("direction", AttributeDirection, "register_directions", "a latent direction that turns one attribute on",
         "Use the attribute as the name (``smile``, ``glasses``) unless several directions share one attribute.",
         option=True),
    Kind("blender", Blender, "register_blenders", "pastes an edited crop back into the photo", option=True),
    Kind("generator", Generator, "register_generators", "a StyleGAN-family generator", option=True, pivot=True),
    Kind("identity", IdentityEncoder, "register_identity_encoders",
         "face-recognition embeddings (identity loss, metrics, --face match)", option=True, pivot=True),
    Kind("operator", Operator, "register_operators", "a counterfactual operator, pi_1 or pi_0",
         "One kind serves both roles: the user picks pi_1 with ``--pi1 NAME`` and pi_0 with ``--pi0 NAME`` "
         "(config sections ``pi1`` and ``pi0``). Factories take keyword parameters only (e.g. ``distance``).",
         roles=("pi1", "pi0"), option=True),
    Kind("scorer", Scorer, "register_scorers", "attribute scores of face images (--alpha auto, directions calibrate)",
         "Name a scorer after its attribute (``smile``) unless several score one attribute. The built object's "
         "``attribute`` says what it scores; ``score(images)`` returns (N,) float64, higher = more of the "
         "attribute, NaN where it cannot score an image.", option=True),
    Kind("embedder", Embedder, "register_embedders", "image features for the outlet model of counterface polarization",
         "Registering must not load a network or fetch weights; do that on the first ``embed`` call.",
         scope=POLARIZATION),
    Kind("outlet_model", OutletModel, "register_outlet_models", "g(y | Z, X, p) for counterface polarization",
         "``fit`` must return a new fitted object (never mutate the component): it is called once per "
         "cross-fitting fold and bootstrap replicate.", scope=POLARIZATION),
)


def sections(kinds: Iterable[Kind] | None = None, scope: str = PIPELINE) -> tuple[str, ...]:
    """Every configuration section of ``scope`` naming one component."""
    return tuple(s for k in (KINDS.values() if kinds is None else kinds) if k.scope == scope for s in k.sections)


def options() -> tuple[str, ...]:
    """The ``--SECTION NAME`` options of the pipeline commands (edit, pairs, sweep, batch, config)."""
    return tuple(s for k in KINDS.values() if k.option for s in k.sections)


def pivot_sections() -> tuple[str, ...]:
    """The configuration sections that shape a pivot."""
    return tuple(s for k in KINDS.values() if k.pivot for s in k.sections)


def declare(name: str, contract: type, *, plugin: str, hook: str | None = None, description: str = "",
            note: str = "", taken: Iterable[Kind] = ()) -> Kind:
    """A plugin's :class:`Kind` (``register_kinds``), checked: a new name and hook, a class contract.
    Raises ValueError with one line. A plugin's kind is configured like the pipeline's kinds (scope
    :data:`PIPELINE`) but has no CLI option of its own and does not shape pivots: the user chooses
    one with ``--set NAME=COMPONENT`` or a TOML ``[NAME]`` table."""
    taken = list(KINDS.values()) + list(taken)
    if not isinstance(name, str) or not NAME.match(name) or name in RESERVED:
        raise ValueError(f"invalid kind name {name!r} (lower-case letters, digits and _, not {', '.join(RESERVED)})")
    hook = hook or f"register_{name}s"
    if not NAME.match(hook) or not hook.startswith("register_"):
        raise ValueError(f"invalid hook name {hook!r} for kind {name!r} (register_...)")
    if not isinstance(contract, type):
        raise ValueError(f"the contract of kind {name!r} must be a class, got {contract!r}")
    for k in taken:
        if name in k.sections or name == k.name:
            raise ValueError(f"kind {name!r} is already declared" + (f" by plugin {k.plugin!r}" if k.plugin else ""))
        if hook == k.hook:
            raise ValueError(f"hook {hook!r} already registers the kind {k.name!r}")
    return Kind(name, contract, hook, description, note, plugin=plugin)
