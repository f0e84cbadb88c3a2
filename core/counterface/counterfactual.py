"""The latent geometry of the counterfactual operators: moving edited W+ rows along attribute normals.

Conventions (the geometry of a boundary is stated in :mod:`counterface.boundary`): each edited
attribute ``i`` has a unit normal ``n_i,l`` and, when known, an intercept, so the signed distance of
row ``l`` of a W+ latent is ``d_i,l = n_i,l . w_l + b_i,l``. An operator (:class:`counterface.Operator`)
asks for a change ``s_i,l`` of that distance on each row the attribute edits (its *layers*).

* One attribute, nothing kept: row ``l`` moves to ``w_l + s_l * n_l``; every other row is returned
  bit-identical. A step that is the same on every row and needs no distance (``shift``, ``negate``)
  goes through the direction's own ``apply`` (today's ``w + alpha * v``, bit for bit).
* Several attributes on one row, or attributes kept (``--keep``, conditioning): the row moves by the
  smallest change that makes every edited attribute's distance change by its step and every kept
  attribute's by exactly 0: ``delta = N^T (N N^T)^-1 s`` with the normals as the rows of ``N`` (for
  one edited and one kept attribute this is the edited normal with the kept one projected out,
  :func:`counterface.boundary.project_out`, scaled so the edited distance changes by ``s``).

Leakage along a watched normal ``m`` is ``m_l . (w1_l - w0_l)`` on the edited rows: how far the two
outputs of a pair differ along an attribute that should not have moved; no intercept is needed.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

from .errors import ConfigError


@dataclass
class AttributeEdit:
    """One attribute taking part in an edit: its direction component, boundary and W+ rows.

    ``spec``: what the user named (``--direction`` value or the configured direction's name);
    ``rows``: the 0-based W+ rows it edits; ``index``: its position among the ``--direction`` options.
    """

    spec: str
    direction: Any
    boundary: Any
    rows: list[int]
    index: int = 0
    file_sha256: str | None = None

    @property
    def attribute(self) -> str:
        return str(getattr(self.boundary, "attribute", "") or getattr(self.direction, "attribute", "") or self.spec)

    def normals(self, num_ws: int):
        """(num_ws, w_dim) float64 unit normals, one per W+ row."""
        import torch

        n = self.boundary.normal.to(torch.float64)
        return n.expand(num_ws, n.shape[1]) if n.shape[0] == 1 else n

    def distances(self, w) -> "Any | None":
        """(len(rows),) float64 signed distances of ``w``'s edited rows, or None without an intercept."""
        import torch

        if getattr(self.boundary, "intercept", None) is None:
            return None
        n = self.normals(int(w.shape[-2]))
        b = self.boundary.intercept.to(torch.float64)
        b = b.expand(int(w.shape[-2])) if b.numel() == 1 else b
        idx = torch.tensor(self.rows, dtype=torch.long)
        x = w.detach().to("cpu", torch.float64)[idx]
        return (x * n[idx]).sum(-1) + b[idx]


def boundary_of(direction: Any, num_ws: int, w_dim: int):
    """The direction's :class:`~counterface.boundary.Boundary`: its ``boundary`` attribute when it has
    one, else one read off ``apply`` (the change of a zero latent at alpha 1 on every row; unit
    normals, no intercept), so a third-party direction without a boundary still edits."""
    import torch

    from .boundary import Boundary

    b = getattr(direction, "boundary", None)
    if b is not None:
        return b
    zero = torch.zeros(num_ws, w_dim)
    v = direction.apply(zero, 1.0, list(range(num_ws))) - zero
    if bool((v == v[:1]).all()):
        v = v[:1]
    return Boundary(normal=v, intercept=None, attribute=str(getattr(direction, "attribute", "") or ""),
                    family=str(getattr(direction, "family", "") or ""), meta={"derived_from_apply": True})


def file_sha256(direction: Any, boundary: Any) -> str | None:
    """sha256 of the file a direction was read from (boundary metadata, else its ``path``/``weights``
    file when that is a local file); None for a vector drawn from a seed."""
    meta = getattr(boundary, "meta", None) or {}
    for key in ("file_sha256", "sha256"):
        if isinstance(meta.get(key), str):
            return meta[key]
    for attr in ("path", "weights", "file"):
        p = getattr(direction, attr, None)
        if p is None:
            continue
        path = Path(str(p)).expanduser()
        if not path.is_file():
            try:
                from .weights import resolve

                path = Path(resolve(str(p)))
            except Exception:  # noqa: BLE001 - unknown to the weights manager: no file to hash
                continue
        if path.is_file():
            h = hashlib.sha256()
            with open(path, "rb") as f:
                for chunk in iter(lambda: f.read(1 << 20), b""):
                    h.update(chunk)
            return h.hexdigest()
    return None


def check_intercept(operator: Any, role: str, edits: Sequence[AttributeEdit]) -> None:
    """ConfigError (one line) when ``operator`` needs signed distances and a direction has no intercept."""
    if not getattr(operator, "needs_intercept", False):
        return
    for e in edits:
        if getattr(e.boundary, "intercept", None) is None:
            raise ConfigError(
                f"--{role} {operator.name or type(operator).__name__.lower()} moves to a signed distance, but direction "
                f"{e.spec!r} has no intercept (a bare direction vector, like the published smile.pt: nothing says "
                f"where its boundary lies); "
                f"use a boundary from `counterface directions learn` or `counterface directions calibrate {e.spec}`, "
                f"or {'--pi1 shift' if role == 'pi1' else '--pi0 reconstruction (or negate, original)'}")


def steps_for(operator: Any, edits: Sequence[AttributeEdit], w, alphas: Sequence[float]) -> list[Any]:
    """The operator's (rows,) float64 distance change for each edit, at the pivot latent ``w``."""
    import torch

    out = []
    for e, a in zip(edits, alphas):
        d = e.distances(w)
        s = operator.step(d, alpha=float(a), boundary=e.boundary, index=e.index, rows=len(e.rows))
        s = torch.as_tensor(s, dtype=torch.float64).reshape(-1)
        if s.numel() == 1 and len(e.rows) != 1:
            s = s.expand(len(e.rows)).clone()
        if s.numel() != len(e.rows):
            raise ConfigError(f"operator {operator.name!r} returned {s.numel()} steps for {len(e.rows)} rows")
        if not bool(torch.isfinite(s).all()):
            raise ConfigError(f"operator {operator.name!r} returned a non-finite step for {e.spec!r}")
        out.append(s)
    return out


def move(w, edits: Sequence[AttributeEdit], steps: Sequence[Any], keep: Sequence[AttributeEdit] = (),
         uniform_apply: bool = False):
    """``w`` (num_ws, w_dim) with each edit's rows moved by its steps (see the module docstring).

    ``uniform_apply``: for one edit and nothing kept with the same step on every row, use the
    direction's ``apply`` (bit-identical to the direction's own edit). Rows no edit names are
    returned bit-identical. The result has ``w``'s dtype and device."""
    import torch

    num_ws = int(w.shape[-2])
    if len(edits) == 1 and not keep:
        e, s = edits[0], steps[0]
        if uniform_apply and len(e.rows) and bool((s == s[0]).all()):
            if float(s[0]) == 0.0:
                return w.clone()
            return e.direction.apply(w, float(s[0]), list(e.rows))
    out = w.clone()
    rows = sorted({r for e in edits for r in e.rows})
    base = w.detach().to("cpu", torch.float64)
    normals = [e.normals(num_ws) for e in edits]
    kept = [k.normals(num_ws) for k in keep]
    for r in rows:
        ns, rhs = [], []
        for e, n, s in zip(edits, normals, steps):
            if r in e.rows:
                ns.append(n[r])
                rhs.append(s[e.rows.index(r)])
        ns.extend(k[r] for k in kept)
        rhs.extend(torch.zeros((), dtype=torch.float64) for _ in kept)
        N = torch.stack(ns)
        target = torch.stack([torch.as_tensor(x, dtype=torch.float64) for x in rhs])
        if len(ns) == 1:
            delta = N[0] * (target[0] / N[0].dot(N[0]))
        else:
            gram = N @ N.T
            if float(torch.linalg.matrix_rank(gram, hermitian=True)) < len(ns):
                names = [e.spec for e in edits if r in e.rows] + [k.spec for k in keep]
                raise ConfigError(f"directions {', '.join(map(repr, names))} are linearly dependent on W+ row {r}: "
                                  "they cannot be moved and kept independently")
            delta = N.T @ torch.linalg.solve(gram, target)
        out[..., r, :] = (base[r] + delta).to(w.dtype).to(w.device)
    return out


def records(operator_name: str, edits: Sequence[AttributeEdit], steps: Sequence[Any] | None, w_before, w_after,
            *, photo: bool = False) -> list[dict[str, Any]]:
    """The sidecar's ``attributes`` list: one entry per edited attribute (see docs/pipeline.md)."""
    out = []
    for i, e in enumerate(edits):
        before = e.distances(w_before)
        after = None if (photo or w_after is None) else e.distances(w_after)
        out.append({
            "direction": e.spec,
            "attribute": e.attribute,
            "file_sha256": e.file_sha256,
            "layers": list(e.rows),
            "operator": operator_name,
            "distance_before": None if before is None else [float(x) for x in before],
            "distance_after": None if after is None else [float(x) for x in after],
            "alpha": None if (steps is None or photo) else [float(x) for x in steps[i]],
        })
    return out


def leakage(watched: Sequence[AttributeEdit], rows: Sequence[int], w1, w0) -> dict[str, dict[str, Any]]:
    """attribute -> {"rows", "values", "mean"}: ``m_l . (w1_l - w0_l)`` on ``rows`` for each watched
    normal ``m`` (no intercept needed)."""
    import torch

    out: dict[str, dict[str, Any]] = {}
    if not rows:
        return out
    idx = torch.tensor(list(rows), dtype=torch.long)
    diff = (w1.detach().to("cpu", torch.float64) - w0.detach().to("cpu", torch.float64))[idx]
    for e in watched:
        n = e.normals(int(w1.shape[-2]))[idx]
        vals = (diff * n).sum(-1)
        out[e.attribute] = {"direction": e.spec, "rows": list(rows), "values": [float(x) for x in vals],
                            "mean": float(vals.mean())}
    return out


@dataclass
class AutoAlpha:
    """What ``--alpha auto`` found for one face: the smallest alpha in ``bounds`` whose output's score
    reaches ``target`` (``reached`` False: none did, ``alpha`` is the upper bound)."""

    alpha: float
    score: float
    target: float
    bounds: tuple[float, float]
    reached: bool
    scorer: str
    evaluations: list[tuple[float, float]] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"alpha": self.alpha, "score": self.score, "target_score": self.target, "bounds": list(self.bounds),
                "reached": self.reached, "scorer": self.scorer,
                "curve": [[round(a, 6), s] for a, s in sorted(self.evaluations)]}


