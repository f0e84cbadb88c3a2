"""The per-photo flow, one for every command: read, align, select the face, pivot, operators, write.

``counterface edit``, ``pairs``, ``sweep`` and ``batch`` (and the notebook API) all go through here:

1. :func:`read_photo`: the photo (a path or an array) and its sha256;
2. :func:`select_faces`: the aligned faces after ``--face`` / ``--min-face`` / ``--face match``;
3. :func:`face_pivot`: the face's pivot, tuned or taken from a :class:`PivotSource` (a saved pivot
   file, the batch's pivot store);
4. :func:`render_face`: the operators of the command's roles at each alpha of the sweep (or the
   searched ``--alpha auto``), the leakage and every output's sidecar;
5. :func:`write_output`: each image and its JSON sidecar, atomically, never over an input.

:func:`process_photo` runs steps 1-4 for one photo and returns a :class:`FaceResult` per face; the
commands name and write the outputs (step 5).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Sequence

import numpy as np

from .provenance import Timer
from .rendering import ROLES
from .settings import EditSettings
from .types import AlignedFace, EditResult, Pivot


@dataclass
class Photo:
    """A decoded photo: (H, W, 3) uint8 RGB ``image``, its file ``path`` and ``sha256`` (None for an
    array), and the seconds spent reading it."""

    image: np.ndarray
    path: Path | None = None
    sha256: str | None = None
    seconds: dict[str, float] = field(default_factory=dict)


def read_photo(source: str | os.PathLike | np.ndarray) -> Photo:
    """A :class:`Photo` from a file path (read and hashed) or an (H, W, 3) uint8 array (used as is;
    sha256 of its bytes)."""
    import hashlib

    from .imageio import file_sha256, read_image

    if isinstance(source, np.ndarray):
        image = np.ascontiguousarray(source)
        return Photo(image=image, sha256=hashlib.sha256(image.tobytes()).hexdigest())
    t = Timer()
    path = Path(source)
    with t("read"):
        image = read_image(path)
        sha = file_sha256(path)
    return Photo(image=image, path=path, sha256=sha, seconds=t.seconds)


def select_faces(pipe, photo: Photo, faces: Sequence[AlignedFace] | None = None,
                 reference: Any = None) -> list[tuple[int, AlignedFace]]:
    """(index, face) of each face to edit: ``faces`` (every aligned face, largest first; aligned here
    when None) after ``edit.face`` / ``edit.min_face`` / ``--face match`` (``reference``: the
    reference or a function making it; the match goes to ``pipe.last_match``). ``index`` is the
    face's position among every face found, which names its outputs. NoFaceError when none is left."""
    from .matching import select_faces as select, selector

    if faces is None:
        t = Timer()
        with t("align"):
            faces = list(pipe.align(photo.image))
        photo.seconds.update(t.seconds)
    match = selector(pipe, photo.image, reference)
    chosen = select(list(faces), pipe.edit["face"], pipe.edit["min_face"], match=match)
    return [(next(i for i, f in enumerate(faces) if f is face), face) for face in chosen]


class PivotSource:
    """Where pivots come from besides tuning: a saved pivot file, a pivot store. The default tunes
    every face and keeps nothing."""

    def get(self, photo: Photo, face: AlignedFace, index: int) -> tuple[Pivot, dict[str, float], str] | None:
        """(pivot, seconds, state) of a pivot that exists already, or None (then the face is tuned)."""
        return None

    def tuned(self, face: AlignedFace) -> tuple[Pivot, dict[str, float]] | None:
        """A pivot tuned ahead (``--tune-batch``), or None."""
        return None

    def put(self, photo: Photo, face: AlignedFace, index: int, pivot: Pivot) -> Pivot:
        """Keep a newly tuned pivot; returns the pivot to use (as stored, so reusing gives the same pairs)."""
        return pivot


