"""Batches of thousands of photos: manifests, shards, a resumable runner and its results table.

Input: a folder (every image file below it, recursively, hidden files and the output folder
skipped) or a manifest, CSV or JSONL, with a ``path`` column (relative paths are relative to the
manifest's folder) and any other columns (politician, outlet, ...) which are carried into every
result row. An ``id`` column, when present, is the row's key; otherwise the path as written is.

Output folder::

    OUT/pairs/<name>_z1.png + .json     pi_1(Z) and its sidecar, one per face (and alpha)
    OUT/pairs/<name>_z0.png + .json     pi_0(Z), the baseline variant chosen by the pi0 component

    <name> = <file stem>-<8 hex of (key, sha256, job)>_face<i>[_a<alpha>] (the alpha tag only in sweeps,
    written like ``counterface sweep`` does: a+1, a-0.5)
    OUT/results.jsonl                   one row per face (per alpha): keys, paths, timings, metrics
    OUT/failures.jsonl                  one row per photo that failed, with ``reason`` and ``message``
    OUT/results.csv                     the table, regenerated from every results*.jsonl
    OUT/batch.json                      the configuration and settings of the last run

Resuming: a photo is *done* when its rows are in ``results*.jsonl`` (or a final failure is in
``failures*.jsonl``) under the same job key: manifest key + SHA-256 of the file + digest of the
configuration and alphas. Rows are appended (one ``write`` per photo, then ``fsync``) only after both
images and both sidecars of every face are on disk (written atomically), so an interrupted run loses
at most the photo in flight and a rerun never duplicates a row (rows are also de-duplicated by key
on reading). Sharded runs (``--shard I/N``) write ``results.shard-I-of-N.jsonl`` so that N machines
can share one output folder; every reader takes all of them.
"""

from __future__ import annotations

import concurrent.futures as cf
import csv
import hashlib
import io
import json
import math
import os
import re
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence

import numpy as np

from .errors import ConfigError, CounterfaceError, ImageError, NoFaceError, OutputError, PluginError, WeightsError
from .imageio import IMAGE_SUFFIXES, file_sha256, read_image, write_bytes, write_image, write_json
from .pipeline import config_digest, select_faces
from .provenance import Timer

PATH_COLUMNS = ("path", "image", "file", "filename")
#: output formats that store the pixels exactly (the metrics of other formats are measured on the file)
LOSSLESS = (".png", ".webp", ".bmp", ".tif", ".tiff")
#: failure reasons that a rerun with the same file and configuration would reproduce
FINAL_REASONS = ("unreadable", "no_face", "face_too_small")
#: columns the runner writes; user columns with these names are stored as ``user_<name>``
RESERVED = ("key", "path", "source", "sha256", "job", "face", "faces", "alpha", "z1", "z0", "z1_sidecar",
            "z0_sidecar", "pi0", "face_width", "seconds", "reason", "message", "stage", "shard")
#: columns the metrics write (a manifest's ``identity`` column, a person's name, must not shadow the
#: identity similarity, nor make ``evaluate`` believe the row is measured)
METRIC_COLUMNS = tuple(
    [f"{m}{s}" for m in ("identity", "psnr_outside", "lpips_outside", "unchanged_outside_blend") for s in ("", "_z0")]
    + [f"{m}_{r}" for m in ("smile", "lift", "width") for r in ("z", "z1", "z0")]
    + ["smile_delta", "recon_mse", "recon_lpips", "lpips_net", "metrics_error"])


class BatchInterrupted(CounterfaceError):
    """The run was stopped by SIGINT/SIGTERM; finished photos are kept, a rerun resumes."""

    def __init__(self, signum: int, done: int):
        name = signal.Signals(signum).name if signum else "signal"
        super().__init__(f"interrupted by {name} after {done} photo(s) in this run; rerun the same command to resume")
        self.exit_code = 128 + int(signum or 2)
        self.signum = signum


