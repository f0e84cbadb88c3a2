"""Latent directions: InterFaceGAN directions for the FFHQ StyleGAN2 and arbitrary vectors.

A direction ``v`` is stored per W+ row as a (num_ws or 1, w_dim) tensor; applying it adds
``alpha * v[l]`` to every row ``l`` in the chosen layers and returns the other rows bit-identical.

Accepted file shapes (``.pt`` loaded with ``weights_only=True``, ``.npy`` with ``allow_pickle=False``):
(w_dim,), (1, w_dim), (num_ws, w_dim) or (1, num_ws, w_dim). Files whose rows are all identical
(the published ``pose.pt`` is 18 copies of one unit vector) collapse to a single row.

Every direction exposes its :class:`counterface.boundary.Boundary` (``direction.boundary``; geometry
in :mod:`counterface.boundary`). The published vectors have no intercept (``intercept is None``)
unless ``counterface directions calibrate NAME`` stored one in the directions folder
(:func:`counterface.boundary.directions_dir`) under the direction's name with the same normal.
``BoundaryDirection`` (registered as ``boundary``) applies a boundary file (``path``): what
``--direction FILE.safetensors`` resolves to.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

from counterface import AttributeDirection, ConfigError, WeightsError
from counterface.boundary import vector_of
from counterface.config import parse_layers
from counterface.errors import reason

#: the generator family the published InterFaceGAN files were fitted on
FFHQ_FAMILY = "stylegan2-ffhq-1024"

#: published directions: attribute -> (weights registry name, default W+ layers or None = all).
#: smile: rows 4-6 as in the seed (SmileGAN-PTI); age/pose: all 18 rows, as e4e/PTI/HyperStyle apply
#: them (age and pose are global changes: head shape, hair, rotation live in the coarse rows too).
INTERFACEGAN: dict[str, tuple[str, str | None]] = {
    "smile": ("smile.pt", "4-6"),
    "age": ("age.pt", None),
    "pose": ("pose.pt", None),
}
#: where each published attribute lives on the face (:data:`counterface.types.REGIONS`): the tuner's
#: region loss and the metrics' preserved area follow it
INTERFACEGAN_REGIONS: dict[str, str] = {"smile": "mouth", "age": "face", "pose": "face"}


def resolve_file(name_or_path: str | Path) -> Path:
    """A local path for a registry name or a path (through :mod:`counterface.weights` when present)."""
    p = Path(str(name_or_path)).expanduser()
    if p.is_file():
        return p
    try:
        from counterface import weights
    except ImportError:  # weights manager not installed in this core
        raise WeightsError(f"direction file not found: {name_or_path}") from None
    return Path(weights.resolve(str(name_or_path)))


def load_vector(path: str | Path, *, what: str = "direction"):
    """Load a direction file (``.pt`` without executing code, ``.npy`` without pickle) as a finite
    float32 CPU tensor of shape (rows, w_dim) (checked by :func:`counterface.boundary.vector_of`)."""
    import numpy as np
    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{what} file not found: {p}")
    if p.suffix.lower() == ".npy":
        try:
            arr = np.load(p, allow_pickle=False)
        except (ValueError, OSError, EOFError) as exc:
            raise WeightsError(f"{p}: not a readable .npy {what} ({reason(exc)})") from None
        t = torch.from_numpy(np.ascontiguousarray(arr))
    else:
        from counterface_nets.checkpoints import safe_load

        t = safe_load(p, what=what)
    return vector_of(t, source=str(p), what=what)


class LatentDirection(AttributeDirection):
    """Shared implementation: ``w + alpha * v`` on the chosen W+ rows, exact elsewhere."""

    _boundary = None

    def _vector(self):
        """The (rows, w_dim) float32 CPU tensor, loaded or drawn on first use (subclasses)."""
        raise NotImplementedError

    def _file(self) -> Path | None:
        """The local file the vector comes from, if any (for its sha256)."""
        return None

    @property
    def boundary(self):
        """This direction as a :class:`counterface.boundary.Boundary` (intercept None for a bare
        vector, unless a calibration of the same normal is in the directions folder)."""
        if self._boundary is None:
            from counterface.boundary import Boundary, calibration_for

            meta: dict[str, Any] = {}
            f = self._file()
            if f is not None:
                from counterface.imageio import file_sha256

                meta = {"file_sha256": file_sha256(f), "provenance": {"file": f.name}}
            b = Boundary(normal=self._vector(), intercept=None, attribute=self.attribute, family=self.family,
                         layers=None if self.default_layers is None else list(self.default_layers), meta=meta)
            self._boundary = calibration_for(self.name or self.attribute, b) or b
        return self._boundary

    def _layers(self, layers, num_ws: int) -> list[int]:
        spec = layers if layers is not None else self.default_layers
        chosen = parse_layers(spec, num_ws)
        return list(range(num_ws)) if chosen is None else chosen

    def apply(self, w, alpha: float, layers: Sequence[int] | str | None = None):
        import torch

        v = self._vector()
        if w.dim() < 2:
            raise ConfigError(f"expected a W+ latent (..., num_ws, w_dim), got shape {tuple(w.shape)}")
        num_ws, w_dim = int(w.shape[-2]), int(w.shape[-1])
        if v.shape[1] != w_dim:
            raise ConfigError(
                f"direction {self.name or self.attribute!r} has {v.shape[1]} dimensions but the latent has {w_dim} "
                f"(a direction for another generator family: {self.family!r})"
            )
        if v.shape[0] not in (1, num_ws):
            raise ConfigError(f"direction {self.name!r} has {v.shape[0]} rows but the latent has {num_ws}")
        rows = self._layers(layers, num_ws)
        out = w.clone()
        if alpha == 0 or not rows:
            return out
        v = v.to(w.device, w.dtype)
        idx = torch.tensor(rows, dtype=torch.long, device=w.device)
        delta = v[idx] if v.shape[0] == num_ws else v.expand(len(rows), w_dim)
        out[..., idx, :] = w[..., idx, :] + float(alpha) * delta
        return out

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        d["attribute"] = self.attribute
        d["family"] = self.family
        d["default_layers"] = None if self.default_layers is None else list(self.default_layers)
        return d


class InterFaceGANDirection(LatentDirection):
    """A published InterFaceGAN direction (e4e's ``editings/interfacegan_directions``) for the FFHQ StyleGAN2.

    Parameters: ``weights`` (registry name such as ``smile.pt``, or a path to the file), ``layers``
    (default W+ rows: ``'4-6'``, ``'all'``, ``'0,2,5-7'``; ``None`` = this attribute's default),
    ``normalize`` (rescale to unit norm; the published files already are).
    """

    family = FFHQ_FAMILY

    def __init__(self, *, attribute: str = "smile", weights: str | None = None, layers: Any = None,
                 normalize: bool = False):
        if attribute not in INTERFACEGAN:
            raise ConfigError(f"unknown InterFaceGAN attribute {attribute!r}; valid: {', '.join(INTERFACEGAN)}")
        default_file, default_layers = INTERFACEGAN[attribute]
        self.attribute = attribute
        self.weights = weights or default_file
        self.layers = layers if layers is not None else default_layers
        self.default_layers = parse_layers(self.layers, None) if self.layers not in (None, "all") else None
        self.normalize = bool(normalize)
        self.region = INTERFACEGAN_REGIONS[attribute]
        self._v = None

    def _file(self) -> Path | None:
        return resolve_file(self.weights)

    def _vector(self):
        if self._v is None:
            v = load_vector(resolve_file(self.weights), what=f"{self.attribute} direction")
            if self.normalize:
                v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
            self._v = v
        return self._v


class SmileDirection(InterFaceGANDirection):
    """InterFaceGAN smile direction for the FFHQ StyleGAN2 (default W+ rows 4-6, as the seed)."""

    def __init__(self, *, weights: str | None = None, layers: Any = None, normalize: bool = False):
        super().__init__(attribute="smile", weights=weights, layers=layers, normalize=normalize)


class AgeDirection(InterFaceGANDirection):
    """InterFaceGAN age direction for the FFHQ StyleGAN2 (default: all W+ rows, as e4e/PTI)."""

    def __init__(self, *, weights: str | None = None, layers: Any = None, normalize: bool = False):
        super().__init__(attribute="age", weights=weights, layers=layers, normalize=normalize)


class PoseDirection(InterFaceGANDirection):
    """InterFaceGAN pose (yaw) direction for the FFHQ StyleGAN2 (default: all W+ rows, as e4e/PTI)."""

    def __init__(self, *, weights: str | None = None, layers: Any = None, normalize: bool = False):
        super().__init__(attribute="pose", weights=weights, layers=layers, normalize=normalize)


class VectorDirection(LatentDirection):
    """Any direction: from a ``.pt``/``.npy`` file (``path``), or a seeded random unit vector.

    Parameters: ``path`` (file; ``None`` = a deterministic random unit vector of ``dim`` dimensions
    from ``seed``, for tests and the tiny preset), ``layers`` (default rows; ``None`` = all),
    ``attribute`` (a label for sidecars), ``family`` (the generator family the vector belongs to;
    ``'any'`` skips the check), ``normalize`` (rescale rows to unit norm), ``region`` (where the
    attribute lives: ``mouth``, ``eyes``, ``face``, landmark indices; ``None`` = the whole face).
    """

    def __init__(self, *, path: str | None = None, layers: Any = None, attribute: str = "vector",
                 family: str = "any", dim: int = 512, seed: int = 0, normalize: bool = False,
                 region: Any = None):
        self.region = region
        self.path = None if path is None else str(path)
        self.layers = layers
        self.default_layers = None if layers in (None, "all") else parse_layers(layers, None)
        self.attribute = attribute
        self.family = family
        self.dim = int(dim)
        self.seed = int(seed)
        self.normalize = bool(normalize)
        self._v = None
        if self.dim <= 0:
            raise ConfigError(f"direction dim must be positive, got {dim}")

    def _file(self) -> Path | None:
        return None if self.path is None else resolve_file(self.path)

    def _vector(self):
        import torch

        if self._v is None:
            if self.path is None:
                g = torch.Generator().manual_seed(self.seed)
                v = torch.randn(1, self.dim, generator=g, dtype=torch.float32)
                v = v / v.norm()
            else:
                v = load_vector(resolve_file(self.path))
            if self.normalize:
                v = v / v.norm(dim=1, keepdim=True).clamp_min(1e-12)
            self._v = v
        return self._v


class BoundaryDirection(LatentDirection):
    """A boundary file (``counterface directions learn/calibrate``; a ``.safetensors`` file, or a
    published ``.pt``/``.npy`` vector without intercept) applied as ``w + alpha * n`` on its rows.

    Parameters: ``path`` (the file, or the name of a boundary in the directions folder), ``layers``
    (default W+ rows; ``None`` = the rows the boundary was fitted on, else every row). ``attribute``
    and ``family`` come from the file; a latent of another family or w_dim is refused with a
    ConfigError. ``region``: where the attribute lives (``mouth``, ``eyes``, ``face``, landmark
    indices; default: the file's ``region`` metadata, else the whole face). ``scorer``: the file's
    ``scorer`` metadata (the scorer ``directions calibrate`` fitted it on), else the attribute's default
    (:mod:`counterface.scoring`).
    """

    def __init__(self, *, path: str | None = None, layers: Any = None, region: Any = None):
        from counterface.boundary import find_boundary_file

        if path in (None, ""):
            raise ConfigError("direction 'boundary' needs a file: --direction FILE.safetensors "
                              "(or --set direction.path=FILE)")
        found = find_boundary_file(str(path))
        self.path = str(found if found is not None else path)
        p = Path(self.path).expanduser()
        if not p.is_file():
            raise WeightsError(f"boundary file not found: {path}")
        meta = {}
        if p.suffix.lower() == ".safetensors":  # the one validator of boundary and field files, before any use
            from counterface.boundary import read_header, validate_metadata

            header, meta = read_header(p)
            fmt = meta.get("format")
            kind = "field" if isinstance(fmt, str) and fmt.startswith("counterface-field/") else "boundary"
            validate_metadata(dict(meta), header, p, kind=kind)
        fmt = meta.get("format")
        self._is_field = isinstance(fmt, str) and fmt.startswith("counterface-field/")
        self._field = None
        self.attribute = str(meta.get("attribute") or p.stem)
        self.region = region if region is not None else meta.get("region")
        self.scorer = meta.get("scorer") if isinstance(meta.get("scorer"), str) else None  # calibrate's scorer
        self.family = str(meta.get("family") or "")
        own = meta.get("layers")
        self.layers = layers if layers is not None else own
        self.default_layers = None if self.layers in (None, "all") else parse_layers(self.layers, None)
        self._v = None

    def _file(self) -> Path | None:
        return Path(self.path).expanduser()

    @property
    def field(self):
        """The :class:`counterface.field.AttributeField` of a field file (None for a boundary): the
        pipeline then moves each face along its own path (:mod:`counterface.fieldpath`)."""
        if self._is_field and self._field is None:
            from counterface.field import load_field

            self._field = load_field(self._file())
            if self.default_layers is not None or self.layers == "all":
                self._field.layers = None if self.default_layers is None else list(self.default_layers)
        return self._field

    def apply(self, w, alpha: float, layers: Sequence[int] | str | None = None):
        """A boundary: ``w + alpha * n``; a field: each row moved a path length ``alpha`` along the field."""
        if self.field is None:
            return super().apply(w, alpha, layers)
        from counterface.fieldpath import move_latents

        rows = self._layers(layers, int(w.shape[-2]))
        flat = w.reshape(-1, *w.shape[-2:]).detach().to("cpu")
        moved, _ = move_latents(self.field, flat, length=float(alpha), rows=rows)
        return moved.reshape(w.shape).to(w.dtype).to(w.device)

    @property
    def boundary(self):
        if self._boundary is None:
            from counterface.boundary import load_boundary
            from counterface.imageio import file_sha256

            if self.field is not None:  # what needs one normal sees the field's tangent at the training mean
                b = self.field.linearized()
                b.meta["file_sha256"] = file_sha256(self._file())
                self._boundary = b
                return b
            b = load_boundary(self._file(), attribute=self.attribute, family=self.family)
            b.meta.setdefault("file_sha256", file_sha256(self._file()))
            if self.default_layers is not None or self.layers == "all":
                b.layers = None if self.default_layers is None else list(self.default_layers)
            self._boundary = b
        return self._boundary

    def _vector(self):
        if self._v is None:
            self._v = self.boundary.normal
        return self._v

    def describe(self) -> dict[str, Any]:
        d = super().describe()
        b = self.boundary
        d.update(path=self.path, sha256=b.meta.get("file_sha256"), has_intercept=b.has_intercept,
                 w_dim=b.w_dim, kind="field" if self._is_field else "boundary")
        return d
