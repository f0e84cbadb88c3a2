"""Hook specifications: the whole contract between counterface and its plugins.

A plugin is a module (or object) with functions marked ``@counterface.hookimpl`` whose names are the
hooks below, advertised through the ``counterface`` entry-point group of its distribution::

    [project.entry-points.counterface]
    glasses = "counterface_glasses"

Reference plugins use exactly the same door. The registration hooks of the kinds (``register_aligners``,
...) are written from the kinds' declarations in :mod:`counterface.kinds`; a plugin adds a kind with
``register_kinds``. Registration hooks receive a ``register`` callable;
plugins call ``register(name, factory, description="...")`` where ``factory(**params)`` builds the
component. Registering must be cheap: import torch and load weights inside the factory, not at
registration. A name already registered for the kind raises :class:`~counterface.errors.PluginError`
(first come wins; the loser is reported by ``counterface plugins``).
"""

from __future__ import annotations

import pluggy

from .kinds import KINDS

hookspec = pluggy.HookspecMarker("counterface")
hookimpl = pluggy.HookimplMarker("counterface")


def registration_hookspec(kind):
    """The hook specification ``kind.hook(register)`` of a :class:`~counterface.kinds.Kind`: its
    docstring is written from the kind's declaration (contract class, description, note)."""

    def spec(register):
        pass

    contract = kind.contract
    where = "counterface" if contract.__module__.startswith("counterface") else contract.__module__
    lines = [f"Register :class:`~{where}.{contract.__name__}` factories (kind ``{kind.name}``)"
             + (f": {kind.description}." if kind.description else "."), "",
             ':param register: ``register(name, factory, description="")``.']
    if kind.note:
        lines += ["", kind.note]
    if kind.plugin:
        lines += ["", f"Declared by the plugin {kind.plugin!r} (``register_kinds``)."]
    spec.__name__ = spec.__qualname__ = kind.hook
    spec.__doc__ = "\n".join(lines)
    return hookspec(spec)


# one registration hook per kind of counterface, written from its declaration
for _kind in KINDS.values():
    globals()[_kind.hook] = registration_hookspec(_kind)
del _kind


@hookspec
def register_kinds(register):
    """Declare new kinds of component (as pytest's ``pytest_addhooks`` adds hooks).

    :param register: ``register(name, contract, hook=None, description="", note="")``.
        ``name``: the kind (lower-case letters, digits, ``_``); ``contract``: its base class (subclass
        :class:`~counterface.Component`; its docstring is the contract); ``hook``: the registration
        hook, default ``register_<name>s``; ``description``: one line; ``note``: what a plugin must
        know to register one (both go into the hook's docstring). The kind is configured with
        ``--set NAME=COMPONENT``, ``--set NAME.PARAM=VALUE`` and TOML ``[NAME]`` in edit, pairs,
        sweep, batch and config.

    Every plugin (the declaring one included) then registers components of the kind through the
    new hook, ``hook(register)``, exactly as for the kinds of counterface; they are listed by
    ``counterface plugins`` and built with ``counterface.create(name, component)``. A name or hook
    already taken is refused and reported by ``counterface plugins``.
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