# -- manifests --------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Item:
    """One input photo: ``key`` (stable across machines), the resolved ``path`` and user columns."""

    key: str
    path: Path
    meta: Mapping[str, Any] = field(default_factory=dict)


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
    return Item(key=key, path=path, meta=meta)


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
            for n, line in enumerate(text.splitlines(), start=1):
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except json.JSONDecodeError as exc:
                    raise ConfigError(f"{src}:{n}: invalid JSON ({exc.msg})") from None
                if not isinstance(row, dict):
                    raise ConfigError(f"{src}:{n}: each line must be a JSON object with a path")
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


# -- the results store --------------------------------------------------------------------------------
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


def write_table(out_dir: Path) -> Path:
    """Regenerate ``results.csv`` from every results (and metrics) JSONL file."""
    out = Path(out_dir).resolve()
    return write_csv(out / "results.csv", merged_rows(out), out)


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


def _json_default(o: Any):
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, Path):
        return str(o)
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")


# -- preparing a photo (CPU stages, optionally in worker processes) ------------------------------------
@dataclass
class Prepared:
    """A decoded and aligned photo, or the reason it cannot be used."""

    image: np.ndarray | None = None
    faces: list | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    reason: str | None = None
    message: str | None = None
    stage: str | None = None


def prepare(aligner, path: Path, size: int) -> Prepared:
    """Read and align one photo (the CPU-bound stages). Errors a user can act on are returned as a
    reason; configuration errors propagate."""
    t = Timer()
    try:
        with t("read"):
            image = read_image(path)
    except ImageError as exc:
        return Prepared(reason="unreadable", message=str(exc), stage="read", seconds=t.seconds)
    with t("align"):
        faces = aligner.align(image, size=size)
    return Prepared(image=image, faces=list(faces), seconds=t.seconds)


_WORKER: dict[str, Any] = {}


