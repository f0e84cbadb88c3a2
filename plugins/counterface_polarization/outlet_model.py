"""The reference outlet model g(y | Z, X, p): multinomial logistic regression (scikit-learn).

Design matrix, built from the training rows only (so every cross-fitting fold and bootstrap
replicate re-estimates it):

    [ onehot(p),  s x onehot(p),  r x onehot(p),  x ]

``e`` is the image embedding, standardised. ``u`` is the attribute's direction in that space,
estimated from the **pairs alone**: the mean of e(Z1) - e(Z0) over the training rows (no outlet
label enters it). ``s = e . u / |u|`` is the image's position along it and ``r`` the rest,
e - s u / |u|, reduced to its first ``components`` (64) principal components on the training rows
and divided by sqrt(their number), so that the rest has unit total variance and ``C`` means the
same for an 8 x 8 pixel embedding and a 2048-d ResNet; ``onehot(p)`` the politician; ``x`` the
standardised covariates.

**What the penalty touches.** The L2 penalty (``C``) applies to the rest ``r`` and to the
covariates ``x``. The politician intercepts and each politician's coefficient on ``s`` are left
(numerically) unpenalised: their columns are multiplied by ``UNPENALISED`` (= 10), so the L2 term on
the coefficient of the original (standardised) column is divided by 100: a shrinkage of about
1 / (1 + 100 C n_p / 4) for a politician with n_p training articles (below 0.1 % at n_p = 40, and
the same with larger factors, measured). rho_T = mean over p's articles of (beta_y1 - beta_y2) .
(x(Z1) - x(Z0)) is a linear functional of the coefficients; almost all of it runs through s, whose
coefficient is a low-dimensional, unpenalised maximum-likelihood estimate, so rho no longer moves
with ``C`` or with how many articles a politician has (measured: docs/polarization.md). The part
of the pair differences orthogonal to u (their deviation from the mean edit) still goes through
penalised coefficients and is shrunk; it averages to zero over the training pairs by construction.

``direction=none`` turns this off (every image column penalised: the estimator before 0.x, which
shrinks rho toward 0 by an amount that depends on C and on the politician's number of articles).

The interactions let the image's effect on the outlet differ by politician: an additive model
(``interactions=false``) has one image effect for everyone. There is deliberately no shared image
term next to the interactions: under the L2 penalty it would pool part of one politician's effect
into everyone's. ``by_politician=true`` fits one model per politician instead.
``class_weight='balanced'`` stops a large outlet from dominating the fit (it moves intercepts,
which cancel in rho). Large designs (many politicians x a wide embedding) are built sparse.
"""

from __future__ import annotations

import warnings
from typing import Sequence

import numpy as np
from scipy import sparse

import counterface

#: columns whose coefficients are left unpenalised are multiplied by this (L2 term / UNPENALISED**2)
UNPENALISED = 10.0
DIRECTIONS = ("pairs", "none")


class LogisticOutletModel(counterface.OutletModel):
    """Multinomial logistic regression on [politician, s x politician, rest x politician, covariates].

    :param C: inverse L2 strength (scikit-learn's ``C``) on the rest of the image and the covariates.
    :param direction: ``pairs`` (the attribute's direction, the mean pair difference of the training
        rows, gets an unpenalised coefficient per politician) or ``none`` (every image column penalised).
    :param interactions: image x politician interactions (the default; see the module docstring).
    :param by_politician: one model per politician instead of interactions.
    :param components: reduce the rest of the embedding (what is left after the attribute's
        direction) to this many principal components of the training rows; ``0`` keeps it whole.
        The default, 64, keeps each fit small (Newton's method) for any embedding size.
    :param class_weight: ``balanced`` or ``none``.
    :param max_iter: L-BFGS iterations.
    """

    def __init__(self, *, C: float = 1.0, direction: str = "pairs", interactions: bool = True,
                 by_politician: bool = False, components: int = 64, class_weight: str = "balanced",
                 max_iter: int = 1000):
        self.C = float(C)
        if not self.C > 0:
            raise ValueError("C must be > 0")
        if direction not in DIRECTIONS:
            raise ValueError(f"direction must be one of {', '.join(DIRECTIONS)}")
        self.direction = direction
        self.interactions = bool(interactions)
        self.by_politician = bool(by_politician)
        self.components = int(components)
        if class_weight not in ("balanced", "none"):
            raise ValueError("class_weight must be 'balanced' or 'none'")
        self.class_weight = class_weight
        self.max_iter = int(max_iter)

    def fit(self, features, outlets: Sequence[str], classes: Sequence[str], seed: int = 0) -> "FittedLogistic":
        outlets = np.asarray(outlets, dtype=object)
        delta = getattr(features, "delta", None) if self.direction == "pairs" else None
        if self.by_politician:
            parts = {}
            for p in sorted(set(features.politician.tolist())):
                rows = np.flatnonzero(features.politician == p)
                parts[p] = _fit_one(self, features.embedding[rows], None, features.covariates[rows], outlets[rows],
                                    classes, seed, None if delta is None else delta[rows])
            return FittedLogistic(classes, parts, by_politician=True)
        return FittedLogistic(classes, {None: _fit_one(self, features.embedding, features.politician,
                                                       features.covariates, outlets, classes, seed, delta)})


