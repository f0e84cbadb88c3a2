"""The notebook API: one call per result, objects that show themselves in Jupyter.

::

    import counterface
    r = counterface.pairs("photo.jpg", preset="tiny")          # Z1 = pi_1(Z) and Z0 = pi_0(Z)
    r                                                           # Z | Z1 | Z0 side by side in Jupyter
    r.z1, r.z0                                                  # (H, W, 3) uint8, the photo's shape
    r.sidecars["z1"]                                            # what `counterface pairs` writes as JSON
    s = counterface.sweep("photo.jpg", alphas=[-2, 0, 2], preset="tiny")
    s.images[0], s.alphas                                       # one image per alpha, and a strip

``photo``: a path or an (H, W, 3) uint8 RGB array. ``preset``: a registered preset (``counterface
presets``; default ``smilegan-pti``). ``**settings``, one name per concept as on the command line:

* an edit setting (``alpha``, ``layers``, ``face``, ``seed``, ``directions``, ``keep``, ``watch``, ...:
  :data:`counterface.pipeline.EDIT_DEFAULTS`);
* a component section (``direction="g.safetensors"``, ``pi1="on"``, ``aligner="dlib"``), a name or a
  dict ``{"name": ..., param: value}``;
* ``sets=["tuner.tune_steps=20"]`` (``--set``) and ``config_file="run.toml"`` (``--config``).

One face per call: the selection's first (the largest unless ``face=N`` or ``face="match"``).
Results are reproducible: the same photo, preset, settings and seed give the same pixels.
"""

from __future__ import annotations

import base64
import html
import io
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

import numpy as np

from .errors import ConfigError

#: display height (pixels) of each image in a notebook
DISPLAY_HEIGHT = 256


# -- the glue to the per-photo flow (the one place to re-point) -------------------------------------------
def _pipeline(preset: str | None, settings: Mapping[str, Any]):
    """A :class:`~counterface.pipeline.Pipeline` from a preset and notebook settings."""
    from . import config as config_mod
    from .pipeline import EDIT_DEFAULTS, Pipeline
    from .registry import SECTIONS

    settings = dict(settings)
    sets = list(settings.pop("sets", None) or [])
    if isinstance(sets, str):
        sets = [sets]
    config_file = settings.pop("config_file", None)
    edit: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for key, value in settings.items():
        if key in EDIT_DEFAULTS:
            edit[key] = value
        elif key in SECTIONS:
            if isinstance(value, Mapping):
                params = dict(value)
                if "name" in params:
                    components[key] = str(params.pop("name"))
                sets += [f"{key}.{k}={json.dumps(v)}" for k, v in params.items() if v is not None]
            else:
                components[key] = value
        else:
            valid = sorted([*EDIT_DEFAULTS, *SECTIONS, "sets", "config_file"])
            raise ConfigError(f"unknown setting {key!r}; valid: {', '.join(valid)}")
    cfg = config_mod.resolve(preset=preset, config_file=config_file, components=components, sets=sets, edit=edit)
    return Pipeline.from_config(cfg)


def _read(photo: Any) -> tuple[np.ndarray, str | None, str | None]:
    """(RGB uint8 image, path or None, sha256 or None) of a path or an array."""
    from .imageio import file_sha256, read_image

    if isinstance(photo, (str, Path)):
        return read_image(photo), str(photo), file_sha256(photo)
    a = np.asarray(photo)
    if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
        raise ConfigError(f"photo: expected a path or an (H, W, 3) uint8 RGB array, got {a.dtype} {a.shape}")
    import hashlib

    return np.ascontiguousarray(a), None, hashlib.sha256(a.tobytes()).hexdigest()


