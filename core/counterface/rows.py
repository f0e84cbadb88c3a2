"""JSONL rows read strictly: the one reader of JSON-lines files, the validators of result-table rows,
and the report of the rows left out.

A manifest is the user's input: a bad line stops the command (``ConfigError`` naming ``file:line``).
A result table (``results*.jsonl``, ``failures*.jsonl``, ``metrics*.jsonl``) is read back by the
review page, ``evaluate``, ``figures`` and ``polarization``: a malformed row there (a line cut by a
crash, invalid JSON, not an object, or a row whose fields are not what the runner writes, such as
``key: null`` or ``face: "zero"``) is left out and *reported*, one line each with its line number
and why, never dropped without a word nor summarised as ``job=None, alpha=NaN``.

Reporting: inside :func:`reporting` (the CLI wraps every command in it) each malformed row is passed
once to the given ``echo`` and counted; outside it a :class:`MalformedRowWarning` is issued.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import math
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from .errors import ConfigError


class MalformedRowWarning(UserWarning):
    """A result-table row was left out (outside :func:`reporting`)."""


@dataclass(frozen=True)
class BadRow:
    """One malformed line: the file, its 1-based line number, and why it was left out."""

    source: str
    line: int
    why: str

    def __str__(self) -> str:
        return f"{self.source}:{self.line}: malformed row left out ({self.why})"


# -- validators ------------------------------------------------------------------------------------------
def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _text(row: Mapping[str, Any], col: str, *, optional: bool = False) -> str | None:
    v = row.get(col)
    if v is None and optional:
        return None
    if not isinstance(v, str) or not v:
        return f"{col} is {json.dumps(v)}, not a non-empty string"
    return None


def _face(row: Mapping[str, Any]) -> str | None:
    v = row.get("face")
    if not _is_int(v) or v < 0:
        return f"face is {json.dumps(v)}, not a face index (an integer >= 0)"
    return None


def _per_direction(v: Any) -> bool:
    """One alpha per direction: a list of finite numbers, or the text a row records (``'1,-0.5'``)."""
    if isinstance(v, str):
        if "," not in v:  # one alpha is written as a number
            return False
        try:
            v = [float(a) for a in v.split(",")]
        except ValueError:
            return False
    return isinstance(v, list) and bool(v) and all(_is_number(a) for a in v)


def _alpha(row: Mapping[str, Any]) -> str | None:
    """A finite number, or one per edited direction (:func:`_per_direction`)."""
    v = row.get("alpha")
    if _is_number(v) or _per_direction(v):
        return None
    return f"alpha is {json.dumps(v) if not isinstance(v, float) else v}, not a finite number (or one per direction)"


def _typed(row: Mapping[str, Any], col: str) -> str | None:
    """A column that may be absent, but when present is a non-empty string."""
    return _text(row, col) if col in row else None


def result_row_problem(row: Mapping[str, Any]) -> str | None:
    """Why a ``results*.jsonl`` row is malformed, or None: ``key`` a non-empty string, ``face`` a
    face index, ``alpha`` a finite number; ``sha256``, ``job``, ``z1``, ``z0``, ``path`` non-empty
    strings and ``faces`` a positive integer wherever present."""
    for check in (lambda r: _text(r, "key"), _face, _alpha,
                  *(lambda r, c=c: _typed(r, c) for c in ("sha256", "job", "z1", "z0", "path"))):
        why = check(row)
        if why:
            return why
    faces = row.get("faces")
    if faces is not None and (not _is_int(faces) or faces < 1):
        return f"faces is {json.dumps(faces)}, not a positive integer"
    return None


def failure_row_problem(row: Mapping[str, Any]) -> str | None:
    """Why a ``failures*.jsonl`` row is malformed: ``key`` and ``reason`` must be non-empty strings."""
    return _text(row, "key") or _text(row, "reason") or _typed(row, "job")


def metrics_row_problem(row: Mapping[str, Any]) -> str | None:
    """Why a ``metrics*.jsonl`` row is malformed: ``key`` a non-empty string, ``face`` an index,
    ``alpha`` finite (the result row it measures)."""
    return _text(row, "key") or _face(row) or _alpha(row) or _typed(row, "job")


#: the validator of each result table, by file stem (``results.shard-1-of-4.jsonl`` -> results)
VALIDATORS: dict[str, Callable[[Mapping[str, Any]], str | None]] = {
    "results": result_row_problem, "failures": failure_row_problem, "metrics": metrics_row_problem,
}


def validator_for(path: str | os.PathLike) -> Callable[[Mapping[str, Any]], str | None] | None:
    """The validator of a result table file, from its name; None for other files."""
    return VALIDATORS.get(Path(path).name.split(".", 1)[0])


# -- the reader --------------------------------------------------------------------------------------------
def jsonl_rows(text: str, src: str | os.PathLike, *, validate: Callable[[Mapping[str, Any]], str | None] | None = None,
               on_bad: Callable[[BadRow], None] | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, object) for every non-blank line of a JSONL text.

    A line that is not valid JSON, not a JSON object, or that ``validate`` finds a problem with is
    malformed: without ``on_bad`` (a manifest: strict) a ConfigError naming ``src:line`` and why;
    with ``on_bad`` it is passed a :class:`BadRow` and left out."""
    for n, line in enumerate(text.split("\n"), start=1):  # line numbers as an editor counts them
        if not line.strip():
            continue
        why = None
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            why = f"invalid JSON ({exc.msg})"
        else:
            if not isinstance(row, dict):
                why = "not a JSON object"
            elif validate is not None:
                why = validate(row)
        if why is None:
            yield n, row
        elif on_bad is None:
            raise ConfigError(f"{src}:{n}: {'each line must be a JSON object' if why == 'not a JSON object' else why}")
        else:
            on_bad(BadRow(str(src), n, why))