def _worker_init(cfg: Mapping[str, Any], size: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    from .pipeline import Pipeline

    _WORKER["aligner"] = Pipeline(cfg).component("aligner")
    _WORKER["size"] = size


def _worker_prepare(path: str) -> Prepared:
    return prepare(_WORKER["aligner"], Path(path), _WORKER["size"])


# -- the runner -----------------------------------------------------------------------------------------
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


@dataclass
class Summary:
    total: int = 0  # photos in this shard
    skipped: int = 0  # already done (rows or a final failure on disk)
    done: int = 0  # photos processed successfully in this run
    failed: int = 0  # photos that failed in this run
    faces: int = 0  # result rows written in this run
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class Runner:
    """Runs a :class:`~counterface.pipeline.Pipeline` over items, resumably.

    ``alphas``: pi_1 strengths (several = a sweep: one row per face per alpha, one pivot per face).
    ``evaluator``: a :class:`counterface.metrics.Evaluator` to store metrics in each row, or None.
    ``workers``: processes for read + align (0 = in this process).
    ``progress``: show a tqdm bar on stderr.
    """

    def __init__(self, pipeline, out_dir: str | os.PathLike, *, alphas: Sequence[float] | None = None,
                 evaluator=None, workers: int = 0, shard: tuple[int, int] = (1, 1), progress: bool = False,
                 image_format: str = "png", retry_failures: bool = False, max_consecutive_errors: int = 20,
                 on_photo: Callable[[Item, str], None] | None = None):
        self.pipeline = pipeline
        self.out_dir = Path(out_dir).resolve()
        self.alphas = [float(a) for a in (alphas if alphas else [pipeline.edit["alpha"]])]
        if len(set(self.alphas)) != len(self.alphas):
            raise ConfigError("--alpha values must be distinct")
        self.evaluator = evaluator
        self.workers = int(workers)
        if self.workers < 0:
            raise ConfigError("--workers must be 0 or more")
        self.shard = shard
        self.progress = progress
        fmt = image_format.lower().lstrip(".")
        if f".{fmt}" not in IMAGE_SUFFIXES:
            raise ConfigError(f"unsupported image format {image_format!r}")
        self.suffix = f".{fmt}"
        self.retry_failures = retry_failures
        self.max_consecutive_errors = max_consecutive_errors
        self.on_photo = on_photo
        self.job = config_digest({"config": pipeline.config, "alphas": self.alphas, "format": fmt, "layout": 1})
        tag = "" if shard == (1, 1) else f".shard-{shard[0]}-of-{shard[1]}"
        self.results = Appender(self.out_dir / f"results{tag}.jsonl")
        self.failures = Appender(self.out_dir / f"failures{tag}.jsonl")
        self._stop: int | None = None
        self._critical = False
        self._done_in_run = 0

    # -- resume bookkeeping ------------------------------------------------------------------------------
    def finished(self) -> set[tuple]:
        """Job keys (key, sha256, job) already complete: every face x alpha row, or a final failure."""
        counts: dict[tuple, set] = {}
        expected: dict[tuple, int] = {}
        for r in load_rows(self.out_dir, "results"):
            k = (r.get("key"), r.get("sha256"), r.get("job"))
            counts.setdefault(k, set()).add((r.get("face"), r.get("alpha")))
            expected[k] = int(r.get("faces") or 1) * len(self.alphas)
        done = {k for k, s in counts.items() if len(s) >= expected[k]}
        if not self.retry_failures:
            for r in load_rows(self.out_dir, "failures"):
                if r.get("reason") in FINAL_REASONS:
                    done.add((r.get("key"), r.get("sha256"), r.get("job")))
        return done

    # -- signals -------------------------------------------------------------------------------------------
    def _handler(self, signum, frame):  # noqa: ARG002
        self._stop = signum
        if not self._critical:
            raise BatchInterrupted(signum, self._done_in_run)

    def _check_stop(self) -> None:
        if self._stop is not None:
            raise BatchInterrupted(self._stop, self._done_in_run)

    # -- running -------------------------------------------------------------------------------------------
    def run(self, items: Sequence[Item]) -> Summary:
        """Process every item not already done; returns a :class:`Summary`. Raises
        :class:`BatchInterrupted` on SIGINT/SIGTERM (after discarding the photo in flight)."""
        installed = {}
        if threading.current_thread() is threading.main_thread():
            for s in (signal.SIGINT, signal.SIGTERM):
                installed[s] = signal.signal(s, self._handler)
        try:
            return self._run(items)
        finally:
            for s, old in installed.items():
                signal.signal(s, old)
            try:
                write_table(self.out_dir)
            except OSError:  # pragma: no cover - the table can always be regenerated by `evaluate`
                pass

    def _hash(self, item: Item) -> str | None:
        try:
            return file_sha256(item.path)
        except OSError:
            return None

    def _run(self, items: Sequence[Item]) -> Summary:
        t0 = time.perf_counter()
        summary = Summary(total=len(items))
        self.out_dir.mkdir(parents=True, exist_ok=True)
        write_json(self.out_dir / "batch.json", {
            "job": self.job, "alphas": self.alphas, "shard": list(self.shard), "workers": self.workers,
            "format": self.suffix[1:], "config": self.pipeline.config,
            "metrics": None if self.evaluator is None else {"lpips": self.evaluator.lpips is not None,
                                                              "identity": self.evaluator.identity is not None},
        }, out_dir=self.out_dir)
        done = self.finished()
        with cf.ThreadPoolExecutor(max_workers=max(1, min(8, self.workers or 1))) as pool:
            hashes = list(pool.map(self._hash, items))
        pending = []
        for item, sha in zip(items, hashes):
            if (item.key, sha, self.job) in done:
                summary.skipped += 1
            else:
                pending.append((item, sha))
        bar = self._bar(len(pending), summary.skipped)
        size = int(self.pipeline.generator.resolution)
        consecutive_errors = 0
        stream = self._prepared(pending, size)
        try:
            for item, sha, prep in stream:
                self._check_stop()
                ok, rows, failure = self._process(item, sha, prep)
                if not ok:
                    self._check_stop()  # a failure caused by the interruption is not recorded
                self._critical = True  # a signal now waits until the rows are on disk
                try:
                    if ok:
                        self.results.append(rows)
                        summary.done += 1
                        summary.faces += len(rows)
                    else:
                        self.failures.append([failure])
                        summary.failed += 1
                    self._done_in_run += 1
                finally:
                    self._critical = False
                if self.on_photo is not None:
                    self.on_photo(item, "done" if ok else failure["reason"])
                consecutive_errors = consecutive_errors + 1 if (not ok and failure["reason"] == "error") else 0
                if consecutive_errors >= self.max_consecutive_errors:
                    raise CounterfaceError(f"{consecutive_errors} photos in a row failed with unexpected errors "
                                           f"(last: {failure['message']}); stopping (see failures.jsonl)")
                if bar is not None:
                    bar.update(1)
                    elapsed = max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix_str(f"{3600.0 * (summary.done + summary.failed) / elapsed:.0f} img/h, "
                                        f"{summary.failed} failed", refresh=False)
                self._check_stop()
        finally:
            stream.close()
            if bar is not None:
                bar.close()
        summary.seconds = round(time.perf_counter() - t0, 3)
        return summary

    def _bar(self, total: int, skipped: int):
        if not self.progress:
            return None
        from tqdm import tqdm

        desc = "batch" if self.shard == (1, 1) else f"shard {self.shard[0]}/{self.shard[1]}"
        bar = tqdm(total=total, unit="img", desc=desc, dynamic_ncols=True, smoothing=0.05)
        if skipped:
            bar.write(f"{skipped} photo(s) already done, skipped")
        return bar

    def _prepared(self, pending: Sequence[tuple[Item, str | None]], size: int) -> Iterator[tuple[Item, str | None, Prepared]]:
        """Yield (item, sha, Prepared) in order; with workers, read + align run ahead in a bounded
        window of processes while this process runs the GPU stages."""
        if self.workers == 0:
            aligner = self.pipeline.component("aligner")
            for item, sha in pending:
                if sha is None:
                    yield item, sha, Prepared(reason="unreadable", stage="read",
                                              message=f"{item.path}: cannot read (no such file or not readable)")
                    continue
                yield item, sha, prepare(aligner, item.path, size)
            return
        import multiprocessing

        ctx = multiprocessing.get_context("spawn")  # safe with torch/CUDA in the parent
        window = 2 * self.workers
        with cf.ProcessPoolExecutor(max_workers=self.workers, mp_context=ctx, initializer=_worker_init,
                                    initargs=(self.pipeline.config, size)) as pool:
            queue: list[tuple[Item, str | None, cf.Future | None]] = []
            it = iter(pending)
            try:
                while True:
                    while len(queue) < window:
                        nxt = next(it, None)
                        if nxt is None:
                            break
                        item, sha = nxt
                        fut = pool.submit(_worker_prepare, str(item.path)) if sha is not None else None
                        queue.append((item, sha, fut))
                    if not queue:
                        break
                    item, sha, fut = queue.pop(0)
                    if fut is None:
                        prep = Prepared(reason="unreadable", stage="read",
                                        message=f"{item.path}: cannot read (no such file or not readable)")
                    else:
                        prep = fut.result()
                    yield item, sha, prep
            finally:
                for _, _, fut in queue:
                    if fut is not None:
                        fut.cancel()
                pool.shutdown(wait=False, cancel_futures=True)

    def _failure(self, item: Item, sha: str | None, reason: str, message: str, stage: str) -> dict[str, Any]:
        row = {"key": item.key, "path": str(item.path), "sha256": sha, "job": self.job, "reason": reason,
               "message": message, "stage": stage}
        row.update(_user_columns(item.meta))
        return row

    def _process(self, item: Item, sha: str | None, prep: Prepared) -> tuple[bool, list[dict], dict | None]:
        """GPU stages for one photo. Returns (ok, rows, failure)."""
        if prep.reason:
            return False, [], self._failure(item, sha, prep.reason, prep.message or prep.reason, prep.stage or "read")
        edit = self.pipeline.edit
        try:
            faces = select_faces(prep.faces, edit.get("face", "largest"), edit.get("min_face", 0))
        except NoFaceError as exc:
            reason = "no_face" if not prep.faces else "face_too_small"
            return False, [], self._failure(item, sha, reason, str(exc), "align")
        except ConfigError:
            raise
        try:
            rows = []
            for face in faces:
                # the face's position among every face found (largest first) names its outputs
                index = next(i for i, f in enumerate(prep.faces) if f is face)
                rows.extend(self._process_face(item, sha, prep, face, index, len(faces)))
            return True, rows, None
        except (BatchInterrupted, ConfigError, WeightsError, PluginError, OutputError):
            raise  # not about this photo: every other photo would fail the same way
        except CounterfaceError as exc:
            return False, [], self._failure(item, sha, "error", str(exc), "edit")
        except MemoryError:
            return False, [], self._failure(item, sha, "error", "out of memory", "edit")
        except Exception as exc:  # noqa: BLE001 - a batch records and goes on
            if os.environ.get("COUNTERFACE_DEBUG"):
                raise
            msg = " ".join(str(exc).split())[:300] or type(exc).__name__
            return False, [], self._failure(item, sha, "error", f"{type(exc).__name__}: {msg}", "edit")

    def _process_face(self, item: Item, sha: str, prep: Prepared, face, index: int, n_faces: int) -> list[dict[str, Any]]:
        pipe = self.pipeline
        photo = prep.image
        pivot, pivot_seconds = pipe.pivot(face)
        renders: dict[float, Any] = {}

        def render(a: float):
            a = float(a)
            if a not in renders:
                renders[a] = pipe.render(photo, face, pivot, a)
            return renders[a]

        baseline = pipe.component("pi0")
        blend_mask = None
        if self.evaluator is not None:
            blend_mask = pipe.component("blender").mask(photo.shape[:2], face)
        rows = []
        stem = output_stem(item.key, sha, self.job)
        for alpha in self.alphas:
            t = Timer()
            with t("pi1"):
                z1 = render(alpha).image
            with t("pi0"):  # what Pipeline.pi0 does, with the renders shared between pi_1 and pi_0
                z0 = baseline.make(photo, lambda a: render(a).image, float(alpha))
            name = f"{stem}_face{index}" + (f"_{alpha_tag(alpha)}" if len(self.alphas) > 1 else "")
            seconds = {**prep.seconds, **pivot_seconds, **t.seconds}
            files = {}
            written = {}
            for role, img in (("z1", z1), ("z0", z0)):
                rel = f"pairs/{name}_{role}{self.suffix}"
                write_image(self.out_dir / rel, img, out_dir=self.out_dir, inputs=[item.path])
                # the metrics describe the files as published: read a lossy encoding back
                written[role] = img if self.suffix in LOSSLESS else read_image(self.out_dir / rel)
                side = pipe.sidecar(input_path=item.path, input_sha256=sha, face=face, alpha=float(alpha), role=role,
                                    pivot=pivot, seconds=seconds,
                                    extra={"output": Path(rel).name, "batch": {"key": item.key, "job": self.job, "pi0": baseline.name,
                                                     "pair": f"pairs/{name}_{'z0' if role == 'z1' else 'z1'}{self.suffix}",
                                                     "meta": dict(item.meta)}})
                write_json(self.out_dir / f"pairs/{name}_{role}.json", side, out_dir=self.out_dir, inputs=[item.path])
                files[role], files[f"{role}_sidecar"] = rel, f"pairs/{name}_{role}.json"
            row: dict[str, Any] = {"key": item.key, "path": str(item.path), "sha256": sha, "job": self.job,
                                   "face": index, "faces": n_faces, "alpha": float(alpha),
                                   **files, "pi0": baseline.name, "face_width": round(float(face.face_width), 2),
                                   "seconds": {k: round(v, 4) for k, v in seconds.items()}}
            if self.shard != (1, 1):
                row["shard"] = f"{self.shard[0]}/{self.shard[1]}"
            row.update(_user_columns(item.meta))
            if self.evaluator is not None:
                with t("metrics"):
                    row.update(self.evaluator.evaluate(photo, face, written["z1"], written["z0"], blend_mask=blend_mask,
                                                       recon_crop=render(0.0).crop))
                row["seconds"]["metrics"] = round(t.seconds["metrics"], 4)
            rows.append(row)
        return rows


def _user_columns(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {(f"user_{k}" if k in RESERVED or k in METRIC_COLUMNS else k): v for k, v in meta.items()}


# -- evaluating a finished output folder -----------------------------------------------------------------
METRIC_MARKERS = ("psnr_outside", "identity", "smile_z1")


def face_from_sidecar(record: Mapping[str, Any], photo: np.ndarray):
    """The :class:`~counterface.types.AlignedFace` a sidecar describes (crop cut again from ``photo``
    with the recorded matrix; the mouth mask is not stored and left empty)."""
    from .metrics import transform_points, warp_to_crop
    from .types import AlignedFace

    f = record.get("face") or {}
    try:
        matrix = np.asarray(f["matrix"], dtype=np.float64)
        landmarks = np.asarray(f["landmarks"], dtype=np.float64)
        size = int(f["size"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("sidecar has no usable face record (matrix, landmarks, size)") from None
    crop = warp_to_crop(photo, matrix, size)
    return AlignedFace(landmarks=landmarks, matrix=matrix, crop=crop, crop_landmarks=transform_points(landmarks, matrix),
                       mouth_mask=np.zeros((size, size), np.float32),
                       box=None if f.get("box") is None else tuple(f["box"]), score=f.get("score"),
                       index=int(f.get("index", 0)))


def evaluate_folder(out_dir: str | os.PathLike, lpips_net: str = "alex", force: bool = False, size: int = 256,
                    progress: bool = False) -> tuple[int, int, list[dict[str, Any]]]:
    """Compute the metrics of every result row of a batch output folder from the files on disk and
    append them to ``metrics.jsonl``; regenerate ``results.csv``. Rows that already carry metrics
    (measured during the batch, or by an earlier ``evaluate``) are skipped unless ``force``.

    Returns (rows evaluated, rows that failed, the merged rows). Reconstruction metrics need the
    pivot and are only measured during the batch.
    """
    from . import metrics
    from .pipeline import Pipeline

    out = Path(out_dir).resolve()
    rows = merged_rows(out)
    if not rows:
        raise ConfigError(f"{out}: no results*.jsonl rows; run `counterface batch` first")
    todo = [r for r in rows if force or not any(r.get(m) is not None for m in METRIC_MARKERS)]
    appender = Appender(out / "metrics.jsonl")
    lp = metrics.lpips_model(lpips_net) if todo else None
    pipelines: dict[str, Any] = {}
    evaluated = failed = 0
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="face", desc="evaluate")
    try:
        for r in todo:
            try:
                side = json.loads((out / r["z1_sidecar"]).read_text(encoding="utf-8"))
                job = r.get("job") or ""
                if job not in pipelines:
                    cfg = {**side.get("config", {}), "edit": side.get("edit", {}), "preset": side.get("preset")}
                    pipelines[job] = Pipeline(cfg)
                pipe = pipelines[job]
                if file_sha256(r["path"]) != r.get("sha256"):
                    raise ImageError(f"{r['path']}: the photo changed since the batch (sha256 differs); "
                                     "rerun `counterface batch` for it")
                photo = read_image(r["path"])
                z1 = read_image(out / r["z1"])
                z0 = read_image(out / r["z0"]) if r.get("z0") else None
                face = face_from_sidecar(side, photo)
                ev = metrics.Evaluator(identity=pipe.component("identity") if pipe.has("identity") else None,
                                       lpips=lp, aligner=pipe.component("aligner"), size=size, lpips_net=lpips_net)
                mask = pipe.component("blender").mask(photo.shape[:2], face)
                values = ev.evaluate(photo, face, z1, z0, blend_mask=mask)
            except (ImageError, ConfigError, OSError, KeyError, json.JSONDecodeError) as exc:
                values = {"metrics_error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}
                failed += 1
            else:
                evaluated += 1
            appender.append([{"key": r.get("key"), "sha256": r.get("sha256"), "job": r.get("job"),
                              "face": r.get("face"), "alpha": r.get("alpha"), **values}])
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        write_table(out)
    return evaluated, failed, merged_rows(out)
