"""The pairs of ``counterface polarization`` and what made them: Z1, Z0 and the operators.

PAIRS is a ``counterface batch`` output folder or a CSV/JSONL table.

* **Batch folder.** Every line of ``results*.jsonl`` is read strictly: a line that is not a JSON
  object, or whose ``key``, ``z1``, ``z0``, ``face`` or ``alpha`` is missing or malformed, is reported
  (file, line number, why) and left out, and counted. Each row's ``pi1`` and ``pi0`` come from the
  row; the direction (its path, attribute and file sha256) and the face's alignment matrix from the
  row's Z1 sidecar (``z1_sidecar``), itself checked (a sidecar that cannot be read or holds the wrong
  types leaves those facts unknown for that pair, with a count).
* **Table.** Columns ``key, z1, z0`` (paths relative to the table's folder), and optionally
  ``pi1, pi0, direction, direction_sha256, attribute, alpha``, which carry the same facts. A row
  without a key, Z1 or Z0 is reported with its line number and left out.

:func:`operators` reduces the chosen pairs' facts to one record: the run refuses pairs made by
different operators (one line), and says when they are unknown or not T on against T off.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError
from ..ranges import finite_float

#: the facts that must agree across the pairs of one analysis
OPERATOR_FIELDS = ("pi1", "pi0", "direction_sha256")


@dataclass
class Pair:
    key: str
    z1: Path
    z0: Path
    face: int = 0
    alpha: float | None = None
    pi1: str | None = None
    pi0: str | None = None
    direction: str | None = None
    direction_sha256: str | None = None
    attribute: str | None = None
    matrix: np.ndarray | None = None  # (2, 3) photo -> aligned crop, for a crop of side ``size``
    size: int | None = None
    auto_alpha: bool = False
    aligner: dict | None = None  # the batch's aligner section ({"name": ..., params}), from the sidecar
    matcher: Any = None  # the batch's edit.matcher (a name or a table), from the sidecar
    photo: Path | None = None  # the photo the pair was made from (a batch row's ``path``), if recorded


@dataclass
class PairSet:
    pairs: dict[str, Pair]
    source: str  # "batch" or "table"
    malformed: list[str] = field(default_factory=list)  # one line each: "file:line: why"
    rows: int = 0
    sidecar_problems: int = 0
    alpha_filtered: int = 0


def _text(v: Any) -> str | None:
    if v is None:
        return None
    if isinstance(v, (dict, list, tuple, bool)):
        raise ValueError("not text")
    s = str(v).strip()
    return s or None


def _alpha(v: Any) -> float | None:
    """A row's alpha: None when absent, else a finite number (the parser of :mod:`counterface.ranges`);
    ValueError (why) otherwise: the row is malformed."""
    if v in (None, ""):
        return None
    try:
        return finite_float(v, "alpha")
    except ConfigError as exc:
        raise ValueError(str(exc)) from None


def _face(v: Any) -> int:
    if v in (None, ""):
        return 0
    if isinstance(v, bool) or (isinstance(v, float) and not v.is_integer()):
        raise ValueError(f"face {v!r} is not a face index")
    try:
        f = int(v)
    except (TypeError, ValueError):
        raise ValueError(f"face {v!r} is not a face index") from None
    if f < 0:
        raise ValueError(f"face {v!r} is negative")
    return f


def _row_pair(row: Mapping[str, Any], base: Path) -> Pair:
    """A checked :class:`Pair` from one row; ValueError (why) for a malformed row."""
    key = _text(row.get("key"))
    z1, z0 = _text(row.get("z1")), _text(row.get("z0"))
    missing = [n for n, v in (("key", key), ("z1", z1), ("z0", z0)) if v is None]
    if missing:
        raise ValueError(f"missing {', '.join(missing)}")

    def path(v: str) -> Path:
        p = Path(v).expanduser()
        return p if p.is_absolute() else base / p

    pair = Pair(key=key, z1=path(z1), z0=path(z0), face=_face(row.get("face")), alpha=_alpha(row.get("alpha")))
    for name in ("pi1", "pi0", "direction", "direction_sha256", "attribute"):
        try:
            setattr(pair, name, _text(row.get(name)))
        except ValueError:
            raise ValueError(f"{name} is not text") from None
    pair.auto_alpha = row.get("alpha_auto_reached") is not None
    photo = _text(row.get("path"))
    pair.photo = path(photo) if photo is not None else None
    return pair


def _sidecar_facts(pair: Pair, path: Path) -> bool:
    """Fill the direction and the alignment from the pair's Z1 sidecar; False when it is unusable."""
    try:
        side = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    if not isinstance(side, dict):
        return False
    ok = True
    attrs = side.get("attributes")
    if isinstance(attrs, list) and attrs and all(isinstance(a, dict) for a in attrs):
        names = [a.get("direction") for a in attrs]
        shas = [a.get("file_sha256") for a in attrs]
        kinds = [a.get("attribute") for a in attrs]
        if all(isinstance(v, str) or v is None for v in names + shas + kinds):
            pair.direction = pair.direction or ",".join(str(n) for n in names if n)
            pair.direction_sha256 = pair.direction_sha256 or (",".join(str(s) for s in shas if s) or None)
            pair.attribute = pair.attribute or (",".join(str(k) for k in kinds if k) or None)
        else:
            ok = False
    aligner = (side.get("config") or {}).get("aligner") if isinstance(side.get("config"), dict) else None
    if isinstance(aligner, dict) and isinstance(aligner.get("name"), str) and aligner["name"]:
        pair.aligner = dict(aligner)
    matcher = side.get("edit", {}).get("matcher") if isinstance(side.get("edit"), dict) else None
    if (isinstance(matcher, str) and matcher) or (isinstance(matcher, dict) and isinstance(matcher.get("name"), str)):
        pair.matcher = matcher
    face = side.get("face")
    if isinstance(face, dict):
        try:
            m = np.asarray(face.get("matrix"), dtype=np.float64)
            size = int(face.get("size"))
            if m.shape != (2, 3) or not np.all(np.isfinite(m)) or size < 1:
                raise ValueError
            pair.matrix, pair.size = m, size
        except (TypeError, ValueError):
            ok = False
    return ok


