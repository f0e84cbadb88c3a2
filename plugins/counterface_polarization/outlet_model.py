"""The reference outlet model g(y | Z, X, p): multinomial logistic regression (scikit-learn).

Design matrix, built from the training rows only (so every cross-fitting fold and bootstrap
replicate re-estimates it):

    [ onehot(p),  e x onehot(p),  x ]

``e`` is the image embedding, standardised (optionally reduced to ``components`` principal
components) and divided by sqrt(D), so that the whole image has unit variance and ``C`` means the
same for an 8 x 8 pixel embedding and a 2048-d ResNet; ``onehot(p)`` the politician;
``e x onehot(p)`` the image x politician interactions (each politician's own image coefficients);
``x`` the standardised covariates.

The interactions let the image's effect on the outlet differ by politician: an additive model
(``interactions=false``: ``e`` instead of ``e x onehot(p)``) has one image effect for everyone, so
one politician's effect is spread over all the others and rho_T is no longer politician-specific.
There is deliberately no shared image term next to the interactions: under the L2 penalty it would
pool part of one politician's effect into everyone's (measured on the synthetic study, strongly
regularised: the null politician then picked up about a fifth of the planted effect).
``by_politician=true`` fits one model per politician instead (no pooling of the image effect at
all). L2 regularisation (``C``) keeps the many interaction terms stable; ``class_weight='balanced'``
stops a large outlet from dominating the fit. Large designs (many politicians x a wide embedding)
are built sparse.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from scipy import sparse

import counterface


class LogisticOutletModel(counterface.OutletModel):
    """Multinomial logistic regression on [image, politician, image x politician, covariates].

    :param C: inverse L2 strength (scikit-learn's ``C``).
    :param interactions: image x politician interactions (the default; see the module docstring).
    :param by_politician: one model per politician instead of interactions.
    :param components: reduce the embedding to this many principal components (fitted on the
        training rows) before the regression; ``0`` keeps it whole.
    :param class_weight: ``balanced`` or ``none``.
    :param max_iter: L-BFGS iterations.
    """

    def __init__(self, *, C: float = 1.0, interactions: bool = True, by_politician: bool = False,
                 components: int = 0, class_weight: str = "balanced", max_iter: int = 200):
        self.C = float(C)
        if self.C <= 0:
            raise ValueError("C must be > 0")
        self.interactions = bool(interactions)
        self.by_politician = bool(by_politician)
        self.components = int(components)
        if class_weight not in ("balanced", "none"):
            raise ValueError("class_weight must be 'balanced' or 'none'")
        self.class_weight = class_weight
        self.max_iter = int(max_iter)

    def fit(self, features, outlets: Sequence[str], classes: Sequence[str], seed: int = 0) -> "FittedLogistic":
        outlets = np.asarray(outlets, dtype=object)
        if self.by_politician:
            parts = {}
            for p in sorted(set(features.politician.tolist())):
                rows = np.flatnonzero(features.politician == p)
                parts[p] = _fit_one(self, features.embedding[rows], None, features.covariates[rows], outlets[rows],
                                    classes, seed)
            return FittedLogistic(classes, parts, by_politician=True)
        return FittedLogistic(classes, {None: _fit_one(self, features.embedding, features.politician,
                                                       features.covariates, outlets, classes, seed)})


class _Part:
    """One fitted regression with its own scaling, PCA and politician levels."""

    def __init__(self, mean, scale, pca, politicians, cov_mean, cov_scale, lr, const, interactions):
        self.mean, self.scale, self.pca = mean, scale, pca
        self.politicians = politicians
        self.cov_mean, self.cov_scale = cov_mean, cov_scale
        self.lr, self.const, self.interactions = lr, const, interactions

    def design(self, emb, pol, cov):
        e = (np.asarray(emb, np.float64) - self.mean) / self.scale
        if self.pca is not None:
            e = self.pca.transform(e)
        e = e / np.sqrt(max(e.shape[1], 1))  # unit total variance: C means the same for any embedding size
        blocks = []
        if self.politicians is not None and pol is not None:
            onehot = (np.asarray(pol, dtype=object)[:, None] == np.asarray(self.politicians, dtype=object)[None, :])
            onehot = onehot.astype(np.float64)
            blocks.append(onehot)
            if self.interactions:  # each politician's own image coefficients, no shared image term
                blocks.append(_interactions(e, onehot))
            else:
                blocks.append(e)
        else:
            blocks.append(e)
        if cov is not None and cov.shape[1]:
            blocks.append((cov - self.cov_mean) / self.cov_scale)
        if any(sparse.issparse(b) for b in blocks):
            return sparse.hstack([sparse.csr_matrix(b) for b in blocks], format="csr")
        return np.concatenate(blocks, axis=1)


#: above this many cells the interaction block is built sparse (each row has one politician's D values)
DENSE_LIMIT = 4_000_000


def _interactions(e: np.ndarray, onehot: np.ndarray):
    """(N, P * D) block: row i holds e_i in the columns of its politician, zeros elsewhere (column
    p * D + j is feature j of politician p)."""
    n, d = e.shape
    p = onehot.shape[1]
    if n * d * p <= DENSE_LIMIT:
        return (onehot[:, :, None] * e[:, None, :]).reshape(n, -1)
    rows, pols = np.nonzero(onehot)
    cols = (pols[:, None] * d + np.arange(d)[None, :]).ravel()
    return sparse.csr_matrix((e[rows].ravel(), (np.repeat(rows, d), cols)), shape=(n, p * d))


def _fit_one(model: LogisticOutletModel, emb, pol, cov, y, classes, seed) -> _Part:
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    emb = np.asarray(emb, np.float64)
    mean = emb.mean(axis=0)
    scale = emb.std(axis=0)
    scale[scale < 1e-8] = 1.0
    pca = None
    if model.components and 0 < model.components < min(emb.shape):
        pca = PCA(n_components=model.components, random_state=seed).fit((emb - mean) / scale)
    politicians = sorted(set(pol.tolist())) if pol is not None else None
    cov_mean = cov.mean(axis=0) if cov.shape[1] else None
    cov_scale = cov.std(axis=0) if cov.shape[1] else None
    if cov_scale is not None:
        cov_scale[cov_scale < 1e-8] = 1.0
    part = _Part(mean, scale, pca, politicians, cov_mean, cov_scale, None, None, model.interactions)
    seen = sorted(set(y.tolist()))
    if len(seen) < 2:  # one outlet only: g is that outlet with certainty
        part.const = seen[0] if seen else None
        return part
    lr = LogisticRegression(C=model.C, class_weight=None if model.class_weight == "none" else "balanced",
                            max_iter=model.max_iter, random_state=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lr.fit(part.design(emb, pol, cov), y)
    part.lr = lr
    return part


class FittedLogistic:
    """``predict_proba(features)`` in the order of ``classes``; NaN for outlets the fit never saw."""

    def __init__(self, classes: Sequence[str], parts: dict, by_politician: bool = False):
        self.classes = list(classes)
        self.parts = parts
        self.by_politician = by_politician

    def _proba(self, part: _Part, emb, pol, cov) -> np.ndarray:
        out = np.full((len(emb), len(self.classes)), np.nan)
        if part.lr is None:
            if part.const is not None:
                out[:, self.classes.index(part.const)] = 1.0
            return out
        proba = part.lr.predict_proba(part.design(emb, pol, cov))
        for j, c in enumerate(part.lr.classes_):
            out[:, self.classes.index(c)] = proba[:, j]
        return out

    def predict_proba(self, features) -> np.ndarray:
        if not self.by_politician:
            return self._proba(self.parts[None], features.embedding, features.politician, features.covariates)
        out = np.full((len(features.politician), len(self.classes)), np.nan)
        for p, part in self.parts.items():
            rows = np.flatnonzero(features.politician == p)
            if len(rows):
                out[rows] = self._proba(part, features.embedding[rows], None, features.covariates[rows])
        return out
