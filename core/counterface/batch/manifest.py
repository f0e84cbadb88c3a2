"""Batch inputs: manifests (folder, CSV, JSONL), their stable keys, shards and output names.

A manifest row's key is its ``id`` column when present, else the path as written; every machine
computes the same shard (:func:`shard_of`) and the same output stem (:func:`output_stem`) for a key.
"""

from __future__ import annotations

import csv
import hashlib
import io
import json
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

from ..errors import ConfigError
from ..imageio import IMAGE_SUFFIXES
from ..rows import jsonl_rows  # noqa: F401  (the one JSONL reader; manifests read it strictly)

PATH_COLUMNS = ("path", "image", "file", "filename")


@dataclass(frozen=True)
class Item:
    """One input photo: ``key`` (stable across machines), the resolved ``path`` and user columns;
    ``base``: the manifest's folder, from which relative paths in its columns (``reference``) are read."""

    key: str
    path: Path
    meta: Mapping[str, Any] = field(default_factory=dict)
    base: Path | None = None


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def scan_folder(folder: Path, exclude: Iterable[Path] = ()) -> list[Item]:
    """Every image file below ``folder`` (by suffix, case-insensitive), sorted by relative path."""
    folder = Path(folder)
    excluded = [Path(e).resolve() for e in exclude]
    items = []
    for p in sorted(folder.rglob("*")):
        rel = p.relative_to(folder)
        if _is_hidden(rel) or not p.is_file() or p.suffix.lower() not in IMAGE_SUFFIXES:
            continue
        rp = p.resolve()
        if any(rp == e or e in rp.parents for e in excluded):
            continue
        items.append(Item(key=rel.as_posix(), path=p.absolute(), meta={}))
    return items


def _row_to_item(row: Mapping[str, Any], base: Path, where: str) -> Item:
    col = next((c for c in PATH_COLUMNS if c in row and row[c] not in (None, "")), None)
    if col is None:
        raise ConfigError(f"{where}: no path; the manifest needs a column named one of {', '.join(PATH_COLUMNS)}")
    raw = str(row[col])
    path = Path(raw).expanduser()
    if not path.is_absolute():
        path = base / path
    path = path.absolute()
    key = str(row["id"]) if row.get("id") not in (None, "") else raw
    meta = {k: v for k, v in row.items() if k != col and k is not None}
    return Item(key=key, path=path, meta=meta, base=base)


def read_manifest(source: str | os.PathLike, exclude: Iterable[Path] = ()) -> list[Item]:
    """Items of a folder, a ``.csv`` or a ``.jsonl``/``.ndjson`` manifest (or one photo), in manifest order.

    Raises :class:`ConfigError` for a missing source, a manifest without a path column, invalid
    JSON, or two rows with the same key (add an ``id`` column to tell them apart).
    """
    src = Path(source)
    if src.is_dir():
        items = scan_folder(src, exclude)
    elif not src.exists():
        raise ConfigError(f"input not found: {src}")
    elif src.suffix.lower() in IMAGE_SUFFIXES:  # one photo: a manifest of one row
        items = [_row_to_item({"path": src.name}, src.absolute().parent, str(src))]  # a link: its own name
    else:
        suffix = src.suffix.lower()
        base = src.resolve().parent
        try:
            text = src.read_text(encoding="utf-8-sig")
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigError(f"cannot read manifest {src}: {exc}") from None
        items = []
        if suffix == ".csv":
            reader = csv.DictReader(io.StringIO(text))
            if not reader.fieldnames or not any(c in reader.fieldnames for c in PATH_COLUMNS):
                raise ConfigError(f"{src}: the CSV header needs a column named one of {', '.join(PATH_COLUMNS)}")
            for n, row in enumerate(reader, start=2):
                items.append(_row_to_item(row, base, f"{src}:{n}"))
        elif suffix in (".jsonl", ".ndjson"):
            for n, row in jsonl_rows(text, src):
                items.append(_row_to_item(row, base, f"{src}:{n}"))
        else:
            raise ConfigError(f"{src}: INPUT must be a folder, a .csv or a .jsonl manifest, or a photo")
    seen: dict[str, int] = {}
    for i, it in enumerate(items):
        if it.key in seen:
            raise ConfigError(f"{src}: key {it.key!r} appears twice (rows {seen[it.key] + 1} and {i + 1}); "
                              "add an 'id' column to tell them apart")
        seen[it.key] = i
    return items


