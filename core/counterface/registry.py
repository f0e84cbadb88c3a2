"""Component registry: ``create(kind, name, **params)`` and ``available(kind)``.

Filled lazily from the registration hooks of every loaded plugin. Each hook implementation is called
on its own, so a plugin whose hook raises is reported and skipped, and every entry knows which
plugin (and distribution, version) provided it.
"""

from __future__ import annotations

import difflib
import inspect
import threading
from dataclasses import dataclass
from typing import Any, Callable

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


def reset() -> None:
    global _entries
    with _lock:
        _entries = None


def _make_register(kind: str, table: dict[str, Entry], plugin: str, package, version) -> Callable:
    def register(name: str, factory: Any, description: str = "") -> None:
        if not isinstance(name, str) or not name:
            raise PluginError(f"plugin {plugin!r} registered a {kind} with an invalid name {name!r}")
        if name in table:
            prev = table[name]
            raise PluginError(f"{kind} {name!r} from plugin {plugin!r} clashes with the one from {prev.plugin!r}")
        if not description and kind == "preset" and isinstance(getattr(factory, "description", None), str):
            description = factory.description  # a Preset instance: its own description, not the class docstring
        if not description:
            doc = inspect.getdoc(factory) or ""
            description = doc.splitlines()[0] if doc else ""
        table[name] = Entry(kind, name, factory, description, plugin, package, version)

    return register


def ensure_loaded() -> dict[str, dict[str, Entry]]:
    global _entries
    with _lock:
        if _entries is not None:
            return _entries
        from . import plugins

        pm = plugins.get_plugin_manager()
        entries: dict[str, dict[str, Entry]] = {k: {} for k in HOOKS}
        for kind, hook_name in HOOKS.items():
            hook = getattr(pm.hook, hook_name)
            for impl in reversed(hook.get_hookimpls()):  # registration order
                info = plugins.plugin_info(impl.plugin_name)
                reg = _make_register(
                    kind, entries[kind], impl.plugin_name, info.package if info else None, info.version if info else None
                )
                try:
                    impl.function(register=reg)
                except Exception as exc:  # noqa: BLE001
                    plugins.record_failure(impl.plugin_name, f"{hook_name}: {type(exc).__name__}: {exc}")
        _entries = entries
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
