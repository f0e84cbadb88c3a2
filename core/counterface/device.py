"""Where and in which numeric precision the networks run: device choice, precision checks, autocast
and the CUDA backend flags (re-exported by :mod:`counterface.pipeline`)."""

from __future__ import annotations

from .errors import ConfigError

#: numeric precisions (``edit.precision``, ``--precision``)
PRECISIONS = ("fp32", "tf32", "bf16")


def resolve_device(spec: str = "auto") -> str:
    import torch

    if spec in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available")
    return spec


def check_precision(device: str, precision: str = "fp32") -> str:
    """``precision`` if the device supports it; ConfigError otherwise (one line). tf32 and bf16 are
    CUDA formats: on the CPU they are refused rather than ignored, so a sidecar never claims a
    precision the run did not use (CPU bf16 also pays only with AMX/AVX512-BF16)."""
    if precision not in PRECISIONS:
        raise ConfigError(f"unknown precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    if precision != "fp32" and not str(device).startswith("cuda"):
        raise ConfigError(f"--precision {precision} needs CUDA, but this run uses {device}; use fp32 on the CPU")
    return precision


def autocast(device: str, precision: str = "fp32"):
    """The forward-pass context of ``precision``: bf16 autocast on CUDA, else nothing."""
    import contextlib

    if precision != "bf16":
        return contextlib.nullcontext()
    import torch

    return torch.autocast(device_type="cuda", dtype=torch.bfloat16)


def configure_backends(device: str, precision: str = "fp32") -> dict[str, bool]:
    """Set the numerics of CUDA runs deliberately (process-wide); a no-op for other devices.

    ``precision='tf32'`` turns TF32 on in matmuls and cuDNN convolutions (faster on Ampere and later,
    about 10 bits of mantissa); ``fp32`` and ``bf16`` keep it off (bf16 runs the forward passes under
    autocast instead: see :func:`autocast`).

    * Full float32: TF32 off in matmuls and cuDNN convolutions (PyTorch enables it for cuDNN by
      default). The tuner's losses, the early-stop threshold and the conformance tolerances assume
      float32, and TF32 results differ between GPU generations.
    * cuDNN deterministic algorithms, benchmarking off: the same inputs, settings and seed give the
      same output on the same machine (``edit.seed`` seeds the CPU and CUDA generators alike).

    Left as is: ``torch.use_deterministic_algorithms`` (it raises for the antialiased resize's CUDA
    backward, which uses atomic adds), so CUDA repeat runs agree to float rounding, not always bit
    for bit, when the tuner's working resolution is below the generator's. Returns the flags set.
    """
    import torch

    if not str(device).startswith("cuda"):
        return {}
    tf32 = precision == "tf32"
    flags = {"matmul_allow_tf32": tf32, "cudnn_allow_tf32": tf32, "cudnn_deterministic": True,
             "cudnn_benchmark": False}
    torch.backends.cuda.matmul.allow_tf32 = flags["matmul_allow_tf32"]
    torch.backends.cudnn.allow_tf32 = flags["cudnn_allow_tf32"]
    torch.backends.cudnn.deterministic = flags["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    return flags
