"""Configuration: presets, TOML files, ``--kind name`` options and ``--set kind.param=value``.

A resolved configuration is a plain dict::

    {"aligner": {"name": "fan", "detector": "sfd"}, "tuner": {"name": "pti", "tune_steps": 350}, ...,
     "edit": {"alpha": 1.0, "layers": "4-6", "face": "largest", "seed": 0}}

Sources, lowest precedence first: the preset, the TOML file, ``--<kind> NAME`` options, ``--set``.
When a later source changes a component's *name*, the parameters the earlier sources gave for the
old component are dropped (they belong to another component). The TOML file uses the same keys::

    preset = "smilegan-pti"
    [tuner]
    name = "pti"
    tune_steps = 100
    [edit]
    alpha = 1.5
"""

from __future__ import annotations

import copy
import math
import re
import sys
from pathlib import Path
from typing import Any, Iterable, Mapping

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from .errors import ConfigError

EDIT = "edit"
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_-]*$")


def parse_value(text: str) -> Any:
    """Parse a ``--set`` value: a TOML literal (number, bool, string, array, inline table) or, failing
    that, the text itself as a string. A number that is not finite (``nan``, ``inf``, also spelled as
    text such as ``NaN`` or ``Infinity``) is a :class:`ConfigError`."""
    try:
        value = tomllib.loads(f"v = {text}")["v"]
    except tomllib.TOMLDecodeError:
        value = text
        try:
            as_number = float(text)
        except ValueError:
            return value
        if not math.isfinite(as_number):
            raise ConfigError(f"not a finite number: {text!r}") from None
        return value
    try:
        check_finite(value, "")
    except ConfigError:
        raise ConfigError(f"not a finite number: {text!r}") from None
    return value


