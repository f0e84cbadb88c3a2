"""Per-face paths along an attribute field (:mod:`counterface.field`): the operators of a field.

Each latent row ``w`` moves along its own path::

    dw/ds = u(w),   u = normalise( P(sigma grad f) + lambda normalise(P(grad log p)) )

with ``P`` the projection onto the orthogonal complement of the gradients of the kept attributes
at ``w`` (a boundary's normal, a field's gradient; re-orthonormalised at every step), ``sigma`` the
sign of the move, ``lambda`` the weight of the optional density term (a Gaussian fitted on the
training latents) and ``s`` the path length in W units. Integration: explicit steps of fixed length
``step`` (the field's, or given), the last one a Newton step onto the target (``(t - f) / (grad f . u)``)
when that is shorter; stop when ``|f - t| <= tolerance``, or after ``max_steps``.

The goal of a path comes from the :class:`counterface.Operator` component's attributes, not its name:

======================= ===============================================================================
operator                stop
======================= ===============================================================================
``needs_intercept``     f = ``op.step(0, alpha=alpha, boundary=field)``: a target level (``on``: the
                        field's on_distance, the median logit of its positive training latents, or the
                        operator's own ``distance``; ``off``: off_distance; ``neutral``: 0)
``uses_alpha``          path length ``op.step(0, alpha=alpha)`` (``shift``: alpha; ``negate``: -alpha)
otherwise               no move (``reconstruction``); an operator that ``returns_photo`` has no path
======================= ===============================================================================

For a linear field without density term and with linear kept attributes the direction is constant,
so the first Newton step lands on the target: ``w + (t - d) P n / |P n|^2``, today's boundary
operators (:mod:`counterface.counterfactual`), and ``shift`` is ``w + alpha n``. Deterministic: no
randomness, a fixed step and tolerance.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

from .errors import ConfigError

#: the most explicit steps a path takes before it is recorded as not reached
MAX_STEPS = 4000


@dataclass
class Kept:
    """A kept attribute: a boundary (``normal`` (rows, w_dim), one per W+ row or one shared) or a field."""

    name: str
    normal: Any = None
    field: Any = None

    def gradients(self, x, rows):
        """(M, w_dim) float64: the kept attribute's gradient at points ``x`` (M, w_dim) on W+ ``rows`` (M,)."""
        import torch

        if self.field is not None:
            return self.field.logit_and_grad(x)[1]
        n = self.normal.to(torch.float64)
        return n[0].expand_as(x) if n.shape[0] == 1 else n[rows]

    @property
    def linear(self) -> bool:
        return self.field is None or self.field.is_linear


def kept(obj: Any, name: str = "") -> Kept:
    """A :class:`Kept` from a Boundary or an AttributeField (or a direction exposing ``field``/``boundary``)."""
    from .field import AttributeField

    f = getattr(obj, "field", None)
    if isinstance(obj, AttributeField):
        f = obj
    if isinstance(f, AttributeField):
        return Kept(name=name or f.attribute, field=f)
    b = getattr(obj, "boundary", obj)
    if getattr(b, "normal", None) is None:
        raise ConfigError(f"--keep {name}: not a boundary or a field")
    return Kept(name=name or getattr(b, "attribute", ""), normal=b.normal)


@dataclass
class Path:
    """The end of each path: ``x`` (M, w_dim) float64, ``steps`` (M,) int, ``length`` (M,) path
    length in W, ``logit_before``/``logit_after`` (M,), ``reached`` (M,) bool."""

    x: Any
    steps: Any
    length: Any
    logit_before: Any
    logit_after: Any
    reached: Any

    def summary(self) -> dict[str, Any]:
        """Per-point lists for a sidecar."""
        return {"steps": [int(v) for v in self.steps], "path_length": [float(v) for v in self.length],
                "logit_before": [float(v) for v in self.logit_before],
                "logit_after": [float(v) for v in self.logit_after], "reached": [bool(v) for v in self.reached]}


def _project(v, qs):
    """``v`` (M, d) without its components along the orthonormal rows ``qs`` (list of (M, d)); twice."""
    for _ in range(2):
        for q in qs:
            v = v - (v * q).sum(-1, keepdim=True) * q
    return v


def _orthonormal(ks, names):
    """Gram-Schmidt of the kept gradients (list of (M, d)), per point; degenerate ones dropped."""
    import torch

    qs = []
    for k in ks:
        r = _project(k, qs)
        n = r.norm(dim=-1, keepdim=True)
        scale = k.norm(dim=-1, keepdim=True).clamp_min(1e-300)
        ok = n > 1e-10 * scale
        qs.append(torch.where(ok, r / n.clamp_min(1e-300), torch.zeros_like(r)))
    return qs


def _unit(v):
    return v / v.norm(dim=-1, keepdim=True).clamp_min(1e-300)


