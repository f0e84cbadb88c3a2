"""Hook specifications: the whole contract between counterface and its plugins.

A plugin is a module (or object) with functions marked ``@counterface.hookimpl`` whose names are the
hooks below, advertised through the ``counterface`` entry-point group of its distribution::

    [project.entry-points.counterface]
    glasses = "counterface_glasses"

Reference plugins use exactly the same door. Registration hooks receive a ``register`` callable;
plugins call ``register(name, factory, description="...")`` where ``factory(**params)`` builds the
component. Registering must be cheap: import torch and load weights inside the factory, not at
registration. A name already registered for the kind raises :class:`~counterface.errors.PluginError`
(first come wins; the loser is reported by ``counterface plugins``).
"""

from __future__ import annotations

import pluggy

hookspec = pluggy.HookspecMarker("counterface")
hookimpl = pluggy.HookimplMarker("counterface")


@hookspec
def register_aligners(register):
    """Register :class:`~counterface.Aligner` factories (kind ``aligner``).

    :param register: ``register(name, factory, description="")``.

    Each factory, called with keyword parameters, returns an object implementing ``align``.
    """


@hookspec
def register_inverters(register):
    """Register :class:`~counterface.Inverter` factories (kind ``inverter``).

    :param register: ``register(name, factory, description="")``.
    """


@hookspec
def register_tuners(register):
    """Register :class:`~counterface.Tuner` factories (kind ``tuner``).

    :param register: ``register(name, factory, description="")``.
    """


@hookspec
def register_generators(register):
    """Register :class:`~counterface.Generator` factories (kind ``generator``).

    :param register: ``register(name, factory, description="")``.
    """


@hookspec
def register_directions(register):
    """Register :class:`~counterface.AttributeDirection` factories (kind ``direction``).

    :param register: ``register(name, factory, description="")``. Use the attribute as the name
        (``smile``, ``glasses``) unless several directions share one attribute.
    """


@hookspec
def register_blenders(register):
    """Register :class:`~counterface.Blender` factories (kind ``blender``).

    :param register: ``register(name, factory, description="")``.
    """


@hookspec
def register_identity_encoders(register):
    """Register :class:`~counterface.IdentityEncoder` factories (kind ``identity``).

    :param register: ``register(name, factory, description="")``.
    """


@hookspec
def register_operators(register):
    """Register counterfactual operators, :class:`~counterface.Operator` factories (kind ``operator``).

    :param register: ``register(name, factory, description="")``. One kind serves both roles: the
        user picks pi_1 with ``--pi1 NAME`` and pi_0 with ``--pi0 NAME`` (config sections ``pi1`` and
        ``pi0``). Factories take keyword parameters only (e.g. ``distance``).
    """


@hookspec
def register_embedders(register):
    """Register :class:`~counterface.Embedder` factories (kind ``embedder``): image features for the
    outlet model of ``counterface polarization``.

    :param register: ``register(name, factory, description="")``. Registering must not load a network
        or fetch weights; do that on the first ``embed`` call.
    """


@hookspec
def register_outlet_models(register):
    """Register :class:`~counterface.OutletModel` factories (kind ``outlet_model``): g(y | Z, X, p)
    for ``counterface polarization``.

    :param register: ``register(name, factory, description="")``. ``fit`` must return a new fitted
        object (never mutate the component): it is called once per cross-fitting fold and bootstrap
        replicate.
    """


@hookspec
def register_scorers(register):
    """Register :class:`~counterface.Scorer` factories (kind ``scorer``): attribute scores of face
    images, used by ``counterface directions calibrate`` to label generated faces.

    :param register: ``register(name, factory, description="")``. Name a scorer after its attribute
        (``smile``) unless several score one attribute. The built object's ``attribute`` says what it
        scores; ``score(images)`` returns (N,) float64, higher = more of the attribute, NaN where it
        cannot score an image.
    """


@hookspec
def register_presets(register):
    """Register named compositions of components.

    :param register: ``register(name, preset, description="")`` with a
        :class:`~counterface.Preset` (or a zero-argument callable returning one).
    """


@hookspec
def register_weights(register):
    """Declare weights files the plugin needs, for ``counterface weights``.

    :param register: ``register(spec)`` with a :class:`counterface.weights.WeightsSpec`.
    """


@hookspec
def register_commands(cli):
    """Add commands to the ``counterface`` click group.

    :param cli: the top-level :class:`click.Group`; add sub-commands with ``@cli.command()``.
    """


@hookspec(firstresult=True)
def locate_weights(name):
    """Return a local path (``str`` or ``pathlib.Path``) for the weights file ``name``, or ``None``.

    Called before the cache and the download sources are consulted, so a lab can point at its own
    mirror or shared drive. The first non-``None`` answer wins; core's own implementation runs last
    and returns ``None``. The file is still size- and hash-checked where the registry knows them.
    """
