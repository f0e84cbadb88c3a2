"""Where and in which numeric precision the networks run: device choice, precision and determinism
(``edit.precision``, ``edit.deterministic``), autocast and the CUDA backend flags.

Defaults (``auto``): on the CPU, exact float32 (today's path; the CPU has no faster setting that
stays within the conformance tolerances). On CUDA, the fastest setting whose drift from the exact
path docs/performance.md states: TF32, cuDNN autotuning (not deterministic) and the fast kernels
(fused up-sampling convolutions, CUDA graphs of the tuning steps). ``precision='fp32'`` with
``deterministic=True`` is the exact path, bit for bit as before these options existed.
"""

from __future__ import annotations

from .errors import ConfigError

#: numeric precisions (``edit.precision``, ``--precision``); ``auto`` resolves with :func:`resolve_precision`
PRECISIONS = ("fp32", "tf32", "bf16")
#: the ``auto`` precision per device type (others: fp32)
AUTO_PRECISION = {"cuda": "tf32"}

# what configure_backends last set (process-wide, like the torch flags it sets); read by components
_NUMERICS: dict = {}


def resolve_device(spec: str = "auto") -> str:
    import torch

    if spec in (None, "auto"):
        return "cuda" if torch.cuda.is_available() else "cpu"
    if spec.startswith("cuda") and not torch.cuda.is_available():
        raise ConfigError(f"device {spec!r} requested but CUDA is not available")
    return spec


def _device_type(device) -> str:
    return str(device).split(":")[0]


def resolve_precision(device: str, precision: str | None = "auto") -> str:
    """``auto`` (or None): tf32 on CUDA, fp32 elsewhere; any other value is checked by
    :func:`check_precision`."""
    if precision in (None, "auto"):
        return AUTO_PRECISION.get(_device_type(device), "fp32")
    return check_precision(device, precision)


def resolve_deterministic(device: str, deterministic=None) -> bool:
    """``edit.deterministic``: ``auto`` (or None) is False on CUDA (cuDNN autotuning, the fast
    kernels) and True elsewhere (the CPU path is deterministic anyway); booleans and their TOML/CLI
    spellings (true/false, 1/0, yes/no) are taken as given."""
    if deterministic in (None, "auto"):
        return _device_type(device) != "cuda"
    if isinstance(deterministic, bool):
        return deterministic
    text = str(deterministic).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"edit.deterministic must be true, false or auto, got {deterministic!r}")


def is_exact(precision: str, deterministic: bool) -> bool:
    """The exact path: float32, deterministic algorithms, no fused kernels and no CUDA graphs."""
    return precision == "fp32" and bool(deterministic)


def numerics() -> dict:
    """What :func:`configure_backends` last set: ``{"device", "precision", "deterministic", "exact"}``
    (empty before the first call). Components read ``exact`` to choose their kernels."""
    return dict(_NUMERICS)


def check_precision(device: str, precision: str = "fp32") -> str:
    """``precision`` if the device supports it; ConfigError otherwise (one line). tf32 and bf16 are
    CUDA formats: on the CPU they are refused rather than ignored, so a sidecar never claims a
    precision the run did not use (CPU bf16 also pays only with AMX/AVX512-BF16)."""
    if precision in (None, "auto"):
        return resolve_precision(device, precision)
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


def configure_backends(device: str, precision: str = "fp32", deterministic: bool = True) -> dict[str, bool]:
    """Set the numerics of CUDA runs deliberately (process-wide); a no-op for other devices (whose
    settings are still recorded for :func:`numerics`). The defaults are the exact path.

    ``precision='tf32'`` turns TF32 on in matmuls and cuDNN convolutions (faster on Ampere and later,
    about 10 bits of mantissa); ``fp32`` and ``bf16`` keep it off (bf16 runs the forward passes under
    autocast instead: see :func:`autocast`).

    * Full float32: TF32 off in matmuls and cuDNN convolutions (PyTorch enables it for cuDNN by
      default). The tuner's losses, the early-stop threshold and the conformance tolerances assume
      float32, and TF32 results differ between GPU generations.
    * ``deterministic`` (default): cuDNN deterministic algorithms, benchmarking off: the same inputs,
      settings and seed give the same output on the same machine (``edit.seed`` seeds the CPU and
      CUDA generators alike). ``deterministic=False``: cuDNN autotuning (benchmark on), about 2x
      faster convolutions in fp32 on an H200 (docs/performance.md), run-to-run differences at
      float rounding.

    Left as is: ``torch.use_deterministic_algorithms`` (it raises for the antialiased resize's CUDA
    backward, which uses atomic adds), so CUDA repeat runs agree to float rounding, not always bit
    for bit, when the tuner's working resolution is below the generator's. Returns the flags set.
    """
    import torch

    deterministic = bool(deterministic)
    _NUMERICS.clear()
    _NUMERICS.update(device=str(device), precision=precision, deterministic=deterministic,
                     exact=is_exact(precision, deterministic))
    if not str(device).startswith("cuda"):
        return {}
    tf32 = precision == "tf32"
    flags = {"matmul_allow_tf32": tf32, "cudnn_allow_tf32": tf32, "cudnn_deterministic": deterministic,
             "cudnn_benchmark": not deterministic}
    torch.backends.cuda.matmul.allow_tf32 = flags["matmul_allow_tf32"]
    torch.backends.cudnn.allow_tf32 = flags["cudnn_allow_tf32"]
    torch.backends.cudnn.deterministic = flags["cudnn_deterministic"]
    torch.backends.cudnn.benchmark = flags["cudnn_benchmark"]
    return flags
