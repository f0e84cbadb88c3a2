"""Component registry: ``create(kind, name, **params)`` and ``available(kind)``.

Filled lazily from the registration hooks of every loaded plugin (rebuilt when the set of plugins
changes, :func:`counterface.plugins.generation`). Each plugin's hook is called on its own through
pluggy (:func:`counterface.plugins.call_each`), so a plugin whose hook raises is reported and
skipped, and every entry knows which plugin (and distribution, version) provided it.

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

from . import plugins
from .errors import ConfigError, PluginError, UnknownComponentError

#: kind -> registration hook name
HOOKS: dict[str, str] = {
    "aligner": "register_aligners",
    "inverter": "register_inverters",
    "tuner": "register_tuners",
    "generator": "register_generators",
    "direction": "register_directions",
    "blender": "register_blenders",
    "identity": "register_identity_encoders",
    "operator": "register_operators",
    "embedder": "register_embedders",
    "outlet_model": "register_outlet_models",
    "scorer": "register_scorers",
    "preset": "register_presets",
}
KIND_NAMES = tuple(k for k in HOOKS if k != "preset")
#: configuration sections that name a component of another kind: the two roles of an operator
#: (``--pi1 NAME`` / ``--pi0 NAME``, TOML ``[pi1]`` / ``[pi0]``)
SLOTS: dict[str, str] = {"pi1": "operator", "pi0": "operator"}
#: every configuration section that names one component, in building order
SECTIONS = tuple(k for k in KIND_NAMES if k not in SLOTS.values()) + tuple(SLOTS)


def kind_of(section: str) -> str:
    """The component kind of a configuration section (``pi1`` -> ``operator``; a kind is its own)."""
    return SLOTS.get(section, section)


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
        if not description and kind == "preset" and isinstance(getattr(factory, "description", None), str):
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


def ensure_loaded() -> dict[str, dict[str, Entry]]:
    global _entries, _clashes, _qualified, _built_for
    with _lock:
        if _entries is not None and _built_for == plugins.generation():
            return _entries
        generation = plugins.generation()
        entries: dict[str, dict[str, Entry]] = {}
        clashes: dict[str, dict[str, list[Entry]]] = {}
        every: dict[str, dict[str, Entry]] = {}
        for kind, hook_name in HOOKS.items():
            qualified: dict[str, Entry] = {}

            def kwargs_for(plugin: str, _kind=kind, _table=qualified) -> dict[str, Any]:
                info = plugins.plugin_info(plugin)
                return {"register": _make_register(_kind, _table, plugin, info.package if info else None,
                                                   info.version if info else None)}

            plugins.call_each(hook_name, kwargs_for)
            entries[kind], clashes[kind] = _settle(kind, qualified)
            every[kind] = qualified
        _entries, _clashes, _qualified, _built_for = entries, clashes, every, generation
        return entries


def _check_kind(kind: str) -> None:
    if kind not in HOOKS:
        raise UnknownComponentError(f"unknown component kind {kind!r}; valid kinds: {', '.join(KIND_NAMES)}")


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
        what = "preset" if kind == "preset" else kind
        raise UnknownComponentError(
            f"unknown {what} {name!r}{hint}; valid: {', '.join(valid) if valid else '(none registered)'}"
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
    if kind == "preset":
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

    e = entry("preset", name)
    preset = e.factory
    if callable(preset) and not isinstance(preset, Preset):
        preset = preset()
    if not isinstance(preset, Preset):
        raise PluginError(f"preset {name!r} from plugin {e.plugin!r} is not a counterface.Preset")
    return preset


def presets() -> list[str]:
    return available("preset")


plugins.add_loader(ensure_loaded)  # `plugins.failures()` includes the registration hooks' failures
