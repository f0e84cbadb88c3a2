"""Plugin loading: the pluggy manager, entry points, plugin selection and failure isolation.

Every plugin (reference or third-party) arrives through the ``counterface`` entry-point group. A
plugin that fails to import, or whose hook raises, is recorded in :func:`failures` and skipped; the
others keep working.

Which plugins load (checked when the manager is created, i.e. once per process or after
:func:`reset`):

* ``COUNTERFACE_PLUGINS=a,b``: of the third-party plugins, load only these (like llm's
  ``LLM_LOAD_PLUGINS``); set but empty, none. The reference plugins (the entry points of this
  distribution, :data:`DISTRIBUTION`) load either way: a third-party plugin builds on them (the
  glasses example makes a ``boundary`` direction). A name that is not installed is reported in
  :func:`failures`.
* ``COUNTERFACE_DISABLE_PLUGINS=a,b`` (and ``counterface --disable-plugin NAME``, which calls
  :func:`disable`): never load these, reference plugins included.

This module knows nothing of the component registry or the weights registry: they import it, read
:func:`generation` to know when to rebuild their tables, and call hooks through :func:`call_each`.
"""

from __future__ import annotations

import importlib.metadata as md
import os
import threading
import types
from dataclasses import dataclass
from typing import Any, Callable, Iterable

import pluggy

from . import hookspecs

GROUP = "counterface"
ALLOW_ENV = "COUNTERFACE_PLUGINS"
DISABLE_ENV = "COUNTERFACE_DISABLE_PLUGINS"
CORE = "counterface.core"
#: the distribution whose entry points are the reference plugins
DISTRIBUTION = "counterface"


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
_skipped: list[str] = []  # entry points left out by the selection
_disabled_in_code: set[str] = set()
_generation = 0
_loaders: list[Callable[[], Any]] = []


def _names(text: str | None) -> set[str]:
    return {n.strip() for n in (text or "").split(",") if n.strip()}


def selection() -> tuple[set[str] | None, set[str]]:
    """(the third-party entry points allowed, or None for all; the disabled entry points) from the
    environment and :func:`disable`."""
    allow = os.environ.get(ALLOW_ENV)
    return (None if allow is None else _names(allow)), _names(os.environ.get(DISABLE_ENV)) | _disabled_in_code


def disable(names: Iterable[str]) -> None:
    """Leave these plugins out (``--disable-plugin``); takes effect now (the manager is rebuilt)."""
    names = {n for n in names if n}
    if names - _disabled_in_code:
        _disabled_in_code.update(names)
        reset()


def _new_manager() -> pluggy.PluginManager:
    pm = pluggy.PluginManager(GROUP)
    pm.add_hookspecs(hookspecs)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    allow, disabled = selection()
    seen: set[tuple[str, str]] = set()
    for ep in md.entry_points(group=GROUP):
        dist = getattr(ep, "dist", None)
        package = dist.metadata["Name"] if dist is not None else None
        version = dist.version if dist is not None else None
        key = (ep.name, ep.value)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        reference = package == DISTRIBUTION
        if ep.name in disabled or (allow is not None and not reference and ep.name not in allow):
            _skipped.append(ep.name)
            continue
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
    for name in sorted((allow or set()) - {n for n, _ in seen}):
        _failures.append(PluginFailure(name, None, f"{ALLOW_ENV} names {name!r}, which is not installed"))


def _changed() -> None:
    global _generation
    _generation += 1


def generation() -> int:
    """A number that changes whenever the set of plugins changes (tables built from hooks compare it)."""
    return _generation


def get_plugin_manager() -> pluggy.PluginManager:
    """The process-wide manager, created and filled from entry points on first use."""
    global _pm
    with _lock:
        if _pm is None:
            pm = _new_manager()
            _load_entry_points(pm)
            pm.register(_CoreDefaults(), name=CORE)
            _infos[CORE] = PluginInfo(CORE, "counterface", "counterface", _version())
            _pm = pm
            _changed()
        return _pm


