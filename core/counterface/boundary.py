"""Attribute boundaries: a hyperplane in a generator's W space that separates "attribute on" from "off".

Geometry (stated once; everything else refers here)
---------------------------------------------------
A boundary is a unit normal ``n`` and an intercept ``b``. The **signed distance** of a latent row
``w`` (w_dim,) is::

    d(w) = n . w + b        positive = attribute on, negative = off, 0 = on the boundary

Because ``n`` has unit length, ``d`` is a Euclidean distance in W, and moving a row by
``alpha * n`` changes its distance by exactly ``alpha`` (an edit of strength ``alpha`` is a step of
``alpha`` W-units across the boundary). ``on_distance`` and ``off_distance`` are the median signed
distances of the positive and of the negative training latents: what "typically on" and "typically
off" mean for this attribute.

A W+ latent has ``num_ws`` rows. A boundary has either **one shared normal** (``rows == 1``; the
default: it is fitted on the mean of the chosen rows, and the same normal and intercept apply to every
row) or **one normal per row** (``rows == num_ws``). ``layers`` are the W+ rows the boundary was
fitted on and that an edit moves by default (``None`` = every row).

**Conditioning** (InterFaceGAN): :func:`project_out` removes from ``n`` its components along other
boundaries' normals (Gram-Schmidt on the others first, so correlated others are handled exactly) and
re-normalises, so that moving along ``n`` leaves the other attributes' signed distances unchanged.

Published direction vectors (``smile.pt``) are unit normals without an intercept: they load as
boundaries with ``intercept=None``, and every distance is then unknown (``distance`` returns None).

File format
-----------
safetensors with tensors ``normal`` ((w_dim,) for a shared normal, (num_ws, w_dim) per row; unit
float32) and, when known, ``intercept`` (a scalar, or (num_ws,) per row; float32), plus the
safetensors metadata header (``__metadata__``), whose values are JSON texts: ``format``,
``attribute``, ``family``, ``w_dim``, ``layers``, ``on_distance``, ``off_distance`` and any entries
of :attr:`Boundary.meta` (``method``, ``n_positive``, ``n_negative``, ``accuracy``, ``conditioned_on``,
``provenance``...). A ``.pt`` (loaded with ``weights_only=True``) or ``.npy`` (``allow_pickle=False``)
vector loads as a boundary with ``intercept=None``.
"""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterable, Sequence

from .errors import ConfigError, WeightsError
from .errors import reason as _reason

if TYPE_CHECKING:  # pragma: no cover
    import torch

FORMAT = "counterface-boundary/1"
#: (num_ws, w_dim) of the latent spaces of published generators, so that checks need not load a
#: 1 GB network to know them
FAMILY_SHAPES: dict[str, tuple[int, int]] = {"stylegan2-ffhq-1024": (18, 512)}
#: suffixes read as boundary files (safetensors) and as published bare vectors
BOUNDARY_SUFFIXES = (".safetensors",)
VECTOR_SUFFIXES = (".pt", ".pth", ".npy")
#: metadata keys stored as fields of :class:`Boundary` (everything else goes to ``meta``)
_FIELDS = ("attribute", "family", "w_dim", "layers", "on_distance", "off_distance")