def face_pivot(pipe, photo: Photo, face: AlignedFace, index: int, source: PivotSource | None = None,
               progress: Callable | None = None) -> tuple[Pivot, dict[str, float], str]:
    """(pivot, seconds, state) of one face: ``state`` is what the source said (``reused``,
    ``loaded``), or ``tuned``."""
    source = source or PivotSource()
    found = source.get(photo, face, index)
    if found is not None:
        return found
    pivot, seconds = source.tuned(face) or pipe.pivot(face, progress=progress)
    pivot.meta["source"] = {"input": None if photo.path is None else str(photo.path),
                            "input_sha256": photo.sha256, "face_index": index}
    return source.put(photo, face, index, pivot), seconds, "tuned"


@dataclass
class Step:
    """The outputs of one face at one alpha: ``results`` by output role (``z1``, ``z0``), the
    ``alpha`` applied (a float, or one per direction), ``auto`` (``{'alpha_auto': ...}`` when it was
    searched), the ``leakage`` fields, the step's ``seconds`` and each output's ``sidecars``."""

    alpha: Any
    results: dict[str, EditResult]
    auto: dict[str, Any] = field(default_factory=dict)
    leakage: dict[str, Any] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    sidecars: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def attributes(self) -> dict[str, list]:
        return {role: r.meta["attributes"] for role, r in self.results.items()}


@dataclass
class FaceResult:
    """One face of a photo after the flow: the face, its ``index`` among every face found, its
    ``pivot`` (``pivot_state``: tuned, reused or loaded), the seconds up to the pivot, the match of
    ``--face match`` and a :class:`Step` per alpha (one unless a sweep)."""

    photo: Photo
    face: AlignedFace
    index: int
    pivot: Pivot
    pivot_state: str
    seconds: dict[str, float]
    steps: list[Step]
    match: Any = None

    @property
    def z1(self) -> np.ndarray | None:
        """The first step's Z1 image, (H, W, 3) uint8, or None when pi_1 was not rendered."""
        r = self.steps[0].results.get("z1") if self.steps else None
        return None if r is None else r.image

    @property
    def z0(self) -> np.ndarray | None:
        """The first step's Z0 image, (H, W, 3) uint8, or None when pi_0 was not rendered."""
        r = self.steps[0].results.get("z0") if self.steps else None
        return None if r is None else r.image

    @property
    def sidecars(self) -> dict[str, dict[str, Any]]:
        """The first step's sidecars by role."""
        return self.steps[0].sidecars if self.steps else {}


def render_face(pipe, photo: Photo, face: AlignedFace, pivot: Pivot, *, roles: Sequence[str] | None = None,
                alphas: Sequence[Any] | None = None, seconds: dict[str, float] | None = None,
                extra: dict[str, Any] | None = None) -> list[Step]:
    """The operators of ``roles`` (default: the settings') at each alpha of ``alphas`` (default: the
    settings' sweep, else ``[edit.alpha]``; ``'auto'`` searched per face), with the leakage of the
    watched attributes and a sidecar per output (``extra``: more sidecar fields)."""
    settings: EditSettings = pipe.settings
    roles = tuple(roles or settings.roles)
    steps = []
    for alpha in (settings.sweep() if alphas is None else list(alphas)):
        t = Timer()
        auto: dict[str, Any] = {}
        if alpha == "auto":  # the smallest alpha reaching edit.target_score on the scorer
            with t("alpha_auto"):
                found = pipe.auto_alpha(photo.image, face, pivot)
            alpha, auto = found.alpha, {"alpha_auto": found.to_json()}
        results = {}
        for role in roles:
            with t(role):
                results[ROLES[role]] = pipe.apply_operator(photo.image, face, pivot, role, alpha)
        first = next(iter(results.values()))
        leakage = pipe.leakage(pivot, results.get("z1", first), results.get("z0"))
        step = Step(alpha=first.alpha, results=results, auto=auto, leakage=leakage, seconds=t.seconds)
        for role, r in results.items():
            step.sidecars[role] = pipe.sidecar(
                input_path=photo.path, input_sha256=photo.sha256, face=face, alpha=step.alpha, role=role,
                pivot=pivot, seconds={**(seconds or {}), **t.seconds, **r.meta["seconds"]},
                attributes=r.meta["attributes"], extra={**leakage, **auto, **(extra or {})})
        steps.append(step)
    return steps


