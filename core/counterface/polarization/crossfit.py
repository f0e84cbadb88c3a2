"""K-fold cross-fitting of the outlet model: every article is scored by a model that did not see it.

The articles are split into K folds by *group* (the bootstrap's cluster: an article, or a
``--cluster`` unit, so that correlated articles and the copies a bootstrap draw makes of one article
never straddle a training and a scoring fold), stratified by outlet x politician so that every
training part sees every outlet. Fold k's articles are scored (their published image Z, and Z1, Z0)
by g fitted on the other K - 1 folds.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np

from ..errors import ConfigError
from .features import OutletFeatures

#: probabilities are clipped here before a log (a fitted model may round a tiny probability to 0)
EPS = 1e-12


def int_seed(*parts: int) -> int:
    """A 31-bit seed derived from ``parts`` (scikit-learn wants an int ``random_state``)."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)


def make_folds(strata: Sequence[str], groups: Sequence[str], k: int, seed: int) -> np.ndarray:
    """(N,) fold index in 0..k-1; rows of one group share a fold."""
    from sklearn.model_selection import StratifiedGroupKFold

    groups = np.asarray(groups, dtype=object)
    n_groups = len(set(groups.tolist()))
    if k < 2:
        raise ConfigError(f"--folds must be at least 2 (got {k})")
    if n_groups < k:
        raise ConfigError(f"{n_groups} articles/clusters cannot be split into {k} folds")
    _, g_codes = np.unique(groups.astype(str), return_inverse=True)
    _, s_codes = np.unique(np.asarray(strata).astype(str), return_inverse=True)
    folds = np.full(len(groups), -1)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # "the least populated class has only 1 member"
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=seed)
        for f, (_, test) in enumerate(splitter.split(np.zeros(len(groups)), s_codes, g_codes)):
            folds[test] = f
    return folds


def crossfit(model, train: OutletFeatures, outlets: Sequence[str], classes: Sequence[str], folds: np.ndarray,
             score: Sequence[OutletFeatures], seed: int = 0) -> list[np.ndarray]:
    """Out-of-fold probabilities: for each ``score`` set (aligned row by row with ``train``), an
    (N, len(classes)) array whose row i comes from g fitted on the rows with ``folds != folds[i]``,
    clipped to [EPS, 1] (a fitted model may round a tiny probability to 0)."""
    outlets = np.asarray(outlets, dtype=object)
    out = [np.full((len(train), len(classes)), np.nan) for _ in score]
    for f in np.unique(folds):
        test = np.flatnonzero(folds == f)
        predict = fit_fold(model, train.take(np.flatnonzero(folds != f)), outlets[folds != f], classes,
                           seed=int_seed(seed, int(f)))
        for arr, feats in zip(out, score):
            arr[test] = predict(feats.take(test))
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
