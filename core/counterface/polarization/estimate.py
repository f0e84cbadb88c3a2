"""rho_T and the outlet slant from per-article log-odds differences; bootstrap and placebo.

Per article i (politician p, pair Z1, Z0) and outlet pair (y1, y2)::

    d_i(y1, y2) = [log g(y1|Z1) - log g(y2|Z1)] - [log g(y1|Z0) - log g(y2|Z0)]
    rho_T(p, y1, y2) = mean of d_i over p's articles
    slant(y) = mean of d_i(y, reference) over all articles

An article whose d is undefined (an outlet its scoring model never saw, a missing score) is left
out of that mean; ``n`` counts the articles used. Statistics are kept as one flat vector
(:class:`Layout`) so the bootstrap and the placebo treat every rho and slant alike.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np



def outlet_pairs(classes: Sequence[str], reference: str | None = None) -> list[tuple[int, int]]:
    """Index pairs (a, b): every pair a < b, or (y, reference) for every other outlet y."""
    k = len(classes)
    if reference is not None:
        r = list(classes).index(reference)
        return [(a, r) for a in range(k) if a != r]
    return [(a, b) for a in range(k) for b in range(a + 1, k)]


def contributions(p_z1: np.ndarray, p_z0: np.ndarray, pairs: Sequence[tuple[int, int]]) -> np.ndarray:
    """(N, len(pairs)) per-article log-odds differences d_i(y1, y2) (NaN where a probability is).

    Probabilities are used as given (the ``--scores`` route checks they are > 0); the built-in
    route clips its model's to [EPS, 1] first (:func:`counterface.polarization.crossfit.crossfit`)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        l1 = np.log(np.asarray(p_z1, np.float64))
        l0 = np.log(np.asarray(p_z0, np.float64))
    if not pairs:
        return np.zeros((len(p_z1), 0))
    a = np.array([p[0] for p in pairs])
    b = np.array([p[1] for p in pairs])
    return (l1[:, a] - l1[:, b]) - (l0[:, a] - l0[:, b])


@dataclass(frozen=True)
class Layout:
    """Which statistics there are: rho per (politician, pair), rho per (group, pair), slant per outlet."""

    politicians: list[str]
    pairs: list[tuple[int, int]]
    groups: list[str]
    outlets: int
    reference: int

    @property
    def size(self) -> int:
        return (len(self.politicians) + len(self.groups)) * len(self.pairs) + self.outlets


