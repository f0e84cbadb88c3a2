"""The resumable batch runner: prepares photos (optionally in worker processes), runs the pipeline's
GPU stages face by face, writes the pairs and their sidecars, and appends result rows to the store.
"""

from __future__ import annotations

import concurrent.futures as cf
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np

from .. import flow, matching, reedit
from ..errors import (ConfigError, CounterfaceError, ImageError, NoFaceError, OutputError, PluginError,
                      ReferencePhotoError, TargetNotFoundError, WeightsError)
from ..imageio import file_sha256, read_image, write_json
from ..matching import select_faces
from ..provenance import Timer, config_digest
from ..writer import Writer
from .recording import Recording
from .claims import Claims, DoneIndex, claim_id
from .manifest import Item, alpha_tag, output_stem
from .options import BatchOptions
from .pivots import PivotStore, rejection
from .store import METRIC_COLUMNS, RESERVED, Appender, load_rows, write_table

#: output formats that store the pixels exactly (the metrics of other formats are measured on the file)
LOSSLESS = (".png", ".webp", ".bmp", ".tif", ".tiff")
#: failure reasons that a rerun with the same file and configuration would reproduce
FINAL_REASONS = ("unreadable", "no_face", "face_too_small", "target_not_found")


class BatchInterrupted(CounterfaceError):
    """The run was stopped by SIGINT/SIGTERM; finished photos are kept, a rerun resumes."""

    def __init__(self, signum: int, done: int):
        name = signal.Signals(signum).name if signum else "signal"
        super().__init__(f"interrupted by {name} after {done} photo(s) in this run; rerun the same command to resume")
        self.exit_code = 128 + int(signum or 2)
        self.signum = signum



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
    match: Any = None  # the matching.Match of --face match


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


def _worker_init(settings, size: int) -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the main process decides when to stop
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    try:
        import torch

        torch.set_num_threads(1)
    except ImportError:  # pragma: no cover
        pass
    from ..pipeline import Pipeline

    _WORKER["aligner"] = Pipeline(settings).component("aligner")
    _WORKER["size"] = size


def _worker_prepare(path: str) -> Prepared:
    return prepare(_WORKER["aligner"], Path(path), _WORKER["size"])



# -- the runner ----------------------------------------------------------------------------------------
@dataclass
class Summary:
    total: int = 0  # photos in this shard
    skipped: int = 0  # already done (rows or a final failure on disk)
    done: int = 0  # photos processed successfully in this run
    failed: int = 0  # photos that failed in this run
    faces: int = 0  # result rows written in this run
    elsewhere: int = 0  # finished meanwhile by another process on the same folder (claims)
    seconds: float = 0.0

    def to_json(self) -> dict[str, Any]:
        return dict(vars(self))


