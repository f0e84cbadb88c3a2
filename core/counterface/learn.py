"""Fitting attribute boundaries from labelled latents (the InterFaceGAN recipe, with scikit-learn).

Input: latent rows ``x`` (N, w_dim) (for W+ latents, the mean of the chosen rows: see below) and
binary labels ``y`` (N,) (1 = attribute on). Output: a :class:`~counterface.boundary.Boundary` whose
signed distance ``n . w + b`` is positive on the "on" side (geometry in :mod:`counterface.boundary`).

Shared normal, not per-row fits: W+ latents from an encoder have strongly correlated rows, and a
per-row fit multiplies the parameters by ``num_ws`` for the same number of examples (18 x 512 from a
few hundred photos overfits); the published InterFaceGAN directions are shared too. The fit therefore
sees the mean of the chosen rows (``--layers``), and the learned normal and intercept apply to each of
those rows alike, so a row's distance and the mean row's distance agree.

The fit is a linear SVM (``LinearSVC``) or a logistic regression on centred latents divided by one
global scale (a single scalar, so the geometry of W is kept: no per-feature scaling). Accuracy is
k-fold stratified cross-validated on the same pipeline. Conditioning (``others``) projects the
latents onto the orthogonal complement of the other normals before the fit and projects the normal
again afterwards (:func:`counterface.boundary.project_out`), so the result is orthogonal to every
other normal to float precision.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from .errors import ConfigError

METHODS = ("svm", "logistic", "mlp")
#: the fewest examples of each class a fit accepts by default
MIN_PER_CLASS = 10
#: the trimmed refit drops examples on the wrong side by more than this times the median |distance|
TRIM = 0.5

_TRUE = {"1", "true", "yes", "y", "t", "on"}
_FALSE = {"0", "false", "no", "n", "f", "off"}


# -- labels ----------------------------------------------------------------------------------------
def parse_label(value: Any) -> float | None:
    """A label cell as a number: booleans and 0/1 words -> 1.0/0.0, numbers as they are, empty -> None.

    Raises ConfigError for anything else."""
    if value is None:
        return None
    if isinstance(value, bool):
        return float(value)
    if isinstance(value, (int, float, np.integer, np.floating)):
        v = float(value)
        return None if math.isnan(v) else v
    text = str(value).strip().lower()
    if text in ("", "nan", "na", "none", "null"):
        return None
    if text in _TRUE:
        return 1.0
    if text in _FALSE:
        return 0.0
    try:
        v = float(text)
    except ValueError:
        raise ConfigError(f"label {value!r} is not 0/1, true/false or a number") from None
    return None if math.isnan(v) else v


def binarize(values: np.ndarray, threshold: float | None = None, keep_extremes: float | None = None
             ) -> tuple[np.ndarray, np.ndarray]:
    """(kept indices, 0/1 labels) from label values (NaN = unlabelled, dropped).

    * 0/1 (or -1/+1) values without options: the labels themselves.
    * ``threshold``: value > threshold is on.
    * ``keep_extremes`` f in (0, 0.5]: the InterFaceGAN recipe for continuous scores: the f * N highest
      scores are on, the f * N lowest off, the middle is dropped (with ``threshold`` too, a kept
      example must also lie on its side of the threshold).
    """
    v = np.asarray(values, dtype=np.float64)
    idx = np.flatnonzero(np.isfinite(v))
    vv = v[idx]
    if keep_extremes is not None:
        f = float(keep_extremes)
        if not 0 < f <= 0.5:
            raise ConfigError(f"--keep-extremes must be a fraction in (0, 0.5], got {keep_extremes}")
        k = int(math.floor(f * len(vv)))
        order = np.argsort(vv, kind="stable")
        lo, hi = order[:k], order[len(vv) - k:] if k else order[:0]
        if threshold is not None:
            lo, hi = lo[vv[lo] <= threshold], hi[vv[hi] > threshold]
        sel = np.concatenate([lo, hi])
        labels = np.concatenate([np.zeros(len(lo), np.int64), np.ones(len(hi), np.int64)])
        order = np.argsort(idx[sel], kind="stable")
        return idx[sel][order], labels[order]
    if threshold is not None:
        return idx, (vv > float(threshold)).astype(np.int64)
    if np.isin(vv, (-1.0, 1.0)).all() and (vv == -1.0).any():  # the SVM convention: -1 off, +1 on
        return idx, (vv > 0).astype(np.int64)
    if not np.isin(vv, (0.0, 1.0)).all():
        raise ConfigError("labels are numeric scores, not 0/1: give --threshold T (on = score > T) "
                          "or --keep-extremes FRACTION")
    return idx, vv.astype(np.int64)


def check_classes(y: np.ndarray, min_per_class: int = MIN_PER_CLASS, what: str = "examples") -> tuple[int, int]:
    """(n_positive, n_negative); ConfigError for a single class or fewer than ``min_per_class`` of one."""
    y = np.asarray(y)
    pos, neg = int((y == 1).sum()), int((y == 0).sum())
    if pos == 0 or neg == 0:
        which = "on (1)" if neg == 0 else "off (0)"
        raise ConfigError(f"all {len(y)} {what} are {which}: a boundary needs both classes")
    if min(pos, neg) < min_per_class:
        raise ConfigError(f"too few {what}: {pos} on and {neg} off; need at least {min_per_class} of each class")
    return pos, neg


# -- fitting ---------------------------------------------------------------------------------------
@dataclass
class Fit:
    """A fitted hyperplane: unit ``normal`` (w_dim,), ``intercept``, cross-validated ``accuracy``
    (mean over folds) and its ``accuracy_sd``, training ``train_accuracy``, ``folds``."""

    normal: np.ndarray
    intercept: float
    accuracy: float | None
    accuracy_sd: float | None
    train_accuracy: float
    folds: int


def _orthonormal(others: Sequence[np.ndarray], dim: int) -> np.ndarray:
    """(dim, k) orthonormal basis of the others' span (k may be 0)."""
    if not others:
        return np.zeros((dim, 0))
    a = np.stack([np.asarray(o, np.float64).reshape(-1) for o in others], axis=1)
    if a.shape[0] != dim:
        raise ConfigError(f"cannot condition a {dim}-dimensional boundary on a {a.shape[0]}-dimensional one")
    q, r = np.linalg.qr(a)
    d = np.abs(np.diag(r))
    return q[:, d > 1e-10 * max(1.0, float(d.max()))]


