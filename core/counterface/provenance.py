"""Provenance: versions, timings and the JSON sidecar every output carries."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import platform
import sys
import time
from typing import Any, Iterator, Mapping


def package_version(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return md.version(name)
    except md.PackageNotFoundError:
        return None


def environment() -> dict[str, Any]:
    """Versions of the interpreter and the libraries that decide the numbers."""
    out: dict[str, Any] = {"python": sys.version.split()[0], "platform": platform.platform()}
    for pkg in ("counterface", "torch", "numpy", "opencv-python", "pillow", "lpips", "face-alignment"):
        out[pkg] = package_version(pkg)
    try:
        import torch

        out["torch_threads"] = torch.get_num_threads()
        out["cuda"] = torch.version.cuda if torch.cuda.is_available() else None
        if out["cuda"]:  # the numerics that decide CUDA results (see device.configure_backends)
            out["cuda_device"] = torch.cuda.get_device_name()
            out["cuda_tf32"] = {"matmul": torch.backends.cuda.matmul.allow_tf32, "cudnn": torch.backends.cudnn.allow_tf32}
            out["cudnn_deterministic"] = torch.backends.cudnn.deterministic
    except ImportError:  # pragma: no cover
        pass
    return out


def component_record(kind: str, component: Any) -> dict[str, Any]:
    """Name, providing distribution and version, and parameters of a built component."""
    from .registry import entry

    name = getattr(component, "name", "") or type(component).__name__
    rec: dict[str, Any] = {"name": name, "class": f"{type(component).__module__}.{type(component).__qualname__}"}
    try:
        e = entry(kind, name)
        rec["plugin"], rec["package"], rec["version"] = e.plugin, e.package, e.version
    except Exception:  # noqa: BLE001 - components built outside the registry
        pass
    describe = getattr(component, "describe", None)
    rec["params"] = describe() if callable(describe) else {}
    return rec


def _cuda_sync() -> None:
    """Wait for queued CUDA work (kernels run asynchronously), so a stage's seconds are its own.
    Nothing happens unless torch is already imported and CUDA is initialised."""
    torch = sys.modules.get("torch")
    if torch is not None and torch.cuda.is_initialized():
        torch.cuda.synchronize()


class Timer:
    """Collects per-stage wall-clock seconds: ``with timer('align'): ...`` (CUDA-synchronised)."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        _cuda_sync()
        t0 = time.perf_counter()
        try:
            yield
        finally:
            _cuda_sync()
            self.seconds[stage] = self.seconds.get(stage, 0.0) + round(time.perf_counter() - t0, 4)


def config_digest(cfg: Mapping[str, Any]) -> str:
    """A short stable hash of a configuration (used to key cached work)."""
    import hashlib
    import json

    return hashlib.sha256(json.dumps(cfg, sort_keys=True, default=str).encode()).hexdigest()[:16]