class Runner(Recording):
    """Runs a :class:`~counterface.pipeline.Pipeline` over items, resumably, through the per-photo
    flow (:mod:`counterface.flow`).

    What is edited comes from the pipeline's settings (``settings.sweep()``: one row per face per
    alpha, one pivot per face); how the batch runs from ``options``, a
    :class:`~counterface.batch.options.BatchOptions` (or an output folder, with ``changes`` to the
    default options). ``evaluator``: a :class:`counterface.metrics.Evaluator` to store metrics in
    each row, or None. ``on_photo(item, status)``: called after each photo.

    With ``options.tune_batch`` > 1, up to that many pending faces, across photos, are inverted and
    tuned at once (:meth:`Pipeline.pivots`); rows and pivots are still written per face, and a
    batch that fails falls back to tuning its faces one by one. With claims, each photo is claimed
    before work (OUT/claims), so that processes sharing the folder split the work.
    """

    def __init__(self, pipeline, options: BatchOptions | str | os.PathLike, *, evaluator=None,
                 on_photo: Callable[[Item, str], None] | None = None, **changes: Any):
        if not isinstance(options, BatchOptions):
            options = BatchOptions(out_dir=str(options), **changes)
        elif changes:
            options = options.replace(**changes)
        self.options = options
        self.pipeline = pipeline
        self.out_dir = Path(options.out_dir)
        self.alphas = [_number(a) for a in pipeline.settings.sweep()]
        self.evaluator = evaluator
        if evaluator is not None and getattr(evaluator, "region", "unset") is None:
            evaluator.region = pipeline.metrics_region()  # the edited attribute's region, as evaluate uses
        self.workers = int(options.workers)
        self.shard = options.shard
        self.progress = options.progress
        self.suffix = options.suffix
        self.retry_failures = options.retry_failures
        self.max_consecutive_errors = options.max_consecutive_errors
        self.on_photo = on_photo
        self.tune_batch = int(options.tune_batch)
        self._pretuned: dict[int, tuple] = {}  # id(face) -> (pivot, seconds) from a batched tuning
        self.job = config_digest({"config": pipeline.config, "alphas": self.alphas, "format": self.suffix[1:],
                                  "layout": 1})
        tag = "" if self.shard == (1, 1) else f".shard-{self.shard[0]}-of-{self.shard[1]}"
        self.results = Appender(self.out_dir / f"results{tag}.jsonl")
        self.failures = Appender(self.out_dir / f"failures{tag}.jsonl")
        self._stop: int | None = None
        self._critical = False
        self._done_in_run = 0
        pivots = options.pivots
        self.pivots = None if pivots is False else PivotStore(
            self.out_dir / "pivots" if pivots in (None, True) else Path(pivots), pipeline, options.pivot_dtype)
        self.claims = Claims(self.out_dir / "claims") if options.claims else None
        self._index: DoneIndex | None = None
        self._consecutive_errors = 0
        #: encode and write the pairs on a pool of threads (lossless formats only: a lossy file is read
        #: back for the metrics, so it must exist first); rows are recorded after their files
        self.use_writer = self.suffix in LOSSLESS
        self.batch_reedits = True  # stored pivots: render a face's alphas and roles in one go
        self.writer: Writer | None = None
        self._record_lock = threading.Lock()
        self._record_error: BaseException | None = None

    # -- resume bookkeeping ------------------------------------------------------------------------------
    def finished(self) -> set[tuple]:
        """Job keys (key, sha256, job) already complete: every face x alpha row, or a final failure."""
        self._index = DoneIndex(self.out_dir, len(self.alphas), FINAL_REASONS, self.retry_failures).refresh()
        return self._index.keys()

    # -- claims (several processes on one folder) ------------------------------------------------------
    def _claim_id(self, item: Item, sha: str | None) -> str:
        return claim_id(self.job, item.key, sha)

    def _claimed(self, pending, summary: Summary, deferred: list):
        """``pending`` without the photos another process holds (put in ``deferred``, tried again
        later) or finished meanwhile (counted in ``summary.elsewhere``); each photo yielded is claimed."""
        for item, sha in pending:
            if self.claims is None:
                yield item, sha
                continue
            k = (item.key, sha, self.job)
            if self._index.refresh().done(k):
                summary.elsewhere += 1
                continue
            cid = self._claim_id(item, sha)
            if not self.claims.acquire(cid):
                deferred.append((item, sha))
                continue
            if self._index.refresh().done(k):  # finished just before we claimed it
                self.claims.release(cid)
                summary.elsewhere += 1
                continue
            yield item, sha

    def _release(self, item: Item, sha: str | None) -> None:
        if self.claims is not None:
            self.claims.release(self._claim_id(item, sha))

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
        self.writer = Writer() if self.use_writer else None
        try:
            return self._run(items)
        finally:
            self._close_writer()
            for s, old in installed.items():
                signal.signal(s, old)
            if self.claims is not None:
                self.claims.release_all()
                self.claims.sweep()  # claims of finished photos whose process died before releasing them
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
            "pivots": None if self.pivots is None else {"root": str(self.pivots.root), "config": self.pivots.config_key,
                                                        "dtype": self.pivots.dtype},
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
        try:
            while pending:  # passes: photos another process held are tried again once it lets go
                deferred: list = []
                before = summary.done + summary.failed + summary.elsewhere
                self._pass(self._claimed(pending, summary, deferred), summary, bar, t0)
                pending = deferred
                if pending and summary.done + summary.failed + summary.elsewhere == before:
                    self._check_stop()
                    time.sleep(min(2.0, self.claims.lease / 8.0) if self.claims is not None else 0.0)
        finally:
            if bar is not None:
                bar.close()
        summary.seconds = round(time.perf_counter() - t0, 3)
        return summary

    def _pass(self, pending, summary: Summary, bar, t0: float) -> None:
        size = int(self.pipeline.generator.resolution)
        stream = self._grouped(self._prepared(pending, size))
        try:
            for item, sha, prep in stream:
                self._check_stop()
                ok, rows, failure = self._process(item, sha, prep)
                if not ok:
                    self._check_stop()  # a failure caused by the interruption is not recorded
                if self.writer is not None:  # recorded on the writer's commit thread, after the files
                    self._raise_record_error()
                    fut = self.writer.then(self._record, item, sha, ok, rows, failure, summary)
                    fut.add_done_callback(lambda f, item=item, sha=sha: self._write_failed(f, item, sha, summary))
                else:
                    self._critical = True  # a signal now waits until the rows are on disk
                    try:
                        self._record(item, sha, ok, rows, failure, summary)
                    finally:
                        self._critical = False
                if self.on_photo is not None:
                    self.on_photo(item, "done" if ok else failure["reason"])
                errors = self._consecutive_errors = (self._consecutive_errors + 1
                                                     if (not ok and failure["reason"] == "error") else 0)
                if errors >= self.max_consecutive_errors:
                    raise CounterfaceError(f"{errors} photos in a row failed with unexpected errors "
                                           f"(last: {failure['message']}); stopping (see failures.jsonl)")
                if bar is not None:
                    bar.update(1)
                    elapsed = max(time.perf_counter() - t0, 1e-9)
                    bar.set_postfix_str(f"{3600.0 * (summary.done + summary.failed) / elapsed:.0f} img/h, "
                                        f"{summary.failed} failed", refresh=False)
                self._check_stop()
        finally:
            stream.close()

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
                                    initargs=(self.pipeline.settings, size)) as pool:
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

    def _grouped(self, stream: Iterator[tuple[Item, str | None, Prepared]]) -> Iterator[tuple[Item, str | None, Prepared]]:
        """The stream unchanged; with ``tune_batch`` > 1, photos are read ahead until ``tune_batch``
        faces are pending, and those faces are tuned together before the photos are yielded."""
        try:
            if self.tune_batch <= 1:
                yield from stream
                return
            group: list = []
            faces = 0
            for entry in stream:
                group.append(entry)
                faces += len(self._faces_of(entry[2]))
                if faces >= self.tune_batch:
                    self._pretune(group)
                    yield from group
                    group, faces = [], 0
            if group:
                self._pretune(group)
                yield from group
        finally:
            stream.close()
            self._pretuned.clear()

    def _faces_of(self, prep: Prepared) -> list:
        if prep.reason or not prep.faces:
            return []
        edit = self.pipeline.edit
        try:
            return select_faces(prep.faces, edit.get("face", "largest"), edit.get("min_face", 0))
        except CounterfaceError:  # reported when the photo itself is processed
            return []

    def _pretune(self, group: list) -> None:
        """Tune the faces of ``group`` in batches of ``tune_batch`` (pivots kept in ``_pretuned``)."""
        faces = [f for _, sha, prep in group for f in self._faces_of(prep)
                 if not self._has_pivot(sha, f, next(i for i, g in enumerate(prep.faces) if g is f))]
        for i in range(0, len(faces), self.tune_batch):
            chunk = faces[i:i + self.tune_batch]
            self._check_stop()
            try:
                results = self.pipeline.pivots(chunk)
            except (BatchInterrupted, ConfigError, WeightsError, PluginError, OutputError):
                raise
            except Exception:  # noqa: BLE001 - its faces are tuned alone, and failures recorded per photo
                if os.environ.get("COUNTERFACE_DEBUG"):
                    raise
                continue
            for face, result in zip(chunk, results):
                self._pretuned[id(face)] = result

    def _has_pivot(self, sha: str | None, face, index: int) -> bool:
        return self.pivots is not None and sha is not None and self.pivots.path(self.pivots.key(sha, face, index)).is_file()

    def _failure(self, item: Item, sha: str | None, reason: str, message: str, stage: str) -> dict[str, Any]:
        row = {"key": item.key, "path": str(item.path), "sha256": sha, "job": self.job, "reason": reason,
               "message": message, "stage": stage}
        row.update(_user_columns(item.meta))
        return row

    def _process(self, item: Item, sha: str | None, prep: Prepared) -> tuple[bool, list[dict], dict | None]:
        """The flow's GPU stages for one photo. Returns (ok, rows, failure)."""
        if prep.reason:
            return False, [], self._failure(item, sha, prep.reason, prep.message or prep.reason, prep.stage or "read")
        photo = flow.Photo(image=prep.image, path=item.path, sha256=sha, seconds=dict(prep.seconds))
        try:
            chosen = flow.select_faces(self.pipeline, photo, prep.faces,  # --face match: the row's reference
                                       lambda: matching.item_reference(self.pipeline, item.meta, item.base))
            prep.match = self.pipeline.last_match
        except TargetNotFoundError as exc:
            return False, [], self._failure(item, sha, "target_not_found", str(exc), "match")
        except ReferencePhotoError as exc:
            return False, [], self._failure(item, sha, "bad_reference", str(exc), "match")
        except NoFaceError as exc:
            reason = "no_face" if not prep.faces else "face_too_small"
            return False, [], self._failure(item, sha, reason, str(exc), "align")
        except (BatchInterrupted, ConfigError, WeightsError, PluginError, OutputError):
            raise
        except Exception as exc:  # noqa: BLE001 - the matcher failed on this photo: recorded, the batch goes on
            if os.environ.get("COUNTERFACE_DEBUG"):
                raise
            msg = " ".join(str(exc).split())[:300] or type(exc).__name__
            return False, [], self._failure(item, sha, "error", f"{type(exc).__name__}: {msg}", "match")
        try:
            rows = []
            for index, face in chosen:
                rows.extend(self._process_face(item, photo, prep, face, index, len(chosen)))
            return True, rows, None
        except (BatchInterrupted, ConfigError, WeightsError, PluginError, OutputError):
            raise  # not about this photo: every other photo would fail the same way
        except CounterfaceError as exc:
            return False, [], self._failure(item, sha, getattr(exc, "reason", "error"), str(exc), "edit")
        except MemoryError:
            return False, [], self._failure(item, sha, "error", "out of memory", "edit")
        except Exception as exc:  # noqa: BLE001 - a batch records and goes on
            if os.environ.get("COUNTERFACE_DEBUG"):
                raise
            msg = " ".join(str(exc).split())[:300] or type(exc).__name__
            return False, [], self._failure(item, sha, "error", f"{type(exc).__name__}: {msg}", "edit")

    def _process_face(self, item: Item, photo: flow.Photo, prep: Prepared, face, index: int,
                      n_faces: int) -> list[dict[str, Any]]:
        pipe = self.pipeline
        sha = photo.sha256
        pivot, pivot_seconds, pivot_state = flow.face_pivot(pipe, photo, face, index, _StorePivots(self))
        seconds = {**photo.seconds, **pivot_seconds}
        pi1, pi0 = pipe.operator("pi1"), pipe.operator("pi0")
        stem = output_stem(item.key, sha, self.job)
        batch = {"key": item.key, "job": self.job, "pi1": pi1.name, "pi0": pi0.name, "meta": dict(item.meta)}
        extra = {"batch": batch, **({"match": prep.match.to_json()} if prep.match else {})}
        blend_mask = recon = None
        if self.evaluator is not None:
            blend_mask = pipe.component("blender").mask(photo.image.shape[:2], face)
        rows = []
        reused = None  # a stored pivot: every alpha and role synthesized together (counterface.reedit)
        if pivot_state == "reused" and "auto" not in self.alphas and self.batch_reedits:
            reused = reedit.render_reused(pipe, photo, face, pivot, roles=("pi1", "pi0"), alphas=self.alphas,
                                          seconds=seconds, extra=extra)
        for i, alpha in enumerate(self.alphas):
            step = reused[i] if reused is not None else flow.render_face(
                pipe, photo, face, pivot, roles=("pi1", "pi0"), alphas=[alpha], seconds=seconds, extra=extra)[0]
            if recon is None and getattr(pi0, "renders_pivot", False):
                recon = step.results["z0"]  # the metrics' reconstruction
            name = f"{stem}_face{index}" + (f"_{alpha_tag(step.alpha)}" if len(self.alphas) > 1 else "")
            files, written = {}, {}
            for role in ("z1", "z0"):
                image = step.results[role].image
                other = "z0" if role == "z1" else "z1"
                sidecar = {**step.sidecars[role], "batch": {**batch, "pair": f"pairs/{name}_{other}{self.suffix}"}}
                flow.write_output(self.out_dir, f"pairs/{name}_{role}", image, sidecar, inputs=[item.path],
                                  suffix=self.suffix, writer=self.writer)
                rel = f"pairs/{name}_{role}{self.suffix}"
                # the metrics describe the files as published: read a lossy encoding back
                written[role] = image if self.suffix in LOSSLESS else read_image(self.out_dir / rel)
                files[role], files[f"{role}_sidecar"] = rel, f"pairs/{name}_{role}.json"
            row_seconds = {**seconds, **step.seconds}
            row: dict[str, Any] = {"key": item.key, "path": str(item.path), "sha256": sha, "job": self.job,
                                   "face": index, "faces": n_faces, "alpha": _row_alpha(step.alpha),
                                   **files, "pi1": pi1.name, "pi0": pi0.name, "pivot": pivot_state, **rejection(pivot),
                                   "face_width": round(float(face.face_width), 2),
                                   "seconds": {k: round(v, 4) for k, v in row_seconds.items()}}
            row.update(distance_columns(step.attributes))
            if step.auto:
                row["alpha_auto_reached"] = step.auto["alpha_auto"]["reached"]
            row.update({k: v for k, v in step.leakage.items() if k.startswith("leakage_")})
            if self.shard != (1, 1):
                row["shard"] = f"{self.shard[0]}/{self.shard[1]}"
            if prep.match is not None:
                row["match"] = prep.match.row()
            row.update(_user_columns(item.meta))
            if self.evaluator is not None:
                t = Timer()
                with t("metrics"):
                    if recon is None:
                        recon = pipe.reconstruct(photo.image, face, pivot)
                    row.update(self.evaluator.evaluate(photo.image, face, written["z1"], written["z0"],
                                                       blend_mask=blend_mask, recon_crop=recon.crop))
                row["seconds"]["metrics"] = round(t.seconds["metrics"], 4)
            rows.append(row)
        return rows