def check_finite(value: Any, where: str) -> None:
    """Raise :class:`ConfigError` when ``value`` is, or contains (lists, tables), a NaN or an infinity."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ConfigError(f"not a finite number in {where}: {value}" if where else f"not a finite number: {value}")
    if isinstance(value, Mapping):
        for k, v in value.items():
            check_finite(v, f"{where}.{k}" if where.isidentifier() else where)
    elif isinstance(value, (list, tuple)):
        for v in value:
            check_finite(v, where)


def parse_set(item: str) -> tuple[str, str, Any]:
    """``'tuner.steps=100'`` -> ``('tuner', 'steps', 100)``; ``'tuner=pti'`` -> ``('tuner', 'name', 'pti')``."""
    if "=" not in item:
        raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
    key, _, value = item.partition("=")
    key = key.strip()
    section, _, param = key.partition(".")
    param = param or "name"
    if not _KEY.match(section) or not _KEY.match(param) or "." in param:
        raise ConfigError(f"--set expects SECTION.KEY=VALUE, got {item!r}")
    try:
        return section, param, parse_value(value.strip())
    except ConfigError as exc:
        raise ConfigError(f"--set {key}: {exc}") from None


def load_toml(path: str | Path) -> dict[str, Any]:
    p = Path(path)
    try:
        data = tomllib.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ConfigError(f"config file not found: {p}") from None
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise ConfigError(f"invalid TOML in {p}: {exc}") from None
    for section, values in data.items():
        check_finite(values, f"{p} [{section}]")
    return data


def _sections() -> set[str]:
    from .registry import sections

    return set(sections()) | {EDIT}


def _merge_section(cfg: dict[str, Any], section: str, values: Mapping[str, Any], origin: str) -> None:
    if section not in _sections():
        raise ConfigError(f"unknown section {section!r} in {origin}; valid: {', '.join(sorted(_sections()))}")
    if not isinstance(values, Mapping):
        values = {"name": values} if section != EDIT else None
        if values is None:
            raise ConfigError(f"[{section}] in {origin} must be a table")
    current = cfg.setdefault(section, {})
    new_name = values.get("name")
    if section != EDIT and new_name is not None and current.get("name") not in (None, new_name):
        current.clear()  # another component: the old one's parameters do not apply
    current.update(values)


def resolve(
    preset: str | None = None,
    config_file: str | Path | None = None,
    components: Mapping[str, Any] | None = None,
    sets: Iterable[str] = (),
    edit: Mapping[str, Any] | None = None,
    default_preset: str = "smilegan-pti",
) -> dict[str, Any]:
    """Resolve a full configuration dict from its sources (see module docstring).

    ``components``: section -> the ``--SECTION`` option's value: a name, a list (a repeatable option:
    the first, then the others), or a whole section ``{"name": ..., **params}`` that replaces the
    configured one (what a ``--direction FILE`` names, resolved by the caller)."""
    from .registry import get_preset

    file_cfg = load_toml(config_file) if config_file else {}
    name = preset or file_cfg.get("preset") or default_preset
    cfg: dict[str, Any] = copy.deepcopy(get_preset(name).to_config())
    cfg.setdefault(EDIT, {})
    cfg["preset"] = name
    for section, values in file_cfg.items():
        if section == "preset":
            continue
        _merge_section(cfg, section, values, str(config_file))
    for kind, comp in (components or {}).items():
        if isinstance(comp, (list, tuple)):  # a repeatable option (--direction): the first, then the others
            if kind == "direction" and len(comp) > 1:
                cfg[EDIT]["directions"] = [str(c) for c in comp[1:]]
            comp = comp[0] if comp else None
        if isinstance(comp, Mapping):
            _merge_section(cfg, kind, {}, f"--{kind}")  # a known section
            cfg[kind] = dict(comp)
        elif comp and kind == "direction":
            name, params = direction_section(str(comp))
            if params:  # a boundary file: none of the configured direction's parameters apply
                cfg[kind] = {"name": name, **params}
            else:
                _merge_section(cfg, kind, {"name": name}, f"--{kind}")
        elif comp:
            _merge_section(cfg, kind, {"name": comp}, f"--{kind}")
    for item in sets:
        section, param, value = parse_set(item)
        _merge_section(cfg, section, {param: value}, "--set")
    for k, v in (edit or {}).items():
        if v is not None:
            cfg[EDIT][k] = v
    from .registry import entry, kind_of

    for kind in sorted(_sections() - {EDIT}):
        if kind in cfg and "name" not in cfg[kind]:
            raise ConfigError(f"no {kind} named: the parameters given for {kind!r} need a name (--{kind} NAME)")
        if kind in cfg:
            entry(kind_of(kind), cfg[kind]["name"])  # unknown names fail here, listing the valid ones
    return cfg


def component_params(cfg: Mapping[str, Any], kind: str) -> tuple[str, dict[str, Any]]:
    """(name, params) of ``kind`` in a resolved config."""
    section = dict(cfg.get(kind) or {})
    if "name" not in section:
        raise ConfigError(f"the configuration names no {kind}")
    name = section.pop("name")
    return name, section


def parse_layers(spec: Any, num_ws: int | None = None) -> list[int] | None:
    """``'4-6'`` -> [4, 5, 6] (inclusive, 0-based); ``'all'`` -> every layer; ``'1,3,8-9'``; a list.

    ``None`` or ``'default'`` -> None (the direction's default). Out-of-range layers raise ConfigError
    when ``num_ws`` is given.
    """
    if spec is None or spec == "default":
        return None
    if spec == "all":
        if num_ws is None:
            raise ConfigError("--layers all needs the generator's number of layers")
        return list(range(num_ws))
    if isinstance(spec, int) and not isinstance(spec, bool):
        out = [spec]
    elif isinstance(spec, (list, tuple)):
        out = []
        for x in spec:
            if isinstance(x, bool) or not isinstance(x, int):
                raise ConfigError(f"invalid layer {x!r} in layers")
            out.append(x)
    elif isinstance(spec, str):
        out = []
        for part in spec.replace(" ", "").split(","):
            m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
            if not m:
                raise ConfigError(f"invalid layers {spec!r}; use e.g. 4-6, 0,2,5-7 or all")
            a = int(m.group(1))
            b = int(m.group(2)) if m.group(2) else a
            if b < a:
                raise ConfigError(f"invalid layer range {part!r}: end before start")
            out.extend(range(a, b + 1))
    else:
        raise ConfigError(f"invalid layers {spec!r}")
    out = sorted(set(out))
    if num_ws is not None and out and (out[0] < 0 or out[-1] >= num_ws):
        raise ConfigError(f"layers {spec!r} out of range: the generator has layers 0-{num_ws - 1}")
    return out


def direction_section(value: str) -> tuple[str, dict[str, Any]]:
    """(name, params) of the direction a ``--direction`` value names: a registered direction, or a
    boundary file (a path, or the name of a boundary in the directions folder; see
    :func:`counterface.boundary.find_boundary_file`). Unknown values raise one ConfigError listing the
    registered names."""
    from .boundary import find_boundary_file
    from .registry import entries, entry

    table = entries("direction")
    if value in table:
        return value, {}
    path = find_boundary_file(value)
    if path is not None:
        name = "boundary" if "boundary" in table else "vector"
        return name, {"path": str(path)}
    entry("direction", value)  # raises UnknownComponentError with the valid names
    return value, {}  # pragma: no cover
