"""Component registry: ``create(kind, name, **params)`` and ``available(kind)``.

Filled lazily from the registration hooks of every loaded plugin (rebuilt when the set of plugins
changes, :func:`counterface.plugins.generation`). Each plugin's hook is called on its own through
pluggy (:func:`counterface.plugins.call_each`), so a plugin whose hook raises is reported and
skipped, and every entry knows which plugin (and distribution, version) provided it.

Kinds: counterface's own (:data:`counterface.kinds.KINDS`) and those the loaded plugins declare
(``register_kinds``, :func:`kinds`); each kind's registration hook fills its table.

Names: every component is reachable as ``PLUGIN:NAME`` (``PLUGIN`` the entry-point name, e.g.
``directions:smile``). A bare ``NAME`` registered by one plugin means that one. When several
plugins register the same kind and name, none wins by load order: the bare name is ambiguous
(:func:`entry` fails with one line naming the choices), each clash is reported by
``counterface plugins``, and the user picks with ``PLUGIN:NAME`` or by disabling a plugin
(``COUNTERFACE_DISABLE_PLUGINS``, ``--disable-plugin``). See docs/plugins.md.
"""

from __future__ import annotations

import difflib
import inspect
import threading
from dataclasses import dataclass
from typing import Any, Callable

from . import hookspecs, plugins
from . import kinds as kinds_mod
from .errors import ConfigError, PluginError, UnknownComponentError
from .kinds import Kind

#: the table of presets, filled like a kind's (presets are compositions, not components)
PRESET = "preset"
PRESET_HOOK = "register_presets"
#: the configuration sections of counterface's own kinds (:func:`sections` adds the plugins' kinds)
SECTIONS = kinds_mod.sections()


@dataclass
class Entry:
    kind: str
    name: str
    factory: Any
    description: str
    plugin: str
    package: str | None
    version: str | None


_lock = threading.RLock()
_entries: dict[str, dict[str, Entry]] | None = None
_kinds: dict[str, Kind] = dict(kinds_mod.KINDS)  # counterface's kinds and the plugins' (register_kinds)
_clashes: dict[str, dict[str, list[Entry]]] = {}
_qualified: dict[str, dict[str, Entry]] = {}  # kind -> PLUGIN:NAME -> entry, every registration
_built_for = -1  # plugins.generation() the tables were built for


def reset() -> None:
    global _entries
    with _lock:
        _entries = None


def _make_register(kind: str, table: dict[str, Entry], plugin: str, package, version) -> Callable:
    def register(name: str, factory: Any, description: str = "") -> None:
        if not isinstance(name, str) or not name or ":" in name:
            raise PluginError(f"plugin {plugin!r} registered a {kind} with an invalid name {name!r}")
        if not description and kind == PRESET and isinstance(getattr(factory, "description", None), str):
            description = factory.description  # a Preset instance: its own description, not the class docstring
        if not description:
            doc = inspect.getdoc(factory) or ""
            description = doc.splitlines()[0] if doc else ""
        qualified = f"{plugin}:{name}"
        if qualified in table:
            raise PluginError(f"plugin {plugin!r} registered the {kind} {name!r} twice")
        table[qualified] = Entry(kind, name, factory, description, plugin, package, version)

    return register


def _settle(kind: str, qualified: dict[str, Entry]) -> tuple[dict[str, Entry], dict[str, list[Entry]]]:
    """Bare names for the names one plugin registered; the others are clashes (qualified names only)."""
    by_name: dict[str, list[Entry]] = {}
    for e in qualified.values():
        by_name.setdefault(e.name, []).append(e)
    table = {name: es[0] for name, es in by_name.items() if len(es) == 1}
    clashes = {name: es for name, es in by_name.items() if len(es) > 1}
    for name, es in clashes.items():
        for e in es:
            table[f"{e.plugin}:{name}"] = e
        others = ", ".join(repr(f"{e.plugin}:{name}") for e in es)
        for e in es[1:]:
            plugins.record_failure(e.plugin, f"{kind} {name!r} clashes with the one from plugin {es[0].plugin!r}; "
                                             f"choose {others}")
    return table, clashes


def _declare_kinds() -> dict[str, Kind]:
    """Counterface's kinds and those the plugins declare through ``register_kinds``; each new kind's
    registration hook is added to the plugin manager. A declaration that is refused (name or hook
    taken, no class) fails that plugin's hook, which :func:`counterface.plugins.failures` reports."""
    declared: dict[str, Kind] = {}

    def kwargs_for(plugin: str) -> dict[str, Any]:
        def register(name: str, contract: type, hook: str | None = None, description: str = "",
                     note: str = "") -> None:
            kind = kinds_mod.declare(name, contract, plugin=plugin, hook=hook, description=description, note=note,
                                     taken=declared.values())
            if hasattr(hookspecs, kind.hook):
                raise ValueError(f"hook {kind.hook!r} is one of counterface's own hooks")
            declared[kind.name] = kind

        return {"register": register}

    plugins.call_each("register_kinds", kwargs_for)
    plugins.add_hookspecs(hookspecs.registration_hookspec(k) for k in declared.values())
    return {**kinds_mod.KINDS, **declared}