def _batch_rows(src: Path) -> tuple[list[tuple[str, dict]], list[str], int]:
    """(where, row) of every results line, the malformed lines, and the number of lines read."""
    from ..batch.store import table_files

    files = table_files(src, "results")
    if not files:
        raise ConfigError(f"{src}: no results*.jsonl; is it a batch output folder?")
    rows, bad, n_lines = [], [], 0
    for f in files:
        try:
            data = f.read_bytes()
        except OSError as exc:
            raise ConfigError(f"cannot read {f}: {exc.strerror or exc}") from None
        for n, line in enumerate(data.splitlines(), start=1):
            if not line.strip():
                continue
            n_lines += 1
            try:
                row = json.loads(line)
            except (json.JSONDecodeError, UnicodeDecodeError):
                bad.append(f"{f.name}:{n}: not valid JSON")
                continue
            if not isinstance(row, dict):
                bad.append(f"{f.name}:{n}: not a JSON object")
                continue
            rows.append((f"{f.name}:{n}", row))
    return rows, bad, n_lines


def read(source: str | Path, alpha: float | None = None, exclude=None) -> PairSet:
    """key -> :class:`Pair` (face 0 of each key: the largest face), with the malformed rows.

    ``alpha``: keep the pairs made at this alpha (a sweep); a table must then have an ``alpha``
    column. ``exclude`` (:class:`~counterface.batch.exclusions.Exclusions`): keys whose chosen pair it
    rejects are left out."""
    from .tables import read_table

    src = Path(source)
    bad: list[str] = []
    if src.is_dir():
        listed, bad, n_rows = _batch_rows(src)
        base, kind = src, "batch"
        merged: dict[tuple, tuple[str, dict]] = {}
        for where, row in listed:  # de-duplicated like the batch store: the last row of a (key, ..., alpha) wins
            ident = tuple(json.dumps(row.get(c), sort_keys=True, default=str)
                          for c in ("key", "sha256", "job", "face", "alpha"))
            merged[ident] = (where, row)
        listed = list(merged.values())
    else:
        table = read_table(src, "pairs")
        start = 2 if src.suffix.lower() == ".csv" else 1
        listed = [(f"{src.name}:{n}", r) for n, r in enumerate(table, start=start)]
        n_rows, base, kind = len(listed), src.resolve().parent, "table"
        if alpha is not None and not any(r.get("alpha") not in (None, "") for _, r in listed):
            raise ConfigError(f"--alpha selects pairs by their alpha, and {src} has no alpha column; "
                              "leave --alpha out or add an alpha column")
    pairs: list[tuple[Pair, dict]] = []
    for where, row in listed:
        try:
            pairs.append((_row_pair(row, base), row))
        except ValueError as exc:
            bad.append(f"{where}: {exc}")
    out = PairSet(pairs={}, source=kind, malformed=bad, rows=n_rows)
    if alpha is not None:
        kept = [(p, r) for p, r in pairs if p.alpha is not None and math.isclose(p.alpha, alpha)]
        out.alpha_filtered = len(pairs) - len(kept)
        if pairs and not kept:
            present = sorted({p.alpha for p, _ in pairs if p.alpha is not None})
            raise ConfigError(f"{src}: no pair at --alpha {alpha:g} (alphas present: "
                              f"{', '.join(f'{a:g}' for a in present) or 'none'})")
        pairs = kept
    chosen: dict[str, tuple[Pair, dict]] = {}
    alphas: dict[str, set] = {}
    made: dict[str, set] = {}
    for p, r in pairs:
        alphas.setdefault(p.key, set()).add(p.alpha)
        made.setdefault(p.key, set()).add((p.pi1, p.pi0))
    mixed = sorted(k for k, ops in made.items() if len(ops) > 1)
    if mixed:
        ops = ", ".join(f"pi1={a} pi0={b}" for a, b in sorted(made[mixed[0]], key=str))
        raise ConfigError(f"{src}: {len(mixed)} keys have pairs made by different operators (e.g. {mixed[0]!r}: "
                          f"{ops}); use the pairs of one run")
    for p, r in pairs:
        if p.key not in chosen or p.face < chosen[p.key][0].face:
            chosen[p.key] = (p, r)  # the largest face (face 0) of each photo
    several = sorted(k for k, a in alphas.items() if len(a) > 1 and not any(q.auto_alpha for q, _ in pairs
                                                                            if q.key == k))
    if several:
        raise ConfigError(f"{src}: {len(several)} keys have pairs at several alphas (e.g. {several[0]!r}); "
                          "choose one with --alpha")
    if exclude is not None:
        chosen = {k: v for k, v in chosen.items() if not exclude.rejects(v[1])}
    for key, (p, r) in chosen.items():
        side = r.get("z1_sidecar") if kind == "batch" else None
        if isinstance(side, str) and side:
            sp = Path(side)
            if not _sidecar_facts(p, sp if sp.is_absolute() else base / sp):
                out.sidecar_problems += 1
        out.pairs[key] = p
    return out