def _edit_photo(photo: Any, preset: str | None, settings: Mapping[str, Any], alphas: Sequence[float] | None = None):
    """Read, align, select the face, tune its pivot, then render: (pi_1, pi_0) when ``alphas`` is
    None, else one image per alpha. Returns (photo, path, the EditResults, sidecars, mask)."""
    pipe = _pipeline(preset, settings)
    image, path, sha = _read(photo)
    pipe.check_operators()
    face = pipe.faces(image)[0]
    pivot, seconds = pipe.pivot(face)
    pivot.meta["source"] = {"input": path, "input_sha256": sha, "face_index": face.index}
    match = {"match": pipe.last_match.to_json()} if pipe.last_match is not None else {}
    if alphas is None:
        z1 = pipe.pi1(image, face, pivot)
        z0 = pipe.pi0(image, face, pivot)
        leak = pipe.leakage(pivot, z1, z0)
        results = {"z1": z1, "z0": z0}
        extra = {**leak, **match}
        sides = {role: pipe.sidecar(input_path=path, input_sha256=sha, face=face, alpha=z1.alpha, role=role,
                                    pivot=pivot, seconds={**seconds, **res.meta["seconds"]},
                                    attributes=res.meta["attributes"], extra=extra)
                 for role, res in results.items()}
    else:
        results = [pipe.render(image, face, pivot, float(a)) for a in alphas]
        sides = [pipe.sidecar(input_path=path, input_sha256=sha, face=face, alpha=float(a), role="z1", pivot=pivot,
                              seconds={**seconds, **res.meta["seconds"]}, attributes=res.meta["attributes"],
                              extra={"sweep": [float(x) for x in alphas], **pipe.leakage(pivot, res), **match})
                 for a, res in zip(alphas, results)]
    return image, results, sides, pipe.mask(image, face)


# -- display helpers --------------------------------------------------------------------------------------
def _resize(image: np.ndarray, height: int) -> np.ndarray:
    import cv2

    h, w = image.shape[:2]
    if h == height:
        return image
    width = max(1, round(w * height / h))
    interp = cv2.INTER_AREA if height < h else cv2.INTER_LINEAR
    return cv2.resize(np.ascontiguousarray(image), (width, height), interpolation=interp)


