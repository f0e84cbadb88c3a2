"""Comparing latent editors (boundaries and fields) on held-out labelled latents
(``counterface directions evaluate``).

The held-out latents are split in two (stratified, ``seed``): an **evaluator** is fitted on the
first half (a field, :func:`counterface.learn.fit_field`, with another seed than any editor; for
each other labelled attribute a logistic regression), and the editors move the second half.

* **flip rate vs displacement**: each latent is moved towards the other side (a path of length +A
  for the evaluator's negatives, -A for its positives: the ``shift`` operator's move) for every path length A of ``lengths``; the flip
  rate is the share whose evaluator label changes, the displacement the mean W distance moved.
* **leakage at equal flip rate**: at the smallest A where every editor reaches ``flip_target`` (or
  each editor's best), the mean absolute change of each other attribute's evaluator logit and the
  share of its labels that flip.
* **off the data**: the share of edits to the field's on/off
  levels (the ``on``/``off`` operators' targets) whose log density under a Gaussian fitted on
  the training latents falls below that Gaussian's 1st percentile of the training latents.
* **cycle error**: ``off(on(w))`` against ``off(w)``, mean W distance (0 for a linear editor).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .errors import ConfigError

LENGTHS = (0.25, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0)


def _level(field, which: str) -> float:
    """The field's calibrated ``on_distance``/``off_distance`` (the protocol's on/off levels)."""
    v = getattr(field, which, None)
    if v is None:
        raise ConfigError(f"editor {field.attribute!r} records no {which}: learn or calibrate it again")
    return float(v)


def evaluate(editors: dict[str, Any], x: np.ndarray, y: np.ndarray, others: dict[str, np.ndarray], *,
             train: np.ndarray | None = None, lengths: Sequence[float] = LENGTHS, flip_target: float = 0.5,
             seed: int = 0, keep: Sequence[Any] = ()) -> dict[str, Any]:
    """The comparison of the module docstring; ``editors`` name -> AttributeField, ``x`` (N, w_dim)."""
    import torch
    from sklearn.covariance import LedoitWolf
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    from . import learn
    from .fieldpath import move_latents

    x = np.asarray(x, np.float64)
    y = np.asarray(y).astype(np.int64)
    if x.ndim != 2 or len(x) != len(y) or len(x) < 40:
        raise ConfigError(f"evaluate needs at least 40 labelled (N, w_dim) latents, got {x.shape}")
    learn.check_classes(y, 10)
    a, b = train_test_split(np.arange(len(y)), test_size=0.5, stratify=y, random_state=seed)
    judge = learn.fit_field(x[a], y[a], folds=0, seed=seed + 7919, members=1, density=False).field
    side_judges = {}
    for name, v in others.items():
        v = np.asarray(v)
        if len(np.unique(v[a])) == 2:
            side_judges[name] = LogisticRegression(C=1.0, max_iter=3000).fit(x[a], v[a])
    xe = x[b]
    t = torch.from_numpy(xe)
    j0 = judge.logit(t).numpy() > 0
    sign = np.where(j0, -1.0, 1.0)
    gauss = LedoitWolf().fit(x if train is None else np.asarray(train, np.float64))
    dens = lambda z: -0.5 * gauss.mahalanobis(z)  # noqa: E731  (log density up to its constant)
    floor = float(np.percentile(dens(x if train is None else np.asarray(train, np.float64)), 1))
    out: dict[str, Any] = {"n_evaluated": int(len(b)), "n_evaluator": int(len(a)), "lengths": list(lengths),
                           "flip_target": flip_target, "editors": {}}
    moved_at: dict[str, dict[float, np.ndarray]] = {}
    for name, f in editors.items():
        curve, moved_at[name] = [], {}
        for length in lengths:
            up, _ = move_latents(f, t, length=float(length), keep=keep)
            down, _ = move_latents(f, t, length=-float(length), keep=keep)
            m = np.where(sign[:, None] > 0, up.numpy(), down.numpy())
            moved_at[name][length] = m
            flip = float(((judge.logit(torch.from_numpy(m)).numpy() > 0) != j0).mean())
            curve.append({"length": float(length), "flip_rate": flip,
                          "displacement": float(np.linalg.norm(m - xe, axis=1).mean())})
        on, _ = move_latents(f, t, target=_level(f, "on_distance"), keep=keep)
        off, _ = move_latents(f, t, target=_level(f, "off_distance"), keep=keep)
        cyc, _ = move_latents(f, on, target=_level(f, "off_distance"), keep=keep)
        leave = float(np.mean(np.concatenate([dens(on.numpy()), dens(off.numpy())]) < floor))
        out["editors"][name] = {
            "curve": curve, "off_data_share": leave,
            "cycle_error": float(np.linalg.norm(cyc.numpy() - off.numpy(), axis=1).mean()),
            "on_true_share": float((judge.logit(on).numpy() > 0).mean()),
            "off_true_share": float((judge.logit(off).numpy() <= 0).mean()),
        }
    reach = [min([c["length"] for c in e["curve"] if c["flip_rate"] >= flip_target] or [None], key=lambda v: v or 1e9)
             for e in out["editors"].values()]
    for (name, e), length in zip(out["editors"].items(), reach):
        at = length if length is not None else max(e["curve"], key=lambda c: c["flip_rate"])["length"]
        m = moved_at[name][at]
        flip = next(c["flip_rate"] for c in e["curve"] if c["length"] == at)
        e["at_equal_flip"] = {"length": at, "flip_rate": flip, "reached_target": length is not None, "leakage": {
            k: {"mean_abs_change": float(np.abs(j.decision_function(m) - j.decision_function(xe)).mean()),
                "flip_rate": float((j.predict(m) != j.predict(xe)).mean())} for k, j in side_judges.items()}}
    return out


def plot(result: dict[str, Any], path) -> None:
    """Flip rate against displacement, one line per editor, as a PNG."""
    import io

    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .imageio import write_bytes

    fig, ax = plt.subplots(figsize=(5, 3.5))
    for name, e in result["editors"].items():
        ax.plot([c["displacement"] for c in e["curve"]], [c["flip_rate"] for c in e["curve"]], marker="o", label=name)
    ax.set_xlabel("mean displacement in W")
    ax.set_ylabel("flip rate (held-out evaluator)")
    ax.set_ylim(0, 1)
    ax.legend(fontsize=8)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, metadata={"Software": None})
    plt.close(fig)
    write_bytes(path, buf.getvalue())
