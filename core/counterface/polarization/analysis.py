"""The estimation of ``counterface polarization``: cross-fitted g, rho_T, bootstrap CI, placebo.

Two routes share everything after the probabilities:

* built in (``Study.image/z1/z0``): embed each image once, cross-fit the outlet model, score Z1 and
  Z0 out of fold. **Repeated cross-fitting**: the estimate is the median, statistic by statistic,
  over ``splits`` random K-fold splits (as in double machine learning). The bootstrap **refits g**
  (cross-fitting, every split, included) on every replicate, so the interval carries g's estimation
  noise and the split noise as well as the sampling of articles; the replicates' mean minus the
  estimate, g's small-sample bias, is subtracted from the estimate (``bias_correction``). The default placebo (``outlets``)
  permutes the outlet labels of whole clusters within each politician and refits by the same rule.
* ``--scores`` (``Study.p_z1/p_z0``): the researcher's probabilities are taken as given; the bootstrap
  resamples the articles' contributions (it cannot refit a model it does not have) and the placebo
  swaps Z1 and Z0 within pairs (``pairs``); both are conditional on g.

Placebo draws stop early (Besag & Clifford 1991): statistic j's p-value is h / r_j when its h-th
draw at least as extreme as the observed value came at draw r_j (h = ``stop_hits``), else
(1 + hits) / (1 + R); the draws stop once every statistic has its h hits, or at R
(``permutations``). So p < 0.001 is reachable with the default R = 999 while an unremarkable study
stops after a few dozen draws.

Politicians with fewer than ``min_articles`` articles, or seen by one outlet only, get no rho (listed
in ``Result.dropped``); a (politician, outlet pair) whose politician has no article in one of the
two outlets gets an empty rho and a flag.

Seeds: split s of the main fit uses ``SeedSequence([seed, 0, s])``, of bootstrap replicate b
``[seed, 1, b, s]`` (its draw ``[seed, 1, b]``), of permutation r ``[seed, 2, r, s]`` (its draw
``[seed, 2, r]``), the group placebo ``[seed, 3, r]``. Same inputs, settings and seed give the same
numbers, whatever ``jobs``.
"""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass, field, replace
from typing import Any, Callable

import numpy as np

from ..errors import ConfigError
from . import crossfit as cf
from . import estimate as est
from .data import Study
from .features import OutletFeatures

PLACEBOS = ("auto", "outlets", "pairs")


@dataclass
class Settings:
    folds: int = 2
    splits: int = 3
    bootstrap: int = 200
    permutations: int = 999
    placebo: str = "auto"
    reference_outlet: str | None = None
    level: float = 0.95
    seed: int = 0
    jobs: int = 1
    min_articles: int = 4
    stop_hits: int = 20
    #: built-in route: subtract the bootstrap's estimate of the bias (mean of the replicates minus the
    #: estimate) from every rho and slant; the uncorrected values stay in ``Result.raw_values``
    bias_correction: bool = True


@dataclass
class Result:
    layout: est.Layout
    classes: list[str]
    values: np.ndarray
    counts: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_placebo: np.ndarray
    group_p: np.ndarray | None  # the group-versus-others contrast's p (per group x pair)
    placebo: str
    contributions: np.ndarray  # (N, pairs), mean over the splits
    folds: np.ndarray | None  # the folds of the first split
    heldout: dict | None
    replicates: dict[str, Any] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)
    flags: list[str] = field(default_factory=list)  # per statistic: "" or why its interval is degenerate
    contrast: dict[str, np.ndarray] | None = None  # value, ci_low, ci_high (per group x pair)
    dropped: dict[str, str] = field(default_factory=dict)  # politician -> why it gets no rho
    study: Study | None = None  # the articles estimated (after dropping)
    bootstrap_values: np.ndarray | None = None  # (B, statistics): the replicates' statistics
    kept: np.ndarray | None = None  # rows of the given study that ``study`` holds
    raw_values: np.ndarray | None = None  # the estimates before the bias correction (= values without one)
    bias: np.ndarray | None = None  # the bootstrap's bias estimate per statistic (NaN: not corrected)


def _layout(study: Study, reference: str | None) -> est.Layout:
    if reference is not None and reference not in study.classes:
        raise ConfigError(f"--reference-outlet {reference!r} is not an outlet of the articles "
                          f"({', '.join(study.classes)})")
    ref = study.classes.index(reference) if reference is not None else 0
    groups = sorted(set(study.group.tolist())) if study.group is not None else []
    return est.Layout(politicians=sorted(set(study.politician.tolist())),
                      pairs=est.outlet_pairs(study.classes, reference), groups=groups,
                      outlets=len(study.classes), reference=ref)


