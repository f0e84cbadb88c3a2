"""The results store of a batch output folder: append-only JSONL tables and the CSV and Parquet
tables made from them (``results.csv``, ``results.parquet``: the same columns, the Parquet file typed).

``results*.jsonl`` (one row per face and alpha), ``failures*.jsonl`` and ``metrics*.jsonl`` (written by
``counterface evaluate``) are appended whole lines at a time; readers take every shard's file and
de-duplicate rows by (key, sha256, job, face, alpha), the last one winning.
"""

from __future__ import annotations

import csv
import io
import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..imageio import write_bytes

#: columns the runner writes; user columns with these names are stored as ``user_<name>``
RESERVED = ("key", "path", "source", "sha256", "job", "face", "faces", "alpha", "z1", "z0", "z1_sidecar",
            "z0_sidecar", "pi1", "pi0", "face_width", "seconds", "reason", "message", "stage", "shard",
            "match")


class _MetricColumns(tuple):
    """The fixed metric column names; ``in`` also answers True for the attribute score columns
    (``score_z1``, ``<attribute>_score_delta``, ... :func:`counterface.scoring.parse_score_column`)."""

    def __contains__(self, name: object) -> bool:
        from ..scoring import parse_score_column

        return tuple.__contains__(self, name) or (isinstance(name, str) and parse_score_column(name) is not None)


#: columns the metrics write (a manifest's ``identity`` column, a person's name, must not shadow the
#: identity similarity, nor make ``evaluate`` believe the row is measured)
METRIC_COLUMNS = _MetricColumns(
    [f"{m}{s}" for m in ("identity", "psnr_outside", "lpips_outside", "unchanged_outside_blend") for s in ("", "_z0")]
    + ["identity_z1z0"] + [f"identity_independent{s}" for s in ("", "_z0", "_z1z0")]
    + ["score_z", "score_z1", "score_z0", "score_delta", "scorer"]
    + ["recon_mse", "recon_lpips", "lpips_net", "metrics_error"])


def read_jsonl(path: Path) -> list[dict[str, Any]]:
    """Rows of a JSONL file; a line that does not parse (a write cut by a crash) is skipped."""
    rows = []
    try:
        with open(path, "rb") as f:
            for line in f:
                try:
                    row = json.loads(line)
                except (json.JSONDecodeError, UnicodeDecodeError):
                    continue
                if isinstance(row, dict):
                    rows.append(row)
    except FileNotFoundError:
        pass
    return rows


def table_files(out_dir: Path, stem: str) -> list[Path]:
    """``stem.jsonl`` and every ``stem.shard-*.jsonl`` in ``out_dir``."""
    out_dir = Path(out_dir)
    files = [out_dir / f"{stem}.jsonl"] + sorted(out_dir.glob(f"{stem}.shard-*.jsonl"))
    return [f for f in files if f.is_file()]


def row_key(row: Mapping[str, Any]) -> tuple:
    return (row.get("key"), row.get("sha256"), row.get("job"), row.get("face"), row.get("alpha"))


def load_rows(out_dir: Path, stem: str = "results") -> list[dict[str, Any]]:
    """Every row of ``stem*.jsonl``, de-duplicated by (key, sha256, job, face, alpha), last one wins,
    in first-seen order."""
    merged: dict[tuple, dict[str, Any]] = {}
    for f in table_files(out_dir, stem):
        for row in read_jsonl(f):
            merged[row_key(row)] = row
    return list(merged.values())


def _cell(v: Any) -> Any:
    if isinstance(v, (dict, list, tuple)):
        return json.dumps(v, sort_keys=True, default=str)
    if isinstance(v, float) and math.isinf(v):
        return "inf" if v > 0 else "-inf"
    return "" if v is None else v


def _flatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """One level of nested dicts becomes ``parent.child`` columns (e.g. ``seconds.tune``)."""
    out: dict[str, Any] = {}
    for k, v in row.items():
        if isinstance(v, dict) and v and all(not isinstance(x, (dict, list)) for x in v.values()):
            for k2, v2 in v.items():
                out[f"{k}.{k2}"] = v2
        else:
            out[k] = v
    return out


