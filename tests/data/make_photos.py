"""Derive the test photos in ``photos/`` from redistributable sources (run once; the results are committed).

Sources (all redistributable, see README.md): scikit-image's ``astronaut`` (NASA, public domain) and
``coffee`` (CC0), matplotlib's ``grace_hopper.jpg`` (U.S. Navy photograph, public domain). Every
derived photo is checked with the dlib aligner (the face counts are the ones the tests expect).

    python3 tests/data/make_photos.py            # rewrite photos/ (deterministic)
"""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import skimage.data
from PIL import Image

HERE = Path(__file__).resolve().parent / "photos"
QUALITY = 88


def astronaut_head() -> np.ndarray:
    """Eileen Collins' head and shoulders: the astronaut photo without its lower half, whose mission
    patch dlib's detector takes for a second face."""
    return skimage.data.astronaut()[0:300, 96:416]  # 300 x 320, face ~91 px wide


def hopper() -> np.ndarray:
    p = Path(matplotlib.get_data_path()) / "sample_data" / "grace_hopper.jpg"
    return np.asarray(Image.open(p).convert("RGB"))  # 600 x 512, face ~187 px wide


def resize(a: np.ndarray, k: float) -> np.ndarray:
    h, w = a.shape[:2]
    return cv2.resize(a, (round(w * k), round(h * k)), interpolation=cv2.INTER_AREA if k < 1 else cv2.INTER_CUBIC)


def jpg(a: np.ndarray, name: str, mode: str = "RGB", **kw) -> None:
    Image.fromarray(a).convert(mode).save(HERE / name, "JPEG", quality=QUALITY, **kw)


def make() -> dict[str, int]:
    HERE.mkdir(exist_ok=True)
    head = resize(astronaut_head(), 2.0)  # 600 x 640, face ~180 px
    jpg(head, "astronaut.jpg")
    jpg(resize(astronaut_head(), 1.2), "astronaut_small.jpg")  # 360 x 384, face ~109 px
    jpg(resize(astronaut_head(), 0.66), "astronaut_240p.jpg")  # 198 x 211, face ~60 px: too small for --min-face 80
    jpg(head[:, 230:], "astronaut_partial_face.jpg")  # the left part of the face lies outside the photo
    tall = np.full((1400, 640, 3), 200, np.uint8)
    tall[40:640] = head
    jpg(tall, "astronaut_tall.jpg")  # tall photo, face far from the centre
    jpg(head, "astronaut_gray.jpg", "L")
    jpg(head, "astronaut_cmyk.jpg", "CMYK")
    # pixels stored rotated, EXIF Orientation 6 ("rotate 90 CW to view") makes them upright again
    exif = Image.Exif()
    exif[0x0112] = 6
    Image.fromarray(np.ascontiguousarray(np.rot90(head, 1))).save(
        HERE / "astronaut_exif_rotated.jpg", "JPEG", quality=QUALITY, exif=exif.tobytes())
    small = resize(head, 0.6)  # 360 x 384, face ~110 px
    ramp = (np.arange(small.shape[1]) * 255 // small.shape[1]).astype(np.uint16)  # a smooth low byte
    sixteen = small.astype(np.uint16) * 256 + ramp[None, :, None]
    cv2.imwrite(str(HERE / "astronaut_16bit.png"), cv2.cvtColor(sixteen, cv2.COLOR_RGB2BGR))
    mid = resize(astronaut_head(), 1.2)  # 360 x 384, face ~110 px
    rgba = np.dstack([mid, np.full(mid.shape[:2], 255, np.uint8)])
    yy, xx = np.mgrid[: mid.shape[0], : mid.shape[1]]
    rgba[..., 3] = np.clip(255 - 3 * np.maximum(0, xx - 300), 0, 255)  # fades out at the right edge
    rgba[..., 3][yy < 12] = 0  # a fully transparent band
    Image.fromarray(rgba, "RGBA").save(HERE / "astronaut_rgba.png", optimize=True)
    h = hopper()
    jpg(h, "hopper.jpg")
    h_small = resize(h, 0.6)  # 360 x 307, face ~106 px
    Image.fromarray(np.dstack([h_small, np.full(h_small.shape[:2], 255, np.uint8)]), "RGBA").save(
        HERE / "hopper_rgba.png", optimize=True)
    # two different people: the astronaut (larger face, left) and Hopper (smaller face, right)
    left, right = resize(astronaut_head(), 1.6), resize(h, 0.62)  # faces ~146 px and ~116 px
    canvas = np.full((520, 940, 3), 235, np.uint8)
    canvas[520 - left.shape[0]:, : left.shape[1]] = left
    canvas[520 - right.shape[0]:, 940 - right.shape[1]:] = right
    jpg(canvas, "two_people.jpg")
    jpg(skimage.data.coffee(), "coffee-no-face.jpg")
    return check()


EXPECTED = {
    "astronaut.jpg": 1, "astronaut_small.jpg": 1, "astronaut_240p.jpg": 1, "astronaut_partial_face.jpg": 1,
    "astronaut_tall.jpg": 1, "astronaut_gray.jpg": 1, "astronaut_cmyk.jpg": 1, "astronaut_exif_rotated.jpg": 1,
    "astronaut_16bit.png": 1, "astronaut_rgba.png": 1, "hopper.jpg": 1, "hopper_rgba.png": 1,
    "two_people.jpg": 2, "coffee-no-face.jpg": 0,
}


def check() -> dict[str, int]:
    import counterface

    aligner = counterface.create("aligner", "dlib")
    found = {}
    for name, want in EXPECTED.items():
        img = counterface.read_image(HERE / name)
        faces = aligner.align(img, size=64)
        found[name] = len(faces)
        widths = [round(f.face_width) for f in faces]
        print(f"{name:28s} {img.shape} faces={len(faces)} widths={widths} {(HERE / name).stat().st_size // 1024} KiB")
        assert len(faces) == want, (name, len(faces), want)
    return found


if __name__ == "__main__":
    make()
