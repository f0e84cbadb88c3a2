"""Edit settings: one validated, frozen object, the only way edit settings enter the per-photo flow.

:class:`EditSettings` is built once from its sources (the preset, the TOML file, ``--<kind> NAME``,
``--set``, then the command's flags; see :mod:`counterface.config`) and validated once
(:meth:`EditSettings.from_config`): types, ranges and the pairs of options that cannot go together
(:data:`counterface.contradictions.CONTRADICTIONS`). :class:`counterface.pipeline.Pipeline`,
:mod:`counterface.flow` and the batch runner read it; nothing else parses an edit setting.

``--alpha`` and ``--alphas`` are parsed here, once for every command (:func:`parse_alpha`,
:func:`parse_alphas`): ``--alpha`` gives one strength per ``--direction`` (or one for all, or ``auto``);
``--alphas`` gives a sweep (several strengths, one image or row each).
"""

from __future__ import annotations

import copy
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from .errors import ConfigError

#: edit settings and their defaults (``[edit]`` in TOML, ``--set edit.KEY=V``). Neutral defaults only:
#: a default that names a component (the matcher) comes from the preset.
EDIT_DEFAULTS: dict[str, Any] = {
    "alpha": 1.0,  # strength of the operators that use one; one per direction, or "auto" (needs a scorer)
    "layers": None,  # W+ rows to edit; None = each direction's default
    "directions": [],  # more attributes edited at once (--direction repeated): names or boundary files
    "keep": [],  # attributes whose signed distance the edit must not change (conditioning, --keep)
    "watch": [],  # attributes whose leakage n . (w1 - w0) is recorded (--watch)
    "target_score": None,  # --alpha auto: the scorer's value to reach
    "alpha_bounds": [0.0, 3.0],  # --alpha auto: the search interval
    "face": "largest",  # largest | all | N (0-based index, largest first) | match (the reference's person)
    "min_face": 0,  # faces narrower than this many photo pixels are skipped
    "reference": None,  # --face match: photo(s) of the person (a path, a folder or a list; see matching.py)
    "references": None,  # --face match in a batch: DIR of DIR/<value>.jpg or DIR/<value>/*.jpg ...
    "reference_column": None,  # ... with <value> from this manifest column
    "matcher": None,  # --face match: the identity component that matches faces (the preset's; a name or table)
    "match_threshold": None,  # lowest cosine similarity to the reference; None = the matcher's own
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
    "precision": "auto",  # auto (CUDA: tf32, else fp32) | fp32 | tf32 | bf16 (the last two on CUDA only)
    "deterministic": "auto",  # auto (CUDA: false, else true) | true | false; fp32 + true: the exact path
}

FACE_CHOICES = ("largest", "all", "match")
AUTO = "auto"


def _sweep_hint(values: Sequence[Any]) -> str:
    parts = [p.strip() for v in values for p in str(v).split(",")]
    return ",".join(p for p in parts if p)


def parse_alpha(values: Any, directions: int | None = None, option: str = "--alpha") -> Any:
    """The one parser of an edit strength: ``--alpha`` values (repeatable), a TOML value or a list.

    Returns None (nothing given), a float (one for every direction), a list of floats (one per
    ``--direction``, in order) or ``'auto'``. A comma inside a value, or more values than
    ``directions``, is the old batch spelling of a sweep: one ConfigError saying to use ``--alphas``."""
    if values is None:
        return None
    if isinstance(values, (int, float)) and not isinstance(values, bool):
        values = [values]
    elif isinstance(values, str):
        values = [values]
    values = [v for v in values if v is not None]
    if not values:
        return None
    if any("," in str(v) for v in values if isinstance(v, str)):
        raise ConfigError(f"{option} takes one value per direction; for a sweep use --alphas {_sweep_hint(values)}")
    if any(str(v).strip().lower() == AUTO for v in values):
        if len(values) > 1:
            raise ConfigError(f"{option} auto cannot be combined with other {option} values")
        return AUTO
    out = []
    for v in values:
        try:
            if isinstance(v, bool):
                raise ValueError
            number = float(v)
        except (TypeError, ValueError):
            raise ConfigError(f"{option} expects numbers (one per --direction) or auto, got {v!r}") from None
        if not math.isfinite(number):
            raise ConfigError(f"{option} expects finite numbers, got {v!r}")
        out.append(number)
    if directions is not None and len(out) > 1 and len(out) != directions:
        if directions == 1:
            raise ConfigError(f"{len(out)} {option} values for 1 direction; {option} takes one value per "
                              f"direction; for a sweep use --alphas {_sweep_hint(values)}")
        raise ConfigError(f"{len(out)} {option} values for {directions} directions; give one, or one per --direction")
    return out[0] if len(out) == 1 else out


