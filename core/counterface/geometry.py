"""2-D similarity geometry and image warping (steps 1 and 7).

Convention (the only one used in counterface)
---------------------------------------------
* A point is ``(x, y)`` in pixels of the image it lives in, float64; ``x`` to the right, ``y`` down.
  Pixel centres sit at integer coordinates, so pixel ``(i, j)`` (row ``j``, column ``i``) covers
  ``[i - 0.5, i + 0.5] x [j - 0.5, j + 0.5]``. This is OpenCV's convention.
* A transform is a 2x3 float64 matrix ``M`` (OpenCV ``warpAffine`` style) mapping a point ``p`` of
  the *source* image to ``M[:, :2] @ p + M[:, 2]`` in the *destination*. For faces the source is
  the photo and the destination is the aligned crop. Batched functions accept ``(..., 2, 3)``.
* :func:`compose` chains transforms left to right: ``compose(A, B)`` applies ``A`` first.

Functions are small and pure; only :func:`warp` touches pixels (OpenCV).

FFHQ crop
---------
:func:`ffhq_quad` reproduces the oriented square of the FFHQ dataset script (``align_face`` in e4e and
PTI): eye centres from landmarks 36-41 / 42-47, mouth corners 48 and 54. :func:`ffhq_matrix` maps the
photo onto a ``size`` x ``size`` crop so that the quad's corners land on the crop's *outer pixel
edges* (as PIL's ``QUAD`` transform does in the script): crop pixel ``(u, v)`` shows the photo point
``c + (2 (u + 0.5) / S - 1) x + (2 (v + 0.5) / S - 1) y``. The matrix is an exact similarity, so
its inverse (paste-back) is exact.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

BORDERS = ("reflect", "reflect101", "replicate", "constant")
#: antialiasing strength (see :func:`warp`): 0.4 removes aliasing of content at the destination's
#: Nyquist rate while keeping an upsample-downsample round trip sharp
AA_SIGMA = 0.4
_CV_DTYPES = (np.uint8, np.uint16, np.int16, np.float32, np.float64)

# iBUG 68-point index ranges used by the FFHQ crop
LEFT_EYE = slice(36, 42)
RIGHT_EYE = slice(42, 48)
MOUTH_LEFT, MOUTH_RIGHT = 48, 54
MOUTH = slice(48, 68)


# -- matrices --------------------------------------------------------------------------------------
def _as_matrix(M) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.shape[-2:] != (2, 3):
        raise ValueError(f"expected a (..., 2, 3) matrix, got shape {M.shape}")
    return M


def to_3x3(M) -> np.ndarray:
    """(..., 2, 3) -> (..., 3, 3) homogeneous matrix."""
    M = _as_matrix(M)
    last = np.broadcast_to(np.array([0.0, 0.0, 1.0]), M.shape[:-2] + (1, 3))
    return np.concatenate([M, last], axis=-2)


def identity() -> np.ndarray:
    """The 2x3 identity transform."""
    return np.array([[1.0, 0.0, 0.0], [0.0, 1.0, 0.0]])


def translation(tx: float, ty: float) -> np.ndarray:
    """The transform ``p -> p + (tx, ty)``."""
    return np.array([[1.0, 0.0, float(tx)], [0.0, 1.0, float(ty)]])


def similarity(scale: float = 1.0, angle: float = 0.0, tx: float = 0.0, ty: float = 0.0) -> np.ndarray:
    """``p -> scale * R(angle) p + t`` with ``angle`` in radians (counter-clockwise on screen is
    negative because y points down; this is the plain rotation matrix)."""
    c, s = scale * np.cos(angle), scale * np.sin(angle)
    return np.array([[c, -s, float(tx)], [s, c, float(ty)]])


def compose(*matrices) -> np.ndarray:
    """Chain transforms left to right: ``apply(compose(A, B), p) == apply(B, apply(A, p))``."""
    if not matrices:
        return identity()
    out = to_3x3(matrices[0])
    for M in matrices[1:]:
        out = to_3x3(M) @ out
    return out[..., :2, :]


def invert(M) -> np.ndarray:
    """Inverse of an invertible affine transform (exact up to float64 rounding)."""
    M = _as_matrix(M)
    A, t = M[..., :, :2], M[..., :, 2:]
    det = A[..., 0, 0] * A[..., 1, 1] - A[..., 0, 1] * A[..., 1, 0]
    if np.any(np.abs(det) < 1e-300):
        raise ValueError("transform is singular")
    Ainv = np.stack(
        [np.stack([A[..., 1, 1], -A[..., 0, 1]], -1), np.stack([-A[..., 1, 0], A[..., 0, 0]], -1)], -2
    ) / det[..., None, None]
    return np.concatenate([Ainv, -Ainv @ t], axis=-1)


def apply(M, points) -> np.ndarray:
    """Transform points ``(..., N, 2)`` (or a single ``(2,)`` point) with ``M`` (2x3 or batched)."""
    M = _as_matrix(M)
    p = np.asarray(points, dtype=np.float64)
    if p.ndim == 1:
        return M[..., :, :2] @ p + M[..., :, 2]
    return p @ np.swapaxes(M[..., :, :2], -1, -2) + M[..., None, :, 2]


def scale_of(M) -> np.ndarray | float:
    """Isotropic scale of a similarity: ``sqrt(|det A|)`` (destination pixels per source pixel)."""
    M = _as_matrix(M)
    A = M[..., :, :2]
    s = np.sqrt(np.abs(A[..., 0, 0] * A[..., 1, 1] - A[..., 0, 1] * A[..., 1, 0]))
    return float(s) if np.ndim(s) == 0 else s


def resize_matrix(src_size, dst_size) -> np.ndarray:
    """The transform between two samplings of the same square/rectangle: an image of ``src_size``
    pixels resized to ``dst_size`` (ints or ``(w, h)``), pixel edges kept on pixel edges."""
    sw, sh = (src_size, src_size) if np.isscalar(src_size) else src_size
    dw, dh = (dst_size, dst_size) if np.isscalar(dst_size) else dst_size
    kx, ky = dw / sw, dh / sh
    return np.array([[kx, 0.0, 0.5 * kx - 0.5], [0.0, ky, 0.5 * ky - 0.5]])


def estimate_similarity(src, dst, weights=None) -> np.ndarray:
    """Least-squares similarity (rotation, isotropic scale, translation; no reflection) mapping
    ``src`` onto ``dst`` (Umeyama 1991). ``src``, ``dst``: ``(..., N, 2)`` with N >= 2.
    Returns ``(..., 2, 3)``."""
    src = np.asarray(src, dtype=np.float64)
    dst = np.asarray(dst, dtype=np.float64)
    if src.shape != dst.shape or src.shape[-1] != 2 or src.shape[-2] < 2:
        raise ValueError(f"need matching (..., N>=2, 2) point sets, got {src.shape} and {dst.shape}")
    if weights is None:
        w = np.ones(src.shape[:-1])
    else:
        w = np.broadcast_to(np.asarray(weights, dtype=np.float64), src.shape[:-1])
    w = w / w.sum(-1, keepdims=True)
    mu_s = (w[..., None] * src).sum(-2)
    mu_d = (w[..., None] * dst).sum(-2)
    s0 = src - mu_s[..., None, :]
    d0 = dst - mu_d[..., None, :]
    var_s = (w * (s0**2).sum(-1)).sum(-1)
    cov = np.einsum("...n,...ni,...nj->...ij", w, d0, s0)  # (..., 2, 2) = E[d s^T]
    U, S, Vt = np.linalg.svd(cov)
    det = np.linalg.det(U) * np.linalg.det(Vt)
    D = np.ones(S.shape)
    D[..., -1] = np.where(det < 0, -1.0, 1.0)
    R = U @ (D[..., :, None] * Vt)
    scale = (S * D).sum(-1) / np.where(var_s > 0, var_s, 1.0)
    A = scale[..., None, None] * R
    t = mu_d - (A @ mu_s[..., :, None])[..., 0]
    return np.concatenate([A, t[..., :, None]], axis=-1)


# -- FFHQ crop -------------------------------------------------------------------------------------
def _check_landmarks(landmarks) -> np.ndarray:
    lm = np.asarray(landmarks, dtype=np.float64)
    if lm.shape[-2:] != (68, 2):
        raise ValueError(f"expected (..., 68, 2) landmarks (iBUG order), got {lm.shape}")
    return lm


def _flip(v):
    return v[..., ::-1]


def ffhq_vectors(landmarks) -> dict[str, np.ndarray]:
    """The auxiliary vectors of the FFHQ script: eye centres, eye-to-eye, mouth centre, eye-to-mouth,
    and the quad's centre ``c`` and half-side vectors ``x`` (along the eyes) and ``y`` (down)."""
    lm = _check_landmarks(landmarks)
    eye_left = lm[..., LEFT_EYE, :].mean(-2)
    eye_right = lm[..., RIGHT_EYE, :].mean(-2)
    eye_avg = 0.5 * (eye_left + eye_right)
    eye_to_eye = eye_right - eye_left
    mouth_avg = 0.5 * (lm[..., MOUTH_LEFT, :] + lm[..., MOUTH_RIGHT, :])
    eye_to_mouth = mouth_avg - eye_avg
    x = eye_to_eye - _flip(eye_to_mouth) * np.array([-1.0, 1.0])
    x = x / np.linalg.norm(x, axis=-1, keepdims=True)
    half = np.maximum(np.linalg.norm(eye_to_eye, axis=-1) * 2.0, np.linalg.norm(eye_to_mouth, axis=-1) * 1.8)
    x = x * half[..., None]
    y = _flip(x) * np.array([-1.0, 1.0])
    c = eye_avg + eye_to_mouth * 0.1
    return {"eye_left": eye_left, "eye_right": eye_right, "eye_avg": eye_avg, "eye_to_eye": eye_to_eye,
            "mouth_avg": mouth_avg, "eye_to_mouth": eye_to_mouth, "c": c, "x": x, "y": y}