def write_csv(path: Path, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> Path:
    """Atomically write ``rows`` as CSV; columns in first-seen order, flat dicts spread into
    ``parent.child`` columns, other nested values as JSON."""
    rows = [_flatten(r) for r in rows]
    columns: dict[str, None] = {}
    for r in rows:
        for k in r:
            columns.setdefault(k, None)
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(list(columns))
    for r in rows:
        w.writerow([_cell(r.get(c)) for c in columns])
    return write_bytes(path, buf.getvalue().encode("utf-8"), out_dir=out_dir)


def merged_rows(out_dir: Path) -> list[dict[str, Any]]:
    """Results rows with the metrics of ``metrics*.jsonl`` (written by ``counterface evaluate``)
    merged in, the later measurement winning."""
    rows = load_rows(out_dir, "results")
    extra = {row_key(m): m for m in load_rows(out_dir, "metrics")}
    out = []
    for r in rows:
        m = extra.get(row_key(r))
        if m:
            r = {**r, **{k: v for k, v in m.items() if k not in ("key", "sha256", "job", "face", "alpha")}}
        out.append(r)
    return out


#: metric columns that hold text; every other metric column is float64 in results.parquet, even when empty
TEXT_METRICS = ("lpips_net", "metrics_error", "scorer")


def _arrow_column(name: str, values: list[Any]):
    """One results.parquet column: bool, int64 or float64 when every value present is one (ints and
    floats together: float64), else string (dicts and lists as JSON, like the CSV); None is null.
    A column with no value at all is float64 (the missing numbers of a metric or distance), except the
    text metrics (:data:`TEXT_METRICS`)."""
    import pyarrow as pa

    present = [v for v in values if v is not None]
    if not present:
        from ..scoring import parse_score_column

        text = name in TEXT_METRICS or (parse_score_column(name) or ("", ""))[1] == "scorer"
        kind = pa.string() if text else pa.float64()
        return pa.array(values, type=kind)
    if all(isinstance(v, (bool, np.bool_)) for v in present):
        return pa.array([None if v is None else bool(v) for v in values], type=pa.bool_())
    if all(isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_)) for v in present):
        return pa.array([None if v is None else int(v) for v in values], type=pa.int64())
    if all(isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(v, (bool, np.bool_)) for v in present):
        return pa.array([None if v is None else float(v) for v in values], type=pa.float64())
    text = [None if v is None else (v if isinstance(v, str) else
                                    json.dumps(v, sort_keys=True, default=_json_default)
                                    if isinstance(v, (dict, list, tuple)) else str(v)) for v in values]
    return pa.array(text, type=pa.string())


def write_parquet(path: Path, rows: Sequence[Mapping[str, Any]], out_dir: Path) -> Path:
    """Atomically write ``rows`` as Parquet: the CSV's columns (flat dicts spread into ``parent.child``
    columns, in first-seen order) with real types (see :func:`_arrow_column`)."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    rows = [_flatten(r) for r in rows]
    columns: dict[str, None] = {}
    for r in rows:
        for k in r:
            columns.setdefault(k, None)
    table = pa.table({c: _arrow_column(c, [r.get(c) for r in rows]) for c in columns})
    sink = pa.BufferOutputStream()
    pq.write_table(table, sink)
    return write_bytes(path, sink.getvalue().to_pybytes(), out_dir=out_dir)


def write_table(out_dir: Path) -> Path:
    """Regenerate ``results.csv`` and ``results.parquet`` from every results (and metrics) JSONL file;
    returns the CSV's path. Without pyarrow only the CSV is written."""
    out = Path(out_dir).resolve()
    rows = merged_rows(out)
    csv_path = write_csv(out / "results.csv", rows, out)
    try:
        import pyarrow  # noqa: F401
    except ImportError:  # pragma: no cover - a dependency; the CSV holds the same table
        return csv_path
    write_parquet(out / "results.parquet", rows, out)
    return csv_path


class Appender:
    """Appends whole lines to a JSONL file: one ``write`` call per batch of lines, then ``fsync``.

    If the file does not end with a newline (a line cut by a crash), a newline is written first so
    the new lines stay parseable.
    """

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)

    def append(self, rows: Sequence[Mapping[str, Any]]) -> None:
        if not rows:
            return
        data = "".join(json.dumps(r, default=_json_default, allow_nan=True) + "\n" for r in rows).encode()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            _lock(fd)  # processes sharing the folder (claims) append one at a time, also over NFS
            size = os.fstat(fd).st_size
            if size:
                with open(self.path, "rb") as f:
                    f.seek(size - 1)
                    if f.read(1) != b"\n":
                        data = b"\n" + data
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)


def _lock(fd: int) -> None:
    """An exclusive POSIX record lock on ``fd`` (released when it is closed); none where unsupported."""
    try:
        import fcntl

        fcntl.lockf(fd, fcntl.LOCK_EX)
    except (ImportError, OSError):  # pragma: no cover - Windows, or a file system without locks
        pass


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