def _politician_groups(study: Study) -> dict[str, str]:
    mapping: dict[str, str] = {}
    for p, g in zip(study.politician.tolist(), study.group.tolist()):
        if mapping.setdefault(p, g) != g:
            raise ConfigError(f"--group: politician {p!r} has several labels ({mapping[p]!r}, {g!r}); "
                              "the group placebo permutes one label per politician")
    return mapping


def supported(study: Study, min_articles: int) -> dict[str, str]:
    """Politicians the data cannot give a rho: politician -> why (too few articles, one outlet only)."""
    out = {}
    for p in sorted(set(study.politician.tolist())):
        rows = study.politician == p
        outlets = sorted(set(study.outlet[rows].tolist()))
        if int(rows.sum()) < min_articles:
            out[p] = f"{int(rows.sum())} articles, fewer than the minimum {min_articles} (--min-articles)"
        elif len(outlets) < 2:
            out[p] = f"seen by one outlet only ({outlets[0]!r})"
    return out


def _restrict(study: Study, embeddings, min_articles: int):
    """Drop the politicians the data cannot support; the outlets left must be at least two."""
    study = replace(study)  # a shallow copy: the caller's study keeps its classes and scores
    dropped = supported(study, min_articles)
    keep = np.arange(len(study))
    if dropped:
        keep = np.flatnonzero(~np.isin(study.politician.astype(str), list(dropped)))
        if not len(keep):
            raise ConfigError(f"no politician has at least {min_articles} articles in at least two outlets "
                              f"(e.g. {next(iter(dropped))!r}: {next(iter(dropped.values()))}); no rho to estimate")
        study = study.subset(keep)
        if embeddings is not None:
            embeddings = tuple(e[keep] for e in embeddings)
    classes = sorted(set(study.outlet.tolist()))
    if study.p_z1 is not None:  # --scores: the outlets need scores too
        cols = [study.classes.index(c) for c in classes]
        scored = [c for c, j in zip(classes, cols) if np.isfinite(study.p_z1[:, j]).any()]
        if len(scored) < 2:
            raise ConfigError(f"the scores cover {len(scored)} outlet(s) of the articles "
                              f"({', '.join(map(repr, scored)) or 'none'}); rho compares at least two")
        cols = [study.classes.index(c) for c in scored]
        study.p_z1, study.p_z0, classes = study.p_z1[:, cols], study.p_z0[:, cols], scored
        if study.score_replicates is not None:
            study.score_replicates = study.score_replicates[..., cols]
    if len(classes) < 2:
        raise ConfigError(f"the articles left have one outlet ({classes[0]!r}); rho compares at least two")
    study.classes = classes
    return study, embeddings, dropped, keep


def _unsupported(study: Study, layout: est.Layout) -> dict[int, str]:
    """Statistic index -> why: a politician with no article in one outlet of the pair."""
    out = {}
    npairs = len(layout.pairs)
    for u, p in enumerate(layout.politicians):
        seen = set(study.outlet[study.politician == p].tolist())
        for j, (a, b) in enumerate(layout.pairs):
            lacking = [study.classes[k] for k in (a, b) if study.classes[k] not in seen]
            if lacking:
                out[u * npairs + j] = f"no article of {p} in {', '.join(lacking)}"
    return out