class _Part:
    """One fitted regression with its own scaling, PCA, direction and politician levels."""

    def __init__(self, mean, scale, pca, politicians, cov_mean, cov_scale, interactions):
        self.mean, self.scale, self.pca = mean, scale, pca
        self.politicians = politicians
        self.cov_mean, self.cov_scale = cov_mean, cov_scale
        self.interactions = interactions
        self.direction = None  # unit vector u in the standardised space, or None
        self.s_scale = 1.0
        self.lr = None
        self.const = None

    def standardise(self, emb) -> np.ndarray:
        return (np.asarray(emb, np.float64) - self.mean) / self.scale

    def split(self, emb) -> tuple[np.ndarray | None, np.ndarray]:
        """(s, rest): the position along the attribute's direction (None without one) and the rest,
        reduced to the principal components of the training rows' rest when ``components`` asks."""
        e = self.standardise(emb)
        s = None
        if self.direction is not None:
            s = e @ self.direction
            e = e - s[:, None] * self.direction[None, :]
        return s, (self.pca.transform(e) if self.pca is not None else e)

    def design(self, emb, pol, cov):
        s, rest = self.split(emb)
        image = []  # (columns, penalised?)
        if s is not None:
            image.append((s[:, None] / self.s_scale * UNPENALISED, False))
        image.append((rest / np.sqrt(max(rest.shape[1], 1)), True))  # unit total variance: C means the same for any D
        blocks = []
        if self.politicians is not None and pol is not None:
            onehot = (np.asarray(pol, dtype=object)[:, None] == np.asarray(self.politicians, dtype=object)[None, :])
            onehot = onehot.astype(np.float64)
            blocks.append(onehot * UNPENALISED)  # politician intercepts, unpenalised
            for cols, _ in image:
                # each politician's own image coefficients, no shared image term
                blocks.append(_interactions(cols, onehot) if self.interactions else cols)
        else:
            blocks.extend(cols for cols, _ in image)
        if cov is not None and cov.shape[1]:
            blocks.append((cov - self.cov_mean) / self.cov_scale)
        if any(sparse.issparse(b) for b in blocks):
            return sparse.hstack([sparse.csr_matrix(b) for b in blocks], format="csr")
        return np.concatenate(blocks, axis=1)


#: designs with at most this many coefficients per class are fitted by Newton's method (newton-cholesky)
NEWTON_LIMIT = 1200
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


def _fit_one(model: LogisticOutletModel, emb, pol, cov, y, classes, seed, delta=None) -> _Part:
    from sklearn.decomposition import PCA
    from sklearn.exceptions import ConvergenceWarning
    from sklearn.linear_model import LogisticRegression

    emb = np.asarray(emb, np.float64)
    mean = emb.mean(axis=0)
    scale = emb.std(axis=0)
    scale[scale < 1e-8] = 1.0
    politicians = sorted(set(pol.tolist())) if pol is not None else None
    cov_mean = cov.mean(axis=0) if cov.shape[1] else None
    cov_scale = cov.std(axis=0) if cov.shape[1] else None
    if cov_scale is not None:
        cov_scale[cov_scale < 1e-8] = 1.0
    part = _Part(mean, scale, None, politicians, cov_mean, cov_scale, model.interactions)
    if delta is not None and len(delta):
        # the attribute's direction from the pairs alone: the mean standardised pair difference
        u = np.nanmean(np.asarray(delta, np.float64) / scale, axis=0)
        norm = float(np.linalg.norm(u))
        if np.isfinite(norm) and norm > 1e-12:
            part.direction = u / norm
            s = part.standardise(emb) @ part.direction
            part.s_scale = float(s.std()) if s.std() > 1e-12 else 1.0
    if model.components and 0 < model.components < min(emb.shape):  # the rest only: u stays exact
        part.pca = PCA(n_components=model.components, random_state=seed).fit(part.split(emb)[1])
    seen = sorted(set(y.tolist()))
    if len(seen) < 2:  # one outlet only: g is that outlet with certainty
        part.const = seen[0] if seen else None
        return part
    X = part.design(emb, pol, cov)
    # Newton's method is insensitive to the scaled columns and fast on small dense designs; L-BFGS otherwise
    small = not sparse.issparse(X) and X.shape[1] * max(len(seen) - 1, 1) <= NEWTON_LIMIT
    lr = LogisticRegression(C=model.C, class_weight=None if model.class_weight == "none" else "balanced",
                            max_iter=model.max_iter, random_state=seed, solver="newton-cholesky" if small else "lbfgs")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        lr.fit(X, y)
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