def operators(pairs: list[Pair]) -> dict[str, Any]:
    """The one set of operators that made ``pairs`` (the used articles' pairs).

    ``known`` is False when no pair says which operators made it. ConfigError when pairs disagree on
    ``pi1``, ``pi0`` or the direction file, or on alpha (except ``--alpha auto``, which chooses per photo)."""
    if not pairs:
        return {"known": False}
    for name in OPERATOR_FIELDS:
        values = sorted({str(getattr(p, name)) for p in pairs})
        if len(values) > 1:
            raise ConfigError(f"the pairs were made with different {name} ({', '.join(values[:4])}); "
                              "rho compares one treatment: use the pairs of one operator setting")
    alphas = sorted({p.alpha for p in pairs if p.alpha is not None})
    auto = any(p.auto_alpha for p in pairs)
    if len(alphas) > 1 and not auto:
        raise ConfigError(f"the pairs were made at different alphas ({', '.join(f'{a:g}' for a in alphas[:4])}); "
                          "choose one with --alpha")
    first = pairs[0]
    known = first.pi1 is not None and first.pi0 is not None
    rec = {"known": known, "pi1": first.pi1, "pi0": first.pi0, "direction": first.direction,
           "aligner": first.aligner, "matcher": first.matcher,
           "direction_sha256": first.direction_sha256, "attribute": first.attribute,
           "alpha": "auto" if auto else (alphas[0] if len(alphas) == 1 else (alphas or None))}
    return rec


def _target(name: str | None) -> str | None:
    """The boundary distance a registered operator moves to (``on_distance``, ``off_distance``), or None
    (an operator that shifts, reconstructs or returns the photo, or one not registered here)."""
    if not name:
        return None
    from ..registry import entry

    try:
        factory = entry("operator", name).factory
    except ConfigError:
        return None
    value = getattr(factory, "target_field", None)
    return value if isinstance(value, str) else None


def on_off(rec: Mapping[str, Any]) -> bool:
    """Whether the pairs are T on against T off: pi1 moves to the boundary's on side, pi0 to its off side."""
    return _target(rec.get("pi1")) == "on_distance" and _target(rec.get("pi0")) == "off_distance"


def operator_notes(rec: Mapping[str, Any]) -> list[str]:
    """The warning lines an operators record calls for."""
    if not rec.get("known"):
        return ["the operators that made the pairs are unknown (PAIRS gives no pi1/pi0): rho is the effect of "
                "whatever differs between Z1 and Z0; record them (a batch folder, or pi1, pi0, direction columns)"]
    if not on_off(rec):
        return [f"the pairs are pi1={rec['pi1']} against pi0={rec['pi0']}, not T on against T off: rho then "
                "measures that contrast (with pi0=reconstruction or original, GAN artefacts enter every "
                "difference); make the pairs with --pi1 on --pi0 off"]
    return []
