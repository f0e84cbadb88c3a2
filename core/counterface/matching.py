"""Target face matching: ``--face match`` edits the person of a reference photo, not the largest face.

The reference is one or more photos of the person (``edit.reference``: a photo, a folder of photos or
a list of paths; in a batch also a manifest column ``reference`` or ``--references DIR
--reference-column COLUMN``, which reads ``DIR/<value>.<ext>`` or every photo in ``DIR/<value>/``).
Each reference photo's largest face is embedded by the matcher (``edit.matcher``, an identity
component; the preset's by default, ``dlib`` in the reference presets: a real recogniser offline and
one the tuner never optimised), and the
reference is the mean of those unit embeddings, renormalised.

Every face of the photo (after ``edit.min_face``) is embedded the same way and the one with the
highest cosine similarity to the reference is edited. When that similarity is below the threshold
(``edit.match_threshold``; default: the matcher's own ``match_threshold``, 0.92 for ``dlib``) the
photo fails with :class:`~counterface.errors.TargetNotFoundError` (batch reason
``target_not_found``): no face is edited on a guess.

Faces are embedded from ``CROP_SIZE`` px aligned crops cut from the photo with each face's own
alignment matrix (the crops the metrics use), so matching does not depend on the generator's
resolution. The outcome (:class:`Match`) goes into the sidecar (``match``) and the result row
(``match.similarity``, ``match.threshold``, ``match.recogniser``).
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import numpy as np

from .errors import ConfigError, CounterfaceError, NoFaceError, ReferencePhotoError, TargetNotFoundError
from .types import AlignedFace

#: the ``edit.face`` value that selects the reference's person
MATCH = "match"
#: side of the aligned crops the matcher embeds (the metrics' crop size)
CROP_SIZE = 256
#: the manifest column holding a reference photo's path (relative paths: from the manifest's folder)
REFERENCE_COLUMN = "reference"

_cache: dict[tuple, "Reference"] = {}
_cache_lock = threading.Lock()


@dataclass(frozen=True)
class Reference:
    """The person to find: their photos and the mean unit embedding of their faces."""

    paths: tuple[str, ...]
    embedding: np.ndarray  # (D,) float64, unit length

    def to_json(self) -> list[str]:
        return list(self.paths)


@dataclass
class Match:
    """The outcome of matching one photo: the chosen face and how similar it is to the reference."""

    face: AlignedFace
    similarity: float
    threshold: float
    recogniser: str
    reference: Reference
    similarities: list[float] = field(default_factory=list)  # of every candidate face, largest first
    candidates: list[int] = field(default_factory=list)  # their face indices

    def row(self) -> dict[str, Any]:
        """The result-row fields (flattened to ``match.similarity`` ... in results.csv/parquet)."""
        return {"similarity": round(self.similarity, 6), "threshold": self.threshold, "recogniser": self.recogniser}

    def to_json(self) -> dict[str, Any]:
        """The sidecar's ``match`` record."""
        return {**self.row(), "face": self.face.index, "references": self.reference.to_json(),
                "candidates": list(self.candidates), "similarities": [round(s, 6) for s in self.similarities]}


# -- configuration ----------------------------------------------------------------------------------
def matcher(pipe):
    """The pipeline's matcher (``edit.matcher``: an identity component's name, or a table with its
    ``name`` and parameters), built once and cached on the pipeline."""
    from .registry import check_params, create, entry

    if "_matcher" not in pipe._components:
        spec = pipe.edit.get("matcher")
        if not spec:
            raise ConfigError("--face match needs a matcher (an identity component): choose one with --matcher NAME "
                              "(see `counterface plugins`); the preset names none")
        params: dict[str, Any] = {}
        if isinstance(spec, Mapping):
            params = dict(spec)
            name = params.pop("name", None)
            if not name:
                raise ConfigError("edit.matcher as a table needs a name, e.g. {name = \"NAME\"}")
        else:
            name = str(spec)
        factory = entry("identity", name).factory  # an unknown name fails here, listing the valid ones
        if "device" not in params:
            try:
                check_params(factory, {"device": pipe.device}, "")
                params["device"] = pipe.device
            except ConfigError:
                pass
        pipe._components["_matcher"] = create("identity", name, **params)
    return pipe._components["_matcher"]


def threshold(pipe) -> float:
    """``edit.match_threshold``, or the matcher's own ``match_threshold``."""
    value = pipe.edit.get("match_threshold")
    m = matcher(pipe)
    if value is None:
        value = getattr(m, "match_threshold", None)
        if value is None:
            raise ConfigError(f"the matcher {getattr(m, 'name', '?')!r} has no default match threshold; "
                              "give one with --match-threshold T (a cosine similarity)")
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid match threshold {value!r}; use a cosine similarity in [-1, 1]") from None
    if not -1.0 <= value <= 1.0:
        raise ConfigError(f"match threshold {value} outside [-1, 1] (a cosine similarity)")
    return value