@dataclass(eq=False)  # tensors have no single truth value: compare fields explicitly
class Boundary:
    """A hyperplane ``n . w + b = 0`` in W (see the module docstring for the geometry).

    ``normal``: (rows, w_dim) float32 with unit rows; rows == 1 (shared) or num_ws (per row).
    ``intercept``: (rows,) float32, or None when unknown (published vectors).
    """

    normal: "torch.Tensor"
    intercept: "torch.Tensor | None" = None
    attribute: str = ""
    family: str = ""
    layers: list[int] | None = None
    on_distance: float | None = None
    off_distance: float | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        import torch

        n = torch.as_tensor(self.normal).detach().to("cpu", torch.float32)
        if n.dim() == 1:
            n = n[None]
        if n.dim() != 2 or n.shape[0] == 0 or n.shape[1] == 0:
            raise ConfigError(f"boundary normal of shape {tuple(n.shape)}; expected (w_dim,) or (num_ws, w_dim)")
        if not bool(n.isfinite().all()):
            raise ConfigError("boundary normal holds NaN or infinite values")
        norms = n.norm(dim=1, keepdim=True)
        if bool((norms < 1e-12).any()):
            raise ConfigError("boundary normal has a zero row")
        if bool(((norms - 1).abs() > 1e-6).any()):  # unit rows are kept bit for bit (files round-trip)
            n = (n.double() / norms.double()).float()
        self.normal = n.contiguous()
        if self.intercept is not None:
            b = torch.as_tensor(self.intercept).detach().to("cpu", torch.float32).reshape(-1)
            if b.numel() == 1 and self.rows > 1:
                b = b.expand(self.rows).clone()
            if b.numel() != self.rows:
                raise ConfigError(f"boundary intercept has {b.numel()} values for {self.rows} normal rows")
            if not bool(b.isfinite().all()):
                raise ConfigError("boundary intercept holds NaN or infinite values")
            self.intercept = b.contiguous()
        if self.layers is not None:
            self.layers = sorted({int(x) for x in self.layers})

    # -- shape -------------------------------------------------------------------------------------
    @property
    def rows(self) -> int:
        return int(self.normal.shape[0])

    @property
    def w_dim(self) -> int:
        return int(self.normal.shape[1])

    @property
    def has_intercept(self) -> bool:
        return self.intercept is not None

    @property
    def shared(self) -> bool:
        """True when one normal serves every W+ row."""
        return self.rows == 1

    def row_normal(self, l: int) -> "torch.Tensor":
        """The (w_dim,) unit normal for W+ row ``l`` (the shared normal for every ``l``)."""
        if self.shared:
            return self.normal[0]
        if not 0 <= int(l) < self.rows:
            raise ConfigError(f"W+ row {l} out of range: this boundary has {self.rows} rows")
        return self.normal[int(l)]

    def row_intercept(self, l: int) -> float | None:
        if self.intercept is None:
            return None
        return float(self.intercept[0 if self.shared else int(l)])

    def check_latent(self, w: "torch.Tensor") -> None:
        """ConfigError unless ``w`` (..., num_ws, w_dim) fits this boundary."""
        if w.dim() < 2:
            raise ConfigError(f"expected a W+ latent (..., num_ws, w_dim), got shape {tuple(w.shape)}")
        if int(w.shape[-1]) != self.w_dim:
            raise ConfigError(f"boundary {self.attribute or '(unnamed)'!r} has {self.w_dim} dimensions but the latent "
                              f"has {int(w.shape[-1])} (a boundary for another generator family: {self.family!r})")
        if not self.shared and int(w.shape[-2]) != self.rows:
            raise ConfigError(f"boundary has {self.rows} rows but the latent has {int(w.shape[-2])}")

    def distance(self, w: "torch.Tensor", layers: Sequence[int] | None = None) -> "torch.Tensor | None":
        """Signed distances ``n_l . w_l + b_l`` of the rows ``layers`` (default: ``self.layers``, else
        every row) of ``w`` (..., num_ws, w_dim): a tensor (..., len(layers)) in float32 on ``w``'s
        device, or None when the intercept is unknown."""
        import torch

        if self.intercept is None:
            return None
        self.check_latent(w)
        num_ws = int(w.shape[-2])
        chosen = layers if layers is not None else self.layers
        rows = list(range(num_ws)) if chosen is None else [int(x) for x in chosen]
        if rows and (min(rows) < 0 or max(rows) >= num_ws):
            raise ConfigError(f"layers {rows} out of range for a latent with {num_ws} rows")
        idx = torch.tensor(rows, dtype=torch.long, device=w.device)
        x = w.index_select(-2, idx).to(torch.float64)
        n = self.normal.to(w.device, torch.float64)
        b = self.intercept.to(w.device, torch.float64)
        if self.shared:
            d = x @ n[0] + b[0]
        else:
            d = (x * n[idx]).sum(-1) + b[idx]
        return d.float()

    def mean_distance(self, w: "torch.Tensor", layers: Sequence[int] | None = None) -> float | None:
        """The mean signed distance over the rows ``layers`` of one latent (num_ws, w_dim): for a shared
        normal, the distance of the mean row, which is what the fit saw."""
        d = self.distance(w, layers)
        return None if d is None else float(d.double().mean())

    def describe(self) -> dict[str, Any]:
        """The JSON summary ``counterface directions show --json`` prints."""
        out: dict[str, Any] = {
            "attribute": self.attribute,
            "family": self.family,
            "w_dim": self.w_dim,
            "rows": self.rows,
            "layers": self.layers,
            "has_intercept": self.has_intercept,
            "intercept": None if self.intercept is None else (
                float(self.intercept[0]) if self.shared else [float(x) for x in self.intercept]),
            "accuracy": self.meta.get("accuracy"),
            "on_distance": self.on_distance,
            "off_distance": self.off_distance,
        }
        for k, v in self.meta.items():
            out.setdefault(k, v)
        return out


