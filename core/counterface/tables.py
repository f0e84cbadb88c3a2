"""Tables of result rows (one dict per pair, as batch and evaluate write them): the current version of
each row, identity flags below a threshold, and per-group summaries of the metric columns.
Re-exported by :mod:`counterface.metrics`, which measures the values."""

from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np


#: flag a pair whose similarity is below these (``identity*`` by ArcFace; ``identity_independent*``
#: by dlib, whose own same-person threshold is 0.92, see counterface_dlib_identity)
IDENTITY_THRESHOLDS = {"identity": 0.5, "identity_independent": 0.92}
#: the comparisons each threshold applies to: Z1 vs Z, Z0 vs Z, Z1 vs Z0
IDENTITY_SUFFIXES = ("", "_z0", "_z1z0")


def flag_rows(rows: Sequence[dict[str, Any]], thresholds: dict[str, float] | None = None) -> list[dict[str, Any]]:
    """The pairs (current rows, see :func:`current_rows`) with an identity similarity below its
    threshold: ``{key, job, face, alpha, z1, z0, below: {column: value}}`` in row order.
    ``thresholds``: family -> value (default :data:`IDENTITY_THRESHOLDS`; every comparison of a family,
    e.g. ``identity``, ``identity_z0`` and ``identity_z1z0``)."""
    thresholds = IDENTITY_THRESHOLDS if thresholds is None else thresholds
    flagged = []
    for r in current_rows(rows):
        below = {}
        for family, limit in thresholds.items():
            if limit is None:
                continue
            for suffix in IDENTITY_SUFFIXES:
                v = r.get(f"{family}{suffix}")
                if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v < float(limit):
                    below[f"{family}{suffix}"] = float(v)
        if below:
            flagged.append({**{k: r.get(k) for k in ("key", "job", "face", "alpha", "z1", "z0")}, "below": below})
    return flagged


# -- aggregates ----------------------------------------------------------------------------------------
#: per-row metric columns summarised by :func:`summarize` (when present)
SUMMARY_COLUMNS = ("identity", "identity_z0", "identity_z1z0", "identity_independent", "identity_independent_z0",
                   "identity_independent_z1z0", "psnr_outside", "lpips_outside", "unchanged_outside_blend",
                   "recon_mse", "recon_lpips")


#: result-row columns per edited or watched attribute (:mod:`counterface.counterfactual`)
ATTRIBUTE_COLUMN_PREFIXES = ("leakage_", "distance_before_", "distance_after_")


def summarize(rows: Sequence[dict[str, Any]], by: Sequence[str] = ("alpha",),
              columns: Sequence[str] = SUMMARY_COLUMNS) -> list[dict[str, Any]]:
    """Aggregate metric rows: one entry per group (``by`` columns), and for every metric column
    present its count, mean, standard deviation (population, ddof=0), median, 5th and 95th
    percentiles (linear interpolation; None values and NaN are left out and counted in ``missing``).

    Batch rows are made comparable first: of several versions of one photo's row under one
    configuration (same key, job, face and alpha, another sha256: the file was replaced and redone)
    only the last one counts, and rows of several configurations (``job``) are never pooled:
    ``job`` is then added in front of ``by``.

    With the default ``columns``, the per-attribute columns are summarised too: the operators'
    ``leakage_<a>``, ``distance_before_<a>``, ``distance_after_<a>`` and ``distance_after_<a>_z0``, and
    the attribute scores ``score_z``, ``score_z1``, ``score_z0``, ``score_delta`` (or
    ``<a>_score_*``, :mod:`counterface.scoring`).
    """
    from .scoring import parse_score_column

    rows = current_rows(rows)
    if columns is SUMMARY_COLUMNS:
        dynamic = sorted({k for r in rows for k in r if k.startswith(ATTRIBUTE_COLUMN_PREFIXES)
                          or (parse_score_column(k) or ("", "scorer"))[1] != "scorer"})
        columns = (*SUMMARY_COLUMNS, *dynamic)
    if "job" not in by and len({r.get("job") for r in rows}) > 1:
        by = ("job", *by)
    groups: dict[tuple, list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault(tuple(r.get(b) for b in by), []).append(r)
    out = []
    for gkey in sorted(groups, key=lambda k: tuple((v is None, str(v) if not isinstance(v, (int, float)) else v) for v in k)):
        grp = groups[gkey]
        entry: dict[str, Any] = {**dict(zip(by, gkey)), "rows": len(grp)}
        for c in columns:
            vals = [r.get(c) for r in grp if c in r]
            if not vals:
                continue
            x = np.array([float(v) for v in vals if isinstance(v, (int, float)) and not math.isnan(float(v))])
            stats: dict[str, Any] = {"n": int(x.size), "missing": len(vals) - int(x.size)}
            if x.size:
                stats.update(mean=float(x.mean()), std=float(x.std()), median=float(np.median(x)),
                             p05=float(np.percentile(x, 5)), p95=float(np.percentile(x, 95)))
            entry[c] = stats
        out.append(entry)
    return out


def current_rows(rows: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` without the superseded versions of a batch row: among rows with the same key, job,
    face and alpha but another ``sha256`` (a photo replaced and processed again), the last one in
    order wins (rows are read in the order they were appended). Rows without a ``key`` are kept."""
    last: dict[tuple, int] = {}
    for i, r in enumerate(rows):
        if r.get("key") is not None:
            last[(r.get("key"), r.get("job"), r.get("face"), r.get("alpha"))] = i
    return [r for i, r in enumerate(rows)
            if r.get("key") is None or last[(r.get("key"), r.get("job"), r.get("face"), r.get("alpha"))] == i]
