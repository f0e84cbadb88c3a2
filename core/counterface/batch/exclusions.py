"""Exclusion lists: the review decisions of ``counterface report`` (or any CSV of the same shape).

The file is a CSV with a header and one line per reviewed pair::

    key,face,alpha,decision,job,sha256
    2020/ap_0001.jpg,0,1,reject,a2274363a1b0f452,4570...
    2020/ap_0002.jpg,0,1,accept,a2274363a1b0f452,9b1c...

``key`` and ``decision`` are required; ``face``, ``alpha``, ``job`` and ``sha256`` are optional, and
an empty (or absent) one matches every value, so ``key,decision`` lines reject whole photos. Only
``reject`` (also ``rejected``, ``exclude``, ``excluded``) lines exclude anything; ``accept`` (also
``accepted``, ``keep``) and empty decisions are kept as a record of the review. Other columns are
ignored.

Granularity: ``evaluate`` and ``polarization`` drop the rows (pairs) a line matches; ``batch`` works
per photo and skips a photo when any line rejects one of its pairs (a pair is usually rejected for
the photo's sake: the wrong person, a drawing, a face too damaged to edit).
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from ..errors import ConfigError

REJECT = frozenset({"reject", "rejected", "exclude", "excluded"})
KEEP = frozenset({"accept", "accepted", "keep", ""})


@dataclass(frozen=True)
class Rejection:
    """One ``reject`` line; ``None`` fields match every value."""

    key: str
    face: int | None = None
    alpha: float | None = None
    job: str | None = None
    sha256: str | None = None

    def matches(self, row: Mapping[str, Any]) -> bool:
        """Whether this line rejects the result row ``row`` (a field the row lacks is not compared)."""
        if str(row.get("key")) != self.key:
            return False
        if self.face is not None and row.get("face") is not None and _int(row.get("face")) != self.face:
            return False
        if self.alpha is not None and row.get("alpha") is not None:
            a = _float(row.get("alpha"))
            if a is None or not math.isclose(a, self.alpha, rel_tol=1e-9, abs_tol=1e-9):
                return False
        for name in ("job", "sha256"):
            mine, theirs = getattr(self, name), row.get(name)
            if mine is not None and theirs not in (None, "") and str(theirs) != mine:
                return False
        return True


@dataclass(frozen=True)
class Exclusions:
    """The rejections of an exclusion list, indexed by key."""

    source: str
    rejections: tuple[Rejection, ...]
    reviewed: int  # lines read (accepted and rejected)

    def __post_init__(self):
        by_key: dict[str, list[Rejection]] = {}
        for r in self.rejections:
            by_key.setdefault(r.key, []).append(r)
        object.__setattr__(self, "_by_key", by_key)

    def rejects(self, row: Mapping[str, Any]) -> bool:
        """Whether a result row (a pair: key, face, alpha, job, sha256) is rejected."""
        return any(r.matches(row) for r in self._by_key.get(str(row.get("key")), ()))

    def rejects_photo(self, key: Any) -> bool:
        """Whether any pair of the photo with manifest key ``key`` is rejected (``batch``'s granularity)."""
        return str(key) in self._by_key

    def split(self, rows: Iterable[Mapping[str, Any]]) -> tuple[list, int]:
        """(the rows not rejected, how many were rejected)."""
        kept, dropped = [], 0
        for row in rows:
            if self.rejects(row):
                dropped += 1
            else:
                kept.append(row)
        return kept, dropped


def _int(v: Any) -> int | None:
    try:
        return int(float(v))
    except (TypeError, ValueError):
        return None


def _float(v: Any) -> float | None:
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def read_exclusions(path: str | os.PathLike) -> Exclusions:
    """Read an exclusion list (the CSV ``counterface report`` exports). Raises ConfigError (one line)
    for a missing file, a file without ``key``/``decision`` columns, or a value it cannot read."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise ConfigError(f"{p}: exclusion list not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{p}: cannot read the exclusion list ({type(exc).__name__})") from None
    reader = csv.DictReader(text.splitlines())
    fields = [f.strip().lower() for f in (reader.fieldnames or [])]
    missing = [c for c in ("key", "decision") if c not in fields]
    if missing:
        raise ConfigError(f"{p}: an exclusion list needs the columns key and decision (missing: {', '.join(missing)})")
    rejections: list[Rejection] = []
    reviewed = 0
    for n, raw in enumerate(reader, start=2):
        line = {str(k).strip().lower(): (v or "") if str(k).strip().lower() == "key" else (v or "").strip()
                for k, v in raw.items() if k is not None}  # keys are compared exactly, as written
        decision = line.get("decision", "").lower()
        if decision not in REJECT | KEEP:
            raise ConfigError(f"{p}:{n}: unknown decision {line.get('decision')!r} (use reject or accept)")
        if not line.get("key"):
            raise ConfigError(f"{p}:{n}: empty key")
        reviewed += 1
        if decision not in REJECT:
            continue
        face = line.get("face") or None
        alpha = line.get("alpha") or None
        if face is not None and _int(face) is None:
            raise ConfigError(f"{p}:{n}: face must be an integer, got {face!r}")
        if alpha is not None and _float(alpha) is None:
            raise ConfigError(f"{p}:{n}: alpha must be a number, got {alpha!r}")
        rejections.append(Rejection(key=line["key"], face=None if face is None else _int(face),
                                    alpha=None if alpha is None else _float(alpha),
                                    job=line.get("job") or None, sha256=line.get("sha256") or None))
    return Exclusions(source=str(p), rejections=tuple(rejections), reviewed=reviewed)


def exclusion_csv(decisions: Sequence[Mapping[str, Any]]) -> str:
    """The CSV text of review decisions (dicts with key, face, alpha, decision, job, sha256), as the
    report page exports it."""
    import io

    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    cols = ("key", "face", "alpha", "decision", "job", "sha256")
    w.writerow(cols)
    for d in decisions:
        w.writerow(["" if d.get(c) is None else d.get(c) for c in cols])
    return buf.getvalue()
