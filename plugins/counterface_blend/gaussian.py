"""The ``gaussian`` blender: paste an edited crop back into its photo with a feathered face mask.

    Z' = (1 - m) * Z + m * warp(edited crop, M^-1)

``m`` is built in photo pixels: the face region (the convex hull of the 68 landmarks, or the crop
square shrunk by a margin), eroded by ``erode`` Gaussian sigmas, blurred with a Gaussian whose sigma
is ``feather`` times the face width, then multiplied by the region itself so that ``m`` is exactly 0
outside the region and outside the part of the photo the crop covers. Every pixel where ``m == 0``
is copied from the input bit for bit; only the bounding box of ``m > 0`` is computed, so large
photos cost what their faces cost.
"""

from __future__ import annotations

import numpy as np

from counterface import geometry
from counterface.components import Blender
from counterface.errors import ConfigError

REGIONS = ("hull", "square")
ON_DEVICE = ("auto", "always", "never")


def _fill(shape: tuple[int, int], polygon: np.ndarray, offset=(0.0, 0.0)) -> np.ndarray:
    """(h, w) uint8 {0, 1}: the convex polygon (photo pixels) drawn into a window at ``offset``."""
    import cv2

    shift = 4
    pts = (np.asarray(polygon, dtype=np.float64) - np.asarray(offset, dtype=np.float64)) * (1 << shift)
    out = np.zeros(shape, np.uint8)
    if len(pts) >= 3 and np.all(np.isfinite(pts)):
        hull = cv2.convexHull(np.rint(pts).astype(np.int32))
        cv2.fillConvexPoly(out, hull, 1, lineType=cv2.LINE_8, shift=shift)
    return out


