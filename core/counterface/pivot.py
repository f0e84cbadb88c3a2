"""Saving and loading a :class:`~counterface.types.Pivot` (one inversion serves many edits).

File format: a safetensors file (no code, no pickle) holding

* ``w``: the pivot latent, (num_ws, w_dim) float32;
* ``g/<parameter name>``: every generator tensor the tuner changed, under the generator module's own
  parameter name;

and, in the safetensors header's metadata, one key ``counterface_pivot`` whose value is a JSON object
``{"format": 1, "generator": {...}, "meta": {...}}`` (the base generator's description and the
tuning provenance: losses, steps, seconds, tuner parameters). Writes are atomic.

Typical size: the tuned tensors only (a few MB for the default ``pti`` selection on the 1024
generator), not the whole network.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Iterable

from .errors import WeightsError, reason
from .types import Pivot

FORMAT = 1
META_KEY = "counterface_pivot"
_PREFIX = "g/"


def to_bytes(pivot: Pivot) -> bytes:
    """Serialise ``pivot`` to safetensors bytes (tensors moved to CPU, made contiguous)."""
    import torch
    from safetensors.torch import save

    tensors = {"w": pivot.w.detach().to("cpu", torch.float32).contiguous().clone()}
    for name, t in sorted(pivot.tensors.items()):
        tensors[_PREFIX + name] = t.detach().to("cpu").contiguous().clone()
    header = {"format": FORMAT, "generator": pivot.generator, "meta": pivot.meta}
    return save(tensors, metadata={META_KEY: json.dumps(header, sort_keys=True, default=_json_default)})


def from_bytes(data: bytes, *, source: str = "<bytes>") -> Pivot:
    """Parse safetensors bytes written by :func:`to_bytes`."""
    from safetensors.torch import load

    try:
        tensors = load(data)
        meta = _read_metadata(data)
    except WeightsError:
        raise
    except Exception as exc:  # noqa: BLE001 - safetensors raises several types
        raise WeightsError(f"{source}: not a counterface pivot file ({reason(exc)})") from None
    return _assemble(tensors, meta, source)


def save_pivot(pivot: Pivot, path: str | os.PathLike, *, inputs: Iterable[str | os.PathLike] = ()) -> Path:
    """Atomically write ``pivot`` to ``path`` (refuses to overwrite any of ``inputs``)."""
    from .imageio import write_bytes
    from .paths import check_outputs

    target = Path(path).resolve()
    check_outputs([target], inputs)
    return write_bytes(target, to_bytes(pivot))


def load_pivot(path: str | os.PathLike) -> Pivot:
    """Read a pivot written by :func:`save_pivot`; :class:`WeightsError` if it is not one."""
    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"pivot file not found: {p}")
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise WeightsError(f"{p}: cannot read pivot ({exc.strerror or exc})") from None
    return from_bytes(data, source=str(p))


def recorded_sha256s(pivot: Pivot) -> list:
    """Every photo sha256 ``pivot`` records (``meta.source.input_sha256``, set when it was tuned;
    ``meta.store.sha256``, set by the batch pivot store), as recorded (not necessarily strings)."""
    out = []
    for section, field in (("source", "input_sha256"), ("store", "sha256")):
        record = pivot.meta.get(section)
        if isinstance(record, dict) and record.get(field) is not None:
            out.append(record[field])
    return out


def recorded_sha256(pivot: Pivot) -> str | None:
    """The sha256 of the photo ``pivot`` was tuned from, as its file records it, or None."""
    found = recorded_sha256s(pivot)
    return found[0] if found and isinstance(found[0], str) else None


def verify_pivot(pivot: Pivot, *, key: str | None = None, photo_sha256: str | None = None) -> str | None:
    """Why ``pivot`` must not be reused, or None when it may: nothing read back is trusted unchecked.

    * every floating tensor (the latent ``w`` and each tuned generator tensor) must be finite: a NaN
      renders a black face;
    * ``key`` (a pivot store's key): the key the file records (``meta.store.key``) must be it: a file
      stored (or copied, or linked) under another face's key is another face's pivot;
    * ``photo_sha256``: the photo sha256 the file records must be it (a pivot that records none
      cannot be checked, and is not reused either).
    """
    import torch

    if not isinstance(pivot.w, torch.Tensor) or not pivot.w.is_floating_point():
        return "its latent w is not a floating-point tensor"
    if not bool(torch.isfinite(pivot.w).all()):
        return "its latent w holds NaN or infinite values"
    for name, t in sorted(pivot.tensors.items()):
        if isinstance(t, torch.Tensor) and t.is_floating_point() and not bool(torch.isfinite(t).all()):
            return f"its tensor {name!r} holds NaN or infinite values"
    if key is not None:
        store = pivot.meta.get("store") if isinstance(pivot.meta.get("store"), dict) else {}
        recorded = store.get("key")
        if recorded != key:
            return ("it records no key" if recorded is None else
                    f"it records the key {str(recorded)[:16]}..., not {key[:16]}... (another face's pivot)")
    if photo_sha256 is not None:
        recorded = recorded_sha256s(pivot)
        if not recorded:
            return "it records no photo sha256 to check"
        other = next((r for r in recorded if r != photo_sha256), None)
        if other is not None:
            return f"it was made from another photo (sha256 {str(other)[:12]}..., this photo {photo_sha256[:12]}...)"
    return None


def check_reuse(pivot: Pivot, source: str | os.PathLike, **expected) -> None:
    """:func:`verify_pivot` as one error line: ConfigError ``--pivot FILE cannot be reused: why``."""
    from .errors import ConfigError

    why = verify_pivot(pivot, **expected)
    if why is not None:
        raise ConfigError(f"--pivot {source} cannot be reused: {why}")


def _read_metadata(data: bytes) -> dict:
    import struct

    if len(data) < 8:
        raise WeightsError("file too short")
    (n,) = struct.unpack("<Q", data[:8])
    if n > len(data) - 8 or n > 100_000_000:
        raise WeightsError("corrupt safetensors header")
    header = json.loads(data[8:8 + n])
    return header.get("__metadata__") or {}


def _assemble(tensors: dict, metadata: dict, source: str) -> Pivot:
    raw = metadata.get(META_KEY)
    if raw is None or "w" not in tensors:
        raise WeightsError(f"{source}: a safetensors file, but not a counterface pivot (no {META_KEY!r} header)")
    try:
        header = json.loads(raw)
    except json.JSONDecodeError:
        raise WeightsError(f"{source}: corrupt pivot header (invalid JSON)") from None
    if not isinstance(header, dict) or not all(isinstance(header.get(k) or {}, dict) for k in ("generator", "meta")):
        raise WeightsError(f"{source}: corrupt pivot header (expected an object with 'generator' and 'meta' objects)")
    if header.get("format") != FORMAT:
        raise WeightsError(f"{source}: pivot format {header.get('format')!r} is not supported (expected {FORMAT})")
    w = tensors["w"]
    if w.dim() != 2 or not w.is_floating_point():
        raise WeightsError(f"{source}: pivot latent is {tuple(w.shape)} {w.dtype}, expected (num_ws, w_dim) floats")
    tuned = {k[len(_PREFIX):]: v for k, v in tensors.items() if k.startswith(_PREFIX)}
    return Pivot(w=w, tensors=tuned, generator=header.get("generator") or {}, meta=header.get("meta") or {})


def _json_default(o):
    from .imageio import _json_default as jd

    return jd(o)
