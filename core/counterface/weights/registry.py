"""The weights registry and hash policy: which files exist (:class:`WeightsSpec`, the
``register_weights`` hook), where each one lives, and whether a file on disk is the right one
(:func:`judge`, memoised sha256). No network code: downloads are :mod:`counterface.weights.transport`.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import sys
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

from .. import plugins
from ..errors import PluginError, WeightsError

ENV_HOME = "COUNTERFACE_HOME"
ENV_OFFLINE = "COUNTERFACE_OFFLINE"
ENV_PROGRESS = "COUNTERFACE_PROGRESS"
GDRIVE = "gdrive://"

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
_hook_cache: tuple[int, dict[str, WeightsSpec]] | None = None  # (plugins.generation(), specs)


def _add(table: dict[str, WeightsSpec], spec: WeightsSpec, origin: str) -> None:
    if not isinstance(spec, WeightsSpec):
        raise PluginError(f"{origin} registered {spec!r}, not a counterface.weights.WeightsSpec")
    prev = table.get(spec.name)
    if prev is not None and prev != spec:
        raise PluginError(f"weights {spec.name!r} from {origin} conflicts with an earlier, different registration")
    table[spec.name] = spec


def _hook_specs() -> dict[str, WeightsSpec]:
    """Specs from every plugin's ``register_weights``; rebuilt when the set of plugins changes."""
    global _hook_cache
    with _lock:
        if _hook_cache is not None and _hook_cache[0] == plugins.generation():
            return _hook_cache[1]
        generation = plugins.generation()
        table: dict[str, WeightsSpec] = {}

        def kwargs_for(plugin: str) -> dict:
            return {"register": lambda spec: _add(table, spec, f"plugin {plugin!r}")}

        plugins.call_each("register_weights", kwargs_for)  # registration order; failures recorded per plugin
        _hook_cache = (generation, table)
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


def iter_status(names: list[str] | None = None, *, hash: bool = False) -> Iterator[WeightsStatus]:
    for name in names or list(specs()):
        yield verify(name) if hash else status(name)


def reset() -> None:
    """Forget code-registered specs and the hook cache (tests)."""
    global _hook_cache
    with _lock:
        _code_specs.clear()
        _hook_cache = None


plugins.add_loader(_hook_specs)  # `plugins.failures()` includes register_weights failures
