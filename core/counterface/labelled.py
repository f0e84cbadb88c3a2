"""Labelled latents for boundary fits: from an ``.npz`` file, or from photos inverted through a pipeline.

``.npz`` input: ``latents`` (N, w_dim) or (N, num_ws, w_dim) and a label array (``labels`` by
default, or the one ``--label`` names), optionally ``family`` (a string: the generator family the
latents belong to).

Photo input: a folder, CSV or JSONL manifest (:func:`counterface.batch.read_manifest`) with a label
column. Each photo's largest face (``edit.face``) is aligned and inverted through the pipeline's
aligner and inverter. Inverted latents are cached in an ``.npz`` file keyed by the photo's sha256
and a digest of the aligner, inverter, generator and face-selection settings, so relearning (another
label column, other fit options) does not invert again; photos that fail (unreadable, no face) are
reported and skipped.
"""

from __future__ import annotations

import hashlib
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np

from .errors import ConfigError, ImageError, NoFaceError, reason


@dataclass
class Examples:
    """``latents`` (N, w_dim) or (N, num_ws, w_dim) float32; ``values`` (N,) float64 label values
    (NaN = unlabelled); ``keys`` one per example; ``family`` of the latents (None = unknown);
    ``source`` what they came from (path, sha256, kind); ``skipped`` (key, reason) of dropped photos;
    ``inverted``/``cached`` counts of the photo route."""

    latents: np.ndarray
    values: np.ndarray
    keys: list[str]
    family: str | None = None
    source: dict[str, Any] = field(default_factory=dict)
    skipped: list[tuple[str, str]] = field(default_factory=list)
    inverted: int = 0
    cached: int = 0


def _sha256(path: Path) -> str:
    from .imageio import file_sha256

    return file_sha256(path)


def read_npz(path: str | Path, label: str | None = None) -> Examples:
    """Examples from an ``.npz`` file (see the module docstring)."""
    p = Path(path)
    try:
        data = np.load(p, allow_pickle=False)
    except FileNotFoundError:
        raise ConfigError(f"input not found: {p}") from None
    except Exception as exc:  # noqa: BLE001 - zip errors come in many types
        raise ConfigError(f"{p}: not a readable .npz file ({reason(exc)})") from None
    try:
        return _read_npz(p, data, label)
    except (ValueError, OSError, EOFError) as exc:  # an object array (pickle refused), a truncated member
        raise ConfigError(f"{p}: unreadable array ({reason(exc)})") from None


def _read_npz(p: Path, data, label: str | None) -> Examples:
    from .learn import parse_label

    with data:
        names = list(data.files)
        if "latents" not in names:
            raise ConfigError(f"{p}: an .npz input needs an array named 'latents' (found {', '.join(names) or 'none'})")
        col = label or "labels"
        if col not in names:
            raise ConfigError(f"{p}: no label array {col!r} (arrays: {', '.join(names)}); choose one with --label")
        lat = np.asarray(data["latents"])
        raw = np.asarray(data[col])
        family = str(data["family"]) if "family" in names else None
    if lat.ndim not in (2, 3) or lat.shape[0] == 0 or not np.issubdtype(lat.dtype, np.floating):
        raise ConfigError(f"{p}: latents must be float (N, w_dim) or (N, num_ws, w_dim), got {lat.dtype} {lat.shape}")
    if raw.ndim != 1 or len(raw) != len(lat):
        raise ConfigError(f"{p}: {len(lat)} latents but the label array {col!r} has shape {raw.shape}")
    if raw.dtype.kind in "fiub":
        values = raw.astype(np.float64)
    else:
        values = np.array([np.nan if (v := parse_label(x)) is None else v for x in raw.tolist()], np.float64)
    return Examples(latents=lat.astype(np.float32), values=values, keys=[str(i) for i in range(len(lat))],
                    family=family or None, source={"kind": "npz", "path": str(p), "sha256": _sha256(p), "label": col})


