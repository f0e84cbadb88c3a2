"""pi_1 / pi_0 orchestration. Composes components; contains no model code.

    photo -> Aligner -> faces -> Inverter -> w0+ -> Tuner -> Pivot
          -> Direction(w+, alpha) -> Generator (tuned) -> crop -> Blender -> photo'

Components are built lazily from a resolved configuration (:mod:`counterface.config`), so a command
that only aligns never loads the generator.
"""

from __future__ import annotations

import hashlib
import time
from typing import Any, Callable, Mapping

import numpy as np

from . import config as config_mod
from .errors import ConfigError, NoFaceError
from .provenance import Timer, component_record, environment
from .registry import create
from .types import AlignedFace, EditResult, Pivot

#: edit settings and their defaults (``[edit]`` in TOML, ``--set edit.KEY=V``)
EDIT_DEFAULTS: dict[str, Any] = {
    "alpha": 1.0,  # strength of pi_1
    "layers": None,  # W+ rows to edit; None = the direction's default (4-6 for smile)
    "face": "largest",  # largest | all | N (0-based index, largest first)
    "min_face": 0,  # faces narrower than this many photo pixels are skipped
    "seed": 0,
    "device": "auto",  # auto | cpu | cuda | cuda:N
}


def to_tensor(image: np.ndarray):
    """(H, W, 3) or (N, H, W, 3) uint8 -> (1 or N, 3, H, W) float32 in [-1, 1] (on the CPU).

    The result keeps the photo's pixel-interleaved memory order (a permuted view), and the two input
    ranks give different strides; convolutions pick their kernels by memory layout, so changing
    this changes downstream float rounding (and so output bytes).
    """
    import torch

    a = np.ascontiguousarray(image)
    if a.ndim == 3:
        return (torch.from_numpy(a).permute(2, 0, 1).float() / 127.5 - 1.0).unsqueeze(0)
    return torch.from_numpy(a).permute(0, 3, 1, 2).float() / 127.5 - 1.0