def parse_alphas(text: Any, option: str = "--alphas") -> list[float] | None:
    """The one parser of a sweep: ``'-2,-1,0,1,2'`` (or repeated values, or a list) -> [-2.0, ..., 2.0],
    order kept; duplicates, non-numbers and ``auto`` refused. None when nothing is given."""
    if text is None:
        return None
    parts = [text] if isinstance(text, (str, int, float)) else list(text)
    raw = [p.strip() for item in parts for p in str(item).split(",") if p.strip() != ""]
    if not parts:
        return None
    if not raw:
        raise ConfigError(f"{option} needs at least one value")
    if any(p.lower() == AUTO for p in raw):
        raise ConfigError(f"{option}: alpha auto searches one alpha per face; it cannot be part of a sweep "
                          "(use --alpha auto)")
    vals = []
    for p in raw:
        try:
            vals.append(float(p))
        except ValueError:
            raise ConfigError(f"invalid {option} {p!r}; use comma-separated numbers, e.g. -2,-1,0,1,2") from None
    if not all(math.isfinite(v) for v in vals):
        raise ConfigError(f"{option} must be finite numbers, got {','.join(raw)}")
    if len(set(vals)) != len(vals):
        raise ConfigError(f"{option} {','.join(raw)} repeats a value")
    return vals


def _as_list(value: Any) -> list:
    if value is None:
        return []
    if isinstance(value, (list, tuple)):
        return list(value)
    return [value]


