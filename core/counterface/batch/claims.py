"""Claims: how several processes (plain ``batch`` runs, Ray actors, SLURM jobs) share one output folder
without doing a photo twice, and the done index they check before and after claiming.

A claim is a file ``OUT/claims/<id>.claim`` (``id``: a digest of the job key, the manifest key and
the photo's SHA-256) holding JSON ``{host, pid, token, started}``. It is created by writing a private
temporary file and hard-linking it to the claim's name: ``link`` fails when the name exists, atomically,
on local disks and on NFS (where ``O_EXCL`` was not always atomic); a lost NFS reply is detected by the
temporary file's link count. While a process holds claims, a thread touches them every ``lease / 4``
seconds (the heartbeat). A claim is *stale*, and may be broken by anyone, when its file has not been
touched for ``lease`` seconds (a process that died on another machine) or when its process is gone on
this machine (same host name, pid not running). Breaking takes a second, short-lived claim
(``<id>.break``) so that two processes never break the same claim twice.

The protocol for one photo: skip it if the done index has it; claim it (else another process is on
it: try again later); read the index again (another process may have finished it just before), and
only then work; append the rows; release the claim. The rows, not the claims, say what is done.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
import secrets
import socket
import threading
import time
from pathlib import Path
from typing import Any, Iterable

from ..rows import hashable, is_valid
from .store import table_files

#: default seconds without a heartbeat after which a claim is stale (env COUNTERFACE_CLAIM_LEASE)
LEASE = 120.0
#: a break lock older than this is left by a dead breaker
BREAK_LEASE = 30.0


def claim_id(*parts: Any) -> str:
    return hashlib.sha256("\0".join("" if p is None else str(p) for p in parts).encode()).hexdigest()[:32]


def pid_alive(pid: int) -> bool:
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True
    return True


class Claims:
    """Claims of one process in ``root`` (see the module docstring)."""

    def __init__(self, root: str | os.PathLike, lease: float | None = None):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.lease = float(lease if lease is not None else os.environ.get("COUNTERFACE_CLAIM_LEASE", LEASE))
        self.host = socket.gethostname()
        self.pid = os.getpid()
        self.held: dict[str, str] = {}  # id -> token
        self._guard = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def path(self, cid: str) -> Path:
        return self.root / f"{cid}.claim"

    # -- creating, reading, breaking -----------------------------------------------------------------
    def _create(self, path: Path, token: str) -> bool:
        """Atomically create ``path`` holding this process's record; False if it exists."""
        record = {"host": self.host, "pid": self.pid, "token": token, "started": time.time()}
        tmp = path.with_name(f".{path.name}.{self.host}.{self.pid}.{token}.tmp")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(record, f)
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(tmp, path)
            return True
        except FileExistsError:
            return False
        except OSError as exc:
            if exc.errno in (errno.EPERM, errno.EOPNOTSUPP, errno.ENOSYS, errno.EXDEV):  # no hard links here
                return self._create_excl(path, record)
            try:  # NFS: the link may have happened although its reply was lost
                return os.stat(tmp).st_nlink == 2
            except OSError:
                raise exc from None
        finally:
            try:
                os.unlink(tmp)
            except OSError:
                pass

    @staticmethod
    def _create_excl(path: Path, record: dict) -> bool:
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            return False
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(record, f)
        return True

    @staticmethod
    def _read(path: Path) -> tuple[dict | None, float | None]:
        """(record or None if unreadable, mtime or None if the file is gone)."""
        try:
            mtime = path.stat().st_mtime
        except FileNotFoundError:
            return None, None
        try:
            return json.loads(path.read_text(encoding="utf-8")), mtime
        except (OSError, ValueError):
            return None, mtime

    def stale(self, record: dict | None, mtime: float) -> bool:
        if time.time() - mtime > self.lease:
            return True
        if record and record.get("host") == self.host and record.get("pid") != self.pid:
            return not pid_alive(record.get("pid", 0))
        return False

    def _break(self, path: Path, record: dict | None) -> None:
        lock = path.with_suffix(".break")
        if not self._create(lock, secrets.token_hex(8)):
            _, t = self._read(lock)
            if t is not None and time.time() - t > BREAK_LEASE:
                try:
                    lock.unlink()
                except FileNotFoundError:
                    pass
            return
        try:
            current, mtime = self._read(path)
            if mtime is None:
                return
            same = (current or {}).get("token") == (record or {}).get("token")
            if same and self.stale(current, mtime):
                try:
                    path.unlink()
                except FileNotFoundError:
                    pass
        finally:
            try:
                lock.unlink()
            except FileNotFoundError:
                pass

    # -- the public protocol ---------------------------------------------------------------------------
    def acquire(self, cid: str) -> bool:
        """Claim ``cid``; False when a live process holds it."""
        path = self.path(cid)
        for _ in range(3):
            token = secrets.token_hex(8)
            if self._create(path, token):
                with self._guard:
                    self.held[cid] = token
                    self._start_heartbeat()
                return True
            record, mtime = self._read(path)
            if mtime is None:  # released meanwhile
                continue
            if not self.stale(record, mtime):
                return False
            self._break(path, record)
        return False

    def release(self, cid: str) -> None:
        with self._guard:
            token = self.held.pop(cid, None)
        if token is None:
            return
        record, _ = self._read(self.path(cid))
        if record is not None and record.get("token") == token:
            try:
                self.path(cid).unlink()
            except FileNotFoundError:
                pass

    def release_all(self) -> None:
        for cid in list(self.held):
            self.release(cid)
        self._stop.set()

    def sweep(self) -> int:
        """Remove the claims left by dead processes (a dead pid on this host, or a lease run out), also
        those of photos that were finished before their process died and so are never claimed again.
        A live process's claim is never touched. Returns how many were removed."""
        removed = 0
        for path in sorted(self.root.glob("*.claim")):
            record, mtime = self._read(path)
            if mtime is None or path.stem in self.held or not self.stale(record, mtime):
                continue
            self._break(path, record)
            removed += not path.exists()
        return removed

    # -- the heartbeat -----------------------------------------------------------------------------------
    def _start_heartbeat(self) -> None:
        """Start the heartbeat thread unless it runs (called with ``_guard`` held)."""
        if self._thread is not None and self._thread.is_alive() and not self._stop.is_set():
            return
        self._stop = threading.Event()  # a thread still winding down keeps its own, set, event
        self._thread = threading.Thread(target=self._beat, name="counterface-claims", daemon=True)
        self._thread.start()

    def _beat(self) -> None:
        interval = max(self.lease / 4.0, 0.05)
        stop = self._stop
        while not stop.wait(interval):
            with self._guard:
                held = list(self.held)
                if not held:  # ends under the guard: a claim taken after this starts a new thread
                    if self._thread is threading.current_thread():
                        self._thread = None
                    return
            for cid in held:
                try:
                    os.utime(self.path(cid))
                except OSError:
                    pass


