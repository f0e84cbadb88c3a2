"""The ``fan`` aligner: the ``face-alignment`` package's 2D FAN (68 points) with a configurable detector.

face-alignment fetches its networks itself, with ``torch.hub``, into
``$TORCH_HOME/hub/checkpoints/`` (``~/.cache/torch/hub/checkpoints`` by default): the landmark
network ``2DFAN4-11f355bf06.pth.tar`` and, for the default ``sfd`` detector, ``s3fd-619a316812.pth``.
Offline, a missing file raises :class:`counterface.WeightsError` naming the file and the folder.
``detector='dlib'`` boxes faces with dlib's HOG detector (this plugin's, with upsampling, so small
faces are found) and needs no detector download.
"""

from __future__ import annotations

import threading
import warnings
from pathlib import Path

import numpy as np

from counterface.components import Aligner
from counterface.errors import ConfigError, WeightsError

from . import crop as crop_mod

FAN_URL = "https://www.adrianbulat.com/downloads/python-fan/2DFAN4-11f355bf06.pth.tar"
#: detector -> files face-alignment fetches for it (name, url)
DETECTOR_FILES = {
    "sfd": [("s3fd-619a316812.pth", "https://www.adrianbulat.com/downloads/python-fan/s3fd-619a316812.pth")],
    "blazeface": [
        ("blazeface.pth", "https://github.com/hollance/BlazeFace-PyTorch/blob/master/blazeface.pth?raw=true"),
        ("anchors.npy", "https://github.com/hollance/BlazeFace-PyTorch/blob/master/anchors.npy?raw=true"),
    ],
    "dlib": [],
}
FAN_FILE = "2DFAN4-11f355bf06.pth.tar"

_models: dict[tuple, object] = {}
_lock = threading.Lock()


def checkpoints_dir() -> Path:
    """Where torch.hub (and so face-alignment) keeps downloaded files: ``$TORCH_HOME/hub/checkpoints``."""
    import torch.hub

    return Path(torch.hub.get_dir()) / "checkpoints"


def required_files(detector: str) -> list[tuple[str, str]]:
    """``(file name, url)`` pairs face-alignment needs for the FAN and ``detector``."""
    return [(FAN_FILE, FAN_URL)] + list(DETECTOR_FILES.get(detector, []))


def _missing_message(detector: str, cause: str = "") -> str:
    folder = checkpoints_dir()
    missing = [(n, u) for n, u in required_files(detector) if not (folder / n).is_file()]
    if not missing:
        return f"fan aligner: face-alignment could not load its networks ({cause}); check the files in {folder}"
    files = "; ".join(f"{n} (from {u})" for n, u in missing)
    return (f"fan aligner needs {files} in {folder}: face-alignment downloads them on first use, so connect "
            f"once, or copy the files there (set TORCH_HOME to move the folder), or use --aligner dlib"
            + (f" [{cause}]" if cause else ""))


def _fetch_missing(detector: str) -> None:
    """Download the files face-alignment would fetch itself, before it does.

    face-alignment (through ``torch.hub.load_state_dict_from_url``) prints a ``Downloading:`` line
    even when the download then fails offline; fetching first keeps an offline failure to the one
    :class:`WeightsError` line, honours ``COUNTERFACE_OFFLINE=1`` and checks the hash prefix in the
    file name.
    """
    import re

    from counterface import weights

    folder = checkpoints_dir()
    missing = [(n, u) for n, u in required_files(detector) if not (folder / n).is_file()]
    if not missing:
        return
    if weights.offline():
        raise WeightsError(_missing_message(detector, "downloads are disabled (COUNTERFACE_OFFLINE=1)"))
    import torch.hub

    folder.mkdir(parents=True, exist_ok=True)
    for name, url in missing:
        prefix = re.search(r"-([0-9a-f]{6,})\.", name)
        try:
            torch.hub.download_url_to_file(url, str(folder / name), hash_prefix=prefix.group(1) if prefix else None,
                                           progress=weights._progress_enabled())
        except (OSError, EOFError, RuntimeError) as exc:  # URLError (offline), truncated file, hash mismatch
            raise WeightsError(_missing_message(detector, f"{type(exc).__name__}: {' '.join(str(exc).split())}")) from None