# -- photos ----------------------------------------------------------------------------------------
def config_digest(cfg: dict[str, Any]) -> str:
    """16 hex of the settings that decide an inverted latent (aligner, inverter, generator, face)."""
    part = {k: cfg.get(k) for k in ("aligner", "inverter", "generator")}
    edit = cfg.get("edit") or {}
    part["face"] = [edit.get("face", "largest"), edit.get("min_face", 0)]
    text = json.dumps(part, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


#: the array that marks an .npz as a latent cache written by counterface (only such a file is replaced)
CACHE_MARKER = "counterface_latent_cache"
CACHE_FORMAT = "counterface-latent-cache/1"


class LatentCache:
    """An ``.npz`` of inverted latents: arrays ``<digest>_sha256`` (M,) and ``<digest>_latents``
    (M, num_ws, w_dim), one pair per configuration digest."""

    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.tables: dict[str, dict[str, np.ndarray]] = {}
        self.dropped = 0  # cached entries that held NaN or infinite values (inverted again)
        if self.path.exists():
            if not self.path.is_file():
                raise ConfigError(f"--cache {self.path}: not a file")
            try:
                with np.load(self.path, allow_pickle=False) as data:
                    files = list(data.files)
                    if CACHE_MARKER not in files or str(data[CACHE_MARKER]) != CACHE_FORMAT:
                        raise ConfigError(f"--cache {self.path} is not a latent cache made by counterface; it is left "
                                          "as it is: choose another --cache file")
                    for name in files:
                        if name.endswith("_sha256"):
                            d = name[: -len("_sha256")]
                            if f"{d}_latents" in files:
                                shas = [str(x) for x in data[name].tolist()]
                                lat = np.asarray(data[f"{d}_latents"], np.float32)
                                if lat.ndim != 3 or len(lat) != len(shas):
                                    continue
                                ok = np.isfinite(lat).all(axis=(1, 2))
                                self.dropped += int((~ok).sum())
                                self.tables[d] = {s: lat[i] for i, s in enumerate(shas) if ok[i]}
            except ConfigError:
                raise
            except Exception as exc:  # noqa: BLE001 - a truncated zip raises many types
                raise ConfigError(f"--cache {self.path}: unreadable latent cache ({' '.join(str(exc).split())[:80]}); "
                                  "delete it to rebuild it, or choose another --cache file") from None

    def get(self, digest: str, sha: str) -> np.ndarray | None:
        return self.tables.get(digest, {}).get(sha)

    def put(self, digest: str, sha: str, latent: np.ndarray) -> None:
        self.tables.setdefault(digest, {})[sha] = np.asarray(latent, np.float32)

    def save(self) -> None:
        from .imageio import write_bytes

        arrays = {}
        for d, table in self.tables.items():
            if not table:
                continue
            shas = sorted(table)
            arrays[f"{d}_sha256"] = np.array(shas)
            arrays[f"{d}_latents"] = np.stack([table[s] for s in shas])
        arrays[CACHE_MARKER] = np.array(CACHE_FORMAT)
        buf = io.BytesIO()
        np.savez_compressed(buf, **arrays)
        write_bytes(self.path, buf.getvalue())


def manifest_labels(source: str | Path, label: str) -> tuple[list, list[float | None]]:
    """(manifest items, their label values or None) of a labelled manifest; ConfigError for a
    missing label column or an unreadable label."""
    from .batch import read_manifest
    from .learn import parse_label

    items = read_manifest(source)
    if not items:
        raise ConfigError(f"{source}: no photos")
    columns = sorted({k for it in items for k in it.meta})
    if label not in columns:
        have = ", ".join(columns) if columns else "none: a folder has no label columns, use a CSV or JSONL manifest"
        raise ConfigError(f"{source}: no label column {label!r} (columns: {have})")
    values = []
    for it in items:
        try:
            values.append(parse_label(it.meta.get(label)))
        except ConfigError as exc:
            raise ConfigError(f"{source}: row {it.key!r}: {exc}") from None
    return items, values


def read_photos(source: str | Path, label: str, pipe, cache_path: str | Path,
                progress: Callable[[str], None] | None = None) -> Examples:
    """Examples from labelled photos inverted through ``pipe`` (a :class:`counterface.pipeline.Pipeline`)."""
    from .imageio import read_image

    items, labels = manifest_labels(source, label)
    digest = config_digest(pipe.config)
    cache = LatentCache(cache_path)
    latents, values, keys, shas, skipped = [], [], [], [], []
    inverted = cached = 0
    for it, v in zip(items, labels):
        if v is None:
            skipped.append((it.key, "no label"))
            continue
        try:
            sha = _sha256(it.path)
        except OSError as exc:
            skipped.append((it.key, f"unreadable: {exc.strerror or exc}"))
            continue
        w = cache.get(digest, sha)
        if w is None:
            try:
                image = read_image(it.path)
                face = pipe.faces(image)[0]
                w = pipe.invert(face).numpy().astype(np.float32)
            except (ImageError, NoFaceError) as exc:  # this photo only; configuration errors stop the run
                skipped.append((it.key, " ".join(str(exc).split())))
                if progress:
                    progress(f"skipped {it.key}: {' '.join(str(exc).split())}")
                continue
            cache.put(digest, sha, w)
            inverted += 1
        else:
            cached += 1
        latents.append(w)
        values.append(v)
        keys.append(it.key)
        shas.append(sha)
    if inverted:
        cache.save()
    if not latents:
        raise ConfigError(f"{source}: no photo could be used ({len(skipped)} skipped)")
    fam = getattr(pipe.generator, "family", None) or None
    src_sha = _sha256(Path(source)) if Path(source).is_file() else None
    return Examples(latents=np.stack(latents), values=np.asarray(values, np.float64), keys=keys, family=fam,
                    source={"kind": "photos", "path": str(source), "sha256": src_sha, "label": label,
                            "config_digest": digest, "photos_sha256": _pairs_digest(keys, shas)},
                    skipped=skipped, inverted=inverted, cached=cached)


def _pairs_digest(keys: list[str], shas: list[str]) -> str:
    """sha256 over the used photos' (key, sha256) pairs: what the fit saw."""
    h = hashlib.sha256()
    for k, s in zip(keys, shas):
        h.update(f"{k}\0{s}\n".encode())
    return h.hexdigest()


# -- shapes ----------------------------------------------------------------------------------------
def generator_shape(generator) -> tuple[str, int, int]:
    """(family, num_ws, w_dim) of a generator component, without loading a published network's
    weights when its family's shape is known (:data:`counterface.boundary.FAMILY_SHAPES`)."""
    from .boundary import FAMILY_SHAPES

    fam = str(getattr(generator, "family", "") or "")
    loaded = getattr(generator, "_module", True) is not None
    if fam in FAMILY_SHAPES and not loaded:
        num_ws, w_dim = FAMILY_SHAPES[fam]
        return fam, num_ws, w_dim
    return fam, int(generator.num_ws), int(generator.w_dim)


def fit_rows(latents: np.ndarray, rows: list[int] | None) -> np.ndarray:
    """(N, w_dim) fit input: W latents as they are; for W+ latents the mean of ``rows`` (None = all)."""
    lat = np.asarray(latents, np.float64)
    if lat.ndim == 2:
        return lat
    num_ws = lat.shape[1]
    idx = list(range(num_ws)) if rows is None else rows
    if idx and max(idx) >= num_ws:
        raise ConfigError(f"layers {idx} out of range: the latents have rows 0-{num_ws - 1}")
    return lat[:, idx, :].mean(1)


