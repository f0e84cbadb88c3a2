"""What the outlet model sees: :class:`OutletFeatures`, and image embeddings computed once per file.

Embeddings are cached per image *content* (sha256 of the file) and embedder (its name and
``describe()``), in memory and, when a cache file is given, on disk (``OUT/cache/embeddings.npz``),
so a rerun and every bootstrap replicate reuse them: replicates refit g, never re-embed.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np


@dataclass(frozen=True)
class OutletFeatures:
    """N articles as the outlet model sees them (the input of :meth:`counterface.OutletModel.fit`).

    ``embedding`` (N, D) float32 image features; ``politician`` (N,) str; ``covariates`` (N, C)
    float64 (categorical columns one-hot, numeric as given); ``context``: raw context
    (:class:`~counterface.polarization.covariates.Context`, dates and titles) that becomes covariate
    columns only inside a training fold (:func:`counterface.polarization.crossfit.fit_fold`), or None.
    An outlet model receives features with ``context`` None. ``delta`` (N, D) or None: each
    article's pair difference e(Z1) - e(Z0) (no outlet label in it; the reference model estimates
    the attribute's direction from the training rows' deltas and leaves it unpenalised).
    """

    embedding: np.ndarray
    politician: np.ndarray
    covariates: np.ndarray
    context: Any = None
    delta: np.ndarray | None = None

    def __len__(self) -> int:
        return len(self.politician)

    def take(self, rows: np.ndarray) -> "OutletFeatures":
        return OutletFeatures(self.embedding[rows], self.politician[rows], self.covariates[rows],
                              None if self.context is None else self.context.take(rows),
                              None if self.delta is None else self.delta[rows])

    def with_context(self, fitted) -> "OutletFeatures":
        """The context turned into covariate columns by ``fitted`` (a fold's fitted context)."""
        if self.context is None or fitted is None:
            return self
        extra = fitted.transform(self.context)
        return OutletFeatures(self.embedding, self.politician, np.concatenate([self.covariates, extra], axis=1),
                              None, self.delta)


def embedder_digest(embedder) -> str:
    """Identifies what an embedder computes: its name and parameters."""
    desc = json.dumps({"name": getattr(embedder, "name", ""), "params": embedder.describe()}, sort_keys=True,
                      default=str)
    return hashlib.sha256(desc.encode()).hexdigest()[:16]


#: side of the aligned face crops embedded with ``--crop face`` (the metrics' and the matcher's crop)
CROP_SIZE = 256


def crop_digest(matrix: np.ndarray | None) -> str:
    """Identifies a crop: the 2x3 photo -> crop matrix (at :data:`CROP_SIZE`), or '' for the whole image."""
    if matrix is None:
        return ""
    return hashlib.sha256(np.round(np.asarray(matrix, np.float64), 6).tobytes()).hexdigest()[:16]


def cut(image: np.ndarray, matrix: np.ndarray | None) -> np.ndarray:
    """The aligned face crop of ``image`` (a :data:`CROP_SIZE` square) or the image itself."""
    if matrix is None:
        return image
    from ..metrics import warp_to_crop

    return warp_to_crop(image, matrix, CROP_SIZE)


def embed_files(embedder, paths: Sequence[Path], cache_file: Path | None = None, out_dir: Path | None = None,
                batch: int = 32, progress: Callable[[int], None] | None = None,
                crops: Sequence[np.ndarray | None] | None = None) -> tuple[np.ndarray, dict]:
    """(len(paths), D) float32 rows, one per path; each distinct file (and crop) is read and embedded once.

    ``crops``: per path, a 2x3 photo -> crop matrix at :data:`CROP_SIZE` (``--crop face``: the pair's
    aligned face), or None for the whole image. Returns the rows and ``{"images": distinct files,
    "embedded": newly embedded, "cached": reused, "unreadable": {path: reason}}``; the rows of
    unreadable files are NaN (the caller leaves their articles out).
    """
    from ..errors import ImageError
    from ..imageio import file_sha256, read_image, write_bytes

    digest = embedder_digest(embedder)
    cache: dict[str, np.ndarray] = {}
    if cache_file is not None and Path(cache_file).is_file():
        try:
            with np.load(cache_file, allow_pickle=False) as z:
                if str(z["embedder"]) == digest:
                    cache = {k: row for k, row in zip(z["keys"].tolist(), z["rows"])}
        except (OSError, ValueError, KeyError):
            cache = {}  # an unreadable cache is rebuilt
    crops = list(crops) if crops is not None else [None] * len(paths)
    files: dict[Path, str] = {}
    bad: dict[str, str] = {}
    for p in paths:
        rp = Path(p).resolve()
        if rp not in files:
            try:
                files[rp] = file_sha256(rp)
            except OSError as exc:
                files[rp] = ""
                bad[str(rp)] = exc.strerror or type(exc).__name__
    # the cache key of a row: the file's content, and the crop's matrix when one is cut
    keys = [(files[Path(p).resolve()] + (":" + crop_digest(m) if m is not None else ""))
            if files[Path(p).resolve()] else "" for p, m in zip(paths, crops)]
    hits = {k for k in keys if k and k in cache}
    todo = list({k: (Path(p).resolve(), k, m) for p, k, m in zip(paths, keys, crops) if k and k not in cache}.values())
    embedded = 0
    for i in range(0, len(todo), batch):  # read a chunk at a time: a large study never sits in memory
        chunk = []
        for rp, sha, m in todo[i:i + batch]:
            try:
                chunk.append((sha, cut(read_image(rp), m)))
            except ImageError as exc:
                bad[str(rp)] = str(exc)
        if not chunk:
            continue
        rows = np.asarray(embedder.embed([im for _, im in chunk]), np.float32)
        if rows.ndim != 2 or len(rows) != len(chunk):
            from ..errors import PluginError

            raise PluginError(f"embedder {getattr(embedder, 'name', '')!r} returned shape {rows.shape} "
                              f"for {len(chunk)} images; expected (N, D)")
        for (sha, _), row in zip(chunk, rows):
            cache[sha] = row
        embedded += len(chunk)
        if progress:
            progress(len(chunk))
    if embedded and cache_file is not None:
        stored = sorted(cache)
        buf = io.BytesIO()
        np.savez(buf, embedder=np.array(digest), keys=np.array(stored), rows=np.stack([cache[k] for k in stored]))
        write_bytes(cache_file, buf.getvalue(), out_dir=out_dir)
    dim = next(iter(cache.values())).shape[0] if cache else 0
    nan = np.full(dim, np.nan, np.float32)
    out = np.stack([cache.get(k, nan) for k in keys]).astype(np.float32) if len(paths) \
        else np.zeros((0, dim), np.float32)
    distinct = len({k for k in keys if k})
    return out, {"images": distinct, "embedded": embedded, "cached": len(hits), "unreadable": bad}
