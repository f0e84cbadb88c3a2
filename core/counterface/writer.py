"""Output files written on a pool of CPU threads, so the loop that renders them (on a GPU) never
waits for PNG encoding.

    with Writer(threads=4) as w:
        for ...:
            w.image(out / "a.png", img, out_dir=out)      # returns at once (a Future)
            w.json(out / "a.json", sidecar, out_dir=out)
            w.then(lambda: append_row(row))               # runs after everything submitted before it
    # leaving the block waits for every write and raises the first error

* **Atomic**: every file goes through :mod:`counterface.imageio`'s writers (a temporary file in the
  same folder, fsync, ``os.replace``): a reader never sees half a file, and the output-path checks
  (no output replaces an input, nothing outside ``out_dir``) run as for a direct write.
* **Ordered**: two writes to the same path land in submission order; :meth:`Writer.then` runs its
  function only after every task submitted before it has finished, in submission order (a row that
  points to files is recorded only once the files exist), on one commit thread.
* **Errors propagate**: a failed task's exception is raised (once) by :meth:`flush` (and by
  :meth:`close` and leaving the ``with`` block), the earliest in submission order first; its own
  Future holds it too. Submitting never raises another task's error, and the tasks after a failure
  still run (a batch records failures and goes on; ``Writer.errors`` lists them all); a ``then``
  step whose own group of writes failed is skipped.
* **Bounded**: at most ``max_pending`` tasks in flight; :meth:`submit` blocks beyond that, so the
  images waiting for encoding cannot fill the memory.

The caller hands the arrays over: do not modify an image after submitting it.
"""

from __future__ import annotations

import os
import threading
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any, Callable


def default_threads() -> int:
    """Encoding threads: the CPUs minus one for the rendering loop, between 1 and 8."""
    return max(1, min(8, (os.cpu_count() or 2) - 1))


class Skipped(RuntimeError):
    """A :meth:`Writer.then` step not run because a write of its group failed."""


class Writer:
    def __init__(self, threads: int | None = None, max_pending: int | None = None):
        self.threads = int(threads or default_threads())
        if self.threads < 1:
            raise ValueError(f"threads must be >= 1, got {threads}")
        self.max_pending = int(max_pending or 4 * self.threads)
        self._pool = ThreadPoolExecutor(self.threads, thread_name_prefix="counterface-writer")
        self._commit = ThreadPoolExecutor(1, thread_name_prefix="counterface-commit")
        self._pending: deque[tuple[int, Future]] = deque()
        self._group: list[Future] = []  # tasks since the last then()
        self._last_by_path: dict[str, Future] = {}
        self._lock = threading.Lock()
        self._seq = 0
        #: failures as (submission number, exception), in submission order once flushed
        self.errors: list[tuple[int, BaseException]] = []
        self._raised: set[int] = set()
        self._closed = False

    # -- submitting ---------------------------------------------------------------------------------
    def submit(self, fn: Callable[..., Any], *args, path: str | os.PathLike | None = None, **kwargs) -> Future:
        """Run ``fn(*args, **kwargs)`` on the pool; ``path``: the file it writes (writes to one path
        are serialised in submission order)."""
        self._open()
        self._bound()
        key = str(Path(path).resolve()) if path is not None else None
        before = self._last_by_path.get(key) if key is not None else None

        def task():
            if before is not None:
                try:
                    before.result()
                except BaseException:  # noqa: BLE001 - the earlier write's error is reported on its own
                    pass
            return fn(*args, **kwargs)

        fut = self._pool.submit(task)
        self._track(fut)
        self._group.append(fut)
        if key is not None:
            self._last_by_path[key] = fut
        return fut

    def image(self, path, image, **kwargs) -> Future:
        """:func:`counterface.imageio.write_image` on the pool (atomic; same keyword arguments)."""
        from .imageio import write_image

        return self.submit(write_image, path, image, path=path, **kwargs)

    def json(self, path, obj, **kwargs) -> Future:
        """:func:`counterface.imageio.write_json` on the pool (atomic; same keyword arguments)."""
        from .imageio import write_json

        return self.submit(write_json, path, obj, path=path, **kwargs)

    def then(self, fn: Callable[..., Any], *args, **kwargs) -> Future:
        """Run ``fn`` on the commit thread once every task submitted before it has finished; skipped
        (:class:`Skipped`, not counted as an error) if a task submitted since the previous ``then``
        failed (e.g. a row is not recorded when one of its files could not be written)."""
        self._open()
        with self._lock:
            before = [f for _, f in self._pending]
        group, self._group = self._group, []

        def commit():
            for f in before:
                try:
                    f.result()
                except BaseException:  # noqa: BLE001 - reported on its own
                    pass
            for f in group:
                if f.exception() is not None:
                    raise Skipped(f"skipped: {f.exception()}")
            return fn(*args, **kwargs)

        fut = self._commit.submit(commit)
        self._track(fut)
        return fut

    # -- waiting ------------------------------------------------------------------------------------
    def flush(self) -> None:
        """Wait for every task; raise the first error (in submission order) not raised yet."""
        while True:
            with self._lock:
                if not self._pending:
                    break
                seq, fut = self._pending[0]
            try:
                fut.result()
            except BaseException:  # noqa: BLE001 - recorded below
                pass
            with self._lock:
                if self._pending and self._pending[0][1] is fut:
                    self._reap(*self._pending.popleft())
        self._last_by_path.clear()
        self._check()

    def close(self) -> None:
        """Flush, then stop the threads (idempotent)."""
        if self._closed:
            return
        try:
            self.flush()
        finally:
            self._closed = True
            self._pool.shutdown(wait=True)
            self._commit.shutdown(wait=True)

    def __enter__(self) -> "Writer":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
            return
        try:  # already raising: finish what was submitted, keep the original exception
            self.close()
        except BaseException:  # noqa: BLE001
            pass

    # -- internals ----------------------------------------------------------------------------------
    def _track(self, fut: Future) -> None:
        with self._lock:
            self._seq += 1
            self._pending.append((self._seq, fut))

    def _reap(self, seq: int, fut: Future) -> None:
        """Record a finished task's failure (called with the lock held, in submission order)."""
        exc = fut.exception()
        if exc is not None and not isinstance(exc, Skipped):
            self.errors.append((seq, exc))

    def _bound(self) -> None:
        """Drop finished tasks from the front (recording failures); block while ``max_pending`` are
        still in flight."""
        while True:
            with self._lock:
                while self._pending and self._pending[0][1].done():
                    self._reap(*self._pending.popleft())
                if len(self._pending) < self.max_pending:
                    return
                oldest = self._pending[0][1]
            try:
                oldest.result()
            except BaseException:  # noqa: BLE001 - recorded by _reap, raised by flush
                pass

    def _open(self) -> None:
        if self._closed:
            raise RuntimeError("the writer is closed")

    def _check(self) -> None:
        self._open()
        with self._lock:
            while self._pending and self._pending[0][1].done():
                self._reap(*self._pending.popleft())
            err = next(((seq, e) for seq, e in self.errors if seq not in self._raised), None)
            if err is not None:
                self._raised.add(err[0])
        if err is not None:
            raise err[1]


__all__ = ["Skipped", "Writer", "default_threads"]
