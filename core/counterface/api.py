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
  :data:`counterface.settings.EDIT_DEFAULTS`);
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


# -- the glue to the per-photo flow (counterface.flow) ------------------------------------------------------
#: settings that are :meth:`EditSettings.resolve` arguments besides the edit settings and components
_RESOLVE_ARGS = ("sets", "config_file", "distance")


def _settings(preset: str | None, settings: Mapping[str, Any], roles: Sequence[str],
              alphas: Sequence[float] | None = None):
    """The validated :class:`~counterface.settings.EditSettings` of a notebook call: ``settings``
    split into edit settings, component sections and the other :meth:`EditSettings.resolve` arguments."""
    from .registry import sections
    from .settings import EDIT_DEFAULTS, EditSettings

    settings = dict(settings)
    sets = settings.pop("sets", None) or []
    sets = [sets] if isinstance(sets, str) else list(sets)
    config_file = settings.pop("config_file", None)
    distance = settings.pop("distance", None) or ()
    distance = [distance] if isinstance(distance, (int, float)) else list(distance)
    alpha = settings.pop("alpha", None)
    known = sections()
    edit: dict[str, Any] = {}
    components: dict[str, Any] = {}
    for key, value in settings.items():
        if key in EDIT_DEFAULTS:
            edit[key] = value
        elif key in known:
            if isinstance(value, Mapping):
                params = dict(value)
                if "name" in params:
                    components[key] = str(params.pop("name"))
                sets += [f"{key}.{k}={json.dumps(v)}" for k, v in params.items() if v is not None]
            else:
                components[key] = value
        else:
            valid = sorted({*EDIT_DEFAULTS, *known, *_RESOLVE_ARGS})
            raise ConfigError(f"unknown setting {key!r}; valid: {', '.join(valid)}")
    return EditSettings.resolve(preset=preset, config_file=config_file, components=components, sets=sets,
                                edit=edit, alpha=alpha, alphas=None if alphas is None else list(alphas),
                                distance=distance, roles=tuple(roles))


def _edit_photo(photo: Any, preset: str | None, settings: Mapping[str, Any], alphas: Sequence[float] | None = None):
    """The per-photo flow (:func:`counterface.flow.process_photo`) on the first selected face:
    pi_1 and pi_0 when ``alphas`` is None, else pi_1 at each alpha. Returns (the photo, the flow's
    :class:`~counterface.flow.FaceResult`, the blend mask)."""
    from .flow import process_photo, read_photo
    from .pipeline import Pipeline

    if not isinstance(photo, (str, Path)):
        a = np.asarray(photo)
        if a.ndim != 3 or a.shape[-1] != 3 or a.dtype != np.uint8:
            raise ConfigError(f"photo: expected a path or an (H, W, 3) uint8 RGB array, got {a.dtype} {a.shape}")
        photo = a
    pipe = Pipeline(_settings(preset, settings, ("pi1", "pi0") if alphas is None else ("pi1",), alphas))
    pipe.prepare()
    first = process_photo(read_photo(photo), pipeline=pipe)[0]
    return first.photo.image, first, pipe.mask(first.photo.image, first.face)


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
    from .flow import write_output

    return [write_output(out_dir, stem, image, dict(side), inputs=list(inputs)) for stem, (image, side) in named.items()]


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
    image, face, mask = _edit_photo(photo, preset, settings)
    return Pairs(photo=image, z1=face.z1, z0=face.z0, sidecars=dict(face.sidecars), mask=mask)


def sweep(photo: Any, alphas: Sequence[float] = (-2.0, -1.0, 0.0, 1.0, 2.0), preset: str | None = None,
          **settings: Any) -> Sweep:
    """One tuning of one face of ``photo``, rendered at each of ``alphas`` (the ``shift`` of the
    directions; alpha 0 is the reconstruction)."""
    values = [float(a) for a in (alphas if not isinstance(alphas, (int, float)) else [alphas])]
    if not values or not all(np.isfinite(values)):
        raise ConfigError(f"alphas: expected finite numbers, got {alphas!r}")
    image, face, mask = _edit_photo(photo, preset, settings, alphas=values)
    return Sweep(photo=image, alphas=values, images=[step.results["z1"].image for step in face.steps],
                 sidecars=[step.sidecars["z1"] for step in face.steps], mask=mask)