def _png(image: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(np.ascontiguousarray(image)).save(buf, format="PNG")
    return buf.getvalue()


def _side_by_side(images: Sequence[np.ndarray], height: int, gap: int = 4) -> np.ndarray:
    tiles = [_resize(im, height) for im in images]
    white = np.full((height, gap, 3), 255, np.uint8)
    parts = [x for t in tiles for x in (t, white)][:-1]
    return np.ascontiguousarray(np.concatenate(parts, axis=1))


def _html(images: Sequence[np.ndarray], captions: Sequence[str], height: int) -> str:
    figs = []
    for im, cap in zip(images, captions):
        data = base64.b64encode(_png(_resize(im, height))).decode("ascii")
        figs.append(f'<figure style="margin:0 6px 0 0;text-align:center">'
                    f'<img src="data:image/png;base64,{data}" style="height:{height}px" alt="{html.escape(cap)}"/>'
                    f'<figcaption style="font-size:12px">{html.escape(cap)}</figcaption></figure>')
    return f'<div style="display:flex;flex-wrap:wrap;align-items:flex-start">{"".join(figs)}</div>'


def _face_box(mask: np.ndarray, margin: float = 0.1) -> tuple[int, int, int, int]:
    """(y0, y1, x0, x1): the blend mask's bounding box grown by ``margin`` (the whole image if empty)."""
    ys, xs = np.nonzero(mask > 0)
    h, w = mask.shape[:2]
    if not len(xs):
        return 0, h, 0, w
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    my, mx = int(margin * (y1 - y0)), int(margin * (x1 - x0))
    return max(0, y0 - my), min(h, y1 + my), max(0, x0 - mx), min(w, x1 + mx)


def _save(out_dir, named: Mapping[str, tuple[np.ndarray, Mapping[str, Any]]], inputs: Iterable[str]) -> list[Path]:
    from .imageio import write_image, write_json

    written = []
    for stem, (image, side) in named.items():
        out = write_image(f"{stem}.png", image, out_dir=out_dir, inputs=list(inputs))
        write_json(f"{stem}.json", {**side, "output": out.name}, out_dir=out_dir, inputs=list(inputs))
        written.append(out)
    return written


# -- results -----------------------------------------------------------------------------------------------
@dataclass
class Pairs:
    """The counterfactual pair of one face: ``z1`` = pi_1(Z) (attribute on), ``z0`` = pi_0(Z)
    (the baseline), both (H, W, 3) uint8 with the photo's shape; ``photo`` the input; ``sidecars``
    the JSON records (``"z1"``, ``"z0"``) that ``counterface pairs`` writes beside the images."""

    photo: np.ndarray
    z1: np.ndarray
    z0: np.ndarray
    sidecars: dict[str, dict[str, Any]] = field(default_factory=dict)
    mask: np.ndarray | None = field(default=None, repr=False)

    @property
    def alpha(self) -> Any:
        return self.sidecars.get("z1", {}).get("alpha")

    def _crops(self) -> list[np.ndarray]:
        if self.mask is None:
            return [self.photo, self.z1, self.z0]
        y0, y1, x0, x1 = _face_box(self.mask)
        return [im[y0:y1, x0:x1] for im in (self.photo, self.z1, self.z0)]

    def _captions(self) -> list[str]:
        return ["Z (photo)", f"Z1 = pi_1(Z), alpha {self.alpha}", "Z0 = pi_0(Z)"]

    def _repr_png_(self) -> bytes:
        return _png(_side_by_side(self._crops(), DISPLAY_HEIGHT))

    def _repr_html_(self) -> str:
        return _html(self._crops(), self._captions(), DISPLAY_HEIGHT)

    def save(self, out_dir: str | Path, stem: str = "photo") -> list[Path]:
        """Write ``stem_z1.png``/``stem_z0.png`` and their JSON sidecars into ``out_dir`` (atomically;
        never over the input photo)."""
        src = [p for p in (self.sidecars.get("z1", {}).get("input", {}).get("path"),) if p]
        return _save(out_dir, {f"{stem}_z1": (self.z1, self.sidecars["z1"]),
                               f"{stem}_z0": (self.z0, self.sidecars["z0"])}, src)

    def __repr__(self) -> str:
        return f"Pairs(photo {self.photo.shape}, alpha {self.alpha}, roles z1, z0)"


@dataclass
class Sweep:
    """One face edited at several strengths: ``images[i]`` (H, W, 3) uint8 at ``alphas[i]``, each with
    its sidecar; displays as a strip of the face's neighbourhood."""

    photo: np.ndarray
    alphas: list[float]
    images: list[np.ndarray]
    sidecars: list[dict[str, Any]] = field(default_factory=list)
    mask: np.ndarray | None = field(default=None, repr=False)

    def _crops(self) -> list[np.ndarray]:
        if self.mask is None:
            return list(self.images)
        y0, y1, x0, x1 = _face_box(self.mask)
        return [im[y0:y1, x0:x1] for im in self.images]

    @property
    def strip(self) -> np.ndarray:
        """The images side by side (the face's neighbourhood, :data:`DISPLAY_HEIGHT` px high)."""
        return _side_by_side(self._crops(), DISPLAY_HEIGHT)

    def _repr_png_(self) -> bytes:
        return _png(self.strip)

    def _repr_html_(self) -> str:
        return _html(self._crops(), [f"alpha {a:g}" for a in self.alphas], DISPLAY_HEIGHT)

    def save(self, out_dir: str | Path, stem: str = "photo") -> list[Path]:
        """Write ``stem_a<alpha>.png`` and its sidecar per alpha into ``out_dir``."""
        from .batch.manifest import alpha_tag

        src = [p for p in ((self.sidecars[0].get("input", {}).get("path") if self.sidecars else None),) if p]
        return _save(out_dir, {f"{stem}_{alpha_tag(a)}": (im, side)
                               for a, im, side in zip(self.alphas, self.images, self.sidecars)}, src)

    def __repr__(self) -> str:
        return f"Sweep(photo {self.photo.shape}, alphas {self.alphas})"


# -- the calls ---------------------------------------------------------------------------------------------
def pairs(photo: Any, preset: str | None = None, **settings: Any) -> Pairs:
    """Z1 = pi_1(Z) and Z0 = pi_0(Z) of one face of ``photo`` (see the module doc for ``settings``)."""
    image, results, sides, mask = _edit_photo(photo, preset, settings)
    return Pairs(photo=image, z1=results["z1"].image, z0=results["z0"].image, sidecars=sides, mask=mask)


def sweep(photo: Any, alphas: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0), preset: str | None = None,
          **settings: Any) -> Sweep:
    """One tuning of one face of ``photo``, rendered at each of ``alphas`` (the ``shift`` of the
    directions; alpha 0 is the reconstruction)."""
    values = [float(a) for a in (alphas if not isinstance(alphas, (int, float)) else [alphas])]
    if not values or not all(np.isfinite(values)):
        raise ConfigError(f"alphas: expected finite numbers, got {alphas!r}")
    image, results, sides, mask = _edit_photo(photo, preset, settings, alphas=values)
    return Sweep(photo=image, alphas=values, images=[r.image for r in results], sidecars=sides, mask=mask)