def register_plugin(obj, name: str | None = None, package: str | None = None, version: str | None = None) -> str:
    """Register a plugin object in code (tests, notebooks). Returns its name."""
    pm = get_plugin_manager()
    with _lock:
        name = pm.register(obj, name=name)
        _infos[name] = PluginInfo(name, getattr(obj, "__name__", type(obj).__name__), package, version)
        _changed()
    return name


def add_hookspecs(specs: Iterable[Callable], owner: str = "counterface.declared") -> list[str]:
    """Add hook specifications (functions marked ``@hookspec``, e.g. the registration hooks of kinds
    that plugins declare) to the manager; a hook that already has a specification is left alone.
    Implementations registered before their specification are checked against it now (pluggy): a
    plugin whose implementation does not match (another argument name) is recorded in
    :func:`failures` and unregistered. Returns the names added."""
    pm = get_plugin_manager()
    specs = list(specs)
    added: set[str] = set()
    with _lock:
        while True:
            new = {f.__name__: f for f in specs if not getattr(getattr(pm.hook, f.__name__, None), "spec", None)}
            if not new:
                return sorted(added)
            module = types.ModuleType(owner)
            vars(module).update(new)
            try:
                pm.add_hookspecs(module)
                return sorted(added | set(new))
            except pluggy.PluginValidationError as exc:  # the spec is set; the mismatching plugin goes
                added.update(n for n in new if getattr(getattr(pm.hook, n, None), "spec", None))
                name = pm.get_name(exc.plugin) or repr(exc.plugin)
                record_failure(name, f"{type(exc).__name__}: {exc}")
                pm.unregister(exc.plugin)
                _infos.pop(name, None)
                _changed()


def unregister_plugin(name: str) -> None:
    pm = get_plugin_manager()
    with _lock:
        pm.unregister(name=name)
        _infos.pop(name, None)
        _changed()


def reset() -> None:
    """Forget every plugin; the next use reloads entry points (tests use this)."""
    global _pm
    with _lock:
        _pm = None
        _infos.clear()
        _failures.clear()
        _skipped.clear()
        _changed()


def plugin_info(name: str) -> PluginInfo | None:
    get_plugin_manager()
    return _infos.get(name)


def skipped() -> list[str]:
    """Entry points that the selection (``COUNTERFACE_PLUGINS``, ``COUNTERFACE_DISABLE_PLUGINS``,
    ``--disable-plugin``) left out."""
    get_plugin_manager()
    return list(_skipped)


def call_each(hook_name: str, kwargs_for: Callable[[str], dict[str, Any]]) -> list[tuple[str, Any]]:
    """Call hook ``hook_name`` once per implementing plugin, in registration order, through pluggy.

    Each call goes through ``pm.subset_hook_caller`` restricted to one plugin, so pluggy's own
    machinery (argument checking, wrappers, tracing) runs and every result or failure is
    attributed to the plugin that produced it. ``kwargs_for(plugin_name)`` builds that plugin's
    arguments (e.g. a ``register`` callback that records the plugin). A raising implementation is
    recorded in :func:`failures` and the others still run. Returns ``[(plugin_name, result)]``.
    """
    pm = get_plugin_manager()
    impls = getattr(pm.hook, hook_name).get_hookimpls()  # pluggy calls these last to first
    names = [i.plugin_name for i in impls]
    out = []
    for name in names:
        others = [pm.get_plugin(n) for n in names if n != name]
        caller = pm.subset_hook_caller(hook_name, remove_plugins=others)
        try:
            out.append((name, caller(**kwargs_for(name))))
        except Exception as exc:  # noqa: BLE001 - one bad plugin must not hide the others
            record_failure(name, f"{hook_name}: {type(exc).__name__}: {exc}")
    return out


def add_loader(load: Callable[[], Any]) -> None:
    """Register a function that runs the registration hooks (the component and weights registries
    do), so that :func:`failures` includes their failures."""
    if load not in _loaders:
        _loaders.append(load)


def failures() -> list[PluginFailure]:
    """Plugins that could not be loaded or whose hooks raised."""
    get_plugin_manager()
    for load in list(_loaders):
        load()
    return list(_failures)


def record_failure(name: str, error: str) -> None:
    info = _infos.get(name)
    failure = PluginFailure(name, info.package if info else None, error)
    if failure not in _failures:
        _failures.append(failure)


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
