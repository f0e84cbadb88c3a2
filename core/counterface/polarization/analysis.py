"""The estimation of ``counterface polarization``: cross-fitted g, rho_T, bootstrap CI, placebo.

Two routes share everything after the probabilities:

* built in (``Study.image/z1/z0``): embed each image once, cross-fit the outlet model, score Z1 and
  Z0 out of fold. The bootstrap **refits g** (cross-fitting included) on every replicate, so the
  interval carries g's estimation noise as well as the sampling of articles. The default placebo
  (``outlets``) shuffles the outlet labels within each politician and refits too.
* ``--scores`` (``Study.p_z1/p_z0``): the researcher's probabilities are taken as given; the bootstrap
  resamples the articles' contributions (it cannot refit a model it does not have) and the placebo
  swaps Z1 and Z0 within pairs (``pairs``).

Seeds: replicate b of the bootstrap draws from ``SeedSequence([seed, 1, b])``, permutation r of the
placebo from ``[seed, 2, r]``, the group placebo from ``[seed, 3, r]``; the folds of the main fit use
``seed``. Same inputs, settings and seed give the same numbers, whatever ``jobs``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
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
    bootstrap: int = 200
    permutations: int = 100
    placebo: str = "auto"
    reference_outlet: str | None = None
    level: float = 0.95
    seed: int = 0
    jobs: int = 1


@dataclass
class Result:
    layout: est.Layout
    classes: list[str]
    values: np.ndarray
    counts: np.ndarray
    ci_low: np.ndarray
    ci_high: np.ndarray
    p_placebo: np.ndarray
    group_p: np.ndarray | None
    placebo: str
    contributions: np.ndarray  # (N, pairs)
    folds: np.ndarray | None
    heldout: dict | None
    replicates: dict[str, int] = field(default_factory=dict)
    settings: dict[str, Any] = field(default_factory=dict)


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


def analyse(study: Study, settings: Settings, *, model=None, embeddings: tuple[np.ndarray, ...] | None = None,
            progress: Callable[[str, int, int], None] | None = None) -> Result:
    """Estimate every rho and slant with its interval and placebo p-value.

    ``model`` (an :class:`~counterface.OutletModel`) and ``embeddings`` (published image, Z1, Z0: three
    (N, D) arrays) are needed for the built-in route; the ``--scores`` route uses ``study.p_z1/p_z0``.
    The many small fits run with one BLAS thread each (measured: threads only contend on problems this
    small); ``settings.jobs`` runs replicates in parallel instead.
    """
    from threadpoolctl import threadpool_limits

    with threadpool_limits(limits=1):
        return _analyse(study, settings, model=model, embeddings=embeddings, progress=progress)


def _analyse(study: Study, settings: Settings, *, model, embeddings, progress) -> Result:
    if settings.placebo not in PLACEBOS:
        raise ConfigError(f"--placebo must be one of {', '.join(PLACEBOS)}")
    if settings.bootstrap < 0 or settings.permutations < 0:
        raise ConfigError("--bootstrap and --permutations must be >= 0")
    if not 0 < settings.level < 1:
        raise ConfigError("--level must be between 0 and 1")
    builtin = study.p_z1 is None
    placebo = settings.placebo if settings.placebo != "auto" else ("outlets" if builtin else "pairs")
    if placebo == "outlets" and not builtin:
        raise ConfigError("--placebo outlets refits the outlet model, which --scores does not have; use pairs")
    layout = _layout(study, settings.reference_outlet)
    seed = int(settings.seed)
    pol, grp, outlet, cluster = study.politician, study.group, study.outlet, study.cluster
    strata = np.array([f"{o}\x1f{p}" for o, p in zip(outlet, pol)], dtype=object)
    tick = progress or (lambda stage, i, n: None)

    folds = heldout = None
    if builtin:
        if model is None or embeddings is None:
            raise ConfigError("the built-in route needs an outlet model and the embeddings")
        base, f1, f0 = (OutletFeatures(e, pol, study.covariates, study.covariate_context) for e in embeddings)
        folds = cf.make_folds(strata, cluster, settings.folds, cf.int_seed(seed, 0))
        p_obs, p1, p0 = cf.crossfit(model, base, outlet, study.classes, folds, [base, f1, f0], seed=seed)
        heldout = cf.heldout_metrics(p_obs, outlet, study.classes)
        heldout["folds"] = settings.folds
    else:
        p1, p0 = study.p_z1, study.p_z0
    values, counts = est.statistics(layout, p1, p0, pol, grp)
    contributions = est.contributions(p1, p0, layout.pairs)

    def boot(b: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 1, b])
        idx = est.resample_clusters(cluster, rng)
        if builtin:
            try:
                fb = cf.make_folds(strata[idx], cluster[idx], settings.folds, cf.int_seed(seed, 1, b))
            except ConfigError:
                return np.full(layout.size, np.nan)
            q1, q0 = cf.crossfit(model, base.take(idx), outlet[idx], study.classes, fb, [f1.take(idx), f0.take(idx)],
                                 seed=cf.int_seed(seed, 1, b))
        else:
            q1, q0 = p1[idx], p0[idx]
        tick("bootstrap", b, settings.bootstrap)
        return est.statistics(layout, q1, q0, pol[idx], grp[idx] if grp is not None else None)[0]

    def perm(r: int) -> np.ndarray:
        rng = np.random.default_rng([seed, 2, r])
        tick("placebo", r, settings.permutations)
        if placebo == "pairs":
            return est.statistics(layout, p1, p0, pol, grp, signs=est.cluster_signs(cluster, rng))[0]
        y = est.permute_within(outlet, pol, rng)
        q1, q0 = cf.crossfit(model, base, y, study.classes, folds, [f1, f0], seed=cf.int_seed(seed, 2, r))
        return est.statistics(layout, q1, q0, pol, grp)[0]

    reps = est.run_replicates(boot, settings.bootstrap, settings.jobs)
    if len(reps):
        lo, hi = est.percentile_ci(reps, settings.level)
    else:
        lo = hi = np.full(layout.size, np.nan)
    nulls = est.run_replicates(perm, settings.permutations, settings.jobs)
    p_placebo = est.permutation_p(values, nulls) if len(nulls) else np.full(layout.size, np.nan)

    group_p = None
    if layout.groups:
        mapping = _politician_groups(study)
        observed = est.group_contrasts(values, counts, mapping, layout)
        pols = list(mapping)
        labels = np.array([mapping[p] for p in pols], dtype=object)
        draws = []
        for r in range(settings.permutations):
            rng = np.random.default_rng([seed, 3, r])
            shuffled = dict(zip(pols, labels[rng.permutation(len(pols))]))
            draws.append(est.group_contrasts(values, counts, shuffled, layout))
        group_p = est.permutation_p(observed, np.stack(draws)) if draws else np.full(len(observed), np.nan)
    return Result(layout=layout, classes=study.classes, values=values, counts=counts, ci_low=lo, ci_high=hi,
                  p_placebo=p_placebo, group_p=group_p, placebo=placebo, contributions=contributions, folds=folds,
                  heldout=heldout,
                  replicates={"bootstrap": int(np.sum(~np.isnan(reps).all(axis=1))) if len(reps) else 0,
                              "bootstrap_requested": settings.bootstrap, "permutations": settings.permutations},
                  settings=asdict(settings) | {"placebo": placebo})