def prepare(pipe) -> None:
    """Check the matching settings before the first photo (``--face match`` only): the matcher, its
    threshold, the batch reference settings and a global reference's photos."""
    if pipe.edit.get("face") != MATCH:
        return
    threshold(pipe)
    if pipe.edit.get("references") and not pipe.edit.get("reference_column"):
        raise ConfigError("--references DIR needs --reference-column COLUMN (the manifest column naming each person)")
    if pipe.edit.get("reference"):
        reference(pipe, reference_paths(pipe.edit["reference"]))


# -- references ----------------------------------------------------------------------------------------
def _photos_in(folder: Path) -> list[Path]:
    from .imageio import IMAGE_SUFFIXES

    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES
                  and not p.name.startswith("."))


def reference_paths(value: Any, base: Path | None = None) -> list[Path]:
    """The photos a reference value names: a photo, a folder (every photo in it) or a list of those;
    relative paths from ``base`` (default: the working folder)."""
    items = value if isinstance(value, (list, tuple)) else [value]
    out: list[Path] = []
    for v in items:
        if v in (None, ""):
            continue
        p = Path(os.path.expanduser(str(v)))
        if not p.is_absolute() and base is not None:
            p = Path(base) / p
        if p.is_dir():
            found = _photos_in(p)
            if not found:
                raise ReferencePhotoError(f"reference folder {p} holds no photos")
            out.extend(found)
        elif p.is_file():
            out.append(p)
        else:
            raise ReferencePhotoError(f"reference photo not found: {p}")
    if not out:
        raise ReferencePhotoError("no reference photo given")
    return out


def references_for(directory: str | os.PathLike, value: Any) -> list[Path]:
    """``--references DIR``: the photos of one column value, ``DIR/<value>.<ext>`` (jpg, png, ...)
    or every photo in ``DIR/<value>/``."""
    from .imageio import IMAGE_SUFFIXES

    d = Path(os.path.expanduser(str(directory)))
    name = str(value or "").strip()
    if not name or name in (".", "..") or "/" in name or "\\" in name:
        raise ReferencePhotoError(f"no usable reference name {value!r} for --references {d}")
    folder = d / name
    if folder.is_dir():
        found = _photos_in(folder)
        if found:
            return found
    for suffix in IMAGE_SUFFIXES:
        for cand in (d / f"{name}{suffix}", d / f"{name}{suffix.upper()}"):
            if cand.is_file():
                return [cand]
    raise ReferencePhotoError(f"no reference photo for {name!r}: expected {d / name}.jpg or photos in {folder}/")


def crops(photo: np.ndarray, faces: Sequence[AlignedFace], size: int = CROP_SIZE) -> np.ndarray:
    """(N, size, size, 3) uint8 aligned crops of ``faces`` cut from ``photo`` with their own matrices."""
    from .metrics import scale_matrix, warp_to_crop

    return np.stack([warp_to_crop(photo, scale_matrix(f.matrix, size / float(f.size)), size) for f in faces])


def embed(pipe, photo: np.ndarray, faces: Sequence[AlignedFace]) -> np.ndarray:
    """(N, D) float64 unit embeddings of ``faces`` by the pipeline's matcher."""
    import torch

    from .convert import to_tensor

    with torch.no_grad():
        emb = matcher(pipe).embed(to_tensor(crops(photo, faces))).detach().double().cpu().numpy()
    return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)


def reference(pipe, paths: Sequence[Path]) -> Reference:
    """The :class:`Reference` of ``paths`` (each photo's largest face), cached per process by the
    files (path, size, modification time), the matcher and the aligner (names and parameters)."""
    from .imageio import read_image

    m = matcher(pipe)
    describe = getattr(m, "describe", None)
    keyed = []
    for p in paths:
        try:
            st = Path(p).stat()
        except OSError:
            raise ReferencePhotoError(f"reference photo not found: {p}") from None
        keyed.append((str(Path(p).resolve()), st.st_size, st.st_mtime_ns))
    key = (getattr(m, "name", type(m).__name__), repr(describe() if callable(describe) else None),
           repr(pipe.config.get("aligner")), tuple(keyed))
    with _cache_lock:
        if key in _cache:
            return _cache[key]
    vectors = []
    for p in paths:
        try:
            image = read_image(p)
            faces = pipe.align(image, size=CROP_SIZE)
        except CounterfaceError as exc:
            if isinstance(exc, ConfigError) and not isinstance(exc, ReferencePhotoError):
                raise
            raise ReferencePhotoError(f"reference photo {p}: {exc}") from None
        if not faces:
            raise ReferencePhotoError(f"reference photo {p} shows no face")
        vectors.append(embed(pipe, image, faces[:1])[0])  # the largest face: the person photographed
    mean = np.mean(vectors, axis=0)
    ref = Reference(paths=tuple(str(p) for p in paths), embedding=mean / max(float(np.linalg.norm(mean)), 1e-12))
    with _cache_lock:
        _cache[key] = ref
    return ref