def _estimator(method: str, C: float, seed: int):
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    if method == "svm":
        return LinearSVC(C=C, dual="auto", max_iter=20000, random_state=seed)
    if method == "logistic":
        return LogisticRegression(C=C, max_iter=5000)
    raise ConfigError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")



def _examples(x, y):
    """(latents as float64 (N, d), labels as int64 (N,)), checked: one shape, finite numbers."""
    x = np.asarray(x, np.float64)
    y = np.asarray(y).astype(np.int64)
    if x.ndim != 2 or len(x) != len(y):
        raise ConfigError(f"latents of shape {x.shape} do not match {len(y)} labels")
    if not np.isfinite(x).all():
        raise ConfigError("latents hold NaN or infinite values")
    return x, y

def fit_hyperplane(x: np.ndarray, y: np.ndarray, *, method: str = "svm", folds: int = 5, seed: int = 0,
                   others: Sequence[np.ndarray] = (), C: float = 1.0, trim: bool = True) -> Fit:
    """Fit ``n . x + b`` separating ``y == 1`` (positive side) from ``y == 0``.

    ``x`` (N, w_dim); ``others``: unit normals the result must be orthogonal to. ``folds`` >= 2 gives a
    stratified k-fold cross-validated accuracy (``folds`` 0 or 1: none). ``trim``: refit once without
    the examples the first fit puts on the wrong side by more than ``TRIM`` times the median absolute
    distance (a wrong label far from the boundary pulls the normal most; on planted data with 5%
    flipped labels this raises the cosine to the true normal by about 0.015). Cross-validation
    repeats the whole procedure in every fold.
    """
    import warnings

    from sklearn.exceptions import ConvergenceWarning
    from sklearn.model_selection import StratifiedKFold

    x, y = _examples(x, y)
    q = _orthonormal(others, x.shape[1])

    def fit_one(xtr, ytr):
        n1, b1 = fit_plain(xtr, ytr)
        if not trim:
            return n1, b1
        m = (2 * ytr - 1) * (xtr @ n1 + b1)
        keep = m > -TRIM * float(np.median(np.abs(m)))
        if keep.all() or min((ytr[keep] == 1).sum(), (ytr[keep] == 0).sum()) < 2:
            return n1, b1
        return fit_plain(xtr[keep], ytr[keep])

    def fit_plain(xtr, ytr):
        xp = xtr - (xtr @ q) @ q.T if q.shape[1] else xtr
        mu = xp.mean(0)
        scale = float(np.sqrt(((xp - mu) ** 2).sum(1).mean())) or 1.0
        est = _estimator(method, C, seed)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            est.fit((xp - mu) / scale, ytr)
        coef = est.coef_.reshape(-1) / scale
        c = float(est.intercept_.reshape(-1)[0]) - float(coef @ mu)
        # coef is in the others' complement up to solver noise: project it, then re-normalise
        if q.shape[1]:
            coef = coef - q @ (q.T @ coef)
            coef = coef - q @ (q.T @ coef)
        norm = float(np.linalg.norm(coef))
        if not np.isfinite(norm) or norm < 1e-12:
            raise ConfigError("the fit found no direction: the classes cannot be told apart in these latents")
        return coef / norm, c / norm

    n, b = fit_one(x, y)
    train_acc = float(((x @ n + b > 0).astype(np.int64) == y).mean())
    acc = sd = None
    k = int(folds)
    if k >= 2:
        if min((y == 1).sum(), (y == 0).sum()) < k:
            raise ConfigError(f"--folds {k} needs at least {k} examples of each class")
        scores = []
        for tr, te in StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y):
            nn, bb = fit_one(x[tr], y[tr])
            scores.append(float(((x[te] @ nn + bb > 0).astype(np.int64) == y[te]).mean()))
        acc, sd = float(np.mean(scores)), float(np.std(scores, ddof=1)) if len(scores) > 1 else 0.0
    return Fit(normal=n, intercept=float(b), accuracy=acc, accuracy_sd=sd, train_accuracy=train_acc, folds=k)


