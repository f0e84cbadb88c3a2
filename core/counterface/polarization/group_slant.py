"""A group's slant per outlet (with ``--group party``: the authors' conservative visual slant, CVS).

With d_i(y) = d_i(y, reference), an article's log-odds difference of outlet y against the reference
outlet (the slant's contribution), the slant of group G's politicians at outlet y is

    group_slant(G, y) = mean of d_i(y) over G's articles  -  mean of d_i(y) over the other articles

With two groups (party R and D) the R row is R minus D: the authors' CVS, outlet by outlet.

* Interval: a cluster bootstrap; on the built-in route each replicate **refits g** with the whole
  cross-fitting (``SeedSequence([seed, 5, b])``), as rho's interval does; with ``--scores`` it
  resamples the given contributions.
* Placebo: the group labels permuted among politicians (one label per politician,
  ``SeedSequence([seed, 6, r])``); g does not see the labels, so no refit is needed. Two-sided
  permutation p-value per row.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass

import numpy as np

from ..errors import ConfigError
from . import crossfit as cf
from . import estimate as est


@dataclass
class GroupSlant:
    groups: list[str]
    classes: list[str]
    reference: int
    values: np.ndarray  # (G, K)
    counts: np.ndarray  # (G, K)
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_placebo: np.ndarray
    replicates: int
    flags: np.ndarray | None = None  # (G, K) object: "" or why the interval is degenerate (never the reference)


def reference_contributions(p1: np.ndarray, p0: np.ndarray, reference: int) -> np.ndarray:
    """(N, K) d_i(y, reference) for every outlet y (0 in the reference's own column)."""
    k = p1.shape[1]
    return est.contributions(p1, p0, [(y, reference) for y in range(k)])


def from_pairs(contributions: np.ndarray, pairs, outlets: int, reference: int) -> np.ndarray:
    """(N, K) d_i(y, reference) recovered from contributions of outlet ``pairs`` (d(a, b) = -d(b, a))."""
    out = np.full((len(contributions), outlets), np.nan)
    out[:, reference] = 0.0
    for j, (a, b) in enumerate(pairs):
        if b == reference:
            out[:, a] = contributions[:, j]
        elif a == reference:
            out[:, b] = -contributions[:, j]
    return out


def values(d: np.ndarray, labels: np.ndarray, groups: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """(G, K) group minus others mean of d, and (G, K) the group's article counts."""
    vals = np.full((len(groups), d.shape[1]), np.nan)
    counts = np.zeros((len(groups), d.shape[1]), int)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an empty group: NaN
        for g, name in enumerate(groups):
            ins = labels == name
            counts[g] = np.sum(~np.isnan(d[ins]), axis=0)
            vals[g] = np.nanmean(d[ins], axis=0) - np.nanmean(d[~ins], axis=0)
    return vals, counts


def _labels(study) -> tuple[dict[str, str], np.ndarray]:
    mapping: dict[str, str] = {}
    for p, g in zip(study.politician.tolist(), study.group.tolist()):
        if mapping.setdefault(p, g) != g:
            raise ConfigError(f"--group: politician {p!r} has several labels ({mapping[p]!r}, {g!r}); "
                              "the group placebo permutes one label per politician")
    return mapping, study.group


def estimate(study, res, *, settings, model=None, embeddings=None) -> GroupSlant | None:
    """Group slant per outlet with interval and placebo; None without ``--group``."""
    if study.group is None:
        return None
    from .features import OutletFeatures

    mapping, labels = _labels(study)
    groups = sorted(set(labels.tolist()))
    k, ref = len(study.classes), res.layout.reference
    d = from_pairs(res.contributions, res.layout.pairs, k, ref)
    vals, counts = values(d, labels, groups)
    seed = int(settings.seed)
    pol, outlet, cluster = study.politician, study.outlet, study.cluster
    builtin = study.p_z1 is None
    if builtin:
        base, f1, f0 = (OutletFeatures(e, pol, study.covariates, study.covariate_context) for e in embeddings)
        strata = np.array([f"{o}\x1f{p}" for o, p in zip(outlet, pol)], dtype=object)

    def boot(b: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 5, b])
        idx = est.resample_clusters(cluster, rng)
        if builtin:
            try:
                folds = cf.make_folds(strata[idx], cluster[idx], settings.folds, cf.int_seed(seed, 5, b))
            except (ConfigError, ValueError):  # too few clusters for the parts (scikit-learn: ValueError)
                return np.full(len(groups) * k, np.nan)
            q1, q0 = cf.crossfit(model, base.take(idx), outlet[idx], study.classes, folds,
                                 [f1.take(idx), f0.take(idx)], seed=cf.int_seed(seed, 5, b))
            db = reference_contributions(q1, q0, ref)
        else:
            db = d[idx]
        return values(db, labels[idx], groups)[0].ravel()

    reps = est.run_replicates(boot, settings.bootstrap, settings.jobs)
    done = int(np.sum(~np.isnan(reps).all(axis=1))) if len(reps) else 0
    if done:
        lo, hi = (x.reshape(len(groups), k) for x in est.percentile_ci(reps, settings.level))
    else:
        lo = hi = np.full((len(groups), k), np.nan)
    draws = [values(d, np.array([shuffled[p] for p in pol.tolist()], dtype=object), groups)[0].ravel()
             for shuffled in est.shuffled_groups(mapping, settings.permutations, seed, 6)]
    p = est.permutation_p(vals.ravel(), np.stack(draws)).reshape(len(groups), k) if draws \
        else np.full((len(groups), k), np.nan)
    p[:, ref] = np.nan
    ok = (~np.isnan(reps)).sum(axis=0) if len(reps) else np.zeros(len(groups) * k, int)
    flags = np.array(est.interval_flags(vals.ravel(), lo.ravel(), hi.ravel(), ok, settings.bootstrap),
                     dtype=object).reshape(len(groups), k)
    flags[:, ref] = ""  # the reference's slant is 0 by definition
    return GroupSlant(groups=groups, classes=list(study.classes), reference=ref, values=vals, counts=counts,
                      ci_low=lo, ci_high=hi, p_placebo=p, replicates=done, flags=flags)
