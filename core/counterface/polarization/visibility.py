"""Does the embedder see the edit? ||e(Z1) - e(Z0)|| against the spread of e over the articles.

The outlet model standardises every feature over the articles; in those units the spread of the
published images' embeddings, sqrt(sum of per-feature variances), is sqrt(D) (features that do not
vary count 0). The diagnostic is

    ratio = median over articles of ||(e(Z1) - e(Z0)) / sd||  /  sqrt(#varying features)

the typical size of the edit relative to the typical difference between two articles' images. A
ratio below :data:`MIN_RATIO` means the edit is nearly invisible to g, so rho is near 0
mechanically whatever the outlets do: embed the face (``--crop face``) or use an embedder that
sees the attribute.
"""

from __future__ import annotations

from typing import Any

import numpy as np

#: below this the edit is called invisible to g
MIN_RATIO = 0.05


def measure(e: np.ndarray, e1: np.ndarray, e0: np.ndarray) -> dict[str, Any]:
    e, e1, e0 = (np.asarray(x, np.float64) for x in (e, e1, e0))
    sd = e.std(axis=0)
    varying = sd > 1e-8
    if not varying.any() or not len(e):
        edit = float(np.median(np.linalg.norm(e1 - e0, axis=1))) if len(e) else 0.0
        return {"median_edit": edit, "spread": 0.0, "ratio": None, "features": int(e.shape[1]), "varying": 0,
                "visible": None, "min_ratio": MIN_RATIO}
    diff = (e1 - e0)[:, varying] / sd[varying]
    edit = float(np.median(np.linalg.norm(diff, axis=1)))
    spread = float(np.sqrt(varying.sum()))
    ratio = edit / spread
    return {"median_edit": edit, "spread": spread, "ratio": ratio, "features": int(e.shape[1]),
            "varying": int(varying.sum()), "visible": bool(ratio >= MIN_RATIO), "min_ratio": MIN_RATIO,
            "units": "standardised features (per-feature sd over the published images)"}


def line(rec: dict[str, Any], embedder: str, crop: str) -> str:
    if rec["ratio"] is None:
        return f"edit visibility ({embedder}, {crop}): the published images' embeddings do not vary"
    return (f"edit visibility ({embedder}, {crop}): median ||e(Z1) - e(Z0)|| = {rec['median_edit']:.3g} against a "
            f"spread of {rec['spread']:.3g} over the articles (ratio {rec['ratio']:.3f})")


def warning(rec: dict[str, Any], crop: str) -> str | None:
    if rec["visible"] is False:
        hint = "use an embedder that sees the attribute" if crop == "face" else \
            "embed the face (--crop face) or use an embedder that sees the attribute"
        return (f"the edit is nearly invisible to g: the median ||e(Z1) - e(Z0)|| is {rec['ratio']:.3f} of the spread "
                f"of e over the articles (below {MIN_RATIO}), so rho is near 0 mechanically; {hint}")
    return None