class GaussianBlender(Blender):
    """Feathered paste-back: (1 - m) Z + m warp(crop); m = 0 pixels unchanged bit for bit.

    Parameters: ``region`` ``hull`` (landmarks' convex hull) or ``square`` (the crop square);
    ``margin`` grows (> 0) or shrinks (< 0) the region, as a fraction of the face width for ``hull``
    and of the crop side for ``square`` (where 0.1 keeps clear of the crop's border);
    ``feather`` the Gaussian sigma as a fraction of the face width; ``erode`` how many sigmas the
    region is eroded before blurring (2 makes m reach 1 inside and fall to ~0.02 at the edge);
    ``on_device`` where the warp and blend run: ``auto`` in torch on the crop's device when the crop
    is a CUDA tensor, else with OpenCV; ``always`` in torch (on the CPU for an array: what the CPU
    tests exercise); ``never`` with OpenCV. The torch path differs by at most a grey level or two
    inside the mask (see :mod:`counterface_blend.device`); outside it both copy the photo.
    """

    def __init__(self, region: str = "hull", margin: float | None = None, feather: float = 0.05, erode: float = 2.0,
                 on_device: str = "auto"):
        if on_device not in ON_DEVICE:
            raise ConfigError(f"unknown blender on_device {on_device!r}; use {', '.join(ON_DEVICE)}")
        self.on_device = on_device
        self._masks: dict = {}  # one face's mask windows, reused across its alphas and roles
        if region not in REGIONS:
            raise ConfigError(f"unknown blender region {region!r}; use {' or '.join(REGIONS)}")
        if feather < 0 or erode < 0:
            raise ConfigError("blender feather and erode must be >= 0")
        self.region = region
        self.margin = float((0.05 if region == "hull" else 0.1) if margin is None else margin)
        self.feather = float(feather)
        self.erode = float(erode)

    # -- geometry of the mask ----------------------------------------------------------------------
    def region_polygon(self, face) -> np.ndarray:
        """The face region as a convex polygon in photo pixels."""
        Minv = geometry.invert(face.matrix)
        S = face.size
        if self.region == "square":
            inset = self.margin * S
            lo, hi = -0.5 + inset, S - 0.5 - inset
            if hi <= lo:
                return np.zeros((0, 2))
            return geometry.apply(Minv, np.array([[lo, lo], [lo, hi], [hi, hi], [hi, lo]]))
        lm = np.asarray(face.landmarks, dtype=np.float64)
        centre = lm.mean(0)
        grow = 1.0 + self.margin * face.face_width / max(np.linalg.norm(lm - centre, axis=1).max(), 1e-9)
        return centre + (lm - centre) * max(grow, 0.0)

    @staticmethod
    def _in_crop(face, shape: tuple[int, int], offset) -> np.ndarray:
        """(h, w) uint8: window pixels whose centres map inside the crop, between its outer pixel
        centres (where bilinear sampling reads only crop pixels). Exact, unlike polygon rasterising."""
        h, w = shape
        x0, y0 = offset
        M = face.matrix
        xs = np.arange(w, dtype=np.float64) + x0
        ys = np.arange(h, dtype=np.float64) + y0
        u = M[0, 0] * xs[None, :] + M[0, 1] * ys[:, None] + M[0, 2]
        v = M[1, 0] * xs[None, :] + M[1, 1] * ys[:, None] + M[1, 2]
        hi = face.size - 1.0
        return ((u >= 0) & (u <= hi) & (v >= 0) & (v <= hi)).astype(np.uint8)

    def sigma(self, face) -> float:
        return self.feather * max(face.face_width, 1.0)

    def mask_window(self, shape: tuple[int, int], face) -> tuple[tuple[int, int, int, int], np.ndarray]:
        """``((x0, y0, x1, y1), m)``: the mask inside the smallest window holding all of ``m > 0``
        (``m`` is (y1 - y0, x1 - x0) float32); an empty window when the face lies outside."""
        import cv2

        H, W = int(shape[0]), int(shape[1])
        poly = self.region_polygon(face)
        if len(poly) < 3 or geometry.polygon_area(poly) <= 0:
            return (0, 0, 0, 0), np.zeros((0, 0), np.float32)
        lo, hi = poly.min(0), poly.max(0)
        x0, y0 = max(int(np.floor(lo[0])) - 1, 0), max(int(np.floor(lo[1])) - 1, 0)
        x1, y1 = min(int(np.ceil(hi[0])) + 2, W), min(int(np.ceil(hi[1])) + 2, H)
        if x1 <= x0 or y1 <= y0:
            return (0, 0, 0, 0), np.zeros((0, 0), np.float32)
        win = (y1 - y0, x1 - x0)
        region = _fill(win, poly, (x0, y0)) & self._in_crop(face, win, (x0, y0))
        sigma = self.sigma(face)
        if sigma > 0.3:
            r = int(round(self.erode * sigma))
            inner = region
            if r > 0:
                # erode with a border of zeros: the region's edge at the photo border is an edge too
                padded = cv2.copyMakeBorder(region, r, r, r, r, cv2.BORDER_CONSTANT, value=0)
                kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
                inner = cv2.erode(padded, kernel)[r:-r, r:-r]
            m = cv2.GaussianBlur(inner.astype(np.float32), (0, 0), sigmaX=sigma, sigmaY=sigma,
                                 borderType=cv2.BORDER_CONSTANT)
            m = np.clip(m, 0.0, 1.0) * region
        else:
            m = region.astype(np.float32)
        m[m < 1.0 / 4096] = 0.0  # no invisible dust: m is exactly 0 where it cannot change a pixel
        ys, xs = np.nonzero(m)
        if len(xs) == 0:
            return (0, 0, 0, 0), np.zeros((0, 0), np.float32)
        a0, a1, b0, b1 = xs.min(), xs.max() + 1, ys.min(), ys.max() + 1
        return (x0 + int(a0), y0 + int(b0), x0 + int(a1), y0 + int(b1)), np.ascontiguousarray(m[b0:b1, a0:a1])

    def mask(self, shape: tuple[int, int], face) -> np.ndarray:
        (x0, y0, x1, y1), m = self.mask_window(shape, face)
        out = np.zeros((int(shape[0]), int(shape[1])), np.float32)
        out[y0:y1, x0:x1] = m
        return out

    # -- blending ----------------------------------------------------------------------------------
    def _cached_window(self, shape: tuple[int, int], face):
        key = (tuple(int(v) for v in shape[:2]), int(face.size), np.asarray(face.matrix, np.float64).tobytes(),
               np.asarray(face.landmarks, np.float64).tobytes(), float(face.face_width))
        if key not in self._masks:
            if len(self._masks) >= 8:
                self._masks.clear()
            self._masks[key] = self.mask_window(shape, face)
        return self._masks[key]

    def _use_torch(self, img: np.ndarray, crop) -> bool:
        if self.on_device == "never" or img.dtype != np.uint8 or img.ndim != 3 or img.shape[2] != 3:
            return False
        if self.on_device == "always":
            return True
        return getattr(getattr(crop, "device", None), "type", "cpu") == "cuda"

    def blend(self, image: np.ndarray, edited_crop, face) -> np.ndarray:
        img = np.asarray(image)
        if self._use_torch(img, edited_crop):
            shape = tuple(edited_crop.shape)
            if len(shape) != 3 or shape[0] != shape[1] or shape[2] != 3 or "uint8" not in str(edited_crop.dtype):
                raise ValueError(f"edited crop must be square (S, S, 3) uint8, got {shape} {edited_crop.dtype}")
            from .device import blend

            window, m = self._cached_window(img.shape[:2], face)
            return blend(img, edited_crop, face, window, m)
        if hasattr(edited_crop, "detach"):
            edited_crop = edited_crop.detach().cpu().numpy()
        crop = np.asarray(edited_crop)
        if crop.ndim != 3 or crop.shape[0] != crop.shape[1] or crop.shape[2] != 3 or crop.dtype != np.uint8:
            raise ValueError(f"edited crop must be square (S, S, 3) uint8, got {crop.shape} {crop.dtype}")
        if img.ndim not in (2, 3) or (img.ndim == 3 and img.shape[2] not in (1, 3, 4)):
            raise ValueError(f"image must be (H, W), (H, W, 1), (H, W, 3) or (H, W, 4), got {img.shape}")
        out = img.copy()
        (x0, y0, x1, y1), m = self._cached_window(img.shape[:2], face)
        if m.size == 0:
            return out
        # photo -> edited crop (the crop may have another size than the aligned one)
        M = geometry.compose(face.matrix, geometry.resize_matrix(face.size, crop.shape[0]))
        to_window = geometry.compose(geometry.invert(M), geometry.translation(-x0, -y0))
        face_px = geometry.warp(crop, to_window, (y1 - y0, x1 - x0), border="replicate").astype(np.float64)
        base = img[y0:y1, x0:x1]
        bf = base.astype(np.float64)
        face_px = self._to_image_space(face_px, img, bf)
        mm = m.astype(np.float64)[:, :, None] if bf.ndim == 3 else m.astype(np.float64)
        mixed = bf + mm * (face_px - bf)
        if np.issubdtype(img.dtype, np.integer):
            info = np.iinfo(img.dtype)
            mixed = np.clip(np.rint(mixed), info.min, info.max)
        mixed = mixed.astype(img.dtype)
        keep = (m == 0)
        if mixed.ndim == 3:
            keep = keep[:, :, None]
        out[y0:y1, x0:x1] = np.where(keep, base, mixed)
        return out

    @staticmethod
    def _to_image_space(face_px: np.ndarray, img: np.ndarray, base: np.ndarray) -> np.ndarray:
        """RGB uint8-scaled pixels -> the image's channels and value range (alpha kept from ``base``)."""
        if img.ndim == 2 or (img.ndim == 3 and img.shape[2] == 1):
            gray = face_px @ np.array([0.299, 0.587, 0.114])
            face_px = gray if img.ndim == 2 else gray[:, :, None]
        if np.issubdtype(img.dtype, np.integer):
            face_px = face_px * (np.iinfo(img.dtype).max / 255.0)
        elif np.issubdtype(img.dtype, np.floating):
            face_px = face_px / 255.0
        if img.ndim == 3 and img.shape[2] == 4:  # keep the photo's alpha where the face goes
            face_px = np.concatenate([face_px, base[:, :, 3:]], axis=2)
        return face_px