@dataclass(frozen=True)
class EditSettings:
    """The validated edit settings of one run, with the resolved component configuration.

    ``config``: the resolved configuration (component sections, ``preset``, and ``[edit]`` as given:
    what sidecars record and what a batch's job id digests); ``edit``: every edit setting, defaults
    filled in (:data:`EDIT_DEFAULTS`); ``alpha``: None, a float, a list (one per direction) or
    ``'auto'``; ``alphas``: a sweep (``--alphas``) or None; ``given``: the flags the user set, for
    the contradiction checks (a preset's default is never a contradiction); ``roles``: the operators
    the command renders (``edit`` and ``sweep``: pi1 only; ``pairs`` and ``batch``: both).
    """

    config: dict[str, Any]
    edit: dict[str, Any]
    alphas: tuple[float, ...] | None = None
    given: frozenset = field(default_factory=frozenset)
    roles: tuple[str, ...] = ("pi1", "pi0")

    # -- building ------------------------------------------------------------------------------------------
    @classmethod
    def from_config(cls, cfg: Mapping[str, Any], *, alphas: Sequence[float] | None = None,
                    given: Iterable[str] = (), roles: Sequence[str] = ("pi1", "pi0")) -> "EditSettings":
        """Validate a resolved configuration (:func:`counterface.config.resolve`); ConfigError, one line."""
        config = {k: (copy.deepcopy(dict(v)) if isinstance(v, Mapping) else v) for k, v in cfg.items()}
        edit = {**EDIT_DEFAULTS, **dict(config.get("edit") or {})}
        unknown = sorted(set(edit) - set(EDIT_DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown edit setting {unknown[0]!r}; valid: {', '.join(EDIT_DEFAULTS)}")
        n = 1 + len(_as_list(edit.get("directions")))
        if edit.get("alpha") is None:
            edit["alpha"] = EDIT_DEFAULTS["alpha"]
        alpha = parse_alpha(edit["alpha"], n, option="--alpha" if "alpha" in given else "edit.alpha")
        if isinstance(edit["alpha"], (list, tuple)) or alpha == AUTO:
            edit["alpha"] = alpha
        _check_face(edit.get("face"))
        _check_int(edit, "min_face", 0)
        _check_int(edit, "seed", None)
        _check_bounds(edit.get("alpha_bounds"))
        for key in ("target_score", "match_threshold"):
            v = edit.get(key)
            if v is not None and (isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v)):
                raise ConfigError(f"edit.{key} must be a finite number, got {v!r}")
        from . import config as config_mod
        from .device import PRECISIONS

        config_mod.parse_layers(edit.get("layers"))
        if (edit.get("precision") or "auto") not in ("auto", *PRECISIONS):
            raise ConfigError(f"invalid precision {edit.get('precision')!r}; valid: auto, {', '.join(PRECISIONS)}")
        from .device import resolve_deterministic

        resolve_deterministic("cpu", edit.get("deterministic"))  # ConfigError (one line) for a bad value
        sweep = None if alphas is None else tuple(parse_alphas(list(alphas)) or ())
        settings = cls(config=config, edit=edit, alphas=sweep or None, given=frozenset(given), roles=tuple(roles))
        from .contradictions import check

        check(settings)
        return settings

    @classmethod
    def resolve(cls, *, preset: str | None = None, config_file: str | Path | None = None,
                components: Mapping[str, Any] | None = None, sets: Iterable[str] = (),
                edit: Mapping[str, Any] | None = None, alpha: Any = None, alphas: Any = None,
                distance: Sequence[float] = (), keep: Sequence[str] = (), watch: Sequence[str] = (),
                target_score: float | None = None, precision: str | None = None,
                roles: Sequence[str] = ("pi1", "pi0")) -> "EditSettings":
        """Settings from every source, lowest precedence first: ``preset``, ``config_file``,
        ``components`` (``--<kind> NAME``), ``sets`` (``--set``), then the flags (``edit``: [edit]
        keys; ``alpha``: ``--alpha`` values; ``alphas``: ``--alphas``; ``distance``, ``keep``,
        ``watch``, ``target_score``, ``precision``). None / empty means not given."""
        from . import config as config_mod

        flags = {k: v for k, v in dict(edit or {}).items() if v is not None and v != () and v != []}
        given = set(flags)
        if keep:
            flags["keep"] = list(keep)
        if watch:
            flags["watch"] = list(watch)
        if target_score is not None:
            flags["target_score"] = float(target_score)
            given.add("target_score")
        if precision is not None:
            flags["precision"] = precision
        cfg = config_mod.resolve(preset=preset, config_file=config_file, components=components, sets=sets,
                                 edit=flags)
        n = 1 + len(_as_list(cfg["edit"].get("directions")))
        parsed = parse_alpha(list(alpha) if isinstance(alpha, (list, tuple)) else alpha, n)
        if parsed is not None:  # a flag: after every other source, as config.resolve's edit values
            cfg["edit"]["alpha"] = parsed
            given.add("alpha")
        sweep = parse_alphas(alphas)
        if sweep is not None:
            given.add("alphas")
        if distance:
            given.add("distance")
            _fold_distance(cfg, list(distance))
        return cls.from_config(cfg, alphas=sweep, given=given, roles=roles)

    # -- reading ---------------------------------------------------------------------------------------------
    @property
    def alpha(self) -> Any:
        """A float, a list of floats (one per direction) or ``'auto'``."""
        return self.edit["alpha"]

    def sweep(self) -> list[Any]:
        """The strengths to render, one output (or row) each: the ``--alphas`` sweep, else ``[alpha]``."""
        return list(self.alphas) if self.alphas else [self.alpha]

    @property
    def directions(self) -> int:
        """How many attributes are edited at once (the configured direction and ``edit.directions``)."""
        return 1 + len(_as_list(self.edit.get("directions")))

    def operator_name(self, role: str) -> str | None:
        return (self.config.get(role) or {}).get("name")


def _check_face(face: Any) -> None:
    if face in FACE_CHOICES:
        return
    if isinstance(face, bool):
        raise ConfigError(f"invalid --face {face!r}; use largest, all, match or a 0-based index")
    try:
        if int(face) < 0:
            raise ValueError
    except (TypeError, ValueError):
        raise ConfigError(f"invalid --face {face!r}; use largest, all, match or a 0-based index") from None


def _check_int(edit: dict[str, Any], key: str, minimum: int | None) -> None:
    v = edit.get(key)
    if isinstance(v, bool) or not isinstance(v, int):
        if isinstance(v, float) and v.is_integer():
            edit[key] = int(v)
            v = int(v)
        else:
            raise ConfigError(f"edit.{key} must be an integer, got {v!r}")
    if minimum is not None and v < minimum:
        raise ConfigError(f"edit.{key} must be {minimum} or more, got {v}")


def _check_bounds(bounds: Any) -> None:
    values = _as_list(bounds)
    try:
        lo, hi = (float(x) for x in values)
    except (TypeError, ValueError):
        raise ConfigError(f"edit.alpha_bounds must be two numbers, got {bounds!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi)) or lo >= hi:
        raise ConfigError(f"edit.alpha_bounds must be two finite numbers, low < high, got {bounds!r}")


def takes_distance(name: str | None) -> bool:
    """Whether the operator registered as ``name`` takes a ``distance`` parameter."""
    if not name:
        return False
    from .registry import check_params, entry

    try:
        check_params(entry("operator", name).factory, {"distance": 0.0}, "")
        return True
    except ConfigError:
        return False


def _fold_distance(cfg: dict[str, Any], distance: list[float]) -> None:
    """``--distance`` goes to whichever of the pi1/pi0 operators takes a ``distance``; when both do,
    ``--set pi1.distance=D`` / ``--set pi0.distance=D`` must say which."""
    takers = [role for role in ("pi1", "pi0") if takes_distance((cfg.get(role) or {}).get("name"))]
    if not takers:
        raise ConfigError("--distance sets the target of the on/off operators; choose one with --pi1 on or --pi0 off")
    if len(takers) > 1:
        raise ConfigError("--distance is ambiguous: both --pi1 and --pi0 take a distance; "
                          "use --set pi1.distance=D and --set pi0.distance=D")
    cfg[takers[0]]["distance"] = distance[0] if len(distance) == 1 else distance