class _StorePivots(flow.PivotSource):
    """The batch's pivots: the pivot store (reused: no inversion, no tuning, both times 0), else a
    face tuned ahead with the others (``--tune-batch``), else tuned now; a tuned pivot is stored and
    used as stored, so reusing gives the same pairs."""

    def __init__(self, runner: Runner):
        self.runner = runner

    def _key(self, photo, face, index):
        store = self.runner.pivots
        return None if store is None or photo.sha256 is None else store.key(photo.sha256, face, index)

    def get(self, photo, face, index):
        key = self._key(photo, face, index)
        stored = None if key is None else self.runner.pivots.get(key)
        if stored is None:
            return None
        self.runner._pretuned.pop(id(face), None)
        return stored, {"invert": 0.0, "tune": 0.0}, "reused"

    def tuned(self, face):
        return self.runner._pretuned.pop(id(face), None)

    def put(self, photo, face, index, pivot):
        key = self._key(photo, face, index)
        return pivot if key is None else self.runner.pivots.put(key, pivot)


def _row_alpha(alpha: Any) -> Any:
    """A row's ``alpha``: a float, or with one alpha per direction the text ``'1,-0.5'`` (rows are
    keyed and grouped by it; the sidecars keep the list)."""
    if isinstance(alpha, (list, tuple)):
        return ",".join(f"{float(a):g}" for a in alpha)
    return float(alpha)


def _number(alpha: Any) -> Any:
    """An alpha as rows and job ids record it: a float, or a list of floats (one per direction)."""
    if isinstance(alpha, (list, tuple)):
        return [float(a) for a in alpha]
    return alpha if alpha == "auto" else float(alpha)


def distance_columns(attributes: Mapping[str, list]) -> dict[str, Any]:
    """Result-row columns of the edited attributes' signed distances (means over the edited rows; the
    per-row values are in the sidecars): ``distance_before_<a>`` (the pivot's), ``distance_after_<a>``
    (Z1) and ``distance_after_<a>_z0`` (Z0); None without an intercept (or for a photo)."""
    def mean(values):
        return None if not values else float(np.mean(values))

    out: dict[str, Any] = {}
    for role, records in attributes.items():
        for rec in records:
            a = rec["attribute"]
            out.setdefault(f"distance_before_{a}", mean(rec["distance_before"]))
            out[f"distance_after_{a}" + ("" if role == "z1" else f"_{role}")] = mean(rec["distance_after"])
    return out


def _user_columns(meta: Mapping[str, Any]) -> dict[str, Any]:
    return {(f"user_{k}" if k in RESERVED or k in METRIC_COLUMNS else k): v for k, v in meta.items()}