def same_family(a: str | None, b: str | None) -> bool:
    """False only when both families are known and differ (``''`` and ``'any'`` match every family)."""
    unknown = ("", "any", None)
    return a in unknown or b in unknown or a == b


# -- geometry --------------------------------------------------------------------------------------
def project_out(normal: "torch.Tensor", others: Iterable["torch.Tensor"]) -> "torch.Tensor":
    """InterFaceGAN conditioning: ``normal`` without its components along ``others``, re-normalised.

    ``normal``: (w_dim,) or (rows, w_dim) (each row conditioned on its own); ``others``: tensors of
    shape (w_dim,). The others are orthonormalised first (QR in float64, so correlated others are
    removed exactly, not one after another), then the span is subtracted. Raises ConfigError when
    ``normal`` lies (almost) in the others' span. Returns float32 unit rows of ``normal``'s shape.
    """
    import torch

    n = torch.as_tensor(normal).detach().to("cpu", torch.float64)
    squeeze = n.dim() == 1
    n2 = n[None] if squeeze else n
    others = [torch.as_tensor(o).detach().to("cpu", torch.float64).reshape(-1) for o in others]
    if not others:
        out = n2 / n2.norm(dim=1, keepdim=True)
        return (out[0] if squeeze else out).float()
    for o in others:
        if o.numel() != n2.shape[1]:
            raise ConfigError(f"cannot condition a {n2.shape[1]}-dimensional normal on a {o.numel()}-dimensional one")
    a = torch.stack(others, dim=1)  # (w_dim, k)
    q, r = torch.linalg.qr(a)
    keep = r.diagonal().abs() > 1e-10 * max(1.0, float(r.diagonal().abs().max()))
    q = q[:, keep]  # an other that is a combination of the previous ones adds nothing
    out = n2 - (n2 @ q) @ q.T
    out = out - (out @ q) @ q.T  # second pass: float64 residue below 1e-15
    norms = out.norm(dim=1, keepdim=True)
    if bool((norms < 1e-6 * n2.norm(dim=1, keepdim=True)).any()):
        raise ConfigError("the normal lies in the span of the boundaries it is conditioned on: nothing is left")
    out = out / norms
    return (out[0] if squeeze else out).float()


def condition(b: Boundary, others: Sequence[Boundary], names: Sequence[str] | None = None) -> Boundary:
    """``b`` conditioned on ``others`` (per row when ``b`` has one normal per row); the intercept is
    kept, ``meta['conditioned_on']`` lists ``names``. The intercept of a conditioned boundary should be
    re-fitted (the learner does) since the projected hyperplane passes elsewhere."""
    import torch

    for o in others:
        if o.w_dim != b.w_dim:
            raise ConfigError(f"cannot condition a {b.w_dim}-dimensional boundary on a {o.w_dim}-dimensional one "
                              f"({o.attribute or 'unnamed'}, family {o.family or 'unknown'!r})")
    if b.shared:
        rows = [project_out(b.normal[0], [o.row_normal(0) if o.shared else o.normal.mean(0) for o in others])]
    else:
        rows = [project_out(b.normal[l], [o.row_normal(l) for o in others]) for l in range(b.rows)]
    meta = dict(b.meta)
    meta["conditioned_on"] = list(names) if names is not None else [o.attribute for o in others]
    return Boundary(torch.stack(rows), b.intercept, b.attribute, b.family, b.layers, b.on_distance, b.off_distance,
                    meta)