def fit_intercept(s: np.ndarray, y: np.ndarray, *, method: str = "svm", folds: int = 5, seed: int = 0,
                  C: float = 1.0) -> tuple[float, float | None, float | None]:
    """With the normal fixed: (intercept, cv accuracy, sd) from the projections ``s = n . w`` (N,).

    A one-dimensional fit. If the fitted slope is negative the labels run against the normal; the
    intercept is still the crossing point, and the accuracy shows it (below 0.5)."""
    f = fit_hyperplane(np.asarray(s, np.float64).reshape(-1, 1), y, method=method, folds=folds, seed=seed, C=C)
    # f.normal is +1 or -1: the boundary s = -b/n; for the given normal, d = s + b' with b' = b/n
    return float(f.intercept / f.normal[0]), f.accuracy if f.normal[0] > 0 else (
        None if f.accuracy is None else 1.0 - f.accuracy), f.accuracy_sd


def on_off_distances(d: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """Median signed distance of the positive and of the negative examples."""
    d = np.asarray(d, np.float64)
    y = np.asarray(y)
    return float(np.median(d[y == 1])), float(np.median(d[y == 0]))


# -- attribute fields (--method mlp) ---------------------------------------------------------------
#: default hidden widths, L2 weight, epochs and early-stopping patience of a field
FIELD_HIDDEN = (64,)
FIELD_WEIGHT_DECAY = 1e-2
FIELD_EPOCHS = 300
FIELD_PATIENCE = 25
FIELD_VALIDATION = 0.2
#: networks averaged into one field (each early-stopped on its own validation split)
FIELD_MEMBERS = 3
#: learned quadratic directions of a field: c_k (silu(u_k.z) + silu(-u_k.z)) ~ c_k (u_k.z)^2 / 2,
#: stored as tied pairs of units in its (single) hidden layer; u_k start at principal Hessian directions
FIELD_QUADRATIC = 4
#: the quadratic term's L2 weight, relative to the field's weight decay
FIELD_QUADRATIC_DECAY = 1.0
#: the share of flipped labels the field's likelihood allows for (:func:`_robust_loss`)
FIELD_LABEL_NOISE = 0.05


@dataclass
class FieldFit:
    """A fitted field (:class:`counterface.field.AttributeField`) with its cross-validated
    ``accuracy``/``accuracy_sd``, ``calibration`` (out-of-fold Brier score and expected calibration
    error), ``validation_accuracy`` (the early-stopping split) and ``train_accuracy``."""

    field: Any
    accuracy: float | None
    accuracy_sd: float | None
    calibration: dict[str, Any] | None
    validation_accuracy: float
    train_accuracy: float
    epochs: int
    folds: int


def _curvature_subspace(z: np.ndarray, y: np.ndarray, k: int, seed: int) -> np.ndarray:
    """(d, k) orthonormal directions in which the labels bend away from a linear boundary: principal
    Hessian directions (Li 1992) of the residuals of a logistic fit, in the complement of its normal.
    The network's hidden layers see only these coordinates (its linear part sees all): a curved
    boundary is learned from thousands, not millions, of examples."""
    from sklearn.linear_model import LogisticRegression

    k = min(int(k), z.shape[1] - 1)
    if k <= 0:
        return np.zeros((z.shape[1], 0))
    lr = LogisticRegression(C=1.0, max_iter=2000).fit(z, y)
    a = lr.coef_.reshape(-1)
    r = y - lr.predict_proba(z)[:, 1]
    n = a / max(float(np.linalg.norm(a)), 1e-12)
    zc = z - z.mean(0)
    zp = zc - np.outer(zc @ n, n)
    m = (zp * r[:, None]).T @ zp / len(z)
    ev, vec = np.linalg.eigh(m)
    order = np.argsort(-np.abs(ev), kind="stable")[:k]
    out = np.concatenate([n[:, None], vec[:, order]], axis=1)
    q, _ = np.linalg.qr(out)
    return q * np.sign(np.diag(q.T @ out))[None, :]


def _train_net(x: np.ndarray, y: np.ndarray, hidden: Sequence[int], seed: int, weight_decay: float,
               epochs: int, patience: int, validation: float, q: np.ndarray, subspace: int = 0,
               quadratic: int = 0, label_noise: float = 0.0):
    """One early-stopped network on (x, y); returns (AttributeField without on/off, val acc, epochs run)."""
    import torch
    from sklearn.model_selection import train_test_split

    from .field import AttributeField

    torch.manual_seed(seed)
    xp = x - (x @ q) @ q.T if q.shape[1] else x
    mu = xp.mean(0)
    scale = float(np.sqrt(((xp - mu) ** 2).sum(1).mean() / xp.shape[1])) or 1.0
    z = torch.from_numpy((xp - mu) / scale).float()
    t = torch.from_numpy(y.astype(np.float32))
    tr, va = train_test_split(np.arange(len(y)), test_size=validation, stratify=y, random_state=seed)
    tr, va = torch.from_numpy(tr), torch.from_numpy(va)
    d = z.shape[1]
    # with hidden layers, the whole network sees the (1 + subspace) coordinates of _curvature_subspace
    u = _curvature_subspace(z[tr].double().numpy(), y[tr.numpy()], subspace, seed) if hidden and subspace else np.eye(d)
    uu = torch.from_numpy(u).float()
    linear = torch.nn.Linear(u.shape[1], 1)
    layers, prev = [], u.shape[1]
    for h in hidden:
        layers += [torch.nn.Linear(prev, int(h)), torch.nn.SiLU()]
        prev = int(h)
    body = torch.nn.Sequential(*layers)
    out = torch.nn.Linear(prev, 1, bias=False) if hidden else None
    params = list(linear.parameters()) + list(body.parameters()) + ([] if out is None else list(out.parameters()))
    # the quadratic term (one hidden layer only): tied unit pairs, directions from the labels' curvature
    quadratic = int(quadratic) if len(hidden) == 1 else 0
    if quadratic:
        qu = _curvature_subspace(z[tr].double().numpy(), y[tr.numpy()], quadratic, seed)[:, 1:]
        qd = torch.nn.Parameter(torch.from_numpy(qu.T.copy()).float())
        qc = torch.nn.Parameter(torch.zeros(1, qd.shape[0]))
        params += [qd, qc]
    qdecay = [qd, qc] if quadratic else []

    def net(v):
        vu = v @ uu
        r = linear(vu)[:, 0]
        if quadratic:
            s = v @ qd.T
            r = r + ((torch.nn.functional.silu(s) + torch.nn.functional.silu(-s)) * qc).sum(1)
        return r if out is None else r + out(body(vu))[:, 0]

    lossf = _robust_loss(label_noise)
    gen = torch.Generator().manual_seed(seed)
    ran = 0
    # one stage: everything together, early-stopped on the validation split
    for stage in (params,):
        opt = torch.optim.AdamW(stage, lr=1e-3, weight_decay=0.0)
        bs = 128
        decay = [p for p in stage if p.dim() == 2 and not any(p is a for a in qdecay)]
        best, best_state, waited = float("inf"), [p.detach().clone() for p in params], 0
        for epoch in range(int(epochs)):
            perm = tr[torch.randperm(len(tr), generator=gen)]
            for i in range(0, len(perm), bs):
                b = perm[i:i + bs]
                opt.zero_grad()
                loss = lossf(net(z[b]), t[b]) + weight_decay * sum((p ** 2).sum() for p in decay)
                if quadratic:
                    loss = loss + weight_decay * FIELD_QUADRATIC_DECAY * sum((p ** 2).sum() for p in qdecay)
                loss.backward()
                opt.step()
            ran += 1
            with torch.no_grad():
                vl = float(lossf(net(z[va]), t[va]))
            if vl < best - 1e-5:
                best, waited = vl, 0
                best_state = [p.detach().clone() for p in params]
            else:
                waited += 1
                if waited >= patience:
                    break
        with torch.no_grad():
            for p, s in zip(params, best_state):
                p.copy_(s)
    with torch.no_grad():
        val_acc = float(((net(z[va]) > 0).float() == t[va]).float().mean())
    lw = u @ linear.weight.detach().double().numpy()[0]
    hid = [(m.weight.detach().double().numpy(), m.bias.detach().double().numpy())
           for m in body if isinstance(m, torch.nn.Linear)]
    ow = None if out is None else out.weight.detach().double().numpy()[0]
    if hid:  # the subspace folded into the first layer
        hid[0] = (hid[0][0] @ u.T, hid[0][1])
    if quadratic:  # the quadratic term as pairs of units (+u_k, -u_k) sharing the output weight c_k
        a, c = qd.detach().double().numpy(), qc.detach().double().numpy()[0]
        hid[0] = (np.concatenate([hid[0][0], a, -a]), np.concatenate([hid[0][1], np.zeros(2 * len(a))]))
        ow = np.concatenate([ow, c, c])
    if q.shape[1]:  # the projection folded into the first layers: the gradient stays in the complement
        lw = lw - q @ (q.T @ lw)
        if hid:
            hid[0] = (hid[0][0] - (hid[0][0] @ q) @ q.T, hid[0][1])
    f = AttributeField(mean=mu, scale=scale, linear_weight=lw, linear_bias=float(linear.bias.detach()[0]),
                       hidden=hid, output_weight=ow)
    return f, val_acc, ran


def _robust_loss(eps: float):
    """The mean negative log-likelihood of labels under ``P(y = 1) = eps + (1 - 2 eps) sigmoid(f)``: a
    logistic model whose labels are flipped at random with probability ``eps`` (Copas 1988). A label
    far on the wrong side costs at most ``-log eps``, so flipped labels do not pull the field; ``eps`` 0
    is the plain logistic loss."""
    import math

    import torch

    if eps <= 0:
        return torch.nn.BCEWithLogitsLoss()
    le, lk = math.log(eps), math.log1p(-2 * eps)

    def loss(f, t):
        pos = torch.logaddexp(torch.full_like(f, le), lk + torch.nn.functional.logsigmoid(f))
        neg = torch.logaddexp(torch.full_like(f, le), lk + torch.nn.functional.logsigmoid(-f))
        return -(t * pos + (1 - t) * neg).mean()

    return loss


def _ensemble(x, y, hidden, seed, weight_decay, epochs, patience, validation, q, members, quadratic=0,
              label_noise=0.0):
    """The mean of ``members`` networks (seeds ``seed``, ``seed + 1``...), each early-stopped on its own
    validation split, as one field: their hidden units side by side, output weights / members."""
    from .field import AttributeField

    fits = [_train_net(x, y, hidden, seed + m, weight_decay, epochs, patience, validation, q, quadratic=quadratic,
                       label_noise=label_noise)
            for m in range(members)]
    if len(fits) == 1 or not hidden:
        return fits[0] if len(fits) == 1 else (fits[0][0], float(np.mean([f[1] for f in fits])), fits[0][2])
    fs = [f for f, _, _ in fits]
    k = len(fs)
    hid = []
    for i in range(len(hidden)):
        ws = [f.hidden[i][0].numpy() for f in fs]
        bs = np.concatenate([f.hidden[i][1].numpy() for f in fs])
        if i == 0:
            w = np.concatenate(ws, 0)
        else:  # block diagonal: each member's units see only its own previous layer
            w = np.zeros((sum(a.shape[0] for a in ws), sum(a.shape[1] for a in ws)))
            r = c = 0
            for a in ws:
                w[r:r + a.shape[0], c:c + a.shape[1]] = a
                r, c = r + a.shape[0], c + a.shape[1]
        hid.append((w, bs))
    # one centre and scale for all (the members share them: same x)
    f0 = fs[0]
    field = AttributeField(mean=f0.mean, scale=f0.scale,
                           linear_weight=sum(f.linear_weight for f in fs) / k,
                           linear_bias=sum(f.linear_bias for f in fs) / k, hidden=hid,
                           output_weight=np.concatenate([f.output_weight.numpy() for f in fs]) / k)
    return field, float(np.mean([a for _, a, _ in fits])), int(max(r for _, _, r in fits))


def _calibration(p: np.ndarray, y: np.ndarray, bins: int = 10) -> dict[str, Any]:
    """Brier score and expected calibration error (``bins`` equal-width bins) of probabilities ``p``."""
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    ece = sum(abs(float(p[which == k].mean()) - float(y[which == k].mean())) * float((which == k).mean())
              for k in range(bins) if (which == k).any())
    return {"brier": float(np.mean((p - y) ** 2)), "ece": float(ece), "bins": bins, "out_of_fold": True}


def fit_field(x: np.ndarray, y: np.ndarray, *, hidden: Sequence[int] = FIELD_HIDDEN, folds: int = 5, seed: int = 0,
              others: Sequence[np.ndarray] = (), weight_decay: float = FIELD_WEIGHT_DECAY,
              epochs: int = FIELD_EPOCHS, patience: int = FIELD_PATIENCE,
              validation: float = FIELD_VALIDATION, density: bool = True, members: int = FIELD_MEMBERS,
              quadratic: int = FIELD_QUADRATIC, label_noise: float = FIELD_LABEL_NOISE) -> FieldFit:
    """A field (a small classifier network, :mod:`counterface.field`) separating ``y == 1`` from 0.

    ``x`` (N, w_dim); ``others``: unit normals the field's gradient must be orthogonal to. Each network
    is trained with AdamW and an L2 penalty on its weights, early-stopped on a stratified
    ``validation`` share, under the likelihood of labels flipped at random with probability
    ``label_noise`` (:func:`_robust_loss`; 0: the plain logistic loss); ``quadratic`` (one hidden layer only) adds that many tied unit pairs, a
    low-rank quadratic term (:data:`FIELD_QUADRATIC`); ``folds`` >= 2 repeats the whole procedure per fold for the out-of-fold
    accuracy and calibration. The returned field carries on/off (the median logits of the positive
    and negative examples), a path ``step`` (1/32 of the median W distance between those levels), a
    ``tolerance`` and, with ``density``, a Ledoit-Wolf Gaussian of ``x`` and its 1st-percentile log
    density."""
    import torch
    from sklearn.model_selection import StratifiedKFold

    x, y = _examples(x, y)
    q = _orthonormal(others, x.shape[1])
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # deterministic and kind to a shared machine

    def fit_all(xs, ys, s):
        return _ensemble(xs, ys, hidden, s, weight_decay, epochs, patience, validation, q, members, quadratic,
                         label_noise)

    try:
        f, val_acc, ran = fit_all(x, y, seed)
        acc = sd = cal = None
        k = int(folds)
        if k >= 2:
            if min((y == 1).sum(), (y == 0).sum()) < k:
                raise ConfigError(f"--folds {k} needs at least {k} examples of each class")
            scores, probs = [], np.zeros(len(y))
            for i, (tr, te) in enumerate(StratifiedKFold(n_splits=k, shuffle=True, random_state=seed).split(x, y)):
                ff, _, _ = fit_all(x[tr], y[tr], seed + 1000 * (i + 1))
                lt = ff.logit(torch.from_numpy(x[te])).numpy()
                # the model's probability of the observed label (flips included, as in the fit)
                probs[te] = label_noise + (1 - 2 * label_noise) / (1 + np.exp(-np.clip(lt, -50, 50)))
                scores.append(float(((lt > 0).astype(np.int64) == y[te]).mean()))
            acc, sd = float(np.mean(scores)), float(np.std(scores, ddof=1))
            cal = _calibration(probs, y)
    finally:
        torch.set_num_threads(threads)
    xt = torch.from_numpy(x)
    logits, grads = f.logit_and_grad(xt)
    lg = logits.numpy()
    train_acc = float(((lg > 0).astype(np.int64) == y).mean())
    on, off = float(np.median(lg[y == 1])), float(np.median(lg[y == 0]))
    if not on > off:
        raise ConfigError(f"the field puts the positive examples below the negative ones (median logits {on:.3g} "
                          f"and {off:.3g}): the classes cannot be told apart in these latents")
    gap = (on - off) / max(float(np.median(grads.norm(dim=1).numpy())), 1e-12)
    f.on_distance, f.off_distance = on, off
    f.step, f.tolerance = gap / 32, 1e-3 * (on - off)
    if density:
        from sklearn.covariance import LedoitWolf

        lw = LedoitWolf().fit(x)
        f.density_mean = torch.from_numpy(lw.location_)
        f.density_precision = torch.from_numpy(lw.precision_)
        f.density_threshold = float(np.percentile(f.log_density(xt).numpy(), 1))
    return FieldFit(field=f, accuracy=acc, accuracy_sd=sd, calibration=cal, validation_accuracy=val_acc,
                    train_accuracy=train_acc, epochs=ran, folds=k)