def iter_faces(pipe, source: str | os.PathLike | np.ndarray | Photo, *, roles: Sequence[str] | None = None,
               alphas: Sequence[Any] | None = None, pivots: PivotSource | None = None,
               progress: Callable[[str], Callable | None] | None = None,
               check: Callable[[Photo, list], None] | None = None) -> Iterator[FaceResult]:
    """:func:`process_photo`, one face at a time (a face's outputs can be written before the next
    face is tuned). ``progress(label)``: a tuning progress callback for a face, or None; ``check``:
    called with the photo and the selected faces before any is tuned."""
    photo = source if isinstance(source, Photo) else read_photo(source)
    chosen = select_faces(pipe, photo)
    match = pipe.last_match
    if check is not None:
        check(photo, chosen)
    for index, face in chosen:
        bar = progress(f"{photo.path.name if photo.path else 'photo'} face{index}") if progress else None
        try:
            pivot, pseconds, state = face_pivot(pipe, photo, face, index, pivots, progress=bar)
        finally:
            if bar is not None and hasattr(bar, "close"):
                bar.close()
        seconds = {**photo.seconds, **pseconds}
        extra = {"match": match.to_json()} if match is not None else {}
        steps = render_face(pipe, photo, face, pivot, roles=roles, alphas=alphas, seconds=seconds, extra=extra)
        yield FaceResult(photo=photo, face=face, index=index, pivot=pivot, pivot_state=state, seconds=seconds,
                         steps=steps, match=match)


def process_photo(source: str | os.PathLike | np.ndarray, settings: EditSettings | None = None, *,
                  pipeline=None, roles: Sequence[str] | None = None, alphas: Sequence[Any] | None = None,
                  pivots: PivotSource | None = None) -> list[FaceResult]:
    """Every selected face of one photo through the flow: read, align, select, pivot, operators.

    ``source``: a photo file path or an (H, W, 3) uint8 RGB array. ``settings``: an
    :class:`~counterface.settings.EditSettings` (e.g. ``EditSettings.resolve(preset="tiny")``);
    ``pipeline``: a :class:`~counterface.pipeline.Pipeline` already built (reused across photos; its
    settings are used when ``settings`` is None). ``roles``: the operators to render (default the
    settings' roles: ``('pi1', 'pi0')``); ``alphas``: the strengths (default the settings' sweep,
    else its alpha). ``pivots``: a :class:`PivotSource` (default: tune every face).

    Returns one :class:`FaceResult` per face, largest first: ``.z1`` / ``.z0`` the (H, W, 3) uint8
    images of the first alpha, ``.sidecars`` their sidecar dicts by role, ``.steps`` every alpha.
    Nothing is written. Raises NoFaceError (no face), ImageError (unreadable), ConfigError.
    """
    if pipeline is None:
        from .pipeline import Pipeline

        if settings is None:
            raise TypeError("process_photo needs settings or a pipeline")
        pipeline = Pipeline(settings)
        pipeline.prepare()
    elif settings is not None and settings is not pipeline.settings:
        raise ValueError("give settings or a pipeline built from them, not both")
    return list(iter_faces(pipeline, source, roles=roles, alphas=alphas, pivots=pivots))


def write_output(out_dir: str | os.PathLike, name: str, image: np.ndarray, sidecar: dict[str, Any], *,
                 inputs: Sequence[str | os.PathLike], suffix: str = ".png", **fields: Any) -> Path:
    """Write ``OUT/name<suffix>`` and its sidecar ``OUT/name.json`` (with ``output``, the image's
    file name, and ``fields`` added), atomically and never over an input; returns the image's path."""
    from .imageio import write_image, write_json

    out = write_image(f"{name}{suffix}", image, out_dir=out_dir, inputs=inputs)
    write_json(f"{name}.json", {**sidecar, "output": out.name, **fields}, out_dir=out_dir, inputs=inputs)
    return out
