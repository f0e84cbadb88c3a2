"""Attribute fields: a small classifier network ``f_T(w)`` on W rows whose logit's level sets are
curved boundaries (the nonlinear counterpart of :mod:`counterface.boundary`).

Geometry
--------
For a latent row ``x`` (w_dim,) (for a W+ latent, the mean of the field's ``layers``, as for a
shared boundary normal) the field's **logit** is::

    f(x) = a . z + c + sum_j v_j silu(W_k ... silu(W_1 z + b_1) ... + b_k)_j,   z = (x - mean) / scale

a linear part plus a small network (``hidden`` widths; none = a linear field). Positive = attribute
on. ``on_distance``/``off_distance`` are the median logits of the positive and of the negative
training latents (logit units, not W units). Operators move each face along its own path
(:mod:`counterface.fieldpath`), the gradient of ``f``. A linear field with a unit weight in W
(``scale`` 1, ``a`` unit) *is* a boundary: :meth:`AttributeField.from_boundary`.

Optionally a Gaussian **density** fitted on the training latents (``density.mean``,
``density.precision``, Ledoit-Wolf shrinkage) and ``density_threshold``, the 1st percentile of the
training latents' log density (up to its constant): what "near the data" means.

File format
-----------
safetensors (loaded without executing code) with tensors ``input.mean`` (w_dim,), ``input.scale``
(), ``linear.weight`` (w_dim,), ``linear.bias`` (), ``hidden.<i>.weight``/``hidden.<i>.bias``,
``output.weight`` (last width,), optionally ``density.mean``/``density.precision``; metadata (JSON
texts): ``format`` (``counterface-field/1``), ``architecture`` ({"kind": "mlp", "hidden": [...],
"activation": "silu"}), ``attribute``, ``family``, ``w_dim``, ``layers``, ``on_distance``,
``off_distance``, ``step`` (the path step in W units), ``tolerance`` (logit units),
``density_threshold`` and the fit's record (``method``, ``accuracy``, ``calibration``,
``provenance``...). Every read goes through :func:`counterface.boundary.validate_metadata`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Sequence

from .errors import ConfigError, WeightsError

if TYPE_CHECKING:  # pragma: no cover
    import torch

FORMAT = "counterface-field/1"
ACTIVATIONS = ("silu",)
#: metadata keys stored as fields of :class:`AttributeField` (everything else goes to ``meta``)
_FIELDS = ("attribute", "family", "w_dim", "layers", "on_distance", "off_distance", "step", "tolerance",
           "density_threshold", "architecture")


@dataclass(eq=False)
class AttributeField:
    """``f(x)`` of the module docstring. Tensors are float64 on the CPU."""

    mean: "torch.Tensor"
    scale: float
    linear_weight: "torch.Tensor"
    linear_bias: float
    hidden: list[tuple["torch.Tensor", "torch.Tensor"]] = field(default_factory=list)
    output_weight: "torch.Tensor | None" = None
    attribute: str = ""
    family: str = ""
    layers: list[int] | None = None
    on_distance: float | None = None
    off_distance: float | None = None
    step: float = 0.05
    tolerance: float = 1e-3
    density_mean: "torch.Tensor | None" = None
    density_precision: "torch.Tensor | None" = None
    density_threshold: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import torch

        def t(x):
            return None if x is None else torch.as_tensor(x).detach().to("cpu", torch.float64)

        self.mean, self.linear_weight = t(self.mean).reshape(-1), t(self.linear_weight).reshape(-1)
        self.hidden = [(t(w), t(b).reshape(-1)) for w, b in self.hidden]
        self.output_weight = t(self.output_weight)
        self.density_mean, self.density_precision = t(self.density_mean), t(self.density_precision)
        self.scale, self.linear_bias = float(self.scale), float(self.linear_bias)
        d = self.w_dim
        if self.linear_weight.numel() != d:
            raise ConfigError(f"field linear weight has {self.linear_weight.numel()} values for w_dim {d}")
        prev = d
        for i, (w, b) in enumerate(self.hidden):
            if w.dim() != 2 or w.shape[1] != prev or b.numel() != w.shape[0] or w.shape[0] == 0:
                raise ConfigError(f"field hidden layer {i} of shape {tuple(w.shape)} does not follow a width of {prev}")
            prev = int(w.shape[0])
        if self.hidden:
            if self.output_weight is None or self.output_weight.reshape(-1).numel() != prev:
                raise ConfigError(f"field output weight does not match the last hidden width {prev}")
            self.output_weight = self.output_weight.reshape(-1)
        if self.density_mean is not None:
            if self.density_precision is None or tuple(self.density_precision.shape) != (d, d) \
                    or self.density_mean.numel() != d:
                raise ConfigError("field density: mean and precision do not match w_dim")
        tensors = [self.mean, self.linear_weight, self.output_weight, self.density_mean, self.density_precision]
        tensors += [x for wb in self.hidden for x in wb]
        if any(x is not None and not bool(torch.isfinite(x).all()) for x in tensors):
            raise ConfigError("field weights hold NaN or infinite values")
        import math

        for name in ("scale", "linear_bias", "step", "tolerance"):
            v = float(getattr(self, name))
            if not math.isfinite(v) or (name != "linear_bias" and v <= 0):
                raise ConfigError(f"field {name} must be a positive finite number, got {v}")
        if self.layers is not None:
            self.layers = sorted({int(x) for x in self.layers})

    # -- shape and evaluation ---------------------------------------------------------------------
    @property
    def w_dim(self) -> int:
        return int(self.mean.numel())

    @property
    def is_linear(self) -> bool:
        return not self.hidden

    @property
    def widths(self) -> list[int]:
        return [int(w.shape[0]) for w, _ in self.hidden]

    def logit(self, x: "torch.Tensor") -> "torch.Tensor":
        """(N,) float64 logits of rows ``x`` (N, w_dim) (any float dtype)."""
        import torch

        x = torch.as_tensor(x).to(torch.float64)
        if x.shape[-1] != self.w_dim:
            raise ConfigError(f"field {self.attribute or '(unnamed)'!r} has {self.w_dim} dimensions but the latents "
                              f"have {int(x.shape[-1])} (a field for another generator family: {self.family!r})")
        z = (x - self.mean) / self.scale
        out = z @ self.linear_weight + self.linear_bias
        if self.hidden:
            h = z
            for w, b in self.hidden:
                h = torch.nn.functional.silu(h @ w.T + b)
            out = out + h @ self.output_weight
        return out

    def logit_and_grad(self, x: "torch.Tensor") -> tuple["torch.Tensor", "torch.Tensor"]:
        """((N,) logits, (N, w_dim) gradients d f / d x), float64."""
        import torch

        x = torch.as_tensor(x).detach().to(torch.float64)
        if self.is_linear:
            g = (self.linear_weight / self.scale).expand(x.shape[0], -1)
            return self.logit(x), g.clone()
        with torch.enable_grad():
            xx = x.clone().requires_grad_(True)
            f = self.logit(xx)
            (g,) = torch.autograd.grad(f.sum(), xx)
        return f.detach(), g.detach()

    def log_density(self, x: "torch.Tensor") -> "torch.Tensor | None":
        """(N,) Gaussian log density of rows ``x`` up to its constant; None without a density."""
        if self.density_mean is None:
            return None
        import torch

        dx = torch.as_tensor(x).to(torch.float64) - self.density_mean
        return -0.5 * ((dx @ self.density_precision) * dx).sum(-1)

    def density_gradient(self, x: "torch.Tensor") -> "torch.Tensor | None":
        if self.density_mean is None:
            return None
        import torch

        return -(torch.as_tensor(x).to(torch.float64) - self.density_mean) @ self.density_precision

    # -- conversions ------------------------------------------------------------------------------
    @classmethod
    def from_boundary(cls, b, **kwargs: Any) -> "AttributeField":
        """The linear field of a boundary with a shared normal: ``f(x) = n . x + b`` (so its logit is the
        signed distance, and its operators are the boundary's)."""
        import torch

        if not b.shared:
            raise ConfigError("only a boundary with one shared normal converts to a field")
        if b.intercept is None:
            raise ConfigError("a boundary without an intercept has no field")
        n = b.normal[0].double()
        return cls(mean=torch.zeros_like(n), scale=1.0, linear_weight=n, linear_bias=float(b.intercept[0]),
                   attribute=b.attribute, family=b.family, layers=b.layers, on_distance=b.on_distance,
                   off_distance=b.off_distance, meta=dict(b.meta), **kwargs)

    def linearized(self):
        """A :class:`~counterface.boundary.Boundary` tangent to the field at the training mean (its
        first-order Taylor expansion in W units): what code that needs one normal sees of a field."""
        import torch

        from .boundary import Boundary

        centre = self.density_mean if self.density_mean is not None else self.mean
        f, g = self.logit_and_grad(centre[None])
        gn = float(g[0].norm())
        if gn < 1e-12:
            raise ConfigError(f"field {self.attribute!r} has no gradient at its training mean")
        n = g[0] / gn
        b = float(f[0]) / gn - float(n @ centre)
        scale = lambda v: None if v is None else float(v) / gn  # noqa: E731
        meta = {**self.meta, "field": True, "linearized_at": "training mean"}
        return Boundary(normal=n.float(), intercept=torch.tensor([b]), attribute=self.attribute, family=self.family,
                        layers=self.layers, on_distance=scale(self.on_distance), off_distance=scale(self.off_distance),
                        meta=meta)

    def describe(self) -> dict[str, Any]:
        """The JSON summary ``counterface directions show --json`` prints for a field."""
        out: dict[str, Any] = {
            "kind": "field", "attribute": self.attribute, "family": self.family, "w_dim": self.w_dim,
            "layers": self.layers, "architecture": self.architecture(), "on_distance": self.on_distance,
            "off_distance": self.off_distance, "step": self.step, "tolerance": self.tolerance,
            "density": self.density_mean is not None, "density_threshold": self.density_threshold,
            "accuracy": self.meta.get("accuracy"), "has_intercept": True,
        }
        for k, v in self.meta.items():
            out.setdefault(k, v)
        return out

    def architecture(self) -> dict[str, Any]:
        return {"kind": "mlp", "hidden": self.widths, "activation": "silu"}


# -- files -----------------------------------------------------------------------------------------
def save_field(f: AttributeField, path: str | os.PathLike) -> Path:
    """Write ``f`` as a safetensors field file, atomically."""
    import torch

    from .boundary import write_safetensors

    def t(x):
        return x.detach().to(torch.float32).contiguous()

    tensors = {"input.mean": t(f.mean), "input.scale": torch.tensor(f.scale, dtype=torch.float32),
               "linear.weight": t(f.linear_weight), "linear.bias": torch.tensor(f.linear_bias, dtype=torch.float32)}
    for i, (w, b) in enumerate(f.hidden):
        tensors[f"hidden.{i}.weight"], tensors[f"hidden.{i}.bias"] = t(w), t(b)
    if f.hidden:
        tensors["output.weight"] = t(f.output_weight)
    if f.density_mean is not None:
        tensors["density.mean"], tensors["density.precision"] = t(f.density_mean), t(f.density_precision)
    fields = {"attribute": f.attribute, "family": f.family, "w_dim": f.w_dim, "layers": f.layers,
              "on_distance": f.on_distance, "off_distance": f.off_distance, "step": f.step,
              "tolerance": f.tolerance, "density_threshold": f.density_threshold, "architecture": f.architecture()}
    return write_safetensors(path, tensors, FORMAT, {**f.meta, **fields}, "field")


def is_field_file(path: str | os.PathLike) -> bool:
    """True when ``path`` is a safetensors file whose metadata says it is a field (header only)."""
    from .boundary import read_header

    p = Path(path)
    if p.suffix.lower() != ".safetensors" or not p.is_file():
        return False
    try:
        _, meta = read_header(p)
    except WeightsError:
        return False
    return isinstance(meta.get("format"), str) and meta["format"].startswith("counterface-field/")


def load_field(path: str | os.PathLike) -> AttributeField:
    """Read and validate a field file; :class:`~counterface.errors.WeightsError` (one line naming the
    file) for anything that is not a valid field."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from .boundary import read_header, validate_metadata

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"field file not found: {p}")
    header, meta = read_header(p)
    meta = validate_metadata(meta, header, p, kind="field")
    try:
        tensors = load_file(str(p))
    except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
        raise WeightsError(f"{p}: not a readable safetensors file ({' '.join(str(exc).split())[:100]})") from None
    fields = {k: meta.pop(k, None) for k in _FIELDS}
    meta.pop("format", None)
    arch = fields.pop("architecture")
    widths = arch["hidden"]
    need = ["input.mean", "input.scale", "linear.weight", "linear.bias"]
    need += [f"hidden.{i}.{k}" for i in range(len(widths)) for k in ("weight", "bias")]
    need += ["output.weight"] if widths else []
    missing = [k for k in need if k not in tensors]
    if missing:
        raise WeightsError(f"{p}: a field file with hidden widths {widths} needs the tensor {missing[0]!r}")
    for k, v in tensors.items():
        if not v.is_floating_point():
            raise WeightsError(f"{p}: field tensor {k!r} is not floating point")
    hidden = [(tensors[f"hidden.{i}.weight"], tensors[f"hidden.{i}.bias"]) for i in range(len(widths))]
    if [int(w.shape[0]) for w, _ in hidden] != list(widths):
        raise WeightsError(f"{p}: hidden widths {[tuple(w.shape) for w, _ in hidden]} do not match the "
                           f"architecture {widths}")
    try:
        f = AttributeField(
            mean=tensors["input.mean"], scale=float(tensors["input.scale"].reshape(-1)[0]),
            linear_weight=tensors["linear.weight"], linear_bias=float(tensors["linear.bias"].reshape(-1)[0]),
            hidden=hidden, output_weight=tensors.get("output.weight"), attribute=str(fields["attribute"] or p.stem),
            family=str(fields["family"] or ""), layers=fields["layers"], on_distance=fields["on_distance"],
            off_distance=fields["off_distance"], step=fields["step"] or 0.05, tolerance=fields["tolerance"] or 1e-3,
            density_mean=tensors.get("density.mean"), density_precision=tensors.get("density.precision"),
            density_threshold=fields["density_threshold"], meta=meta)
    except ConfigError as exc:
        raise WeightsError(f"{p}: {exc}") from None
    if f.w_dim != int(fields["w_dim"]):
        raise WeightsError(f"{p}: metadata says w_dim {fields['w_dim']} but the weights have {f.w_dim} dimensions")
    return f


def rows_mean(latents: "torch.Tensor", rows: Sequence[int] | None) -> "torch.Tensor":
    """(N, w_dim) float64: W latents as they are, W+ latents (N, num_ws, w_dim) the mean of ``rows``."""
    import torch

    x = torch.as_tensor(latents).to(torch.float64)
    if x.dim() == 2:
        return x
    idx = list(range(x.shape[1])) if rows is None else list(rows)
    return x[:, idx, :].mean(1)