def _means(d: np.ndarray, labels: np.ndarray, levels: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """Per level: nan-mean of d's rows and the count of non-NaN rows."""
    means = np.full((len(levels), d.shape[1]), np.nan)
    counts = np.zeros((len(levels), d.shape[1]), int)
    for i, lv in enumerate(levels):
        rows = d[labels == lv]
        ok = ~np.isnan(rows)
        counts[i] = ok.sum(axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            means[i] = np.where(counts[i] > 0, np.nansum(rows, axis=0) / np.maximum(counts[i], 1), np.nan)
    return means, counts


def statistics(layout: Layout, p_z1: np.ndarray, p_z0: np.ndarray, politician: np.ndarray,
               group: np.ndarray | None = None, signs: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(values, counts), each of length ``layout.size``: rho by politician, rho by group, slant.

    ``signs`` (N,) of +-1 swaps Z1 and Z0 of the articles with -1 (the placebo's permutation)."""
    d = contributions(p_z1, p_z0, layout.pairs)
    ref_pairs = [(a, layout.reference) for a in range(layout.outlets)]
    dref = contributions(p_z1, p_z0, ref_pairs)
    if signs is not None:
        d = d * signs[:, None]
        dref = dref * signs[:, None]
    vals, cnts = [], []
    m, c = _means(d, politician, layout.politicians)
    vals.append(m.ravel())
    cnts.append(c.ravel())
    if layout.groups:
        m, c = _means(d, group, layout.groups)
        vals.append(m.ravel())
        cnts.append(c.ravel())
    m, c = _means(dref, np.zeros(len(dref), dtype=object), [0])
    vals.append(m.ravel())
    cnts.append(c.ravel())
    return np.concatenate(vals), np.concatenate(cnts)


def resample_clusters(cluster: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Row indices of a bootstrap draw: as many clusters as there are, drawn with replacement, each
    bringing all its rows."""
    levels, codes = np.unique(cluster.astype(str), return_inverse=True)
    members = [np.flatnonzero(codes == i) for i in range(len(levels))]
    draw = rng.integers(0, len(levels), len(levels))
    return np.concatenate([members[i] for i in draw])


def percentile_ci(replicates: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Percentile interval per column of a (B, S) replicate matrix (NaN replicates ignored)."""
    lo = (1 - level) / 2 * 100
    with np.errstate(invalid="ignore"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: NaN interval
            return np.nanpercentile(replicates, lo, axis=0), np.nanpercentile(replicates, 100 - lo, axis=0)


def normal_ci(values: np.ndarray, replicates: np.ndarray, level: float = 0.95) -> tuple[np.ndarray, np.ndarray]:
    """Per column: the estimate +- z * the bootstrap standard error (the replicates' standard
    deviation; NaN replicates ignored).

    Centred at the (bias-corrected, :func:`bias_corrected`) estimate, not at the replicates: the
    replicates carry g's small-sample bias once more than the estimate, so their location is
    shifted away from 0 (a percentile interval inherits that shift, twice the bias away from the
    corrected estimate); their spread is what the interval needs. The plain standard deviation, not a robust
    one: the estimator has heavy tails at small sizes, and the interval must carry them (measured:
    an interquartile-range standard error covered 0.90-0.91 at 150 articles per politician)."""
    from scipy.stats import norm

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # fewer than two replicates: NaN interval
        se = np.nanstd(replicates, axis=0, ddof=1)
    z = norm.ppf(0.5 + level / 2)
    return values - z * se, values + z * se


def bias_corrected(values: np.ndarray, replicates: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(corrected values, bias) per column: the bootstrap bias estimate, the mean of the replicates
    minus the estimate, is subtracted (Efron and Tibshirani 1993, ch. 10): 2 x estimate - mean of the
    replicates. A column without replicates keeps its value (bias NaN).

    Why: g is a logistic regression fitted on half of a politician's articles, and its unpenalised
    coefficient along the attribute is inflated away from 0 by O(1 / articles) (the small-sample bias of
    a maximum-likelihood logistic coefficient), so rho is too. A replicate refits g on a resample of
    the same size, so the replicates carry the same inflation once more: their mean minus the estimate
    estimates it (measured in docs/polarization.md: -25 % at 50 articles and +6 % at 200 before the
    correction, within the Monte-Carlo error after it)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN column: no correction
        bias = np.nanmean(replicates, axis=0) - values if len(replicates) else np.full(len(values), np.nan)
    return np.where(np.isfinite(bias), values - np.nan_to_num(bias), values), bias


def shuffled_groups(mapping: dict, permutations: int, seed: int, stream: int):
    """The placebo draws of a group comparison: ``mapping`` (politician -> group) with the group labels
    permuted among the politicians, one dict per permutation ``r``, drawn from ``[seed, stream, r]``."""
    pols = list(mapping)
    labels = np.array([mapping[p] for p in pols], dtype=object)
    for r in range(permutations):
        rng = np.random.default_rng([seed, stream, r])
        yield dict(zip(pols, labels[rng.permutation(len(pols))]))


def permutation_p(observed: np.ndarray, null: np.ndarray) -> np.ndarray:
    """Two-sided permutation p-value per column: (1 + #{|T*| >= |T|}) / (1 + R), R the non-NaN draws."""
    with np.errstate(invalid="ignore"):
        ok = ~np.isnan(null)
        hits = (np.abs(null) >= np.abs(observed)[None, :] - 1e-12) & ok
        p = (1 + hits.sum(axis=0)) / (1 + ok.sum(axis=0))
    p = p.astype(float)
    p[np.isnan(observed)] = np.nan
    return p


def permute_within(labels: np.ndarray, strata: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """``labels`` shuffled within each stratum (a uniformly random permutation inside each)."""
    out = labels.copy()
    for s in np.unique(strata.astype(str)):
        rows = np.flatnonzero(strata.astype(str) == s)
        out[rows] = labels[rows[rng.permutation(len(rows))]]
    return out


def permute_clusters_within(labels: np.ndarray, strata: np.ndarray, cluster: np.ndarray,
                            rng: np.random.Generator) -> np.ndarray:
    """``labels`` permuted by whole clusters within each stratum (politician): the clusters' label
    vectors change places among the stratum's clusters of the same size (shuffled inside too). With
    one article per cluster this is a uniformly random permutation inside each stratum."""
    out = labels.copy()
    s_str, c_str = strata.astype(str), cluster.astype(str)
    for s in np.unique(s_str):
        rows = np.flatnonzero(s_str == s)
        levels, codes, sizes = np.unique(c_str[rows], return_inverse=True, return_counts=True)
        single = rows[sizes[codes] == 1]  # one-article clusters: a plain shuffle
        out[single] = labels[single[rng.permutation(len(single))]]
        for size in np.unique(sizes[sizes > 1]):
            ids = np.flatnonzero(sizes == size)
            blocks = [rows[codes == i] for i in ids]
            for dst, src in zip(blocks, [blocks[i] for i in rng.permutation(len(blocks))]):
                out[dst] = labels[src][rng.permutation(size)]
    return out


def sequential_p(observed: np.ndarray, draw: Callable[[int], np.ndarray], permutations: int, hits: int,
                 jobs: int = 1, batch: int = 50) -> tuple[np.ndarray, int]:
    """Two-sided permutation p-values with Besag & Clifford's (1991) sequential stopping.

    Draws ``draw(0), draw(1), ...`` (each a null statistic vector) in batches of ``batch`` until every
    defined statistic has ``hits`` draws at least as extreme as observed, or ``permutations`` draws.
    Statistic j gets h / r_j when its h-th extreme draw was its r_j-th (defined) draw, else
    (1 + #extreme) / (1 + #draws). Both are valid p-values; the batches are fixed, so the result does
    not depend on ``jobs``. Returns (p, draws made)."""
    p = np.full(len(observed), np.nan)
    if permutations <= 0:
        return p, 0
    live = ~np.isnan(observed)
    rows: list[np.ndarray] = []
    while len(rows) < permutations:
        start = len(rows)
        chunk = run_replicates(lambda r: draw(start + r), min(batch, permutations - start), jobs)
        rows.extend(chunk)
        null = np.stack(rows)
        extreme = (np.abs(null) >= np.abs(observed)[None, :] - 1e-12) & ~np.isnan(null)
        if np.all(extreme[:, live].sum(axis=0) >= hits):
            break
    null = np.stack(rows)
    ok = ~np.isnan(null)
    extreme = (np.abs(null) >= np.abs(observed)[None, :] - 1e-12) & ok
    for j in np.flatnonzero(live):
        ext_j = extreme[ok[:, j], j]
        if ext_j.sum() >= hits:
            p[j] = hits / (np.flatnonzero(ext_j)[hits - 1] + 1)
        else:
            p[j] = (1 + ext_j.sum()) / (1 + len(ext_j))
    return p, len(rows)


#: an interval narrower than this (times max(1, |value|)) has zero width: every replicate gave the same
#: value up to the outlet model's solver tolerance (measured: widths of 1e-7 to 1e-6 when the
#: statistic is 0 by construction, e.g. an outlet pair g cannot tell apart)
ZERO_WIDTH = 1e-5


def interval_flags(values: np.ndarray, low: np.ndarray, high: np.ndarray, replicates: np.ndarray,
                   requested: int) -> list[str]:
    """Per statistic, why its interval is degenerate ("" when it is not): fewer replicates than
    asked, none at all, or zero width (:data:`ZERO_WIDTH`)."""
    flags = []
    for v, lo, hi, k in zip(values, low, high, replicates):
        why = []
        if requested > 0 and not np.isnan(v):
            if k == 0:
                why.append(f"no bootstrap replicate of {requested}")
            elif k < requested:
                why.append(f"interval from {int(k)} of {requested} replicates")
            if np.isfinite(lo) and np.isfinite(hi) and hi - lo <= ZERO_WIDTH * max(1.0, abs(float(v))):
                why.append("zero-width interval")
        flags.append("; ".join(why))
    return flags


def cluster_signs(cluster: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """+-1 per row, one fair coin per cluster: swaps Z1 and Z0 of whole clusters."""
    levels, codes = np.unique(cluster.astype(str), return_inverse=True)
    return rng.choice(np.array([-1.0, 1.0]), size=len(levels))[codes]


def group_contrasts(values: np.ndarray, counts: np.ndarray, pol_group: dict[str, str], layout: Layout) -> np.ndarray:
    """Per (group, pair): article-weighted rho of the group's politicians minus that of the others,
    from per-politician rho ``values`` and ``counts`` (the first block of a statistics vector)."""
    npairs = len(layout.pairs)
    rho = values[:len(layout.politicians) * npairs].reshape(len(layout.politicians), npairs)
    n = counts[:len(layout.politicians) * npairs].reshape(len(layout.politicians), npairs).astype(float)
    w = np.where(np.isnan(rho), 0.0, n)
    r = np.nan_to_num(rho)
    out = np.full((len(layout.groups), npairs), np.nan)
    labels = np.array([pol_group.get(p) for p in layout.politicians], dtype=object)
    for gi, g in enumerate(layout.groups):
        ins, outs = labels == g, labels != g
        with np.errstate(invalid="ignore", divide="ignore"):
            a = (w[ins] * r[ins]).sum(0) / w[ins].sum(0)
            b = (w[outs] * r[outs]).sum(0) / w[outs].sum(0)
        out[gi] = a - b
    return out.ravel()


def run_replicates(fn: Callable[[int], np.ndarray], count: int, jobs: int = 1) -> np.ndarray:
    """(count, S) matrix of ``fn(0..count-1)``; ``jobs`` > 1 runs them in joblib worker processes.
    Each replicate seeds itself from its index, so the result does not depend on ``jobs``."""
    if count <= 0:
        return np.zeros((0, 0))
    if jobs == 1:
        rows = [fn(i) for i in range(count)]
    else:
        from joblib import Parallel, delayed

        rows = Parallel(n_jobs=jobs)(delayed(fn)(i) for i in range(count))
    return np.stack(rows)