def search_alpha(score_at, target: float, bounds: tuple[float, float], *, iterations: int = 8,
                 scorer: str = "") -> AutoAlpha:
    """Bisection for the smallest alpha in ``bounds`` with ``score_at(alpha) >= target``, assuming the
    score grows with alpha (Figure 3's curve). ``score_at`` returns a float (NaN counts as not
    reached). ``iterations`` halvings after the two ends: the alpha found is within
    ``(hi - lo) / 2**iterations`` above the crossing."""
    import math

    lo, hi = float(bounds[0]), float(bounds[1])
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(f"--alpha auto needs bounds lo < hi, got {bounds!r}")
    evals: list[tuple[float, float]] = []

    def f(a: float) -> float:
        s = float(score_at(a))
        evals.append((a, s))
        return s

    def ok(s: float) -> bool:
        return s == s and s >= target

    s_lo = f(lo)
    if ok(s_lo):
        return AutoAlpha(lo, s_lo, target, (lo, hi), True, scorer, evals)
    s_hi = f(hi)
    if not ok(s_hi):
        return AutoAlpha(hi, s_hi, target, (lo, hi), False, scorer, evals)
    a, b, s_b = lo, hi, s_hi
    for _ in range(int(iterations)):
        mid = 0.5 * (a + b)
        s_mid = f(mid)
        if ok(s_mid):
            b, s_b = mid, s_mid
        else:
            a = mid
    return AutoAlpha(b, s_b, target, (lo, hi), True, scorer, evals)
