"""How a batch records a photo: its rows (or its failure) appended, counted and its claim let go,
synchronously or, with a :class:`counterface.writer.Writer`, on the writer's commit thread once the
photo's files are written (a row never precedes its files; a photo whose files failed gets a failure
row instead)."""

from __future__ import annotations

import concurrent.futures as cf
from typing import Any

from ..writer import Skipped


class Recording:
    """The recording half of :class:`counterface.batch.runner.Runner` (``self.results``,
    ``self.failures``, ``self.writer``, ``self._record_lock``, ``self._release``, ``self._failure``)."""

    def _record(self, item: Any, sha: str | None, ok: bool, rows: list[dict], failure: dict | None,
                summary: Any) -> None:
        """Append a photo's rows (or its failure), count it and let its claim go."""
        try:
            with self._record_lock:
                if ok:
                    self.results.append(rows)
                    summary.done += 1
                    summary.faces += len(rows)
                else:
                    self.failures.append([failure])
                    summary.failed += 1
                self._done_in_run += 1
            self._release(item, sha)
        except BaseException as exc:  # noqa: BLE001 - on the commit thread: raised by the loop or at the end
            self._record_error = self._record_error or exc
            raise

    def _write_failed(self, fut: cf.Future, item: Any, sha: str | None, summary: Any) -> None:
        """A photo whose files could not be written: no row, a failure recorded instead."""
        exc = fut.exception()
        if not isinstance(exc, Skipped):
            return
        cause = str(exc).removeprefix("skipped: ")
        self._record(item, sha, False, [], self._failure(item, sha, "error", f"could not write the outputs: {cause}",
                                                         "write"), summary)

    def _raise_record_error(self) -> None:
        if self._record_error is not None:
            raise self._record_error

    def _close_writer(self) -> None:
        """Wait for every write and row (a signal waits too: nothing is left half-recorded). A failed
        write is a photo's failure (recorded by :meth:`_write_failed`); a failed row append is raised."""
        writer, self.writer = self.writer, None
        if writer is None:
            return
        critical, self._critical = self._critical, True
        try:
            try:
                writer.close()
            except Exception:  # noqa: BLE001 - write errors are recorded as the photos' failures
                pass
        finally:
            self._critical = critical
        self._raise_record_error()

