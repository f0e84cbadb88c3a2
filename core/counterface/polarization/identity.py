"""The right person: is the edited face of each article the politician it is filed under?

Runs when the articles give a ``reference`` column (a photo or a folder of photos of the person,
relative paths from ARTICLES' folder), or with ``--references DIR`` and a column naming the person
(``--reference-column``, default ``politician``: ``DIR/<name>.jpg`` or the photos in ``DIR/<name>/``).
It uses the ``--face match`` machinery (:mod:`counterface.matching`): the reference is the mean
unit embedding of the reference photos' largest faces by the matcher (``--matcher``, default the
one the batch recorded in the pairs' sidecars, i.e. its preset's), and the edited face (:mod:`.faces`), cut from the published image, must reach the
matcher's threshold (``--match-threshold``, default the matcher's own). Articles whose face is
another person, whose photo shows no face, or who have no usable reference are left out and counted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError, CounterfaceError, ReferencePhotoError
from .faces import FaceFinder


class _MatchSettings:
    """What :mod:`counterface.matching` reads from a pipeline: the matcher, its threshold, the aligner."""

    def __init__(self, matcher: Any, threshold: float | None, finder: FaceFinder):
        self.edit = {"matcher": matcher, "match_threshold": threshold, "face": "match"}
        self.config = {"aligner": finder.spec}
        self.device = "cpu"
        self._components: dict[str, Any] = {}
        self._finder = finder

    def align(self, image: np.ndarray, size: int | None = None):
        if "aligner" not in self._components:
            import counterface

            self._components["aligner"] = counterface.create("aligner", **self._finder.spec_or_fail())
        return self._components["aligner"].align(image, size=size or 256)


@dataclass
class IdentityCheck:
    keep: list[int]
    similarity: list[float | None]
    counts: dict[str, int] = field(default_factory=dict)
    examples: dict[str, str] = field(default_factory=dict)
    record: dict[str, Any] = field(default_factory=dict)


def wanted(meta: Sequence[dict], references: str | None) -> bool:
    return bool(references) or any(m.get("reference") not in (None, "") for m in meta)


def check(study, *, references: str | None = None, reference_column: str | None = None,
          matcher: str | None = None, threshold: float | None = None,
          finder: FaceFinder | None = None, recorded_matcher: Any = None) -> IdentityCheck | None:
    """Which of the study's articles show their politician; None when there is nothing to check against.
    ``matcher``: ``--matcher``; ``recorded_matcher``: the batch's (from the pairs' sidecars), used otherwise."""
    from .. import matching
    from ..imageio import read_image

    metas = study.meta or [{} for _ in study.keys]
    if not wanted(metas, references):
        if reference_column:
            raise ConfigError("--reference-column names the person's column for --references DIR; give --references")
        if matcher or threshold is not None:
            raise ConfigError("--matcher and --match-threshold act on the identity check: give a reference column "
                              "in ARTICLES or --references DIR")
        return None
    column = reference_column or "politician"
    finder = finder or FaceFinder()
    matcher = matcher or recorded_matcher
    if not matcher:
        raise ConfigError("the identity check needs a matcher (an identity component) and the pairs do not record "
                          "one: name it with --matcher NAME (see `counterface plugins`)")
    settings = _MatchSettings(matcher, threshold, finder)
    thr = matching.threshold(settings)  # a bad matcher or threshold stops here, in one line
    keep, sims = [], []
    counts = {"checked": 0, "other_person": 0, "no_face": 0, "no_reference": 0}
    examples: dict[str, str] = {}
    refs: dict[Any, Any] = {}
    photos: dict[tuple, float | None] = {}
    for i, key in enumerate(study.keys):
        meta = metas[i]
        try:
            if references:
                spec = ("dir", str(meta.get(column) or study.politician[i]))
                if spec not in refs:
                    refs[spec] = matching.reference(settings, matching.references_for(references, spec[1]))
            else:
                value = meta.get("reference")
                if value in (None, ""):
                    raise ReferencePhotoError("no reference photo in the reference column")
                spec = ("col", str(value), str(study.base or ""))
                if spec not in refs:
                    refs[spec] = matching.reference(settings, matching.reference_paths(value, study.base))
        except CounterfaceError as exc:
            counts["no_reference"] += 1
            examples.setdefault("no_reference", f"{key!r}: {exc}")
            sims.append(None)
            continue
        ref = refs[spec]
        pair = study.pairs[i] if study.pairs else None
        m = finder.matrix(pair, study.image[i])
        if m is None:
            counts["no_face"] += 1
            examples.setdefault("no_face", repr(key))
            sims.append(None)
            continue
        ident = (str(Path(study.image[i]).resolve()), m.round(6).tobytes(), spec)
        if ident not in photos:
            face = _Face(m)
            emb = matching.embed(settings, read_image(study.image[i]), [face])[0]
            photos[ident] = float(emb @ ref.embedding)
        s = photos[ident]
        counts["checked"] += 1
        sims.append(s)
        if s >= thr:
            keep.append(i)
        else:
            counts["other_person"] += 1
            examples.setdefault("other_person", f"{key!r} (similarity {s:.3f} < {thr:g})")
    name = getattr(matching.matcher(settings), "name", None) or str(matcher.get("name") if isinstance(matcher, dict)
                                                                     else matcher)
    record = {"matcher": name, "threshold": thr, "source": f"--references {references} (column {column})"
              if references else "the articles' reference column", **counts, "kept": len(keep)}
    return IdentityCheck(keep=keep, similarity=sims, counts=counts, examples=examples, record=record)


class _Face:
    """The fields of an aligned face that :func:`counterface.matching.crops` reads."""

    def __init__(self, matrix: np.ndarray):
        from .features import CROP_SIZE

        self.matrix = matrix
        self.size = CROP_SIZE


def notes(res: IdentityCheck) -> list[str]:
    out = []
    c = res.counts
    if c["other_person"]:
        out.append(f"identity: {c['other_person']} articles show another person than their politician and are "
                   f"left out (e.g. {res.examples['other_person']})")
    if c["no_face"]:
        out.append(f"identity: {c['no_face']} articles have no face to check and are left out "
                   f"(e.g. {res.examples['no_face']})")
    if c["no_reference"]:
        out.append(f"identity: {c['no_reference']} articles have no usable reference photo and are left out "
                   f"(e.g. {res.examples['no_reference']})")
    return out