# -- files -----------------------------------------------------------------------------------------
def _jsonable(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def write_safetensors(path: str | os.PathLike, tensors: dict[str, Any], fmt: str, items: dict[str, Any],
                      what: str) -> Path:
    """Write ``tensors`` with ``{"format": fmt, **items}`` as JSON-encoded safetensors metadata, atomically
    (boundary and field files alike); a value that is not JSON is one ConfigError naming ``what``."""
    from safetensors.torch import save as st_save

    from .imageio import write_bytes

    meta: dict[str, str] = {"format": json.dumps(fmt)}
    for k, v in items.items():
        try:
            meta[str(k)] = json.dumps(_jsonable(v), sort_keys=True, allow_nan=False)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{what} metadata {k!r} is not JSON ({exc})") from None
    p = Path(path)
    write_bytes(p, st_save(tensors, metadata=meta))
    return p


def save_boundary(b: Boundary, path: str | os.PathLike) -> Path:
    """Write ``b`` as a safetensors boundary file, atomically (see the module docstring)."""
    tensors = {"normal": b.normal[0].contiguous() if b.shared else b.normal.contiguous()}
    if b.intercept is not None:
        tensors["intercept"] = b.intercept[0].reshape(()).contiguous() if b.shared else b.intercept.contiguous()
    fields = {"attribute": b.attribute, "family": b.family, "w_dim": b.w_dim, "layers": b.layers,
              "on_distance": b.on_distance, "off_distance": b.off_distance}
    return write_safetensors(path, tensors, FORMAT, {**b.meta, **fields}, "boundary")


def read_metadata(path: str | os.PathLike) -> dict[str, Any]:
    """The decoded JSON metadata of a safetensors boundary file, without reading its tensors."""
    return read_header(path)[1]


def read_header(path: str | os.PathLike) -> tuple[dict[str, Any], dict[str, Any]]:
    """(tensor name -> {dtype, shape}, decoded JSON metadata) of a safetensors file; reads the header only."""
    p = Path(path)
    try:
        with open(p, "rb") as f:
            head = f.read(8)
            if len(head) != 8:
                raise ValueError("file too short")
            n = int.from_bytes(head, "little")
            if n <= 0 or n > 100_000_000:
                raise ValueError("bad header length")
            header = json.loads(f.read(n).decode("utf-8"))
    except FileNotFoundError:
        raise WeightsError(f"boundary file not found: {p}") from None
    except (OSError, ValueError, UnicodeDecodeError) as exc:
        raise WeightsError(f"{p}: not a safetensors boundary file ({_reason(exc, 100)})") from None
    if not isinstance(header, dict):
        raise WeightsError(f"{p}: not a safetensors boundary file (bad header)")
    raw = header.get("__metadata__") or {}
    out: dict[str, Any] = {}
    for k, v in raw.items():
        try:
            out[k] = json.loads(v)
        except (TypeError, ValueError):
            out[k] = v
    tensors = {k: {"dtype": v.get("dtype"), "shape": v.get("shape")} for k, v in header.items()
               if k != "__metadata__" and isinstance(v, dict)}
    return tensors, out


FORMATS = {"boundary": FORMAT, "field": "counterface-field/1"}
#: metadata entries that must be numbers when present (bool is not a number here)
_NUMERIC = ("on_distance", "off_distance", "accuracy", "accuracy_sd", "train_accuracy", "n_positive", "n_negative",
            "step", "tolerance", "density_threshold")


def family_shape(family: str | None) -> tuple[int | None, int | None]:
    """(num_ws, w_dim) a family string implies: a published family's shape, or the ``-s<size>-d<dim>``
    parts of a StyleGAN2 family name (num_ws = 2 log2(size) - 2); None where it says nothing."""
    import re

    if not family:
        return None, None
    if family in FAMILY_SHAPES:
        return FAMILY_SHAPES[family]
    size = re.search(r"-s(\d+)(?:-|$)", family)
    dim = re.search(r"-d(\d+)(?:-|$)", family)
    num_ws = None
    if size and int(size.group(1)) >= 4 and (int(size.group(1)) & (int(size.group(1)) - 1)) == 0:
        num_ws = 2 * (int(size.group(1)).bit_length() - 1) - 2
    return num_ws, (int(dim.group(1)) if dim else None)


def _number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def validate_metadata(meta: dict[str, Any], tensors: dict[str, Any], path: str | os.PathLike,
                      kind: str = "boundary") -> dict[str, Any]:
    """The one check of a boundary or field file's header, on every read (list, show, use): a known
    ``format`` version, ``w_dim`` a positive integer consistent with the tensors and the family,
    ``layers`` absent or a non-empty list of rows inside the family's generator, finite numbers
    where numbers belong, ``on_distance > off_distance``. Returns ``meta``; raises WeightsError
    (one line naming the file)."""
    p = Path(path)

    def bad(why: str) -> WeightsError:
        return WeightsError(f"{p}: invalid {kind} file: {why}")

    fmt = meta.get("format")
    want = FORMATS[kind]
    if fmt is None and kind == "boundary":
        pass  # a boundary written elsewhere, without the header entry
    elif not isinstance(fmt, str) or fmt != want:
        other = [k for k, v in FORMATS.items() if v == fmt]
        if other:
            raise bad(f"it is a {other[0]} file ({fmt}), not a {kind}")
        raise bad(f"unknown format {str(fmt)[:40]!r} (this version reads {want})")
    w_dim = meta.get("w_dim")
    if w_dim is not None or kind == "field":
        if not isinstance(w_dim, int) or isinstance(w_dim, bool) or w_dim <= 0:
            raise bad(f"w_dim must be a positive integer, got {str(w_dim)[:40]!r}")
    for k in _NUMERIC:
        if k in meta and meta[k] is not None and not _number(meta[k]):
            raise bad(f"{k} must be a finite number, got {str(meta[k])[:40]!r}")
    acc = meta.get("accuracy")
    if acc is not None and not 0 <= acc <= 1:
        raise bad(f"accuracy {acc} is not in [0, 1]")
    on, off = meta.get("on_distance"), meta.get("off_distance")
    if kind == "field" and (on is None or off is None):
        raise bad("a field needs on_distance and off_distance")
    if on is not None and off is not None and not on > off:
        raise bad(f"on_distance {on} is not above off_distance {off} (on and off swapped?)")
    family = meta.get("family")
    if family is not None and not isinstance(family, str):
        raise bad(f"family must be a string, got {str(family)[:40]!r}")
    num_ws, fam_dim = family_shape(family)
    if fam_dim is not None and w_dim is not None and fam_dim != w_dim:
        raise bad(f"family {family!r} has w_dim {fam_dim}, the file says {w_dim}")
    layers = meta.get("layers")
    if layers is not None and layers != "all":
        if not isinstance(layers, list) or not layers:
            raise bad(f"layers must be a non-empty list of W+ rows (or absent for all), got {str(layers)[:40]!r}")
        if not all(isinstance(r, int) and not isinstance(r, bool) and r >= 0 for r in layers):
            raise bad(f"layers must be non-negative integers, got {str(layers)[:60]!r}")
        if num_ws is not None and max(layers) >= num_ws:
            raise bad(f"layers {layers} outside the {num_ws} W+ rows of {family!r}")
    if kind == "field":
        arch = meta.get("architecture")
        if not isinstance(arch, dict) or arch.get("kind") != "mlp" or arch.get("activation", "silu") != "silu" \
                or not isinstance(arch.get("hidden"), list) \
                or not all(isinstance(h, int) and not isinstance(h, bool) and 0 < h <= 100_000 for h in arch["hidden"]):
            raise bad(f"unknown architecture {str(arch)[:60]!r}")
        for k in ("step", "tolerance"):
            if meta.get(k) is not None and not meta[k] > 0:
                raise bad(f"{k} must be positive, got {meta[k]}")
        main = tensors.get("linear.weight")
    else:
        main = tensors.get("normal")
        if main is None:
            raise bad(f"a boundary file needs a tensor named 'normal' (found {sorted(tensors)[:5]})")
    if main is not None:
        shape = main.get("shape")
        if not isinstance(shape, list) or not shape or not all(isinstance(s, int) for s in shape):
            raise bad(f"tensor shape {shape!r}")
        if w_dim is not None and shape[-1] != w_dim:
            raise bad(f"metadata says w_dim {w_dim} but the weights have {shape[-1]} dimensions")
        if fam_dim is not None and shape[-1] != fam_dim:
            raise bad(f"family {family!r} has w_dim {fam_dim}, the weights have {shape[-1]}")
    for name, t in tensors.items():
        if t.get("dtype") not in ("F16", "BF16", "F32", "F64"):
            raise bad(f"tensor {name!r} is not floating point ({t.get('dtype')})")
    return meta


def load_boundary(path: str | os.PathLike, *, attribute: str = "", family: str = "") -> Boundary:
    """Read a boundary file (``.safetensors``) or a published vector (``.pt``/``.npy``, intercept None).

    ``attribute``/``family`` fill in what a bare vector cannot say (the file stem / unknown).
    Raises :class:`~counterface.errors.WeightsError` for a missing or unreadable file.
    """
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"boundary file not found: {p}")
    suffix = p.suffix.lower()
    if suffix in BOUNDARY_SUFFIXES:
        from safetensors import SafetensorError
        from safetensors.torch import load_file

        header, meta = read_header(p)
        validate_metadata(meta, header, p, kind="boundary")
        try:
            tensors = load_file(str(p))
        except (SafetensorError, OSError, ValueError, RuntimeError) as exc:
            raise WeightsError(f"{p}: not a readable safetensors file ({_reason(exc, 100)})") from None
        if "normal" not in tensors:
            raise WeightsError(f"{p}: a boundary file needs a tensor named 'normal' (found {sorted(tensors)})")
        fields = {k: meta.pop(k, None) for k in _FIELDS}
        meta.pop("format", None)
        if fields["layers"] == "all":
            fields["layers"] = None
        normal = tensors["normal"].float()
        w_dim = fields["w_dim"]
        if w_dim is not None and int(w_dim) != int(normal.shape[-1]):
            raise WeightsError(f"{p}: metadata says w_dim {w_dim} but the normal has {normal.shape[-1]} dimensions")
        try:
            return Boundary(normal=normal, intercept=tensors.get("intercept"),
                            attribute=str(fields["attribute"] or attribute or p.stem),
                            family=str(fields["family"] or family or ""), layers=fields["layers"],
                            on_distance=fields["on_distance"], off_distance=fields["off_distance"], meta=meta)
        except ConfigError as exc:
            raise WeightsError(f"{p}: {exc}") from None
    if suffix in VECTOR_SUFFIXES:
        return Boundary(normal=load_vector(p), intercept=None, attribute=attribute or p.stem, family=family,
                        meta={"provenance": {"file": p.name}})
    raise WeightsError(f"{p}: a boundary is a .safetensors file (or a published .pt/.npy vector), not {suffix or 'this'}")


