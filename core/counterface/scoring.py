"""Attribute scores of an edit: which scorer measures a direction's attribute, and the columns it fills.

A direction names its scorer (a registered component of kind ``scorer``); the first of these wins:

1. the direction's own ``scorer`` attribute: a registered scorer's name, or ``"none"`` for an
   attribute that must not be scored. A plugin's direction class sets it; a boundary file carries it
   as its ``scorer`` metadata (``counterface directions calibrate`` records the scorer it fitted on);
2. the default for the direction's ``attribute``: the scorer registered under the attribute's name
   (a plugin's ``register_scorers`` hook: ``register("glasses", GlassesScorer)``), else the one
   registered scorer whose class says ``attribute = "glasses"``;
3. none: the attribute gets no score columns and no score flags.

:func:`scorer_for` returns the scorer of one direction (for any check that wants "the direction's
scorer", e.g. a manipulation check); :func:`scored_attributes` the scorers of an edit.

Columns (:data:`SCORE_COLUMNS`), per scored attribute: ``score_z``, ``score_z1``, ``score_z0`` (the
scorer on the aligned crops of the photo and of the two outputs; empty where it cannot score one,
e.g. no face found), ``score_delta`` = ``score_z1 - score_z0`` (empty when either is) and ``scorer``
(its name). When several attributes are edited at once, every column is prefixed by the attribute:
``<attribute>_score_delta``.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Sequence

import numpy as np

from .errors import ConfigError

#: a direction's ``scorer`` value that turns scoring off for it
NO_SCORER = "none"
#: the output roles a scorer measures: the photo Z, pi_1(Z) and pi_0(Z)
SCORE_ROLES = ("z", "z1", "z0")
#: the per-attribute columns, unprefixed
SCORE_COLUMNS = tuple(f"score_{r}" for r in SCORE_ROLES) + ("score_delta", "scorer")
_SCORE_COLUMN = re.compile(r"^(?:(?P<attribute>.+)_)?(?P<column>score_z|score_z1|score_z0|score_delta|scorer)$")


def parse_score_column(name: str) -> tuple[str, str] | None:
    """(prefix, unprefixed column) of a score column (``'glasses_score_z1'`` -> ``('glasses_', 'score_z1')``,
    ``'score_delta'`` -> ``('', 'score_delta')``); None for any other column."""
    m = _SCORE_COLUMN.match(str(name))
    if m is None:
        return None
    attribute = m.group("attribute")
    return (f"{attribute}_" if attribute else ""), m.group("column")


def score_prefixes(columns: Iterable[str]) -> list[str]:
    """The prefixes ('' for a single edited attribute) of the score columns among ``columns``, in order."""
    out: dict[str, None] = {}
    for c in columns:
        p = parse_score_column(c)
        if p is not None:
            out.setdefault(p[0], None)
    return list(out)


def direction_of(direction: Any) -> Any:
    """A direction component: ``direction`` itself, or the one a ``--direction`` value names (a
    registered direction such as ``'smile'``, or a boundary file)."""
    if not isinstance(direction, (str, bytes)) and not hasattr(direction, "__fspath__"):
        return direction
    from .config import direction_section
    from .registry import create

    name, params = direction_section(str(direction))
    return create("direction", name, **params)


def scorer_name_for(direction: Any) -> str | None:
    """The name of the scorer that measures ``direction``'s attribute, or None (see the module doc).
    ``direction``: a direction component or a ``--direction`` value (:func:`direction_of`). An
    explicit ``scorer`` is returned as given (an unknown name fails when it is built)."""
    direction = direction_of(direction)
    explicit = getattr(direction, "scorer", None)
    if isinstance(explicit, str) and explicit.strip():
        explicit = explicit.strip()
        return None if explicit == NO_SCORER else explicit
    return default_scorer(str(getattr(direction, "attribute", "") or ""))


def default_scorer(attribute: str) -> str | None:
    """The scorer registered for ``attribute``: the one registered under its name, else the only one
    whose ``attribute`` is it; None when there is none (or several and none named after it)."""
    from . import registry

    if not attribute:
        return None
    table = registry.entries("scorer")
    if attribute in table:
        return attribute
    same = [name for name, e in table.items() if getattr(e.factory, "attribute", None) == attribute]
    return same[0] if len(same) == 1 else None


def create_scorer(name: str, device: str | None = None):
    """Build the scorer ``name`` (on ``device`` when its factory takes one)."""
    from .registry import check_params, create, entry

    params: dict[str, Any] = {}
    if device is not None:
        try:
            check_params(entry("scorer", name).factory, {"device": device}, "")
            params = {"device": device}
        except ConfigError:
            params = {}
    return create("scorer", name, **params)


def scorer_for(direction: Any, device: str | None = None):
    """The :class:`~counterface.Scorer` of ``direction``'s attribute, built, or None when the
    attribute has none. ``direction``: a direction component, a registered direction's name or a
    boundary file (``scorer_for("smile")``, ``scorer_for("glasses.safetensors")``). The public way
    for a check (e.g. a manipulation check) to score "the direction's attribute"."""
    name = scorer_name_for(direction)
    return None if name is None else create_scorer(name, device)


@dataclass
class ScoredAttribute:
    """One edited attribute and the scorer that measures it; ``prefix`` ('' or ``'<attribute>_'``)
    goes in front of every column name it fills."""

    attribute: str
    scorer_name: str
    scorer: Any
    prefix: str = ""

    def column(self, base: str) -> str:
        return f"{self.prefix}{base}"

    def measure(self, crops: Sequence[np.ndarray]) -> dict[str, Any]:
        """The score columns for the aligned crops ``[z, z1]`` or ``[z, z1, z0]`` (scored together)."""
        values = np.asarray(self.scorer.score(list(crops)), dtype=np.float64).reshape(-1)
        if values.size != len(crops):
            raise ConfigError(f"scorer {self.scorer_name!r} returned {values.size} scores for {len(crops)} images")
        scores = {role: (None if not math.isfinite(v) else float(v)) for role, v in zip(SCORE_ROLES, values)}
        out: dict[str, Any] = {self.column(f"score_{role}"): v for role, v in scores.items()}
        if "z0" in scores:
            z1, z0 = scores["z1"], scores["z0"]
            out[self.column("score_delta")] = None if z1 is None or z0 is None else z1 - z0
        out[self.column("scorer")] = self.scorer_name
        return out


def scored_attributes(directions: Sequence[Any], first_scorer: Any = None,
                      device: str | None = None) -> list[ScoredAttribute]:
    """The scored attributes of an edit of ``directions`` (direction components, the configured one
    first; each attribute once). ``first_scorer``: a built scorer chosen for the first direction (the
    pipeline's ``--scorer``), else each direction's own (:func:`scorer_name_for`). Columns are
    prefixed by the attribute when more than one attribute is edited."""
    attributes: dict[str, Any] = {}
    for i, d in enumerate(directions):
        attribute = str(getattr(d, "attribute", "") or f"direction{i}")
        attributes.setdefault(attribute, d)
    several = len(attributes) > 1
    out = []
    for i, (attribute, d) in enumerate(attributes.items()):
        prefix = f"{attribute}_" if several else ""
        if i == 0 and first_scorer is not None:
            out.append(ScoredAttribute(attribute, str(getattr(first_scorer, "name", "") or "scorer"), first_scorer, prefix))
            continue
        name = scorer_name_for(d)
        if name is not None:
            out.append(ScoredAttribute(attribute, name, create_scorer(name, device), prefix))
    return out


def pipeline_scorers(pipeline: Any) -> list[ScoredAttribute]:
    """The scored attributes of a :class:`~counterface.pipeline.Pipeline`'s edit: its directions, the
    configured ``scorer`` component (``--scorer``) measuring the first."""
    directions = [d for _, d in pipeline.directions()]
    configured = pipeline.component("scorer") if pipeline.has("scorer") else None
    return scored_attributes(directions, first_scorer=configured, device=getattr(pipeline, "device", None))
