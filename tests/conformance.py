"""Conformance data for the tests: deterministic weights and inputs, and the stored goldens.

The project's own implementation of the deterministic-tensor recipe that produced the reference
goldens (the recipe is stated in ``tests/data/conformance/README.md``). Every value is
``offset + scale * u`` (or ``offset + scale * |u|``) with ``u`` a unit-RMS wave keyed by a name:

    h1 = crc32(name), h2 = crc32(name, 0x5A5A5A5A)
    a = (h1 mod 2^24) | 1,  q = (h2 mod 2^24) | 1,  c = (h1 xor (h2 >> 8)) mod 2^24
    j = flat C-order index mod 2^24
    phase = (a*j + q*(j*j mod 2^24) + c) mod 2^24          (exact integers)
    u = sqrt(15/8) * psin(phase / 2^24)                     (psin: parabolic sine, period 1)

evaluated with IEEE basic operations in float64 and rounded once to float32, so the tensors are
bit-identical on every machine; the manifests' ``det_fingerprint_sha256`` checks that.

``load_goldens`` returns the goldens as float arrays: the inputs (``sg_z``, ``sg_wplus``, ``e4e_x``,
``arc_x``) are regenerated here and checked against their recorded sha256; the ``*_pool256`` images,
stored quantised to steps of 2^-13, are dequantised; the 1024 images are stored only as full-resolution
windows (``*_windows``, float16; cut with :func:`windows`).
"""

from __future__ import annotations

import hashlib
import json
import math
import zlib
from pathlib import Path

import numpy as np
import torch

DATA = Path(__file__).resolve().parent / "data" / "conformance"

_PERIOD = 1 << 24
_RMS = math.sqrt(15.0 / 8.0)  # 1 / RMS of the parabolic sine
POOL_STEP_BITS = 13  # *_pool256 stored as round(x * 2^13) in int16: error <= 2^-14 = 6.1e-5
WINDOWS = ((0, 0), (448, 448))  # (top, left) of the 128 x 128 full-resolution windows of a 1024 image
WINDOW = 128

#: kind -> (scale, offset, absolute value); a manifest entry may override each
DEFAULTS = {
    "bias": (0.1, 0.0, False), "prelu": (0.05, 0.25, False), "bn_weight": (0.1, 1.0, False),
    "bn_bias": (0.1, 0.0, False), "bn_mean": (0.1, 0.0, False), "bn_var": (0.1, 1.0, True),
}


def _parabolic_sine(x: np.ndarray) -> np.ndarray:
    """Period 1, range [-1, 1]: +4f(1-f) on the first half period, -4f(1-f) on the second."""
    doubled = 2.0 * x
    half = np.floor(doubled)
    f = doubled - half
    return 4.0 * f * (1.0 - f) * (1.0 - 2.0 * half)


def _raw_wave(key: str, n: int) -> np.ndarray:
    """The parabolic sine of the keyed chirp phase for flat indices 0..n-1 (float64, in [-1, 1])."""
    raw = key.encode("utf-8")
    h1, h2 = zlib.crc32(raw), zlib.crc32(raw, 0x5A5A5A5A)
    a, q, c = (h1 % _PERIOD) | 1, (h2 % _PERIOD) | 1, (h1 ^ (h2 >> 8)) % _PERIOD
    j = np.arange(n, dtype=np.int64) % _PERIOD
    phase = (a * j + q * (j * j % _PERIOD) + c) % _PERIOD
    return _parabolic_sine(phase.astype(np.float64) / _PERIOD)


def det_tensor(key: str, shape, scale: float = 1.0, offset: float = 0.0, absolute: bool = False) -> torch.Tensor:
    shape = tuple(int(s) for s in shape)
    u = _raw_wave(key, math.prod(shape)) * _RMS
    if absolute:
        u = np.abs(u)
    return torch.from_numpy((float(offset) + float(scale) * u).astype(np.float32).reshape(shape))


def _entry(key: str, spec: dict, constants: dict | None) -> torch.Tensor:
    shape = tuple(spec["shape"])
    kind = spec.get("kind", "param")
    if kind == "const":
        value = np.asarray((constants or {})[key], dtype=np.float32)
        assert value.shape == shape, (key, value.shape, shape)
        return torch.from_numpy(value.copy())
    if kind == "bn_count" or spec.get("dtype") == "int64":
        return torch.zeros(shape, dtype=torch.int64)
    scale, offset, absolute = DEFAULTS.get(kind, (1.0, 0.0, False))
    return det_tensor(spec.get("seed_key", key), shape, spec.get("scale", scale), spec.get("offset", offset),
                      spec.get("abs", absolute))