def ffhq_quad(landmarks) -> np.ndarray:
    """The FFHQ crop square in photo coordinates, ``(..., 4, 2)``: corners that go to the crop's
    top-left, bottom-left, bottom-right and top-right (the script's order)."""
    v = ffhq_vectors(landmarks)
    c, x, y = v["c"], v["x"], v["y"]
    return np.stack([c - x - y, c - x + y, c + x + y, c + x - y], axis=-2)


def ffhq_matrix(landmarks, size: int = 1024) -> np.ndarray:
    """The exact similarity ``photo -> crop`` of the FFHQ alignment for a ``size`` x ``size`` crop
    (see the module docstring for the half-pixel convention). ``(..., 2, 3)``."""
    v = ffhq_vectors(landmarks)
    c, x, y = v["c"], v["x"], v["y"]
    k = (size / 2.0) / (x**2).sum(-1)  # crop pixels per photo pixel, divided by |x|
    A = k[..., None, None] * np.stack([x, y], axis=-2)  # rows: x^T, y^T
    centre = (size - 1) / 2.0  # the crop's centre in pixel-centre coordinates
    t = centre - (A @ c[..., :, None])[..., 0]
    return np.concatenate([A, t[..., :, None]], axis=-1)


def canonical_points(size: int = 1024) -> dict[str, np.ndarray]:
    """Where the FFHQ crop puts the eye centres and the mouth centre (mean of the corners 48, 54)
    for a frontal face whose proportions balance the two terms of the crop size
    (``2 |eye_to_eye| == 1.8 |eye_to_mouth|``). Real faces deviate from these by their own
    proportions (a few percent of ``size``); the eye midpoint always lies on the crop's vertical
    centre line when the eyes are level. Pixel-centre coordinates."""
    S = float(size)
    off = -0.5  # edge -> centre coordinates
    return {
        "eye_left": np.array([S / 2 - S / 8 + off, S / 2 - S / 36 + off]),
        "eye_right": np.array([S / 2 + S / 8 + off, S / 2 - S / 36 + off]),
        "mouth": np.array([S / 2 + off, 3 * S / 4 + off]),
    }