# -- shards ----------------------------------------------------------------------------------------
def parse_shard(text: str | None) -> tuple[int, int]:
    """``'2/8'`` -> (2, 8) (1-based index); ``None`` -> (1, 1)."""
    if text in (None, ""):
        return 1, 1
    m = re.fullmatch(r"\s*(\d+)\s*/\s*(\d+)\s*", str(text))
    if not m or not 1 <= int(m.group(1)) <= int(m.group(2)):
        raise ConfigError(f"--shard expects I/N with 1 <= I <= N, e.g. 1/4; got {text!r}")
    return int(m.group(1)), int(m.group(2))


def shard_of(key: str, count: int) -> int:
    """The 1-based shard of a manifest key: a stable hash of the key, so every machine agrees
    whatever the order of the manifest or the platform."""
    h = int.from_bytes(hashlib.sha256(key.encode("utf-8")).digest()[:8], "big")
    return h % int(count) + 1


def select_shard(items: Sequence[Item], index: int, count: int) -> list[Item]:
    return [it for it in items if count == 1 or shard_of(it.key, count) == index]



# -- output names --------------------------------------------------------------------------------------
#: the files of a batch output folder that batch and evaluate write or append to (glob patterns)
RUN_FILES = ("results*.jsonl", "failures*.jsonl", "metrics*.jsonl", "results.csv", "results.parquet",
             "batch.json", "summary.json")


def check_run_inputs(out_dir: str | os.PathLike, inputs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse (one line, exit 2) when an input file of ``batch`` or ``evaluate`` (the manifest, an
    exclusion list) is one of the files they write in ``out_dir`` (:data:`RUN_FILES`): e.g.
    ``counterface batch OUT/results.csv -o OUT`` would replace its own manifest with the results table."""
    from ..paths import check_folder_outputs

    check_folder_outputs(out_dir, RUN_FILES, [p for p in inputs if p is not None],
                         hint=f"choose another -o folder, or copy the file out of {out_dir} first")


def check_readers_outputs(target: str | os.PathLike, names: Sequence[str], runs: Iterable[str | os.PathLike | None]) -> None:
    """Refuse when a file that ``figures`` or ``report`` writes in ``target`` (``names``: fixed names
    or glob patterns) is one of the files they read: a run folder's tables (:data:`RUN_FILES`), its
    pairs, or a photo its rows name (e.g. ``figures OUT -o photos/`` with a photo ``figure2.png``)."""
    from ..paths import check_folder_outputs
    from .store import load_rows, table_files

    inputs: list[Path] = []
    for run in runs:
        if run is None:
            continue
        run = Path(run)
        for stem in ("results", "failures", "metrics"):
            inputs.extend(table_files(run, stem))
        inputs.extend(run / n for n in ("results.csv", "results.parquet", "batch.json", "summary.json"))
        for row in load_rows(run, "results"):
            for col in ("path", "z1", "z0", "z1_sidecar", "z0_sidecar"):
                if isinstance(row.get(col), str) and row[col]:
                    inputs.append(run / row[col])  # absolute paths stay absolute
    linked = []  # an output name that is already a link lands on the file it points to
    for pattern in names:
        for p in Path(target).glob(pattern):
            if p.is_symlink():
                linked.append(p.resolve().name)
    check_folder_outputs(target, names, [p for p in inputs if _may_be_one_of(p, [*names, *linked])],
                         hint="choose another -o folder")


def _may_be_one_of(path: Path, names: Sequence[str]) -> bool:
    """Whether ``path`` (an existing file) could be one of the files ``names`` name: its own name
    matches one, or it is a link or a hard link (a cheap ``lstat`` spares resolving thousands of photos)."""
    import fnmatch
    import stat

    try:
        st = os.lstat(path)
    except OSError:
        return False
    return (stat.S_ISLNK(st.st_mode) or st.st_nlink > 1
            or any(fnmatch.fnmatchcase(path.name, Path(n).name) for n in names))


def slug(text: str, limit: int = 60) -> str:
    s = re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("._-")
    return (s or "photo")[:limit]


def output_stem(key: str, sha256: str | None = None, job: str | None = None) -> str:
    """A readable, collision-free file stem for one version of a manifest key:
    ``<stem>-<8 hex of (key, sha256, job)>``. A changed photo or another configuration gets other
    names, so the pairs of earlier rows (kept in the table) are never overwritten."""
    ident = key if sha256 is None and job is None else "\0".join((key, sha256 or "", job or ""))
    return f"{slug(Path(key).stem)}-{hashlib.sha256(ident.encode('utf-8')).hexdigest()[:8]}"


def alpha_tag(alpha: float) -> str:
    """File-name tag of an alpha, as ``counterface sweep`` writes it: ``a+1``, ``a-0.5``."""
    return f"a{alpha:+g}"
