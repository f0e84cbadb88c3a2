"""K-fold cross-fitting of the outlet model: every article is scored by a model that did not see it.

The articles are split into K folds by *group* (the bootstrap's cluster: an article, or a
``--cluster`` unit, joined with every article that shares its image file's content, so that correlated articles and the copies a bootstrap draw makes of one article
never straddle a training and a scoring fold), stratified by outlet x politician so that every
training part sees every outlet. Fold k's articles are scored (their published image Z, and Z1, Z0)
by g fitted on the other K - 1 folds.
"""

from __future__ import annotations

from typing import Callable, Sequence, Tuple

import numpy as np

from ..errors import ConfigError
from .features import OutletFeatures

#: probabilities are clipped here before a log (a fitted model may round a tiny probability to 0)
EPS = 1e-12


def int_seed(*parts: int) -> int:
    """A 31-bit seed derived from ``parts`` (scikit-learn wants an int ``random_state``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def join_copies(cluster: Sequence[str], digests: Sequence[str]) -> tuple[np.ndarray, int]:
    """Clusters that hold copies together: articles whose published images have the same content
    digest join one cluster, together with every article of their clusters (connected components of
    "same cluster" and "same image"). Returns the new (N,) labels (each component is named after its
    smallest original label) and the number of duplicate articles (articles minus distinct images)."""
    cluster = [str(c) for c in cluster]
    parent: dict = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for c, d in zip(cluster, digests):
        a, b = find(("c", c)), find(("h", str(d)))
        if a != b:
            parent[max(a, b)] = min(a, b)
    names: dict = {}
    for c in cluster:
        root = find(("c", c))
        names[root] = min(names.get(root, c), c)
    labels = np.array([names[find(("c", c))] for c in cluster], dtype=object)
    return labels, len(cluster) - len(set(map(str, digests)))


def make_folds(strata: Sequence[str], groups: Sequence[str], k: int, seed: int) -> np.ndarray:
    """(N,) fold index in 0..k-1; rows of one group share a fold.

    Each group belongs to the stratum of its first row; the groups are shuffled, ordered by stratum
    (the strata in random order) and dealt to the folds in turn, so each stratum's groups spread
    evenly over the folds and every fold gets a group when there are at least k groups. (Vectorised:
    scikit-learn's StratifiedGroupKFold cost more than the fits themselves here.)"""
    if k < 2:
        raise ConfigError(f"--folds must be at least 2 (got {k})")
    groups = np.asarray(groups, dtype=object).astype(str)
    _, first, g_codes = np.unique(groups, return_index=True, return_inverse=True)
    n_groups = len(first)
    if n_groups < k:
        raise ConfigError(f"--folds {k}: {n_groups} articles/clusters cannot be split into {k} folds")
    _, s_codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)
    rng = np.random.default_rng(seed)
    g_stratum = s_codes[first]
    stratum_rank = rng.permutation(int(g_stratum.max()) + 1)[g_stratum]
    order = np.lexsort((rng.random(n_groups), stratum_rank))  # by stratum, shuffled within
    g_fold = np.empty(n_groups, int)
    g_fold[order] = np.arange(n_groups) % k
    return g_fold[g_codes]


#: fold_covariates(train_articles, score_articles) -> (X_train, X_score): extra covariate columns
#: fitted on the training articles only (e.g. topics of the titles), for both sets of articles
FoldCovariates = Callable[[np.ndarray, np.ndarray], Tuple[np.ndarray, np.ndarray]]


def _with(features: OutletFeatures, extra: np.ndarray) -> OutletFeatures:
    from dataclasses import replace

    return replace(features, covariates=np.concatenate([features.covariates, np.asarray(extra, np.float64)], axis=1))


def crossfit(model, train: OutletFeatures, outlets: Sequence[str], classes: Sequence[str], folds: np.ndarray,
             score: Sequence[OutletFeatures], seed: int = 0, fold_covariates: FoldCovariates | None = None,
             rows: np.ndarray | None = None) -> list[np.ndarray]:
    """Out-of-fold probabilities: for each ``score`` set (aligned row by row with ``train``), an
    (N, len(classes)) array whose row i comes from g fitted on the rows with ``folds != folds[i]``,
    clipped to [EPS, 1] (a fitted model may round a tiny probability to 0).

    ``fold_covariates`` adds covariate columns fitted inside each training fold: it is called with the
    article indices (``rows[...]``: the study's articles behind these rows, repeats included) of the
    training and the scoring rows, and its columns are appended to ``covariates`` (the reference model
    standardises and penalises them like the rest of X)."""
    outlets = np.asarray(outlets, dtype=object)
    rows = np.arange(len(train)) if rows is None else np.asarray(rows)
    out = [np.full((len(train), len(classes)), np.nan) for _ in score]
    for f in np.unique(folds):
        test = np.flatnonzero(folds == f)
        fit_rows = np.flatnonzero(folds != f)
        fit_feats = train.take(fit_rows)
        sets = [feats.take(test) for feats in score]
        if fold_covariates is not None:
            x_fit, x_test = fold_covariates(rows[fit_rows], rows[test])
            fit_feats = _with(fit_feats, x_fit)
            sets = [_with(feats, x_test) for feats in sets]
        predict = fit_fold(model, fit_feats, outlets[fit_rows], classes, seed=int_seed(seed, int(f)))
        for arr, feats in zip(out, sets):
            arr[test] = predict(feats)
    return [np.clip(arr, EPS, 1.0) for arr in out]  # a log-odds needs p > 0; NaN stays NaN


def fit_fold(model, train: OutletFeatures, outlets: Sequence[str], classes: Sequence[str], seed: int = 0):
    """Fit g (and the context covariates, :mod:`~counterface.polarization.covariates`) on the
    training rows; returns ``predict(features) -> (n, len(classes))`` probabilities."""
    ctx = train.context.fit() if train.context is not None else None
    fitted = model.fit(train.with_context(ctx), np.asarray(outlets, dtype=object), list(classes), seed=seed)

    def predict(feats: OutletFeatures) -> np.ndarray:
        return np.asarray(fitted.predict_proba(feats.with_context(ctx)), np.float64)

    return predict


def heldout_metrics(proba: np.ndarray, outlets: Sequence[str], classes: Sequence[str]) -> dict:
    """Accuracy and log-loss of the out-of-fold predictions of the published images, with chance
    levels: the majority outlet's share and the log-loss of uniform guessing, log K."""
    outlets = np.asarray(outlets, dtype=object)
    idx = np.array([list(classes).index(o) for o in outlets])
    ok = ~np.isnan(proba).any(axis=1)
    p = proba[ok]
    y = idx[ok]
    share = np.bincount(idx, minlength=len(classes)) / max(len(idx), 1)
    res = {"articles": int(ok.sum()), "accuracy": None, "log_loss": None, "balanced_accuracy": None,
           "chance_accuracy": float(share.max()) if len(idx) else None, "uniform_log_loss": float(np.log(len(classes)))}
    if len(y):
        pred = p.argmax(axis=1)
        res["accuracy"] = float((pred == y).mean())
        res["log_loss"] = float(-np.mean(np.log(np.clip(p[np.arange(len(y)), y], EPS, 1.0))))
        recalls = [float((pred[y == c] == c).mean()) for c in np.unique(y)]
        res["balanced_accuracy"] = float(np.mean(recalls))
    return res