def face_points(landmarks) -> dict[str, np.ndarray]:
    """Eye centres and mouth centre of 68 landmarks, as used by the FFHQ crop."""
    v = ffhq_vectors(landmarks)
    return {"eye_left": v["eye_left"], "eye_right": v["eye_right"], "mouth": v["mouth_avg"]}


# -- pixels ----------------------------------------------------------------------------------------
def _cv_border(border: str) -> int:
    import cv2

    table = {"reflect": cv2.BORDER_REFLECT, "reflect101": cv2.BORDER_REFLECT_101,
             "replicate": cv2.BORDER_REPLICATE, "constant": cv2.BORDER_CONSTANT}
    try:
        return table[border]
    except KeyError:
        raise ValueError(f"unknown border {border!r}; use one of {', '.join(BORDERS)}") from None


def _out_shape(size) -> tuple[int, int]:
    """``size`` as (height, width): an int means a square."""
    if np.isscalar(size):
        return int(size), int(size)
    h, w = size
    return int(h), int(w)


def source_box(M, out_shape, margin: float = 2.0) -> tuple[float, float, float, float]:
    """Bounding box ``(x0, y0, x1, y1)`` in source pixels of what ``warp(image, M, out_shape)``
    reads, widened by ``margin`` source pixels."""
    h, w = _out_shape(out_shape)
    corners = np.array([[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]])
    p = apply(invert(M), corners)
    lo, hi = p.min(0) - margin, p.max(0) + margin
    return float(lo[0]), float(lo[1]), float(hi[0]), float(hi[1])


