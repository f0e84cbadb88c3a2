"""The manipulation check: did the attribute change between Z1 and Z0?

The direction's scorer (the ``scorer`` component registered for the pairs' attribute, e.g. ``smile``)
or ``--scorer NAME`` scores every Z1 and Z0 image (each file once): the aligned face crop when every
pair records its alignment (a batch folder), else the whole image. Per article, the difference
s(Z1) - s(Z0); reported: its mean over the articles whose two scores exist, a percentile cluster
bootstrap interval (``--level``; ``SeedSequence([seed, 7, b])``, the same clusters as rho's), and
the share of articles where Z1 scores higher. A warning says when the attribute did not move: the
interval does not lie above 0, or no pair could be scored.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from ..scoring import default_scorer
from . import estimate as est
from .features import CROP_SIZE, crop_digest, cut

#: bootstrap draws of the mean difference (cheap: no model is refitted)
DRAWS = 1000


def scorer_name(requested: str | None, attribute: str | None) -> tuple[str | None, str | None]:
    """(scorer to use, or None; why none)."""
    from ..registry import available

    if requested is not None:
        if requested.lower() == "none":
            return None, "--scorer none: no manipulation check"
        return requested, None
    names = available("scorer")
    attr = (attribute or "").split(",")[0] or None
    if attr is None:
        return None, ("no manipulation check: the pairs' attribute is unknown (name a scorer with --scorer NAME; "
                      f"registered: {', '.join(names) or 'none'})")
    found = default_scorer(attr)
    if found is None:
        return None, (f"no manipulation check: no scorer for the attribute {attr!r} (name one with --scorer NAME; "
                      f"registered: {', '.join(names) or 'none'})")
    return found, None


def check(study, name: str, *, level: float = 0.95, seed: int = 0) -> dict[str, Any]:
    """Score Z1 and Z0 and summarise (see the module docstring)."""
    import counterface
    from ..errors import ImageError
    from ..imageio import read_image

    scorer = counterface.create("scorer", name)
    pairs = study.pairs or []
    crops = len(pairs) == len(study.z1) and all(p.matrix is not None and p.size for p in pairs)
    # each file once; with the pairs' alignments, the aligned face crop (what scorers are made for)
    mats = [np.asarray(p.matrix) * (CROP_SIZE / float(p.size)) if crops else None for p in (pairs if crops else study.z1)]
    k1 = [(Path(f).resolve(), crop_digest(m)) for f, m in zip(study.z1, mats)]
    k0 = [(Path(f).resolve(), crop_digest(m)) for f, m in zip(study.z0, mats)]
    units = dict(zip(k1 + k0, mats + mats))
    files = sorted(units)
    scores: dict[tuple, float] = {}
    for i in range(0, len(files), 16):
        chunk, images = files[i:i + 16], []
        for f in chunk:
            try:
                images.append(cut(read_image(f[0]), units[f]))
            except ImageError:
                images.append(None)
        ok = [j for j, im in enumerate(images) if im is not None]
        got = np.asarray(scorer.score([images[j] for j in ok]), np.float64).reshape(-1) if ok else np.zeros(0)
        if got.size != len(ok):
            from ..errors import PluginError

            raise PluginError(f"scorer {name!r} returned {got.size} scores for {len(ok)} images")
        for f in chunk:
            scores[f] = float("nan")
        for j, v in zip(ok, got):
            scores[chunk[j]] = float(v)
    s1 = np.array([scores[k] for k in k1])
    s0 = np.array([scores[k] for k in k0])
    diff = s1 - s0
    ok = np.isfinite(diff)
    rec: dict[str, Any] = {"scorer": name, "attribute": getattr(scorer, "attribute", None),
                           "scored": "aligned face crops (the pairs' alignment)" if crops else "whole images",
                           "articles": int(ok.sum()), "unscored": int((~ok).sum()),
                           "mean_z1": None, "mean_z0": None, "mean_difference": None, "ci_low": None,
                           "ci_high": None, "share_z1_higher": None, "level": level,
                           "interval": f"percentile cluster bootstrap, {DRAWS} draws"}
    if not ok.any():
        rec["moved"] = False
        return rec
    d, cl = diff[ok], study.cluster[ok]
    draws = []
    for b in range(DRAWS):
        idx = est.resample_clusters(cl, np.random.default_rng([seed, 7, b]))
        draws.append([float(np.mean(d[idx]))])
    lo, hi = est.percentile_ci(np.array(draws), level)
    rec.update({"mean_z1": float(np.mean(s1[ok])), "mean_z0": float(np.mean(s0[ok])),
                "mean_difference": float(np.mean(d)), "ci_low": float(lo[0]), "ci_high": float(hi[0]),
                "share_z1_higher": float(np.mean(d > 0))})
    rec["moved"] = bool(rec["ci_low"] > 0)
    return rec


def line(rec: dict[str, Any]) -> str:
    if rec["mean_difference"] is None:
        return f"manipulation check ({rec['scorer']}): no pair could be scored"
    return (f"manipulation check ({rec['scorer']}): s(Z1) - s(Z0) = {rec['mean_difference']:.3f} "
            f"[{rec['ci_low']:.3f}, {rec['ci_high']:.3f}], Z1 higher in {rec['share_z1_higher']:.0%} of "
            f"{rec['articles']} articles")


def warning(rec: dict[str, Any]) -> str | None:
    if rec["mean_difference"] is None:
        return (f"the manipulation check could not score any pair with {rec['scorer']!r} "
                f"({rec['unscored']} articles unscored): nothing shows that the attribute changed")
    if not rec["moved"]:
        return (f"the attribute did not move: s(Z1) - s(Z0) = {rec['mean_difference']:.3f} with an interval "
                f"[{rec['ci_low']:.3f}, {rec['ci_high']:.3f}] that does not lie above 0 ({rec['scorer']}); "
                "rho then measures something other than the attribute")
    return None