def item_reference(pipe, meta: Mapping[str, Any], base: Path | None = None) -> Reference:
    """A batch row's reference: ``--references DIR`` + ``--reference-column``, else the row's
    ``reference`` column (relative paths from ``base``, the manifest's folder), else ``edit.reference``."""
    directory, column = pipe.edit.get("references"), pipe.edit.get("reference_column")
    if directory:
        if not column:
            raise ConfigError("--references DIR needs --reference-column COLUMN")
        if meta.get(column) in (None, ""):
            raise ReferencePhotoError(f"the manifest row has no {column!r} value for --references")
        return reference(pipe, references_for(directory, meta[column]))
    if meta.get(REFERENCE_COLUMN) not in (None, ""):
        return reference(pipe, reference_paths(meta[REFERENCE_COLUMN], base))
    if pipe.edit.get("reference"):
        return reference(pipe, reference_paths(pipe.edit["reference"]))
    raise ReferencePhotoError("--face match needs a reference photo of the person: a manifest column "
                              f"{REFERENCE_COLUMN!r}, --references DIR --reference-column COLUMN, or --reference PHOTO")


# -- matching -----------------------------------------------------------------------------------------
def pick(pipe, photo: np.ndarray, faces: Sequence[AlignedFace], ref: Reference) -> Match:
    """The face of ``faces`` most similar to ``ref``; :class:`TargetNotFoundError` below the threshold."""
    thr = threshold(pipe)
    m = matcher(pipe)
    name = getattr(m, "name", "") or type(m).__name__
    sims = [float(s) for s in embed(pipe, photo, faces) @ ref.embedding]
    best = int(np.argmax(sims))
    if sims[best] < thr:
        raise TargetNotFoundError(
            f"target_not_found: no face is the reference's person (best {name} similarity {sims[best]:.3f} "
            f"< threshold {thr:g}, {len(faces)} face(s) compared)")
    return Match(face=faces[best], similarity=sims[best], threshold=thr, recogniser=name, reference=ref,
                 similarities=sims, candidates=[int(f.index) for f in faces])


def selector(pipe, photo: np.ndarray, ref: Callable[[], Reference] | Reference | None = None):
    """The ``match`` argument of :func:`counterface.matching.select_faces` for one photo: None unless
    ``edit.face`` is ``match``; else a function that picks the face and records its :class:`Match`
    in ``pipe.last_match`` (reset here). ``ref``: the reference (or a function making it; default
    ``edit.reference``)."""
    pipe.last_match = None
    if pipe.edit.get("face") != MATCH:
        return None

    def choose(faces: Sequence[AlignedFace]) -> AlignedFace:
        r = ref() if callable(ref) else ref
        if r is None:
            if not pipe.edit.get("reference"):
                raise ConfigError("--face match needs a reference photo of the person: --reference PHOTO")
            r = reference(pipe, reference_paths(pipe.edit["reference"]))
        m = pick(pipe, photo, faces, r)
        pipe.last_match = m
        return m.face

    return choose


def check_items(pipe, items: Sequence[Any]) -> None:
    """``--face match`` in a batch: fail before the first photo when no row can have a reference
    (no ``--reference``, no ``--references``, no ``reference`` column) or the ``--reference-column``
    is not in the manifest."""
    if pipe.edit.get("face") != MATCH:
        return
    column = pipe.edit.get("reference_column")
    if pipe.edit.get("references"):
        if items and not any(column in it.meta for it in items):
            raise ConfigError(f"--reference-column {column!r}: the manifest has no such column")
        return
    if pipe.edit.get("reference"):
        return
    if not any(it.meta.get(REFERENCE_COLUMN) not in (None, "") for it in items):
        raise ConfigError(f"--face match needs a reference photo of each row's person: a manifest column "
                          f"{REFERENCE_COLUMN!r}, --references DIR --reference-column COLUMN, or --reference PHOTO")


def select_faces(faces: list[AlignedFace], which: Any, min_face: float = 0,
                 match: Callable[[list[AlignedFace]], AlignedFace] | None = None) -> list[AlignedFace]:
    """Apply ``--face largest|all|N|match`` and the minimum face width; raise NoFaceError if none is
    left. ``match`` picks the face for ``match`` (:func:`counterface.matching.selector`)."""
    if not faces:
        raise NoFaceError("no face found")
    kept = [f for f in faces if f.face_width >= float(min_face or 0)]
    if not kept:
        raise NoFaceError(f"no face at least {min_face} px wide (largest is {faces[0].face_width:.0f} px)")
    if which in (None, "largest"):
        return kept[:1]
    if which == "all":
        return kept
    if which == "match":
        if match is None:
            raise ConfigError("--face match needs a reference photo of the person (--reference PHOTO)")
        return [match(kept)]
    try:
        idx = int(which)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid face selection {which!r}; use largest, all or an index") from None
    if not 0 <= idx < len(kept):
        raise NoFaceError(f"face {idx} requested but {len(kept)} found")
    return [kept[idx]]