def walk(field, x0, *, target: Any = None, length: float | None = None, keep: Sequence[Kept] = (),
         rows=None, density: float = 0.0, step: float | None = None, tolerance: float | None = None,
         max_steps: int = MAX_STEPS) -> Path:
    """Move the points ``x0`` (M, w_dim) along the field (see the module docstring).

    Exactly one of ``target`` (a logit: a number or (M,)) and ``length`` (a signed path length).
    ``rows`` (M,) int: the W+ row of each point (for per-row kept normals; default 0)."""
    import torch

    if (target is None) == (length is None):
        raise ConfigError("a field path needs a target logit or a path length")
    x = torch.as_tensor(x0).detach().to("cpu", torch.float64).clone()
    m = x.shape[0]
    rows = torch.zeros(m, dtype=torch.long) if rows is None else torch.as_tensor(rows, dtype=torch.long)
    h = float(field.step if step is None else step)
    tol = float(field.tolerance if tolerance is None else tolerance)
    lam = float(density)
    if lam < 0 or h <= 0 or tol <= 0:
        raise ConfigError(f"a field path needs step > 0, tolerance > 0 and density >= 0 (got {h}, {tol}, {lam})")
    if lam > 0 and field.density_mean is None:
        raise ConfigError(f"field {field.attribute!r} has no density: learn it again (the density is fitted with it)")
    straight = field.is_linear and lam == 0 and all(k.linear for k in keep)
    f, g = field.logit_and_grad(x)
    f0 = f.clone()
    steps = torch.zeros(m, dtype=torch.long)
    walked = torch.zeros(m, dtype=torch.float64)
    if target is not None:
        t = torch.as_tensor(target, dtype=torch.float64).expand(m).clone()
        # a straight path always takes its Newton step (even from within the tolerance): exactly the
        # boundary operators' closed form
        active = (t - f).abs() > (0.0 if straight else tol)
    else:
        remaining = torch.full((m,), abs(float(length)), dtype=torch.float64)
        sign_len = 1.0 if float(length) >= 0 else -1.0
        active = remaining > 0
    stuck = torch.zeros(m, dtype=torch.bool)
    for _ in range(int(max_steps)):
        idx = active.nonzero().reshape(-1)
        if idx.numel() == 0:
            break
        xi, gi, ri = x[idx], g[idx], rows[idx]
        qs = _orthonormal([k.gradients(xi, ri) for k in keep], [k.name for k in keep])
        if target is not None:
            sgn = torch.sign(t[idx] - f[idx])[:, None]
        else:
            sgn = torch.full((idx.numel(), 1), sign_len, dtype=torch.float64)
        gp = _project(sgn * gi, qs)
        gnorm = gp.norm(dim=-1)
        dead = gnorm <= 1e-12 * gi.norm(dim=-1).clamp_min(1e-300)
        u = _unit(gp)
        if lam > 0:
            dp = _project(field.density_gradient(xi), qs)
            ud = _unit(u + lam * _unit(dp))
            ok = ((ud * gi).sum(-1) * sgn[:, 0]) > 0.05 * gnorm  # the density may bend, never stop the path
            u = torch.where(ok[:, None], ud, u)
        slope = (gi * u).sum(-1) * sgn[:, 0]  # d|f - t|/ds towards the target, > 0
        if target is not None:
            newton = (t[idx] - f[idx]).abs() / slope.clamp_min(1e-300)
            s = newton if straight else torch.minimum(newton, torch.full_like(newton, h))
        else:
            s = remaining[idx] if straight else torch.minimum(remaining[idx], torch.full_like(slope, h))
        s = torch.where(dead, torch.zeros_like(s), s)
        x[idx] = xi + s[:, None] * u
        walked[idx] += s
        steps[idx] += (~dead).long()
        fi, gi2 = field.logit_and_grad(x[idx])
        f[idx], g[idx] = fi, gi2
        stuck[idx[dead]] = True
        if target is not None:
            active[idx] = ((t[idx] - fi).abs() > tol) & ~dead
        else:
            rem = remaining[idx] - s
            remaining[idx] = torch.where(s >= remaining[idx], torch.zeros_like(rem), rem)
            active[idx] = (remaining[idx] > 0) & ~dead
    if target is not None:
        reached = ((t - f).abs() <= tol) & ~stuck
    else:
        reached = (remaining <= 0) & ~stuck
    return Path(x=x, steps=steps, length=walked, logit_before=f0, logit_after=f, reached=reached)


def as_operator(operator: Any) -> Any:
    """An :class:`counterface.Operator` component: ``operator`` itself, or the registered operator of that name."""
    if isinstance(operator, str):
        from . import registry

        return registry.create("operator", operator)
    return operator


def operator_goal(field, operator: Any, *, alpha: float = 1.0) -> tuple[Any, float | None]:
    """(target logit or None, path length or None) of ``operator`` (a component, or a registered name)
    on ``field``, read from the operator's attributes and its own ``step`` (see the module docstring)."""
    import torch

    op = as_operator(operator)
    name = getattr(op, "name", "") or type(op).__name__.lower()
    if getattr(op, "returns_photo", False):
        raise ConfigError(f"operator {name!r} returns the photo itself: it has no latent path")
    zero = torch.zeros(1, dtype=torch.float64)
    if getattr(op, "needs_intercept", False):  # a target level: the step from distance 0 is the level
        return float(op.step(zero, alpha=float(alpha), boundary=field, index=0, rows=1)[0]), None
    if getattr(op, "uses_alpha", True):
        return None, float(op.step(zero, alpha=float(alpha), boundary=field, index=0, rows=1)[0])
    return None, 0.0