def warp(image: np.ndarray, M, size, *, border: str = "reflect", value=0, antialias: bool = True,
         interpolation: str = "linear") -> np.ndarray:
    """Resample ``image`` into a destination of ``size`` (int for a square, or ``(h, w)``) with
    destination ``= M(source)``.

    Only the part of ``image`` the output needs is touched. When ``M`` shrinks (scale < 1) and
    ``antialias`` is on, the source is low-pass filtered first (a Gaussian of ``AA_SIGMA *
    sqrt(1/scale^2 - 1)`` source pixels, preceded by an integer area reduction when the scale is
    below 1/2), so shrinking does not alias. ``border`` says what lies outside the image (``reflect`` mirrors it
    like the FFHQ script's padding). Output has the input's dtype and channel count.
    """
    import cv2

    img = np.asarray(image)
    if img.ndim not in (2, 3):
        raise ValueError(f"expected an (H, W) or (H, W, C) image, got shape {img.shape}")
    M = _as_matrix(M)
    h_out, w_out = _out_shape(size)
    H, W = img.shape[:2]
    flags = {"linear": cv2.INTER_LINEAR, "cubic": cv2.INTER_CUBIC, "nearest": cv2.INTER_NEAREST}[interpolation]
    s = scale_of(M)
    # antialiasing: a Gaussian pre-filter of sigma AA_SIGMA * sqrt(1/s^2 - 1) source pixels; for strong
    # shrinking most of it is done first by an integer area reduction (k x k block means)
    k = max(int(np.floor(0.5 / s)), 1) if antialias else 1
    resid = s * k  # remaining scale after the area reduction
    sigma = AA_SIGMA * np.sqrt(1.0 / resid**2 - 1.0) if (antialias and resid < 1.0) else 0.0
    margin = 2.0 + 3.0 * sigma * k + 2 * k
    bx0, by0, bx1, by1 = source_box(M, (h_out, w_out), margin)
    x0, y0 = max(int(np.floor(bx0)), 0), max(int(np.floor(by0)), 0)
    x1, y1 = min(int(np.ceil(bx1)) + 1, W), min(int(np.ceil(by1)) + 1, H)
    if x1 <= x0 or y1 <= y0:  # the output lies wholly outside the image: let OpenCV's border rule work
        x0, y0, x1, y1 = 0, 0, W, H
    roi = img[y0:y1, x0:x1]
    # source pixel (x, y) is roi pixel (x - x0, y - y0)
    M_roi = compose(translation(x0, y0), M)
    if img.dtype not in _CV_DTYPES:
        roi = roi.astype(np.float32)
    if k > 1:
        rh, rw = roi.shape[:2]
        pad_w, pad_h = (-rw) % k, (-rh) % k
        if pad_w or pad_h:
            # extend into the image where it continues, mirror where it ends
            ext_w, ext_h = min(pad_w, W - x1), min(pad_h, H - y1)
            roi = img[y0:y1 + ext_h, x0:x1 + ext_w]
            if roi.dtype not in _CV_DTYPES:
                roi = roi.astype(np.float32)
            rest_w, rest_h = pad_w - ext_w, pad_h - ext_h
            if rest_w or rest_h:
                roi = cv2.copyMakeBorder(np.ascontiguousarray(roi), 0, rest_h, 0, rest_w, _cv_border(
                    "reflect" if border == "constant" else border))
        rh, rw = roi.shape[:2]
        small = (rw // k, rh // k)
        roi = cv2.resize(np.ascontiguousarray(roi), small, interpolation=cv2.INTER_AREA)
        M_roi = compose(invert(resize_matrix((rw, rh), small)), M_roi)
    if sigma > 0.05:
        roi = cv2.GaussianBlur(np.ascontiguousarray(roi), (0, 0), sigmaX=sigma, sigmaY=sigma,
                               borderType=_cv_border("reflect101" if border != "replicate" else "replicate"))
    if isinstance(value, (int, float)):
        bval = (value,) * 4
    else:
        bval = tuple(value) + (0,) * (4 - len(value))
    out = cv2.warpAffine(np.ascontiguousarray(roi), M_roi.astype(np.float64), (w_out, h_out), flags=flags,
                         borderMode=_cv_border(border), borderValue=bval)
    if out.ndim == 2 and img.ndim == 3:
        out = out[:, :, None]
    if out.dtype != img.dtype:
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            out = np.clip(np.rint(out), info.min, info.max)
        out = out.astype(img.dtype)
    return out


def grid_to_source(M, size) -> np.ndarray:
    """For every destination pixel of ``size``, its source coordinates: ``(h, w, 2)`` float64."""
    h, w = _out_shape(size)
    u, v = np.meshgrid(np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    return apply(invert(M), np.stack([u, v], -1).reshape(-1, 2)).reshape(h, w, 2)


def outside_distance(points, image_shape) -> np.ndarray:
    """Distance (source pixels, Chebyshev per axis) of ``points (..., 2)`` outside the image area
    ``[-0.5, W - 0.5] x [-0.5, H - 0.5]``; 0 inside."""
    H, W = image_shape[:2]
    p = np.asarray(points, dtype=np.float64)
    dx = np.maximum(np.maximum(-0.5 - p[..., 0], p[..., 0] - (W - 0.5)), 0.0)
    dy = np.maximum(np.maximum(-0.5 - p[..., 1], p[..., 1] - (H - 0.5)), 0.0)
    return np.maximum(dx, dy)


def polygon_area(points: Sequence[Sequence[float]]) -> float:
    """Unsigned area of a polygon (shoelace)."""
    p = np.asarray(points, dtype=np.float64)
    x, y = p[:, 0], p[:, 1]
    return float(abs(np.dot(x, np.roll(y, -1)) - np.dot(y, np.roll(x, -1))) / 2.0)


def landmark_mask(crop_landmarks: np.ndarray, indices, size: int, dilate: float = 0.03) -> np.ndarray:
    """(size, size) float32 in {0, 1}: the convex hull of the landmarks ``indices`` (crop pixels),
    dilated by ``dilate * size`` pixels; all zeros when a chosen landmark is not finite."""
    import cv2

    pts = np.asarray(crop_landmarks, dtype=np.float64)[list(indices)]
    mask = np.zeros((size, size), np.uint8)
    if len(pts) == 0 or not np.all(np.isfinite(pts)):
        return mask.astype(np.float32)
    shift = 4
    hull = cv2.convexHull(np.rint(pts * (1 << shift)).astype(np.int32))
    cv2.fillConvexPoly(mask, hull, 1, lineType=cv2.LINE_8, shift=shift)
    r = int(round(max(dilate, 0.0) * size))
    if r > 0:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        mask = cv2.dilate(mask, kernel)
    return mask.astype(np.float32)
