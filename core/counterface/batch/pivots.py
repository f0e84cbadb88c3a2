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
        self.pipeline = pipeline
        self.dtype = dtype
        self.config = pivot_config(pipeline)
        self.config_key = _digest(self.config)
        self.folder = self.root / self.config_key

    def key(self, sha256: str, face: AlignedFace, index: int) -> str:
        """The pivot key of face ``index`` (its position among the photo's faces) of the photo with
        content hash ``sha256``."""
        mask = self.pipeline.region_mask(face)
        return _digest({"sha256": sha256, "face": int(index), "align": face_digest(face, mask)}, 32)

    def path(self, key: str) -> Path:
        return self.folder / key[:2] / f"{key}{SUFFIX}"

    def get(self, key: str) -> Pivot | None:
        """The stored pivot (float32 tensors), or None when there is none (or it is unreadable or
        does not fit the generator: it is then tuned again and overwritten)."""
        from ..pivot import load_pivot

        p = self.path(key)
        if not p.is_file():
            return None
        try:
            pivot = expand(load_pivot(p))
            self.pipeline.check_pivot(pivot)
        except (WeightsError, ConfigError):
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
        stored.meta = {**stored.meta, "store": {"key": key, "config": self.config_key, "dtype": self.dtype}}
        write_bytes(self.path(key), to_bytes(stored))
        return expand(stored)


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
    return p / "pivots" if (p / "pivots").is_dir() else p


def scan(root: str | os.PathLike) -> Iterator[Entry]:
    """Every pivot file under ``root``."""
    root = Path(root)
    for p in sorted(root.glob(f"*/??/*{SUFFIX}")):
        try:
            st = p.stat()
        except OSError:  # removed meanwhile
            continue
        yield Entry(config=p.parent.parent.name, key=p.name[:-len(SUFFIX)], path=p, size=st.st_size, mtime=st.st_mtime)


def summary(root: str | os.PathLike) -> dict[str, Any]:
    """Count and size of the store, in total and per configuration (with that configuration)."""
    root = Path(root)
    configs: dict[str, dict[str, Any]] = {}
    for e in scan(root):
        c = configs.setdefault(e.config, {"count": 0, "bytes": 0, "newest": 0.0})
        c["count"] += 1
        c["bytes"] += e.size
        c["newest"] = max(c["newest"], e.mtime)
    for name, c in configs.items():
        try:
            c["config"] = json.loads((root / name / "config.json").read_text())
        except (OSError, ValueError):
            c["config"] = None
        c["newest"] = time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(c["newest"]))
    return {"root": str(root), "count": sum(c["count"] for c in configs.values()),
            "bytes": sum(c["bytes"] for c in configs.values()), "configs": configs}


def prune(root: str | os.PathLike, *, max_bytes: int | None = None, older_than: float | None = None,
          keys: tuple[str, ...] = (), configs: tuple[str, ...] = (), dry_run: bool = False,
          now: float | None = None) -> list[Entry]:
    """Remove pivots: those named in ``keys`` or of a configuration in ``configs``, those unused for
    more than ``older_than`` seconds, then the least recently used until the store holds at most
    ``max_bytes``. Returns the removed entries."""
    now = time.time() if now is None else now
    entries = list(scan(root))
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
        for p in gone:
            try:
                p.unlink()
            except FileNotFoundError:
                pass
    return list(gone.values())
