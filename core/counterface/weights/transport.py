"""Transports of the weights manager: resumable HTTP(S) downloads (requests, byte ranges) and Google
Drive (gdown), into a partial file beside the target. What a download is checked against is the
registry's business (:mod:`counterface.weights.registry`); here a source either delivers a file or
raises :class:`SourceError` and the caller tries the next one.

Why not pooch or huggingface_hub (measured, see docs/weights.md): pooch would replace the ~115 lines
of ``download_http`` and its helpers but restarts an interrupted download from zero (no byte ranges),
and huggingface_hub only reaches the Hub (2 of the 17 registered sources).
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path
from typing import Iterator

from .registry import CHUNK, WeightsSpec, _progress_enabled, cache_dir

#: (connect, read) timeouts in seconds: short connect so that an offline machine fails fast
TIMEOUT = (5.0, 60.0)
#: extra attempts per source after an interrupted transfer (each resumes where the last one stopped)
RETRIES = 2


class SourceError(Exception):
    """One source failed (the message says why); the next one is tried."""


class FileLock:
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


def part_meta(part: Path) -> Path:
    return part.with_name(part.name + ".json")


def unlink(*paths: Path) -> None:
    for p in paths:
        try:
            p.unlink()
        except FileNotFoundError:
            pass


def _progress_bar(spec: WeightsSpec, total: int | None, initial: int):
    from tqdm import tqdm

    return tqdm(total=total, initial=initial, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr,
                desc=spec.name, disable=not _progress_enabled(), leave=False)


_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")


def download_http(spec: WeightsSpec, url: str, t: Path) -> Path:
    """Download ``url`` into ``<target>.part`` (resuming a partial from the same URL); returns the part."""
    import requests

    part = t.with_name(t.name + ".part")
    meta = part_meta(part)
    try:
        same_url = json.loads(meta.read_text()).get("url") == url
    except (OSError, ValueError):
        same_url = False
    if part.exists() and not same_url:
        unlink(part)
    meta.write_text(json.dumps({"url": url}))
    try:
        return _http_loop(spec, url, part, requests)
    finally:
        if not part.exists():
            unlink(meta)


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
            raise SourceError(short(exc) + kept) from None
        if done:
            return part
        attempts += 1
        if attempts > RETRIES:
            size = part.stat().st_size if part.exists() else 0
            raise SourceError(f"incomplete download ({size} bytes kept in {part}; run again to resume)")


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
            unlink(part)  # a stale partial: start over
            return False
        if r.status_code == 206 and have:
            m = _CONTENT_RANGE.match(r.headers.get("Content-Range", ""))
            if not m or int(m.group(1)) != have:
                unlink(part)
                raise SourceError(f"server sent an unexpected range {r.headers.get('Content-Range')!r}")
            total = int(m.group(3)) if m.group(3) != "*" else None
            mode = "ab"
        elif r.status_code == 200:
            length = r.headers.get("Content-Length")
            total = int(length) if length and length.isdigit() and "Content-Encoding" not in r.headers else None
            mode, have = "wb", 0  # no range support: start over
        else:
            raise SourceError(f"HTTP {r.status_code} {r.reason or ''}".strip())
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


def download_gdrive(spec: WeightsSpec, file_id: str, t: Path) -> Path:
    """Google Drive through gdown (confirm-token pages, cookies, resume of its own partials)."""
    try:
        import gdown
    except ImportError:
        raise SourceError("Google Drive downloads need the gdown package (pip install gdown)") from None
    import inspect

    out = t.with_name(t.name + ".gdrive")
    unlink(out)  # a finished but rejected earlier attempt
    kwargs = {"id": file_id, "output": str(out), "quiet": not _progress_enabled(), "resume": True}
    params = inspect.signature(gdown.download).parameters
    if "timeout" in params:
        kwargs["timeout"] = TIMEOUT
    try:
        result = gdown.download(**kwargs)
    except Exception as exc:  # noqa: BLE001 - gdown raises many types (quota, permissions, network)
        raise SourceError(short(exc)) from None
    if not result or not out.is_file():
        raise SourceError("Google Drive did not deliver the file (quota exceeded or access denied)")
    return out


def short(exc: BaseException, limit: int = 200) -> str:
    s = " ".join(str(exc).split()) or type(exc).__name__
    return s if len(s) <= limit else s[: limit - 3] + "..."
