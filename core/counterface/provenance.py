"""Provenance: versions, timings and the JSON sidecar every output carries."""

from __future__ import annotations

import contextlib
import importlib.metadata as md
import platform
import sys
import time
from typing import Any, Iterator


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


class Timer:
    """Collects per-stage wall-clock seconds: ``with timer('align'): ...``."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    @contextlib.contextmanager
    def __call__(self, stage: str) -> Iterator[None]:
        t0 = time.perf_counter()
        try:
            yield
        finally:
            self.seconds[stage] = self.seconds.get(stage, 0.0) + round(time.perf_counter() - t0, 4)