def load_vector(path: str | os.PathLike) -> "torch.Tensor":
    """A bare direction vector from ``.pt`` (``weights_only=True``) or ``.npy`` (no pickle) as a
    (rows, w_dim) float32 tensor; rows that are all identical collapse to one."""
    import numpy as np
    import torch

    p = Path(path)
    try:
        if p.suffix.lower() == ".npy":
            t = torch.from_numpy(np.ascontiguousarray(np.load(p, allow_pickle=False)))
        else:
            t = torch.load(p, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise WeightsError(f"direction file not found: {p}") from None
    except Exception as exc:  # noqa: BLE001 - unpickling errors come in many types
        raise WeightsError(f"{p}: not a readable direction vector ({_reason(exc, 100)})") from None
    return vector_of(t, source=str(p))


def vector_of(t: Any, *, source: str, what: str = "direction") -> "torch.Tensor":
    """What a direction file held (a tensor, or a dict with exactly one tensor) as a finite (rows, w_dim)
    float32 CPU tensor: (w_dim,) | (1, w_dim) | (R, w_dim) | (1, R, w_dim); rows that are all identical
    collapse to one. Anything else is a :class:`WeightsError` naming ``source``."""
    import torch

    if isinstance(t, dict):
        tensors = [v for v in t.values() if isinstance(v, torch.Tensor)]
        if len(tensors) != 1:
            raise WeightsError(f"{source}: expected one tensor, found a dict with keys {sorted(map(str, t))[:5]}")
        t = tensors[0]
    if not isinstance(t, torch.Tensor) or not t.is_floating_point():
        raise WeightsError(f"{source}: a {what} must hold a floating-point tensor, found {type(t).__name__}")
    t = t.detach().to("cpu", torch.float32)
    if t.dim() == 3 and t.shape[0] == 1:
        t = t[0]
    if t.dim() == 1:
        t = t[None]
    if t.dim() != 2 or t.shape[1] == 0 or t.shape[0] == 0:
        raise WeightsError(f"{source}: {what} of shape {tuple(t.shape)}; expected (w_dim,), (1, w_dim) or (num_ws, w_dim)")
    if not bool(t.isfinite().all()):
        raise WeightsError(f"{source}: {what} holds NaN or infinite values")
    if t.shape[0] > 1 and bool((t == t[:1]).all()):
        t = t[:1]
    return t.contiguous()


def is_boundary_path(text: str) -> bool:
    """True when ``text`` names an existing boundary or vector file (what ``--direction`` accepts)."""
    p = Path(str(text)).expanduser()
    return p.suffix.lower() in BOUNDARY_SUFFIXES + VECTOR_SUFFIXES and p.is_file()


# -- the user's directions folder ------------------------------------------------------------------
ENV_DIRECTIONS = "COUNTERFACE_DIRECTIONS"


def directions_dir() -> Path:
    """Where learned boundaries can be kept to be used by name: ``$COUNTERFACE_DIRECTIONS``, else
    ``<counterface cache>/directions``. ``--direction NAME`` finds ``NAME.safetensors`` there."""
    env = os.environ.get(ENV_DIRECTIONS)
    if env:
        return Path(env).expanduser()
    from .weights import cache_dir

    return cache_dir() / "directions"


def cached_boundaries() -> dict[str, Path]:
    """name (file stem) -> path of every ``.safetensors`` boundary in :func:`directions_dir`."""
    d = directions_dir()
    if not d.is_dir():
        return {}
    return {p.stem: p for p in sorted(d.glob("*.safetensors")) if p.is_file()}


def find_boundary_file(name_or_path: str) -> Path | None:
    """The file a ``--direction`` value names: an existing boundary/vector path, or a cached
    boundary's name; None otherwise (then it is a registered direction's name)."""
    if is_boundary_path(name_or_path):
        return Path(str(name_or_path)).expanduser()
    return cached_boundaries().get(str(name_or_path))


def calibration_for(name: str, b: Boundary) -> Boundary | None:
    """The cached boundary ``name`` in :func:`directions_dir` when it calibrates ``b``: the same
    w_dim, the same family (or an unknown one) and the same normal (every row's cosine >= 1 - 1e-6);
    None otherwise. It carries the intercept and on/off distances that ``b``, a bare vector, lacks."""
    path = cached_boundaries().get(str(name)) if name else None
    if path is None:
        return None
    try:
        c = load_boundary(path)
    except WeightsError:
        return None
    if c.w_dim != b.w_dim or not c.has_intercept or not same_family(c.family, b.family):
        return None
    rows = max(c.rows, b.rows)
    cos = [float(c.row_normal(min(l, c.rows - 1)) @ b.row_normal(min(l, b.rows - 1))) for l in range(rows)]
    if min(cos) < 1 - 1e-6:
        return None
    c.meta.setdefault("calibration", str(path))
    if c.layers is None:
        c.layers = b.layers
    return c
