"""The pivot store of a batch: each face's tuned pivot, kept so that other edits of it tune nothing.

A pivot is determined by the photo's bytes, the face, and the configuration of every stage that
shapes it (aligner, inverter, generator, tuner, the tuner's identity loss, the seed and the numeric
precision) plus the tuner's region mask (where the edited attributes live). It does not depend on
alpha, the operators (pi0/pi1), the direction itself, the blender or the image format, so a rerun
that only changes those reuses every pivot (:func:`pivot_config`, :meth:`PivotStore.key`).

Layout::

    PIVOTS/<config digest>/config.json                     the configuration the digest stands for
    PIVOTS/<config digest>/<2 hex>/<pivot key>.safetensors one face's pivot (counterface.pivot format)

Stored tensors: the tuned generator tensors in float16 (``dtype``), the latent ``w`` in float32;
reconstructions from a stored pivot stay within :data:`TOLERANCE` grey levels of the float32 pivot
(measured on the tiny preset, see docs/batch.md). A freshly tuned pivot is rounded the same way before
it is used, so a run that tunes and a run that reuses give the same bytes. Writes are atomic
(temporary file + rename): writers of the same pivot at once each write the same content, and the
last rename wins.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator, Mapping

import numpy as np

from .. import kinds
from ..errors import ConfigError, WeightsError
from ..imageio import write_bytes, write_json
from ..types import AlignedFace, Pivot

#: the store's layout version (part of every configuration digest)
STORE_FORMAT = 1
#: configuration sections that shape a pivot
PIVOT_SECTIONS = kinds.pivot_sections()  # aligner, inverter, tuner, generator, identity (counterface.kinds)
#: edit settings that shape a pivot (the tuner's seed, the numeric precision)
PIVOT_EDIT = ("seed", "precision")
#: dtypes a pivot's tuned tensors may be stored in
DTYPES = ("float16", "float32")
#: largest reconstruction difference (grey levels of 255) a float16 store may cause (see docs/batch.md)
TOLERANCE = 2.0
SUFFIX = ".safetensors"


def pivot_config(pipeline) -> dict[str, Any]:
    """What of ``pipeline``'s configuration determines a pivot (JSON-able): the sections of
    :data:`PIVOT_SECTIONS` and the edit settings of :data:`PIVOT_EDIT`."""
    cfg = pipeline.config
    out: dict[str, Any] = {"store": STORE_FORMAT}
    for section in PIVOT_SECTIONS:
        value = cfg.get(section)
        out[section] = dict(value) if isinstance(value, Mapping) else value
    out["edit"] = {k: pipeline.edit.get(k) for k in PIVOT_EDIT}
    return out


def _digest(obj: Any, n: int = 16) -> str:
    return hashlib.sha256(json.dumps(obj, sort_keys=True, default=str).encode()).hexdigest()[:n]


def face_digest(face: AlignedFace, region_mask: np.ndarray | None = None) -> str:
    """A digest of the face as the tuner sees it: the alignment (landmarks and matrix, rounded to
    1/1000 px so that harmless float noise does not matter), the crop size, and the region mask."""
    h = hashlib.sha256()
    h.update(np.round(np.asarray(face.landmarks, dtype=np.float64), 3).astype("<f8").tobytes())
    h.update(np.round(np.asarray(face.matrix, dtype=np.float64), 6).astype("<f8").tobytes())
    h.update(str(int(face.size)).encode())
    if region_mask is not None:
        h.update(np.round(np.asarray(region_mask, dtype=np.float32), 3).astype("<f4").tobytes())
    return h.hexdigest()[:32]


@dataclass(frozen=True)
class Entry:
    """One stored pivot, as listed by :func:`scan`."""

    config: str
    key: str
    path: Path
    size: int
    mtime: float


class PivotStore:
    """Pivots of one configuration under ``root`` (see the module docstring).

    ``dtype``: how the tuned tensors are stored (``float16`` or ``float32``); the latent is always float32.
    """

    def __init__(self, root: str | os.PathLike, pipeline, dtype: str = "float16"):
        if dtype not in DTYPES:
            raise ConfigError(f"pivot dtype must be one of {', '.join(DTYPES)}, got {dtype!r}")
        self.root = Path(root).resolve()
        check_store_folder(self.root)
        self.pipeline = pipeline
        self.dtype = dtype
        self.config = pivot_config(pipeline)
        self.config_key = _digest(self.config)
        self.folder = self.root / self.config_key
        self._sha256: dict[str, str] = {}  # key -> the photo sha256 it was computed from
        self.rejected: dict[str, str] = {}  # key -> why its stored pivot was not reused

    def key(self, sha256: str, face: AlignedFace, index: int) -> str:
        """The pivot key of face ``index`` (its position among the photo's faces) of the photo with
        content hash ``sha256``."""
        mask = self.pipeline.region_mask(face)
        key = _digest({"sha256": sha256, "face": int(index), "align": face_digest(face, mask)}, 32)
        self._sha256[key] = sha256
        return key

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}{SUFFIX}"

    def get(self, key: str) -> Pivot | None:
        """The stored pivot (float32 tensors), or None when there is none, or when it may not be
        reused: unreadable, not fitting the generator, or failing :func:`counterface.pivot.verify_pivot`
        (a non-finite tensor, another key, another photo). A rejected pivot is tuned again and
        overwritten; why is kept in :attr:`rejected` and reaches the row (:func:`rejection`)."""
        from ..pivot import load_pivot, verify_pivot

        p = self.path(key)
        self.rejected.pop(key, None)
        if not p.is_file():
            return None
        try:
            pivot = expand(load_pivot(p))
            self.pipeline.check_pivot(pivot)
        except (WeightsError, ConfigError) as exc:
            self.rejected[key] = f"unusable: {exc}"
            return None
        why = verify_pivot(pivot, key=key, photo_sha256=self._sha256.get(key))
        if why is not None:
            self.rejected[key] = why
            return None
        try:
            os.utime(p)  # last use: `counterface pivots prune --max-size` drops the least recently used
        except OSError:
            pass
        return pivot

    def put(self, key: str, pivot: Pivot) -> Pivot:
        """Store ``pivot`` under ``key`` (atomically) and return it as it will be read back."""
        from ..pivot import to_bytes

        if not (self.folder / "config.json").is_file():
            write_json(self.folder / "config.json", self.config)
        stored = compact(pivot, self.dtype)
        record = {"key": key, "config": self.config_key, "dtype": self.dtype}
        if key in self._sha256:
            record["sha256"] = self._sha256[key]
        stored.meta = {**stored.meta, "store": record}
        write_bytes(self.path(key), to_bytes(stored))
        out = expand(stored)
        if key in self.rejected:  # in the row and sidecars of this run only, not in the stored file
            out.meta = {**out.meta, REJECTED: self.rejected[key]}
        return out


#: the row field (and pivot meta key) saying why a stored pivot was not reused but tuned again
REJECTED = "pivot_rejected"


def rejection(pivot: Pivot) -> dict[str, str]:
    """``{"pivot_rejected": why}`` for a pivot tuned again because its stored one was rejected, else {}."""
    why = pivot.meta.get(REJECTED) if isinstance(pivot.meta, dict) else None
    return {REJECTED: why} if why else {}


def check_store_folder(folder: str | os.PathLike, option: str = "--pivots") -> None:
    """Refuse a batch output folder given where a pivot store belongs (``batch --pivots RUN``): it
    would quietly become a new store inside the old run and tune everything again."""
    p = Path(folder)
    if (p / "results.jsonl").is_file() or (p / "batch.json").is_file() or any(p.glob("results.shard-*.jsonl")):
        hint = f"did you mean {p / 'pivots'}?" if (p / "pivots").is_dir() else "give its pivots/ folder"
        raise ConfigError(f"{option} {p} is a batch output folder (it holds results.jsonl), not a pivot store; {hint}")


def compact(pivot: Pivot, dtype: str = "float16") -> Pivot:
    """A copy of ``pivot`` with its floating tuned tensors in ``dtype`` (the latent stays float32)."""
    import torch

    target = getattr(torch, dtype)
    tensors = {k: (t.detach().to("cpu", target) if t.is_floating_point() else t.detach().cpu())
               for k, t in pivot.tensors.items()}
    return Pivot(w=pivot.w.detach().to("cpu", torch.float32), tensors=tensors, generator=dict(pivot.generator),
                 meta=dict(pivot.meta))


def expand(pivot: Pivot) -> Pivot:
    """``pivot`` with every floating tensor in float32 (as the generator computes)."""
    import torch

    tensors = {k: (t.to(torch.float32) if t.is_floating_point() else t) for k, t in pivot.tensors.items()}
    return Pivot(w=pivot.w.to(torch.float32), tensors=tensors, generator=pivot.generator, meta=pivot.meta)


# -- listing and pruning (``counterface pivots``) -------------------------------------------------------
def resolve_root(path: str | os.PathLike) -> Path:
    """A pivot store folder from a batch output folder (``OUT/pivots``) or the store itself."""
    p = Path(path)
    if _is_link(p / "pivots"):
        raise ConfigError(f"{p / 'pivots'} is a link; links are never followed in a pivot store: "
                          "give the store it points to itself")
    return p / "pivots" if (p / "pivots").is_dir() else p


def _is_link(path: Path) -> bool:
    try:
        return path.is_symlink()
    except OSError:
        return False


def scan(root: str | os.PathLike, skipped: list[Path] | None = None) -> Iterator[Entry]:
    """Every pivot file under ``root`` (``CONFIG/XX/KEY.safetensors``), without following a link: a
    symbolic link in the store (a folder or a file, wherever it points) is never listed, read or
    removed; it is appended to ``skipped`` (when given) so that the caller can report it."""
    root = Path(root)

    def skip(p: Path) -> None:
        if skipped is not None and p not in skipped:
            skipped.append(p)

    def folders(parent: Path, pattern):
        try:
            children = sorted(parent.iterdir())
        except OSError:  # removed meanwhile, or not readable
            return
        for c in children:
            if not pattern(c.name):
                continue
            if _is_link(c):
                skip(c)
            elif c.is_dir():
                yield c

    for config in folders(root, lambda n: not n.startswith(".")):
        for sub in folders(config, lambda n: len(n) == 2):
            for p in _files(sub, skip):
                try:
                    st = p.lstat()
                except OSError:  # removed meanwhile
                    continue
                yield Entry(config=config.name, key=p.name[:-len(SUFFIX)], path=p, size=st.st_size,
                            mtime=st.st_mtime)


def _files(folder: Path, skip) -> Iterator[Path]:
    """The regular ``*.safetensors`` files of ``folder``; links are passed to ``skip``."""
    try:
        children = sorted(folder.iterdir())
    except OSError:
        return
    for p in children:
        if not p.name.endswith(SUFFIX):
            continue
        if _is_link(p):
            skip(p)
        elif p.is_file():
            yield p


def remove_inside(root: str | os.PathLike, path: Path) -> bool:
    """Remove the regular file ``path`` of the store ``root`` without following any link on the way:
    each folder from ``root`` down is opened with ``O_NOFOLLOW`` and the file is removed relative to
    it, so a folder swapped for a link after the scan cannot redirect the removal outside the store.
    False when it is gone, is not a regular file, or a link stands in the way."""
    import stat

    root = Path(root)
    try:
        parts = Path(path).relative_to(root).parts
    except ValueError:
        return False
    flags = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0)
    nofollow = getattr(os, "O_NOFOLLOW", 0)
    try:
        fd = os.open(root, flags)
    except OSError:
        return False
    try:
        for part in parts[:-1]:
            nxt = os.open(part, flags | nofollow, dir_fd=fd)  # a link: ELOOP / ENOTDIR
            os.close(fd)
            fd = nxt
        st = os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
        if not stat.S_ISREG(st.st_mode):
            return False
        os.unlink(parts[-1], dir_fd=fd)
        return True
    except OSError:
        return False
    finally:
        os.close(fd)


def summary(root: str | os.PathLike, skipped: list[Path] | None = None) -> dict[str, Any]:
    """Count and size of the store, in total and per configuration (with that configuration); links
    are not followed (see :func:`scan`): they are listed under ``skipped_links``."""
    root = Path(root)
    skipped = [] if skipped is None else skipped
    configs: dict[str, dict[str, Any]] = {}
    for e in scan(root, skipped):
        c = configs.setdefault(e.config, {"count": 0, "bytes": 0, "newest": 0.0})
        c["count"] += 1
        c["bytes"] += e.size
        c["newest"] = max(c["newest"], e.mtime)
    for name, c in configs.items():
        cfg_file = root / name / "config.json"
        try:
            c["config"] = None if _is_link(cfg_file) else json.loads(cfg_file.read_text())
        except (OSError, ValueError):
            c["config"] = None
        c["newest"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(c["newest"]))
    return {"root": str(root), "count": sum(c["count"] for c in configs.values()),
            "bytes": sum(c["bytes"] for c in configs.values()), "configs": configs,
            "skipped_links": [str(p) for p in skipped]}


def prune(root: str | os.PathLike, *, max_bytes: int | None = None, older_than: float | None = None,
          keys: tuple[str, ...] = (), configs: tuple[str, ...] = (), dry_run: bool = False,
          now: float | None = None, skipped: list[Path] | None = None) -> list[Entry]:
    """Remove pivots: those named in ``keys`` or of a configuration in ``configs``, those unused for
    more than ``older_than`` seconds, then the least recently used until the store holds at most
    ``max_bytes``. Returns the removed entries. Only regular files inside ``root`` are removed: links
    are skipped (appended to ``skipped``), never followed (:func:`scan`, :func:`remove_inside`)."""
    now = time.time() if now is None else now
    entries = list(scan(root, skipped))
    gone: dict[Path, Entry] = {}
    for e in entries:
        if e.key in keys or e.config in configs or (older_than is not None and now - e.mtime > older_than):
            gone[e.path] = e
    if max_bytes is not None:
        kept = sorted((e for e in entries if e.path not in gone), key=lambda e: e.mtime)
        total = sum(e.size for e in kept)
        for e in kept:
            if total <= max_bytes:
                break
            gone[e.path] = e
            total -= e.size
    if not dry_run:
        for p in list(gone):
            if not remove_inside(root, p) and p.exists():
                gone.pop(p)  # became a link or a folder meanwhile: left alone
    return list(gone.values())
