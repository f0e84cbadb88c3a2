"""Overall visual polarization (OVP) per politician, from two independently trained outlet models.

For an article i and an outlet y, a model k's counterfactual log-ratio is

    r_k(i, y) = log g_k(y | Z1_i) - log g_k(y | Z0_i)

and R_k(p, y) is its mean over politician p's articles. OVP(p) is the square root of the covariance,
across outlets y, between the two models' R_A(p, .) and R_B(p, .):

    OVP(p)^2 = 1/(K-1) * sum_y (R_A(p,y) - mean_y R_A(p,.)) * (R_B(p,y) - mean_y R_B(p,.))

The spread of one model's R across outlets would carry that model's estimation noise squared; the
covariance of two models fitted on **disjoint** articles does not (their noises are independent), so
it estimates the variance of the true counterfactual log-ratios across outlets without that bias.

Fits: the articles are split into three parts (whole clusters, stratified by outlet x politician).
Each part is scored by model A fitted on one of the other two parts and model B fitted on the
other, so every article is scored by two models that never saw it nor each other's training data.
The estimate is negative when the models disagree more than they agree: OVP is then 0 (the
covariance is kept in polarization.json). The interval is a cluster bootstrap that redoes the split
and the six fits per replicate (``SeedSequence([seed, 4, b])``); endpoints are those of the
covariance, mapped by sqrt(max(., 0)).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field

import numpy as np

from ..errors import ConfigError
from . import crossfit as cf
from . import estimate as est

#: the parts the articles are split into (one scored, two train the two models)
PARTS = 3


@dataclass
class OVP:
    politicians: list[str]
    cov: np.ndarray  # (P,) covariance across outlets
    ovp: np.ndarray  # (P,) sqrt(max(cov, 0))
    ci_low: np.ndarray
    ci_high: np.ndarray
    n: np.ndarray  # (P,) articles
    replicates: int
    requested: int
    notes: list[str]
    flags: list[str] = field(default_factory=list)  # per politician: "" or why its interval is degenerate


def log_ratios(model, base, f1, f0, outlets, classes, parts: np.ndarray, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(r_A, r_B), each (N, K): the two models' log g(y|Z1) - log g(y|Z0), every article out of sample."""
    n, k = len(base), len(classes)
    ra, rb = np.full((n, k), np.nan), np.full((n, k), np.nan)
    for f in range(PARTS):
        test = np.flatnonzero(parts == f)
        others = [g for g in range(PARTS) if g != f]
        for out, g in zip((ra, rb), others):
            rows = np.flatnonzero(parts == g)
            if not len(test) or not len(rows):
                continue
            predict = cf.fit_fold(model, base.take(rows), outlets[rows], classes, seed=cf.int_seed(seed, f, g))
            with np.errstate(divide="ignore", invalid="ignore"):
                out[test] = np.log(np.clip(predict(f1.take(test)), cf.EPS, 1)) - \
                    np.log(np.clip(predict(f0.take(test)), cf.EPS, 1))
    return ra, rb


def covariances(ra: np.ndarray, rb: np.ndarray, politician: np.ndarray, politicians: list[str]) -> np.ndarray:
    """(P,) covariance across outlets of the two models' mean log-ratios per politician (NaN with
    fewer than two outlets defined)."""
    out = np.full(len(politicians), np.nan)
    for j, p in enumerate(politicians):
        rows = politician == p
        if not rows.any():
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an all-NaN column: NaN
            a, b = np.nanmean(ra[rows], axis=0), np.nanmean(rb[rows], axis=0)
        ok = np.isfinite(a) & np.isfinite(b)
        if ok.sum() < 2:
            continue
        a, b = a[ok], b[ok]
        out[j] = float(np.sum((a - a.mean()) * (b - b.mean())) / (ok.sum() - 1))
    return out


def _root(v: np.ndarray) -> np.ndarray:
    return np.where(np.isnan(v), np.nan, np.sqrt(np.maximum(np.nan_to_num(v), 0.0)))


def estimate(study, model, embeddings, *, bootstrap: int, level: float, seed: int, jobs: int = 1) -> OVP:
    """OVP per politician with its bootstrap interval (see the module docstring)."""
    from .features import OutletFeatures

    pol, outlet, cluster = study.politician, study.outlet, study.cluster
    politicians = sorted(set(pol.tolist()))
    notes: list[str] = []
    base, f1, f0 = (OutletFeatures(e, pol, study.covariates, study.covariate_context) for e in embeddings)
    strata = np.array([f"{o}\x1f{p}" for o, p in zip(outlet, pol)], dtype=object)
    n = np.array([int(np.sum(pol == p)) for p in politicians])
    outlets_seen = {p: len(set(outlet[pol == p].tolist())) for p in politicians}
    one = [p for p, k in outlets_seen.items() if k < 2]
    if one:
        notes.append(f"OVP: {len(one)} politicians are seen by one outlet only and get no OVP "
                     f"(e.g. {one[0]!r})")
    keep = np.array([outlets_seen[p] >= 2 for p in politicians])
    try:
        parts = cf.make_folds(strata, cluster, PARTS, cf.int_seed(seed, 4))
    except (ConfigError, ValueError) as exc:  # too few clusters (scikit-learn says ValueError)
        notes.append(f"OVP needs the articles split into {PARTS} parts (two independent fits and a scored "
                     f"part): {exc}; no OVP")
        nan = np.full(len(politicians), np.nan)
        why = f"no OVP: the articles cannot be split into {PARTS} parts"
        return OVP(politicians, nan, nan, nan, nan, n, 0, bootstrap, notes, [why] * len(politicians))
    ra, rb = log_ratios(model, base, f1, f0, outlet, study.classes, parts, seed)
    cov = np.where(keep, covariances(ra, rb, pol, politicians), np.nan)

    def boot(b: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 4, b])
        idx = est.resample_clusters(cluster, rng)
        try:
            pb = cf.make_folds(strata[idx], cluster[idx], PARTS, cf.int_seed(seed, 4, b))
        except (ConfigError, ValueError):  # too few clusters for the parts (scikit-learn: ValueError)
            return np.full(len(politicians), np.nan)
        qa, qb = log_ratios(model, base.take(idx), f1.take(idx), f0.take(idx), outlet[idx], study.classes, pb,
                            cf.int_seed(seed, 4, b))
        return covariances(qa, qb, pol[idx], politicians)

    reps = est.run_replicates(boot, bootstrap, jobs)
    done = int(np.sum(~np.isnan(reps).all(axis=1))) if len(reps) else 0
    if len(reps) and done:
        lo, hi = est.percentile_ci(reps, level)
    else:
        lo = hi = np.full(len(politicians), np.nan)
    lo, hi = np.where(keep, lo, np.nan), np.where(keep, hi, np.nan)
    if bootstrap and done < bootstrap:
        notes.append(f"OVP interval from {done} of {bootstrap} bootstrap replicates (the others could not be "
                     f"split into {PARTS} parts)")
    value, low, high = _root(cov), _root(lo), _root(hi)
    ok = (~np.isnan(reps)).sum(axis=0) if len(reps) else np.zeros(len(politicians), int)
    flags = est.interval_flags(value, low, high, ok, bootstrap)
    for j, p in enumerate(politicians):
        if not keep[j]:
            flags[j] = "seen by one outlet only"
        elif "zero-width" in flags[j] and hi[j] <= 0:
            flags[j] += " (the covariance's interval lies at or below 0)"
    return OVP(politicians, cov, value, low, high, n, done, bootstrap, notes, flags)