def load_manifest(path) -> dict:
    return json.loads(Path(path).read_text(encoding="utf-8"))


def load_constants(path) -> dict:
    with np.load(path, allow_pickle=False) as z:
        return {k: z[k].copy() for k in z.files}


def det_state_dict(manifest: dict, constants: dict | None = None) -> dict:
    """The deterministic state dict of a manifest (or of a bare ``{key: spec}`` mapping), in key order."""
    specs = manifest["state_dict"] if isinstance(manifest.get("state_dict"), dict) and "shape" not in manifest[
        "state_dict"] else manifest
    return {k: _entry(k, spec, constants) for k, spec in specs.items()}


def det_extra(manifest: dict, constants: dict | None = None) -> dict:
    return {k: _entry(k, spec, constants) for k, spec in manifest.get("extra", {}).items()}


def det_checkpoint(manifest: dict, constants: dict | None = None) -> dict:
    """The whole checkpoint in the released file's top-level layout (``manifest['checkpoint']``)."""
    parts = {"state_dict": det_state_dict(manifest, constants)}
    extra = det_extra(manifest, constants)
    out = {}
    for top, source in manifest["checkpoint"]["layout"]:
        if source == "literal":
            out[top] = json.loads(json.dumps(manifest["checkpoint"]["literals"][top]))
        elif source.startswith("extra:"):
            out[top] = extra[source.split(":", 1)[1]]
        else:
            out[top] = parts[source]
    return out


def fingerprint(tensors: dict) -> str:
    """sha256 over (key, dtype string, shape, little-endian C-order bytes) of each tensor, in order."""
    h = hashlib.sha256()
    for key, t in tensors.items():
        a = t.detach().cpu().contiguous().numpy()  # (np.ascontiguousarray would make a 0-d array 1-d)
        a = a.astype(a.dtype.newbyteorder("<"), copy=False)
        for part in (key.encode(), a.dtype.str.encode(), repr(tuple(a.shape)).encode(), a.tobytes()):
            h.update(part)
    return h.hexdigest()


# ------------------------------------------------------------------------------------ inputs

def make_images(n: int, h: int, w: int, name: str, c: int = 3) -> np.ndarray:
    """NCHW float32 in [-0.95, 0.95]: 0.5 * a diagonal band (psin of 1.5x/w + y/h + ch/3 + b/5)
    plus 0.45 * the wave keyed ``input:<name>`` without its unit-RMS factor."""
    b, ch, y, x = np.meshgrid(np.arange(n), np.arange(c), np.arange(h), np.arange(w), indexing="ij")
    t = 1.5 * x / w + y / h + ch / 3.0 + b / 5.0
    band = _parabolic_sine(t - np.floor(t))
    # the unit-RMS wave divided back by its factor (bit-exact to the reference inputs; not always the raw wave)
    texture = (_raw_wave("input:" + name, n * c * h * w) * _RMS / _RMS).reshape(n, c, h, w)
    return (0.5 * band + 0.45 * texture).astype(np.float32)


def inputs() -> dict[str, np.ndarray]:
    """The golden inputs: two z (512), two W+ (18 x 512), two e4e images (256), two ArcFace images (112)."""
    return {
        "sg_z": det_tensor("input:z", (2, 512)).numpy(),
        "sg_wplus": det_tensor("input:wplus", (2, 18, 512)).numpy(),
        "e4e_x": make_images(2, 256, 256, "e4e_image"),
        "arc_x": make_images(2, 112, 112, "arcface_image"),
    }


def sha256(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).tobytes()).hexdigest()


# ------------------------------------------------------------------------------------ goldens

def windows(img) -> np.ndarray:
    """The full-resolution windows of (N, C, 1024, 1024) images: (N, len(WINDOWS), C, 128, 128)."""
    a = img.detach().cpu().numpy() if isinstance(img, torch.Tensor) else np.asarray(img)
    return np.stack([a[:, :, t:t + WINDOW, l:l + WINDOW] for t, l in WINDOWS], axis=1)


def load_goldens(folder: Path = DATA) -> dict[str, np.ndarray]:
    meta = json.loads((folder / "goldens_meta.json").read_text())
    out = {}
    with np.load(folder / "goldens.npz", allow_pickle=False) as z:
        for k in z.files:
            if k.endswith("_q%d" % POOL_STEP_BITS):
                out[k.rsplit("_q", 1)[0]] = z[k].astype(np.float32) / (1 << POOL_STEP_BITS)
            else:
                out[k] = z[k]
    for name, value in inputs().items():
        assert sha256(value) == meta["inputs_sha256"][name], f"regenerated input {name} differs from the goldens'"
        out[name] = value
    return out