def to_image(t) -> np.ndarray:
    """(1, 3, H, W) or (3, H, W) float in [-1, 1], on any device -> (H, W, 3) uint8 (round half to
    even, clamped)."""
    import torch

    if t.dim() == 4:
        t = t[0]
    x = ((t.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(dtype=torch.uint8)
    return np.ascontiguousarray(x.permute(1, 2, 0).numpy())


def resolve_device(spec: str = "auto") -> str:
    import torch

    if spec in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available")
    return spec


def configure_backends(device: str) -> dict[str, bool]:
    """Set the numerics of CUDA runs deliberately (process-wide); a no-op for other devices.

    * Full float32: TF32 off in matmuls and cuDNN convolutions (PyTorch enables it for cuDNN by
      default). The tuner's losses, the early-stop threshold and the conformance tolerances assume
      float32, and TF32 results differ between GPU generations.
    * cuDNN deterministic algorithms, benchmarking off: the same inputs, settings and seed give the
      same output on the same machine (``edit.seed`` seeds the CPU and CUDA generators alike).

    Left as is: ``torch.use_deterministic_algorithms`` (it raises for the antialiased resize's CUDA
    backward, which uses atomic adds), so CUDA repeat runs agree to float rounding, not always bit
    for bit, when the tuner's working resolution is below the generator's. Returns the flags set.
    """
    import torch

    if not str(device).startswith("cuda"):
        return {}
    flags = {"matmul_allow_tf32": False, "cudnn_allow_tf32": False, "cudnn_deterministic": True,
             "cudnn_benchmark": False}
    torch.backends.cuda.matmul.allow_tf32 = flags["matmul_allow_tf32"]
    torch.backends.cudnn.allow_tf32 = flags["cudnn_allow_tf32"]
    torch.backends.cudnn.deterministic = flags["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    return flags


def select_faces(faces: list[AlignedFace], which: Any, min_face: float = 0) -> list[AlignedFace]:
    """Apply ``--face largest|all|N`` and the minimum face width; raise NoFaceError if none is left."""
    if not faces:
        raise NoFaceError("no face found")
    kept = [f for f in faces if f.face_width >= float(min_face or 0)]
    if not kept:
        raise NoFaceError(f"no face at least {min_face} px wide (largest is {faces[0].face_width:.0f} px)")
    if which in (None, "largest"):
        return kept[:1]
    if which == "all":
        return kept
    try:
        idx = int(which)
    except (TypeError, ValueError):
        raise ConfigError(f"invalid face selection {which!r}; use largest, all or an index") from None
    if not 0 <= idx < len(kept):
        raise NoFaceError(f"face {idx} requested but {len(kept)} found")
    return [kept[idx]]


class Pipeline:
    """A composed SmileGAN-PTI-style pipeline. Build with :meth:`from_config`."""

    def __init__(self, cfg: Mapping[str, Any]):
        self.config: dict[str, Any] = {k: (dict(v) if isinstance(v, Mapping) else v) for k, v in cfg.items()}
        self.edit: dict[str, Any] = {**EDIT_DEFAULTS, **dict(self.config.get("edit") or {})}
        unknown = sorted(set(self.edit) - set(EDIT_DEFAULTS))
        if unknown:
            raise ConfigError(f"unknown edit setting {unknown[0]!r}; valid: {', '.join(EDIT_DEFAULTS)}")
        self._components: dict[str, Any] = {}
        self.device = resolve_device(self.edit["device"])
        configure_backends(self.device)

    @classmethod
    def from_config(cls, cfg: Mapping[str, Any]) -> "Pipeline":
        return cls(cfg)

    @classmethod
    def from_preset(cls, name: str, **overrides: Any) -> "Pipeline":
        return cls(config_mod.resolve(preset=name, edit=overrides))

    # -- components ------------------------------------------------------------------------------
    def component(self, kind: str):
        """The component of ``kind``, built on first use from the configuration."""
        if kind not in self._components:
            name, params = config_mod.component_params(self.config, kind)
            injected = {}
            if kind in ("aligner", "generator", "inverter", "identity", "tuner"):
                injected["device"] = self.device  # where the factory takes one (edit.device means everywhere)
            if kind == "tuner":  # edit.seed governs the tuner unless its own seed is set
                injected["seed"] = int(self.edit["seed"])
            for key, value in injected.items():
                if key in params:
                    continue
                try:
                    from .registry import check_params, entry

                    check_params(entry(kind, name).factory, {key: value}, "")
                    params = {**params, key: value}
                except ConfigError:
                    pass
            self._components[kind] = create(kind, name, **params)
        return self._components[kind]

    def has(self, kind: str) -> bool:
        return bool((self.config.get(kind) or {}).get("name"))

    @property
    def generator(self):
        return self.component("generator")

    # -- stages ----------------------------------------------------------------------------------
    def align(self, image: np.ndarray, size: int | None = None) -> list[AlignedFace]:
        """Every face, largest first, aligned at the generator's resolution (step 1)."""
        size = size or self.generator.resolution
        return self.component("aligner").align(image, size=size)

    def faces(self, image: np.ndarray) -> list[AlignedFace]:
        """Aligned faces after ``edit.face`` / ``edit.min_face`` selection; NoFaceError if none."""
        return select_faces(self.align(image), self.edit["face"], self.edit["min_face"])

    def _check_family(self, comp, what: str) -> None:
        fam = getattr(comp, "family", "") or ""
        gfam = getattr(self.generator, "family", "") or ""
        if fam and gfam and fam != gfam and fam != "any":
            raise ConfigError(f"{what} {comp.name!r} is for {fam!r} but the generator {self.generator.name!r} is {gfam!r}")

    def invert(self, face: AlignedFace):
        """Step 2: (num_ws, w_dim) initial latent."""
        import torch

        inv = self.component("inverter")
        self._check_family(inv, "inverter")
        with torch.no_grad():
            w = inv.invert(to_tensor(face.crop), self.generator)
        return w[0].detach().float().cpu()

    def tune(self, face: AlignedFace, w0, progress: Callable[[dict[str, float]], None] | None = None) -> Pivot:
        """Steps 3-4: refine the latent and tune the generator around it."""
        import torch

        seed = int(self.edit["seed"])
        torch.manual_seed(seed)
        np.random.seed(seed % (2**32))
        identity = self.component("identity") if self.has("identity") else None
        target = to_tensor(face.crop)
        mask = torch.from_numpy(np.ascontiguousarray(face.mouth_mask, dtype=np.float32))[None, None]
        pivot = self.component("tuner").tune(self.generator, w0, target, mouth_mask=mask, identity=identity,
                                             progress=progress)
        pivot.generator = self.generator_record()
        return pivot

    def generator_record(self) -> dict[str, Any]:
        g = self.generator
        return {"name": g.name, "family": getattr(g, "family", ""), "params": g.describe()}

    def check_pivot(self, pivot: Pivot) -> None:
        """A pivot may only be applied to the generator it was tuned on (name, family, parameters
        other than the device, latent and tensor shapes); ConfigError otherwise."""
        mine = self.generator_record()
        theirs = pivot.generator or {}
        if theirs and (theirs.get("name"), theirs.get("family")) != (mine["name"], mine["family"]):
            raise ConfigError(
                f"pivot was tuned on generator {theirs.get('name')!r} ({theirs.get('family')}), "
                f"not {mine['name']!r} ({mine['family']})"
            )
        a = {k: v for k, v in (theirs.get("params") or {}).items() if k != "device"}
        b = {k: v for k, v in (mine.get("params") or {}).items() if k != "device"}
        if theirs and a != b:
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise ConfigError(f"pivot was tuned on a generator with other parameters ({', '.join(diff[:4])})")
        g = self.generator
        if tuple(pivot.w.shape) != (g.num_ws, g.w_dim):
            raise ConfigError(f"pivot latent has shape {tuple(pivot.w.shape)}, the generator needs ({g.num_ws}, {g.w_dim})")
        params = dict(g.module.named_parameters())
        for k, v in pivot.tensors.items():
            if k not in params or tuple(params[k].shape) != tuple(v.shape):
                raise ConfigError(f"pivot tensor {k!r} does not fit the generator")

    def edit_latent(self, w, alpha: float):
        """Step 5: w+ + alpha * v on the configured layers."""
        direction = self.component("direction")
        self._check_family(direction, "direction")
        layers = config_mod.parse_layers(self.edit["layers"], getattr(self.generator, "num_ws", None))
        return direction.apply(w, float(alpha), layers)

    def synthesize(self, pivot: Pivot, w) -> np.ndarray:
        """Step 6: the crop from the pivot's tuned generator, (R, R, 3) uint8."""
        import torch

        g = self.generator
        dev = next(iter(g.module.parameters())).device
        w = (w.unsqueeze(0) if w.dim() == 2 else w).to(dev, torch.float32)
        with torch.no_grad(), g.load_tensors(pivot.tensors):
            img = g.synthesize(w)
        return to_image(img)

    def render(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: float) -> EditResult:
        """Steps 5-7 for one alpha: edit, synthesize, paste back."""
        self.check_pivot(pivot)
        t = Timer()
        with t("edit"):
            w = self.edit_latent(pivot.w, alpha) if alpha != 0 else pivot.w.clone()
        with t("synthesize"):
            crop = self.synthesize(pivot, w)
        with t("blend"):
            out = self.component("blender").blend(photo, crop, face)
        return EditResult(image=out, crop=crop, face=face, alpha=float(alpha), meta={"seconds": t.seconds})

    def pi1(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: float | None = None) -> EditResult:
        alpha = self.edit["alpha"] if alpha is None else alpha
        return self.render(photo, face, pivot, alpha)

    def pi0(self, photo: np.ndarray, face: AlignedFace, pivot: Pivot, alpha: float | None = None) -> np.ndarray:
        alpha = float(self.edit["alpha"] if alpha is None else alpha)
        baseline = self.component("pi0")
        return baseline.make(photo, lambda a: self.render(photo, face, pivot, a).image, alpha)

    def mask(self, photo: np.ndarray, face: AlignedFace) -> np.ndarray:
        """The blender's weight m (H, W) float32 in [0, 1]: pixels where m == 0 keep the photo's values."""
        return self.component("blender").mask(photo.shape[:2], face)

    def pivot(self, face: AlignedFace, progress=None) -> tuple[Pivot, dict[str, float]]:
        """Steps 2-4 for one face, with per-stage seconds."""
        t = Timer()
        with t("invert"):
            w0 = self.invert(face)
        with t("tune"):
            pivot = self.tune(face, w0, progress=progress)
        pivot.meta.setdefault("seconds", {}).update(t.seconds)
        return pivot, t.seconds

    # -- provenance ------------------------------------------------------------------------------
    def components_record(self) -> dict[str, Any]:
        return {kind: component_record(kind, comp) for kind, comp in self._components.items()}

    def sidecar(self, *, input_path=None, input_sha256=None, face: AlignedFace | None = None,
                alpha: float | None = None, role: str | None = None, pivot: Pivot | None = None,
                seconds: Mapping[str, float] | None = None, extra: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The JSON sidecar of one output image."""
        rec: dict[str, Any] = {
            "counterface_sidecar": 1,
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
            "input": {"path": None if input_path is None else str(input_path), "sha256": input_sha256},
            "role": role,
            "alpha": alpha,
            "preset": self.config.get("preset"),
            "edit": self.edit,
            "config": {k: v for k, v in self.config.items() if k not in ("edit", "preset")},
            "components": self.components_record(),
            "environment": environment(),
            "seconds": dict(seconds or {}),
        }
        if face is not None:
            rec["face"] = face.to_json()
        rec["seed"] = self.edit.get("seed")
        if pivot is not None:
            rec["pivot"] = {"generator": pivot.generator, "meta": pivot.meta}
            rec["losses"] = pivot.meta.get("losses", {})
        if extra:
            rec.update(extra)
        return rec


def config_digest(cfg: Mapping[str, Any]) -> str:
    """A short stable hash of a configuration (used to key cached work)."""
    import json

    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]
