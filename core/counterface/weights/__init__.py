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

The package has two parts: :mod:`~counterface.weights.registry` (the specs, locations and the hash
policy) and :mod:`~counterface.weights.transport` (HTTP with resume, Google Drive). This module ties
them together (:func:`fetch`, :func:`download`, :func:`import_file`) and re-exports the public API,
so ``from counterface import weights; weights.fetch(...)`` is unchanged.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..errors import WeightsError
from ..paths import same_file
from . import registry, transport  # noqa: F401  (weights.registry, weights.transport)
from .registry import (  # noqa: F401  (the public API, re-exported)
    CHUNK, DIFFERS, ENV_HOME, ENV_OFFLINE, ENV_PROGRESS, GDRIVE, MISMATCH, MISSING, PRESENT, TORCH_SUFFIXES,
    VERIFIED, WeightsSpec, WeightsStatus, _memo_put, _progress_enabled, _status_of, _warn, cache_dir,
    format_problem, get_spec, iter_status, judge, located, missing_message, offline, path, register_spec, reset,
    sha256_file, source_label, specs, status, target, torch_hub_checkpoints, unregister_spec, verify,
    weights_dir,
)


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


def _download(spec: WeightsSpec, note: str, *, force: bool = False) -> Path:
    if not spec.urls:
        raise WeightsError(missing_message(spec, "no download source is known", note))
    t = target(spec)
    t.parent.mkdir(parents=True, exist_ok=True)
    errors: list[str] = []
    with transport.FileLock(spec.name):
        if not force and t.is_file():  # another process finished it while we waited for the lock
            _check_local(spec, t)
            return t
        for url in spec.urls:
            label = source_label(url)
            try:
                got = transport.download_gdrive(spec, url[len(GDRIVE):], t) if url.startswith(GDRIVE) else transport.download_http(spec, url, t)
            except transport.SourceError as exc:
                errors.append(f"{label}: {exc}")
                continue
            size = got.stat().st_size
            sha = sha256_file(got, memo=False)
            state, msg = judge(spec, size, sha)
            problem = None if state == MISMATCH else format_problem(spec.name, got)
            if state == MISMATCH or problem:
                if problem:
                    msg = f"the server sent something else: {problem}"
                transport.unlink(got, transport.part_meta(got))
                errors.append(f"{label}: {msg}")
                continue
            if state == DIFFERS:
                _warn(f"{spec.name}: {msg}")
            elif state == PRESENT:
                _warn(f"{spec.name}: downloaded; {msg}")
            os.replace(got, t)
            transport.unlink(transport.part_meta(got))
            _memo_put(t, sha)
            return t
    raise WeightsError(missing_message(spec, "download failed (" + "; ".join(errors) + ")", note))


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
    if t.exists() and same_file(t, src):  # the cached file itself (or a link to it): nothing to copy
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
        transport.unlink(tmp)
    _memo_put(t, sha)
    return WeightsStatus(name, t, state, msg, size=size, sha256=sha, spec=spec)


__all__ = [
    "WeightsSpec", "WeightsStatus", "cache_dir", "download", "fetch", "get_spec", "import_file", "judge",
    "located", "missing_message", "offline", "path", "register_spec", "reset", "resolve", "sha256_file",
    "specs", "status", "target", "torch_hub_checkpoints", "unregister_spec", "verify", "weights_dir",
]