def ensure_loaded() -> dict[str, dict[str, Entry]]:
    global _entries, _clashes, _qualified, _built_for, _kinds
    with _lock:
        if _entries is not None and _built_for == plugins.generation():
            return _entries
        generation = plugins.generation()
        kinds = _declare_kinds()
        entries: dict[str, dict[str, Entry]] = {}
        clashes: dict[str, dict[str, list[Entry]]] = {}
        every: dict[str, dict[str, Entry]] = {}
        hooks = {k.name: k.hook for k in kinds.values()} | {PRESET: PRESET_HOOK}
        for kind, hook_name in hooks.items():
            qualified: dict[str, Entry] = {}

            def kwargs_for(plugin: str, _kind=kind, _table=qualified) -> dict[str, Any]:
                info = plugins.plugin_info(plugin)
                return {"register": _make_register(_kind, _table, plugin, info.package if info else None,
                                                   info.version if info else None)}

            plugins.call_each(hook_name, kwargs_for)
            entries[kind], clashes[kind] = _settle(kind, qualified)
            every[kind] = qualified
        _entries, _clashes, _qualified, _built_for, _kinds = entries, clashes, every, generation, kinds
        return entries


def kinds() -> dict[str, Kind]:
    """name -> :class:`~counterface.kinds.Kind`: counterface's kinds, then those the loaded plugins declare."""
    ensure_loaded()
    return dict(_kinds)


def sections() -> tuple[str, ...]:
    """Every configuration section that names one component (edit, pairs, sweep, batch, config):
    :data:`SECTIONS` and those of the plugins' kinds."""
    return kinds_mod.sections(kinds().values())


def kind_of(section: str) -> str:
    """The component kind of a configuration section (``pi1`` -> ``operator``; a kind is its own)."""
    for k in kinds().values():
        if section in k.roles:
            return k.name
    return section


def _check_kind(kind: str) -> None:
    if kind not in ensure_loaded():
        raise UnknownComponentError(f"unknown component kind {kind!r}; valid kinds: {', '.join(kinds())}")


def entries(kind: str) -> dict[str, Entry]:
    """name -> :class:`Entry` for a kind (``'preset'`` included)."""
    _check_kind(kind)
    return dict(ensure_loaded()[kind])


def available(kind: str) -> list[str]:
    """Sorted names registered for ``kind``."""
    return sorted(entries(kind))


def entry(kind: str, name: str) -> Entry:
    table = entries(kind)
    clash = _clashes.get(kind, {}).get(name)
    if clash:
        choices = ", ".join(f"{e.plugin}:{name}" for e in clash)
        raise ConfigError(f"{kind} {name!r} is registered by several plugins; choose one of {choices} "
                          f"(or leave a plugin out with {plugins.DISABLE_ENV})")
    if name not in table and name in _qualified.get(kind, {}):
        return _qualified[kind][name]  # PLUGIN:NAME of a name that is not ambiguous
    if name not in table:
        valid = sorted(table)
        close = difflib.get_close_matches(name, valid, n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        raise UnknownComponentError(
            f"unknown {kind} {name!r}{hint}; valid: {', '.join(valid) if valid else '(none registered)'}"
        )
    return table[name]


def check_params(factory: Any, params: dict[str, Any], what: str) -> None:
    """Raise ConfigError if ``factory`` does not accept every key of ``params``."""
    try:
        sig = inspect.signature(factory)
    except (TypeError, ValueError):  # builtins, C callables
        return
    if any(p.kind is p.VAR_KEYWORD for p in sig.parameters.values()):
        return
    valid = [n for n, p in sig.parameters.items() if p.kind in (p.KEYWORD_ONLY, p.POSITIONAL_OR_KEYWORD) and n != "self"]
    bad = sorted(set(params) - set(valid))
    if bad:
        raise ConfigError(f"unknown parameter {bad[0]!r} for {what}; valid: {', '.join(valid) if valid else '(none)'}")


def create(kind: str, name: str, **params: Any):
    """Build the component ``name`` of ``kind`` with ``params`` (keyword arguments of its factory)."""
    e = entry(kind, name)
    if kind == PRESET:
        raise ConfigError("presets are not components; use counterface.get_preset(name)")
    check_params(e.factory, params, f"{kind} {name!r}")
    try:
        obj = e.factory(**params)
    except (ValueError, TypeError) as exc:  # e.g. --set aligner.size=abc: the user's value, not a bug
        given = ", ".join(f"{k}={v!r}" for k, v in params.items())
        raise ConfigError(f"invalid parameters for {kind} {name!r} ({given}): {' '.join(str(exc).split())}") from exc
    try:
        obj.name = name
    except AttributeError:  # pragma: no cover - slotted objects
        pass
    return obj


def get_preset(name: str):
    """The :class:`~counterface.types.Preset` registered as ``name``."""
    from .types import Preset

    e = entry(PRESET, name)
    preset = e.factory
    if callable(preset) and not isinstance(preset, Preset):
        preset = preset()
    if not isinstance(preset, Preset):
        raise PluginError(f"preset {name!r} from plugin {e.plugin!r} is not a counterface.Preset")
    return preset


def presets() -> list[str]:
    return available(PRESET)


plugins.add_loader(ensure_loaded)  # `plugins.failures()` includes the registration hooks' failures