def move_latents(field, latents, operator: Any = None, *, alpha: float = 1.0, target: Any = None,
                 length: float | None = None, keep: Sequence[Kept] = (), rows: Sequence[int] | None = None, density: float = 0.0,
                 step: float | None = None, tolerance: float | None = None, max_steps: int = MAX_STEPS):
    """Apply ``operator`` (an Operator component or a registered name; or, with no operator, exactly one of
    a ``target`` logit and a path ``length``) to latents (N, w_dim) or (N, num_ws, w_dim): every edited row on its own path
    (``rows``: the W+ rows, default the field's ``layers``, else all); the other rows bit-identical.
    Returns (moved latents as float64 torch, :class:`Path` over the (N * len(rows)) edited points,
    row-major)."""
    import torch

    lat = torch.as_tensor(latents)
    if lat.dim() not in (2, 3):
        raise ConfigError(f"latents must be (N, w_dim) or (N, num_ws, w_dim), got shape {tuple(lat.shape)}")
    w = lat.to(torch.float64)
    three = w.dim() == 3
    if not three:
        w = w[:, None, :]
    num_ws = int(w.shape[1])
    chosen = list(rows) if rows is not None else (field.layers if three and field.layers is not None else None)
    chosen = list(range(num_ws)) if chosen is None else [int(r) for r in chosen]
    if not chosen or min(chosen) < 0 or max(chosen) >= num_ws:
        raise ConfigError(f"field rows {chosen} outside the latents' {num_ws} W+ rows")
    if operator is not None:
        if target is not None or length is not None:
            raise ConfigError("a field path takes an operator, or a target logit or a path length, not both")
        target, length = operator_goal(field, operator, alpha=alpha)
    elif (target is None) == (length is None):
        raise ConfigError("a field path needs an operator, a target logit or a path length")
    pts = w[:, chosen, :].reshape(-1, w.shape[-1])
    row_of = torch.tensor(chosen, dtype=torch.long).repeat(w.shape[0])
    if length == 0.0:
        path = walk(field, pts[:0], length=0.0, keep=keep, rows=row_of[:0])
        f = field.logit(pts)
        path = Path(x=pts.clone(), steps=torch.zeros(len(pts), dtype=torch.long),
                    length=torch.zeros(len(pts), dtype=torch.float64), logit_before=f, logit_after=f.clone(),
                    reached=torch.ones(len(pts), dtype=torch.bool))
    else:
        # identical points (a W latent broadcast to W+) walk once
        uniq, inverse = torch.unique(torch.cat([pts, row_of[:, None].double()], 1), dim=0, return_inverse=True)
        sub = walk(field, uniq[:, :-1], target=target, length=length, keep=keep, rows=uniq[:, -1].long(),
                   density=density, step=step, tolerance=tolerance, max_steps=max_steps)
        path = Path(x=sub.x[inverse], steps=sub.steps[inverse], length=sub.length[inverse],
                    logit_before=sub.logit_before[inverse], logit_after=sub.logit_after[inverse],
                    reached=sub.reached[inverse])
    out = w.clone()
    out[:, chosen, :] = path.x.reshape(w.shape[0], len(chosen), w.shape[-1])
    return (out if three else out[:, 0, :]), path


def pipeline_move(name: str, operator: Any, edits: Sequence[Any], keep: Sequence[Any], w, alphas: Sequence[float]):
    """The pipeline's counterfactual latent when a field takes part (as the edited attribute or a kept
    one): (moved (num_ws, w_dim) latent, sidecar ``attributes`` records). ``edits``/``keep`` are
    :class:`counterface.counterfactual.AttributeEdit`; the edited rows each walk their own path."""
    import torch

    from .field import AttributeField

    if len(edits) != 1:
        raise ConfigError("a field edits one attribute at a time: name the others with --keep, not a second --direction")
    e = edits[0]
    f = getattr(e.direction, "field", None)
    if f is None:
        if not getattr(e.boundary, "shared", False) or e.boundary.intercept is None:
            raise ConfigError(f"direction {e.spec!r}: a field kept (--keep) needs an edited boundary with one shared "
                              "normal and an intercept")
        f = AttributeField.from_boundary(e.boundary)
    ks = [kept(getattr(k.direction, "field", None) or k.boundary, name=k.spec) for k in keep]
    moved, path = move_latents(f, w.detach().to("cpu")[None], operator, alpha=float(alphas[0]), keep=ks,
                               rows=list(e.rows))
    out = moved[0].to(w.dtype).to(w.device)
    rec = {
        "direction": e.spec, "attribute": e.attribute, "file_sha256": e.file_sha256, "layers": list(e.rows),
        "operator": name, "distance_before": [float(v) for v in path.logit_before],
        "distance_after": [float(v) for v in path.logit_after], "alpha": [float(v) for v in path.length],
        "field": {**path.summary(), "step": f.step, "tolerance": f.tolerance, "units": "logit"},
    }
    return out, [rec]