def analyse(study: Study, settings: Settings, *, model=None, embeddings: tuple[np.ndarray, ...] | None = None,
            progress: Callable[[str, int, int], None] | None = None,
            fold_covariates: cf.FoldCovariates | None = None) -> Result:
    """Estimate every rho and slant with its interval and placebo p-value.

    ``model`` (an :class:`~counterface.OutletModel`) and ``embeddings`` (published image, Z1, Z0: three
    (N, D) arrays) are needed for the built-in route; the ``--scores`` route uses ``study.p_z1/p_z0``.
    The many small fits run with one BLAS thread each (measured: threads only contend on problems this
    small); ``settings.jobs`` runs replicates in parallel instead. ``fold_covariates`` (see
    :func:`counterface.polarization.crossfit.crossfit`) adds covariates fitted inside every training
    fold, in the main fit, every replicate and every permutation; it receives article indices of the
    study as given (politicians without a rho dropped).
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _analyse(study, settings, model=model, embeddings=embeddings, progress=progress,
                        fold_covariates=fold_covariates)


def folds_message(k: int, articles: int, clusters: int) -> str:
    return (f"--folds {k}: the {articles} articles form {clusters} clusters, fewer than the folds "
            f"(use --folds {clusters} or fewer)" if clusters >= 2 else
            f"--folds {k}: the {articles} articles form {clusters} cluster; cross-fitting needs at least 2")


def check_settings(settings: Settings) -> None:
    """Refuse settings no study can use (one ConfigError line each)."""
    if settings.placebo not in PLACEBOS:
        raise ConfigError(f"--placebo must be one of {', '.join(PLACEBOS)}")
    if settings.bootstrap < 0 or settings.permutations < 0:
        raise ConfigError("--bootstrap and --permutations must be >= 0")
    if settings.splits < 1:
        raise ConfigError(f"--splits must be at least 1 (got {settings.splits})")
    if settings.folds < 2:
        raise ConfigError(f"--folds must be at least 2 (got {settings.folds})")
    if settings.min_articles < 1:
        raise ConfigError(f"--min-articles must be at least 1 (got {settings.min_articles})")
    if settings.stop_hits < 1:
        raise ConfigError("stop_hits must be at least 1")
    if not 0 < settings.level < 1:
        raise ConfigError("--level must be between 0 and 1")


def _median(rows: list[np.ndarray]) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # an all-NaN statistic stays NaN
        return np.nanmedian(np.stack(rows), axis=0)


def _analyse(study: Study, settings: Settings, *, model, embeddings, progress, fold_covariates=None) -> Result:
    check_settings(settings)
    builtin = study.p_z1 is None
    placebo = settings.placebo if settings.placebo != "auto" else ("outlets" if builtin else "pairs")
    if placebo == "outlets" and not builtin:
        raise ConfigError("--placebo outlets refits the outlet model, which --scores does not have; use pairs")
    if builtin and (model is None or embeddings is None):
        raise ConfigError("the built-in route needs an outlet model and the embeddings")
    study, embeddings, dropped, kept = _restrict(study, embeddings, settings.min_articles)  # kept: rows as given
    layout = _layout(study, settings.reference_outlet)
    seed, S, K = int(settings.seed), int(settings.splits), int(settings.folds)
    pol, grp, outlet, cluster = study.politician, study.group, study.outlet, study.cluster
    n_clusters = len(set(cluster.tolist()))
    if builtin and n_clusters < K:
        raise ConfigError(folds_message(K, len(study), n_clusters))
    strata = np.array([f"{o}\x1f{p}" for o, p in zip(outlet, pol)], dtype=object)
    tick = progress or (lambda stage, i, n: None)
    bad = _unsupported(study, layout)
    mask = np.zeros(layout.size, bool)
    mask[list(bad)] = True

    def stats(q1, q0, p_, g_):
        v, c = est.statistics(layout, q1, q0, p_, g_)
        v[mask] = np.nan
        return v, c

    folds = heldout = None
    if builtin:
        e1, e0 = (np.asarray(e, np.float64) for e in embeddings[1:])
        ctx = getattr(study, "covariate_context", None)  # covariates fitted inside each training fold
        base = OutletFeatures(embeddings[0], pol, study.covariates, ctx, e1 - e0)
        f1, f0 = (OutletFeatures(e, pol, study.covariates, ctx) for e in embeddings[1:])

        def fit_stats(idx, y, parts, score_obs=False):
            """(median values, last counts, per-split (p1, p0[, p_obs], folds)) over the S splits."""
            rows, out = [], []
            for s in range(S):
                fo = cf.make_folds(strata[idx], cluster[idx], K, cf.int_seed(*parts, s))
                sets = ([base.take(idx)] if score_obs else []) + [f1.take(idx), f0.take(idx)]
                probs = cf.crossfit(model, base.take(idx), y, study.classes, fo, sets, seed=cf.int_seed(*parts, s),
                                    fold_covariates=fold_covariates, rows=kept[idx])
                v, c = stats(probs[-2], probs[-1], pol[idx], grp[idx] if grp is not None else None)
                rows.append(v)
                out.append((probs, fo))
            return _median(rows), c, out

        everyone = np.arange(len(study))
        values, counts, per_split = fit_stats(everyone, outlet, (seed, 0), score_obs=True)
        folds = per_split[0][1]
        metrics = [cf.heldout_metrics(pr[0], outlet, study.classes) for pr, _ in per_split]
        heldout = {k: float(np.mean([m[k] for m in metrics])) if isinstance(v, float) else v
                   for k, v in metrics[0].items()}  # the mean over the splits
        heldout["folds"], heldout["splits"] = K, S
        contributions = np.mean([est.contributions(pr[1], pr[2], layout.pairs) for pr, _ in per_split], axis=0)
    else:
        p1, p0 = study.p_z1, study.p_z0
        folds = study.score_fold  # the researcher's folds, when given
        values, counts = stats(p1, p0, pol, grp)
        contributions = est.contributions(p1, p0, layout.pairs)

    def boot(b: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 1, b])
        idx = est.resample_clusters(cluster, rng)
        tick("bootstrap", b, settings.bootstrap)
        if builtin:
            try:
                v, c, _ = fit_stats(idx, outlet[idx], (seed, 1, b))
            except ConfigError:  # a draw with fewer clusters than folds: this replicate is lost (counted)
                return np.full(2 * layout.size, np.nan)
        elif study.score_replicates is not None:  # the researcher's refit b (cycling) on the resampled articles
            q = study.score_replicates[b % len(study.score_replicates)]
            v, c = stats(q[0][idx], q[1][idx], pol[idx], grp[idx] if grp is not None else None)
        else:
            v, c = stats(p1[idx], p0[idx], pol[idx], grp[idx] if grp is not None else None)
        return np.concatenate([v, c])

    def perm(r: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 2, r])
        tick("placebo", r, settings.permutations)
        if placebo == "pairs":
            v, _ = est.statistics(layout, p1, p0, pol, grp, signs=est.cluster_signs(cluster, rng))
            v[mask] = np.nan
            return v
        y = est.permute_clusters_within(outlet, pol, cluster, rng)
        return fit_stats(np.arange(len(study)), y, (seed, 2, r))[0]

    both = est.run_replicates(boot, settings.bootstrap, settings.jobs)
    reps = both[:, :layout.size] if len(both) else np.zeros((0, layout.size))
    rep_counts = both[:, layout.size:] if len(both) else np.zeros((0, layout.size))
    raw, bias = values, np.full(layout.size, np.nan)
    if builtin and settings.bias_correction and len(reps):  # g refitted per replicate: its bias is in them
        values, bias = est.bias_corrected(raw, reps)
    if len(reps):
        lo, hi = est.normal_ci(values, reps, settings.level)
    else:
        lo = hi = np.full(layout.size, np.nan)
    # the placebo compares the statistic as computed with its permutation draws, computed the same way
    p_placebo, drawn = est.sequential_p(raw, perm, settings.permutations, settings.stop_hits, settings.jobs)
    ok_reps = (~np.isnan(reps)).sum(axis=0) if len(reps) else np.zeros(layout.size, int)
    flags = est.interval_flags(values, lo, hi, ok_reps, settings.bootstrap)
    for i, why in bad.items():
        flags[i] = why

    group_p = contrast = None
    if layout.groups:
        mapping = _politician_groups(study)
        observed = est.group_contrasts(values, counts, mapping, layout)
        draws = [est.group_contrasts(values, counts, shuffled, layout)
                 for shuffled in est.shuffled_groups(mapping, settings.permutations, seed, 3)]
        group_p = est.permutation_p(observed, np.stack(draws)) if draws else np.full(len(observed), np.nan)
        if len(reps):
            boots = np.stack([est.group_contrasts(v, c, mapping, layout) for v, c in zip(reps, rep_counts)])
            c_lo, c_hi = est.normal_ci(observed, boots, settings.level)
        else:
            c_lo = c_hi = np.full(len(observed), np.nan)
        contrast = {"value": observed, "ci_low": c_lo, "ci_high": c_hi}
    return Result(layout=layout, classes=study.classes, values=values, counts=counts, ci_low=lo, ci_high=hi,
                  p_placebo=p_placebo, group_p=group_p, placebo=placebo, contributions=contributions, folds=folds,
                  heldout=heldout,
                  replicates={"bootstrap": int(np.sum(~np.isnan(reps).all(axis=1))) if len(reps) else 0,
                              "bootstrap_requested": settings.bootstrap, "permutations": settings.permutations,
                              "permutations_drawn": drawn, "splits": S if builtin else None},
                  settings=asdict(settings) | {"placebo": placebo}, flags=flags, contrast=contrast,
                  dropped=dropped, study=study, bootstrap_values=reps, kept=kept, raw_values=raw, bias=bias)