class FanAligner(Aligner):
    """face-alignment 2D FAN 68 landmarks + a face detector; FFHQ crops.

    Parameters: ``size`` crop side (1024); ``detector`` ``sfd`` (S3FD, face-alignment's default),
    ``blazeface``, ``dlib`` (dlib HOG boxes with ``upsample``; offline) or another face-alignment
    detector name; ``device`` ``auto``/``cpu``/``cuda``; ``flip_input`` average with the mirrored
    prediction (slower, steadier); ``upsample`` dlib detector upsampling; ``fade`` as for
    ``dlib``.
    """

    def __init__(self, size: int = 1024, detector: str = "sfd", device: str = "auto", flip_input: bool = False,
                 upsample: int = 1, fade: bool = True):
        if int(size) < 8:
            raise ConfigError(f"aligner size must be at least 8, got {size}")
        if not isinstance(detector, str) or not detector.isidentifier():
            raise ConfigError(f"invalid face detector {detector!r}; use sfd, blazeface or dlib")
        self.size = int(size)
        self.detector = detector
        self.device = device
        self.flip_input = bool(flip_input)
        self.upsample = int(upsample)
        self.fade = bool(fade)

    def _device(self) -> str:
        from counterface.device import resolve_device

        return resolve_device(self.device)

    def model(self):
        """The ``face_alignment.FaceAlignment`` object (built once per detector and device)."""
        device = self._device()
        key = (self.detector, device, self.flip_input, str(checkpoints_dir()))
        with _lock:
            if key in _models:
                return _models[key]
            try:
                import face_alignment
            except ImportError as exc:
                raise ConfigError(f"the fan aligner needs the face-alignment package ({exc})") from None
            kwargs = {}
            if self.detector == "dlib" and "cuda" in device:
                # face-alignment's dlib detector would download dlib's CNN detector on CUDA: use the local one
                from .dlib_aligner import CNN_DETECTOR_FILE, model_file

                kwargs = {"path_to_detector": str(model_file(None, CNN_DETECTOR_FILE))}
            _fetch_missing(self.detector)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    fa = face_alignment.FaceAlignment(
                        face_alignment.LandmarksType.TWO_D, device=device, flip_input=self.flip_input,
                        face_detector=self.detector, face_detector_kwargs=kwargs, compile=False)
            except ModuleNotFoundError as exc:
                if f"face_alignment.detection.{self.detector}" in str(exc):
                    raise ConfigError(f"unknown face-alignment detector {self.detector!r}; use sfd, blazeface or dlib") from None
                raise
            except (OSError, EOFError) as exc:  # URLError (offline), missing or truncated files
                raise WeightsError(_missing_message(self.detector, f"{type(exc).__name__}: {exc}")) from None
            except RuntimeError as exc:  # a file that is not the network face-alignment expects
                raise WeightsError(
                    f"fan aligner: a face-alignment weights file in {checkpoints_dir()} does not fit its network "
                    f"({' '.join(str(exc).split())[:200]}); delete it to download it again") from None
            _models[key] = fa
            return fa

    def detect(self, image: np.ndarray):
        """Face boxes ``[(x0, y0, x1, y1, score), ...]`` in photo pixels."""
        if self.detector == "dlib":
            from .dlib_aligner import DlibAligner

            boxes = DlibAligner(upsample=self.upsample).detect(image)
            return [np.array([*b, s], dtype=np.float64) for b, s in boxes]
        fa = self.model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            found = fa.face_detector.detect_from_image(image.copy())
        return [np.asarray(d, dtype=np.float64) for d in found]

    def landmarks(self, image: np.ndarray, boxes) -> list[np.ndarray]:
        """(68, 2) landmarks in photo pixels for each box."""
        if len(boxes) == 0:
            return []
        fa = self.model()
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            preds = fa.get_landmarks_from_image(image, detected_faces=list(boxes))
        return [np.asarray(p, dtype=np.float64)[:, :2] for p in (preds or [])]

    def align(self, image: np.ndarray, size: int | None = None):
        img = crop_mod.as_rgb_uint8(image)  # RGBA would reach FAN with 4 channels
        size = int(size or self.size)
        self.model()  # fail early and clearly when weights are missing
        boxes = self.detect(img)
        lms = self.landmarks(img, boxes)
        found = [(lm, tuple(b[:4]), float(b[4]) if len(b) > 4 else None) for lm, b in zip(lms, boxes)]
        return crop_mod.align_all(img, found, size, fade=self.fade)


__all__ = ["FanAligner", "checkpoints_dir", "required_files", "FAN_FILE"]