def read_table(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The valid rows of a result table file (see :func:`validator_for`); every malformed row is
    reported (:func:`note`) and left out. A missing file has no rows."""
    p = Path(path)
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        return []
    except OSError as exc:
        raise ConfigError(f"cannot read {p}: {exc.strerror or exc}") from None
    lines = []
    for n, raw in enumerate(data.split(b"\n"), start=1):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            lines.append("")
            note(BadRow(str(p), n, "not UTF-8 text"))
    text = "\n".join(lines)
    rows = []
    validate = validator_for(p)
    for n, row in jsonl_rows(text, p, validate=validate, on_bad=note):
        rows.append(row)
    return rows


# -- reporting -------------------------------------------------------------------------------------------
@dataclass
class Report:
    """The malformed rows met inside one :func:`reporting` block (each ``(file, line)`` once)."""

    echo: Callable[[str], None] | None = None
    rows: dict[tuple[str, int], BadRow] = field(default_factory=dict)

    @property
    def count(self) -> int:
        return len(self.rows)


_ACTIVE: contextvars.ContextVar[Report | None] = contextvars.ContextVar("counterface_bad_rows", default=None)


def note(bad: BadRow) -> None:
    """Report one malformed row: to the active :func:`reporting` block (once per file and line), or
    as a :class:`MalformedRowWarning`."""
    report = _ACTIVE.get()
    if report is None:
        warnings.warn(str(bad), MalformedRowWarning, stacklevel=3)
        return
    k = (os.path.realpath(bad.source), bad.line)  # one file named two ways is one file
    if k in report.rows:
        return
    report.rows[k] = bad
    if report.echo is not None:
        report.echo(str(bad))


@contextlib.contextmanager
def reporting(echo: Callable[[str], None] | None = None, summary: bool = True) -> Iterator[Report]:
    """Collect (and ``echo``, one line each) the malformed rows read inside the block; at its end,
    when there were any and ``summary``, ``echo`` says how many rows were left out in all."""
    report = Report(echo=echo)
    token = _ACTIVE.set(report)
    try:
        yield report
    finally:
        _ACTIVE.reset(token)
        if summary and report.count and echo is not None:
            files = sorted({k[0] for k in report.rows})
            echo(f"{report.count} malformed row(s) left out of {', '.join(files)}")


def hashable(value: Any) -> Any:
    """``value`` usable in a set or as a dict key: lists (an alpha per direction) become tuples."""
    if isinstance(value, list):
        return tuple(hashable(v) for v in value)
    if isinstance(value, dict):
        return tuple(sorted((k, hashable(v)) for k, v in value.items()))
    return value


def is_valid(row: Mapping[str, Any], stem: str) -> bool:
    """Whether ``row`` passes the validator of the ``stem`` table (no report: a quiet check for
    readers that skip silently because a later read reports, e.g. the resume index)."""
    check = VALIDATORS.get(stem)
    return isinstance(row, Mapping) and (check is None or check(row) is None)
