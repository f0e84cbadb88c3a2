"""Reading photos safely and writing outputs atomically.

``read_image`` returns (H, W, 3) uint8 RGB whatever the file holds: EXIF orientation applied,
gray / palette / RGBA (composited over white) / CMYK / 16-bit converted. Files that are not images,
truncated, or larger than ``max_pixels`` (checked from the header, before decoding) raise
:class:`~counterface.errors.ImageError` with a one-line message.

``write_image`` / ``write_json`` write to a temporary file in the destination folder and rename it
into place, so an interrupted run never leaves a half-written output; they refuse to write outside
the output folder or over an input.
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from .errors import ImageError, OutputError
from .paths import check_outputs

#: Default limit on decoded pixels (about 16k x 12k); override with ``COUNTERFACE_MAX_PIXELS``.
DEFAULT_MAX_PIXELS = 200_000_000
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".bmp", ".tif", ".tiff")


def max_pixels() -> int:
    env = os.environ.get("COUNTERFACE_MAX_PIXELS")
    return int(env) if env else DEFAULT_MAX_PIXELS


def _to_rgb_uint8(img) -> np.ndarray:
    from PIL import Image

    mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        a = np.asarray(img)
        if mode == "I":
            hi = 65535 if a.max(initial=0) > 255 else 255
            a = np.clip(a, 0, hi).astype(np.float64) * (255.0 / hi)
            a = np.rint(a).astype(np.uint8)
        else:
            a = (a.astype(np.uint32) >> 8).astype(np.uint8)
        return np.repeat(a[:, :, None], 3, axis=2)
    if mode == "F":
        a = np.asarray(img, dtype=np.float64)
        lo, hi = float(a.min(initial=0.0)), float(a.max(initial=1.0))
        scale = 255.0 if hi <= 1.0 and lo >= 0.0 else 255.0 / max(hi - lo, 1e-12)
        a = np.rint(np.clip((a - (0 if scale == 255.0 else lo)) * scale, 0, 255)).astype(np.uint8)
        return np.repeat(a[:, :, None], 3, axis=2)
    if mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        img = Image.alpha_composite(background, rgba)
    if img.mode != "RGB":
        img = img.convert("RGB")
    return np.array(img, dtype=np.uint8)


def read_image(path: str | os.PathLike, limit: int | None = None) -> np.ndarray:
    """Read a photo as (H, W, 3) uint8 RGB, EXIF orientation applied. See the module docstring."""
    from PIL import Image, ImageOps, UnidentifiedImageError

    p = Path(path)
    limit = max_pixels() if limit is None else limit
    try:
        data = p.read_bytes()
    except FileNotFoundError:
        raise ImageError(f"{p}: no such file") from None
    except IsADirectoryError:
        raise ImageError(f"{p}: is a directory, not an image") from None
    except OSError as exc:
        raise ImageError(f"{p}: cannot read ({exc.strerror or exc})") from None
    if not data:
        raise ImageError(f"{p}: empty file")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", Image.DecompressionBombWarning)
            old = Image.MAX_IMAGE_PIXELS
            Image.MAX_IMAGE_PIXELS = None  # we enforce our own limit from the header below
            try:
                img = Image.open(io.BytesIO(data))
                w, h = img.size
                if w * h > limit:
                    raise ImageError(
                        f"{p}: {w}x{h} pixels exceeds the limit of {limit} (possible decompression bomb; "
                        "set COUNTERFACE_MAX_PIXELS to raise it)"
                    )
                img.load()
                img = ImageOps.exif_transpose(img)
            finally:
                Image.MAX_IMAGE_PIXELS = old
        arr = _to_rgb_uint8(img)
    except ImageError:
        raise
    except UnidentifiedImageError:
        raise ImageError(f"{p}: not a recognised image file") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError, EOFError) as exc:
        raise ImageError(f"{p}: corrupt or truncated image ({exc})") from None
    if arr.ndim != 3 or arr.shape[2] != 3 or arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ImageError(f"{p}: unsupported image layout {arr.shape}")
    return np.ascontiguousarray(arr)


def file_sha256(path: str | os.PathLike, chunk: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(chunk), b""):
            h.update(block)
    return h.hexdigest()


def safe_output_path(out_dir: str | os.PathLike, name: str | os.PathLike, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """``out_dir / name`` after checking it stays inside ``out_dir`` and is not one of ``inputs``."""
    root = Path(out_dir).resolve()
    target = (root / name).resolve()
    if target != root and root not in target.parents:
        raise OutputError(f"refusing to write outside the output folder: {name}")
    check_outputs([target], inputs)  # links and hard links to an input too
    return target


def _atomic_write(target: Path, writer) -> Path:
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; outputs get ordinary permissions
        with os.fdopen(fd, "wb") as f:
            writer(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, target)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return target


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def encode_image(image: np.ndarray, suffix: str, quality: int = 95) -> bytes:
    from PIL import Image

    if image.dtype != np.uint8 or image.ndim != 3 or image.shape[2] != 3:
        raise ValueError(f"expected (H, W, 3) uint8, got {image.shape} {image.dtype}")
    fmt = {".jpg": "JPEG", ".jpeg": "JPEG", ".png": "PNG", ".webp": "WEBP", ".bmp": "BMP", ".tif": "TIFF", ".tiff": "TIFF"}
    try:
        kind = fmt[suffix.lower()]
    except KeyError:
        raise OutputError(f"unsupported output format {suffix!r}; use one of {', '.join(sorted(fmt))}") from None
    buf = io.BytesIO()
    kw: dict[str, Any] = {"quality": quality, "subsampling": 0} if kind == "JPEG" else {}
    if kind == "WEBP":
        kw = {"lossless": True}
    Image.fromarray(image).save(buf, format=kind, **kw)
    return buf.getvalue()


def write_image(path: str | os.PathLike, image: np.ndarray, *, out_dir: str | os.PathLike | None = None,
                inputs: Iterable[str | os.PathLike] = (), quality: int = 95) -> Path:
    """Atomically write (H, W, 3) uint8 RGB to ``path`` (format from the suffix)."""
    p = Path(path)
    target = safe_output_path(out_dir, p, inputs) if out_dir is not None else p.resolve()
    if out_dir is None:
        check_outputs([target], inputs)
    data = encode_image(image, target.suffix, quality)
    return _atomic_write(target, lambda f: f.write(data))


def write_bytes(path: str | os.PathLike, data: bytes, *, out_dir: str | os.PathLike | None = None,
                inputs: Iterable[str | os.PathLike] = ()) -> Path:
    target = safe_output_path(out_dir, path, inputs) if out_dir is not None else Path(path).resolve()
    if out_dir is None:
        check_outputs([target], inputs)
    return _atomic_write(target, lambda f: f.write(data))


def write_json(path: str | os.PathLike, obj: Any, *, out_dir: str | os.PathLike | None = None,
               inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Atomically write ``obj`` as indented, strict JSON (numpy scalars and arrays converted).

    JSON has no NaN or infinity: a non-finite float (e.g. a metric of an empty region) is written as
    ``null``, which readers take as "no value"; ``json.loads`` of every sidecar works in any language."""
    data = dumps_json(obj, indent=2).encode() + b"\n"
    return write_bytes(path, data, out_dir=out_dir, inputs=inputs)


def dumps_json(obj: Any, **kwargs: Any) -> str:
    """``json.dumps`` as strict JSON: numpy/torch/Path values converted, NaN and infinities as ``null``."""
    return json.dumps(finite_or_none(obj), default=_json_default, allow_nan=False, **kwargs)


def finite_or_none(obj: Any) -> Any:
    """A copy of ``obj`` with every non-finite float (also in numpy scalars and arrays) replaced by None."""
    if isinstance(obj, float):
        return obj if math.isfinite(obj) else None
    if isinstance(obj, dict):
        return {k: finite_or_none(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [finite_or_none(v) for v in obj]
    if isinstance(obj, (np.ndarray, np.generic)):
        return finite_or_none(obj.tolist())
    if type(obj).__module__.split(".")[0] == "torch" and hasattr(obj, "tolist"):  # a tensor (torch not imported here)
        return finite_or_none(obj.detach().cpu().tolist())
    return obj


def _json_default(o: Any):
    if isinstance(o, np.ndarray):
        return o.tolist()
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, Path):
        return str(o)
    try:
        import torch

        if isinstance(o, torch.Tensor):
            return o.detach().cpu().tolist()
    except ImportError:  # pragma: no cover
        pass
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
