"""Plugin loading: the pluggy manager, entry points, and failure isolation.

Every plugin (reference or third-party) arrives through the ``counterface`` entry-point group. A
plugin that fails to import, or whose hook raises, is recorded in :func:`failures` and skipped; the
others keep working.
"""

from __future__ import annotations

import importlib.metadata as md
import threading
from dataclasses import dataclass

import pluggy

from . import hookspecs

GROUP = "counterface"


@dataclass
class PluginInfo:
    name: str  # entry-point name (or module name for plugins registered in code)
    module: str
    package: str | None  # distribution name
    version: str | None


@dataclass
class PluginFailure:
    name: str
    package: str | None
    error: str


_lock = threading.RLock()
_pm: pluggy.PluginManager | None = None
_infos: dict[str, PluginInfo] = {}
_failures: list[PluginFailure] = []


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    seen: set[tuple[str, str]] = set()
    for ep in md.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        package = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        key = (ep.name, ep.value)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        if pm.get_plugin(ep.name) is not None:
            _failures.append(PluginFailure(ep.name, package, f"plugin name {ep.name!r} is already taken"))
            continue
        try:
            obj = ep.load()
            pm.register(obj, name=ep.name)
        except Exception as exc:  # noqa: BLE001 - isolation is the point
            _failures.append(PluginFailure(ep.name, package, f"{type(exc).__name__}: {exc}"))
            continue
        _infos[ep.name] = PluginInfo(ep.name, ep.value, package, version)


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created and filled from entry points on first use."""
    global _pm
    with _lock:
        if _pm is None:
            pm = _new_manager()
            _load_entry_points(pm)
            core_impl = _CoreDefaults()
            pm.register(core_impl, name="counterface.core")
            _infos["counterface.core"] = PluginInfo("counterface.core", "counterface", "counterface", _version())
            _pm = pm
        return _pm


def register_plugin(obj, name: str | None = None, package: str | None = None, version: str | None = None) -> str:
    """Register a plugin object in code (tests, notebooks). Returns its name."""
    pm = get_plugin_manager()
    name = pm.register(obj, name=name)
    _infos[name] = PluginInfo(name, getattr(obj, "__name__", type(obj).__name__), package, version)
    from . import registry

    registry.reset()
    return name


def unregister_plugin(name: str) -> None:
    pm = get_plugin_manager()
    pm.unregister(name=name)
    _infos.pop(name, None)
    from . import registry

    registry.reset()


def reset() -> None:
    """Forget every plugin; the next use reloads entry points (tests use this)."""
    global _pm
    with _lock:
        _pm = None
        _infos.clear()
        _failures.clear()
    from . import registry

    registry.reset()


def plugin_info(name: str) -> PluginInfo | None:
    get_plugin_manager()
    return _infos.get(name)


def failures() -> list[PluginFailure]:
    """Plugins that could not be loaded or whose hooks raised."""
    get_plugin_manager()
    from . import registry

    registry.ensure_loaded()
    return list(_failures)


def record_failure(name: str, error: str) -> None:
    info = _infos.get(name)
    _failures.append(PluginFailure(name, info.package if info else None, error))


def _version() -> str:
    try:
        return md.version("counterface")
    except md.PackageNotFoundError:  # pragma: no cover - running from a source tree
        return "0+unknown"


class _CoreDefaults:
    """Core's own hook implementations: only defaults that every installation needs."""

    @hookspecs.hookimpl(trylast=True)
    def locate_weights(self, name):
        return None