class DoneIndex:
    """What the results store says is finished, read incrementally (each refresh reads only the
    bytes appended since the last one, so checking before every photo stays cheap).

    A job key (key, sha256, job) is done when it has a row for every face x alpha, or a failure with
    a final reason (``final``) — failures present at the first refresh only unless ``retry_failures``
    is False (``--retry-failures`` retries old failures, not those of a concurrent process)."""

    def __init__(self, out_dir: str | os.PathLike, n_alphas: int, final: Iterable[str], retry_failures: bool = False):
        self.out_dir = Path(out_dir)
        self.n_alphas = int(n_alphas)
        self.final = tuple(final)
        self.retry_failures = retry_failures
        self._offsets: dict[Path, int] = {}
        self._rows: dict[tuple, set] = {}
        self._expected: dict[tuple, int] = {}
        self._failed: set[tuple] = set()
        self._first = True

    def _new_lines(self, path: Path, stem: str) -> list[dict]:
        start = self._offsets.get(path, 0)
        try:
            with open(path, "rb") as f:
                f.seek(start)
                data = f.read()
        except OSError:
            return []
        end = data.rfind(b"\n") + 1  # only whole lines; a line being written is read next time
        self._offsets[path] = start + end
        rows = []
        for line in data[:end].splitlines():
            try:
                row = json.loads(line)
            except ValueError:  # a line cut by a crash
                continue
            if is_valid(row, stem):  # a malformed row is reported by the table readers (rows.py), not counted here
                rows.append(row)
        return rows

    def refresh(self) -> "DoneIndex":
        for path in table_files(self.out_dir, "results"):
            for r in self._new_lines(path, "results"):
                k = (r.get("key"), r.get("sha256"), r.get("job"))
                self._rows.setdefault(k, set()).add((r.get("face"), hashable(r.get("alpha"))))
                self._expected[k] = int(r.get("faces") or 1) * self.n_alphas
        for path in table_files(self.out_dir, "failures"):
            for r in self._new_lines(path, "failures"):
                if r.get("reason") in self.final and not (self.retry_failures and self._first):
                    self._failed.add((r.get("key"), r.get("sha256"), r.get("job")))
        self._first = False
        return self

    def done(self, k: tuple) -> bool:
        return k in self._failed or (k in self._rows and len(self._rows[k]) >= self._expected[k])

    def keys(self) -> set[tuple]:
        return {k for k in self._rows if self.done(k)} | set(self._failed)
