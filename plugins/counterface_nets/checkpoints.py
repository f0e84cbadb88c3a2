"""Safe checkpoint loading with clear errors.

Never unpickles code: ``torch.load(weights_only=True)`` (tensors, dicts, lists, str/int/float/bool/
None only) or safetensors. Every failure is a :class:`counterface.WeightsError` naming the file and,
for state-dict mismatches, the first offending keys.
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path
from typing import Any, Mapping

from counterface.errors import ConfigError, WeightsError

_SHOW = 5  # how many offending keys an error names


def safe_load(path: str | os.PathLike, *, what: str = "checkpoint") -> Any:
    """Load a ``.pt``/``.pth``/``.safetensors`` file on CPU without executing code from it."""
    import torch

    p = Path(path)
    if not p.is_file():
        raise WeightsError(f"{what} file not found: {p}")
    if p.stat().st_size == 0:
        raise WeightsError(f"{p}: empty file, not a {what}")
    if p.suffix == ".safetensors":
        try:
            from safetensors.torch import load_file

            return load_file(str(p), device="cpu")
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types
            raise WeightsError(f"{p}: not a readable safetensors {what} ({_short(exc)})") from None
    try:
        # Zip-format files (torch >= 1.6) are memory-mapped: only the tensors a loader copies out are
        # read from disk (the generator inside the 1.2 GB e4e file costs ~130 MB, not 1.2 GB).
        mmap = zipfile.is_zipfile(p)
        with warnings.catch_warnings():  # random bytes: "Detected pickle protocol 76 ..." is noise here
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(str(p), map_location="cpu", weights_only=True, mmap=mmap)
    except pickle.UnpicklingError as exc:
        msg = _short(exc)
        if "Weights only load failed" in str(exc) or "Unsupported global" in str(exc):
            raise WeightsError(
                f"{p}: refusing to load: the file holds Python objects beyond tensors and plain containers "
                f"(not the expected {what}, or a code-carrying pickle)"
            ) from None
        raise WeightsError(f"{p}: not a PyTorch {what} ({msg})") from None
    except (MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001 - the legacy-pickle path of random bytes raises anything
        # (IndexError: pop from empty list, KeyError, TypeError, struct.error, ...): one error naming the file
        raise WeightsError(f"{p}: corrupt or truncated {what} ({type(exc).__name__}: {_short(exc)})") from None


def wrap_errors(path, what: str, load):
    """``load()``, with every failure that is not already a :class:`~counterface.errors.CounterfaceError`
    turned into the one :class:`WeightsError` naming ``path`` (a file that parses but holds nonsense:
    wrong types or shapes deep inside a network's constructor)."""
    from counterface.errors import CounterfaceError

    try:
        return load()
    except (CounterfaceError, MemoryError, KeyboardInterrupt):
        raise
    except Exception as exc:  # noqa: BLE001
        raise WeightsError(f"{path}: not a usable {what} ({type(exc).__name__}: {_short(exc)})") from None


#: ``weights`` values meaning "no file: a network drawn from ``seed``" (any case; TOML has no null)
NO_WEIGHTS = ("", "none", "random")


def weights_arg(weights: str | os.PathLike | None) -> str | None:
    """A plugin's ``weights`` parameter normalised: ``None`` for no file (``None``, ``""``, ``"none"``,
    ``"random"``), else the registry name or path as a string."""
    if weights is None:
        return None
    s = os.fspath(weights)
    return None if s.strip().lower() in NO_WEIGHTS else s


#: IR-SE body of the seeded random networks (``weights=None``: tests, the tiny preset)
TINY_UNITS = (1, 1, 1, 1)
TINY_WIDTH = 0.25


def check_body(units, width, what: str) -> tuple[list[int] | None, float | None]:
    """Validate and normalise an IR-SE ``units`` (4 positive ints) / ``width`` (> 0) pair; None = default."""
    if units is not None and (len(units) != 4 or min(int(u) for u in units) < 1):
        raise ConfigError(f"{what} units must be 4 positive integers, got {list(units)}")
    if width is not None and not float(width) > 0:
        raise ConfigError(f"{what} width must be positive, got {width}")
    return (None if units is None else [int(u) for u in units]), (None if width is None else float(width))


def body_arch(random: bool, units, width) -> dict:
    """``units``/``width`` arguments of an IR-SE network: the given values, else the file's 50-layer
    body at full width, or :data:`TINY_UNITS` / :data:`TINY_WIDTH` for a random network."""
    units = units if units is not None else (TINY_UNITS if random else None)
    arch = {"width": width if width is not None else (TINY_WIDTH if random else 1.0)}
    if units is not None:
        arch["units"] = tuple(units)
    return arch


def resolve_weights(weights: str | os.PathLike) -> Path:
    """A local file for ``weights``: an existing path as is, else a registry name through
    :func:`counterface.weights.resolve` (cache, ``locate_weights`` hook, download; WeightsError for an
    unknown name or a missing path)."""
    from counterface import weights as W

    return W.resolve(weights)


def _short(exc: BaseException, limit: int = 160) -> str:
    from counterface.errors import reason

    return reason(exc, limit)


def strip_prefix(state_dict: Mapping[str, Any], prefix: str) -> dict[str, Any]:
    """The entries of ``state_dict`` under ``prefix`` with the prefix removed."""
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def require_mapping(obj: Any, path, what: str, keys: tuple[str, ...] = ()) -> Mapping[str, Any]:
    """Check ``obj`` is a dict holding ``keys``; else a WeightsError naming what was found."""
    if not isinstance(obj, Mapping):
        raise WeightsError(f"{path}: expected a {what} (a dict), found {type(obj).__name__}")
    missing = [k for k in keys if k not in obj]
    if missing:
        found = ", ".join(sorted(map(str, obj))[:_SHOW])
        raise WeightsError(f"{path}: not a {what}: missing top-level {missing[0]!r} (has: {found})")
    return obj


def load_strict(module, state_dict: Mapping[str, Any], *, path, what: str,
                optional_suffixes: tuple[str, ...] = ("num_batches_tracked",)) -> None:
    """``module.load_state_dict(strict=True)`` after a key/shape check with a clear error.

    Keys ending in ``optional_suffixes`` may be absent from the file (torch 0.4 checkpoints lack
    BatchNorm's ``num_batches_tracked``); the module's own values are kept for them.
    """
    import torch

    own = module.state_dict()
    sd = {k: v for k, v in state_dict.items()}
    missing = [k for k in own if k not in sd and not k.endswith(optional_suffixes)]
    extra = [k for k in sd if k not in own]
    if missing or extra:
        parts = []
        if missing:
            parts.append(f"missing {len(missing)} keys ({', '.join(missing[:_SHOW])})")
        if extra:
            parts.append(f"unexpected {len(extra)} keys ({', '.join(extra[:_SHOW])})")
        raise WeightsError(f"{path}: not a {what}: {'; '.join(parts)}")
    bad = []
    for k, v in sd.items():
        if not isinstance(v, torch.Tensor):
            raise WeightsError(f"{path}: not a {what}: {k!r} is a {type(v).__name__}, not a tensor")
        if tuple(v.shape) != tuple(own[k].shape):
            bad.append(f"{k} {tuple(v.shape)} != {tuple(own[k].shape)}")
    if bad:
        raise WeightsError(f"{path}: not a {what}: wrong shapes: {'; '.join(bad[:_SHOW])}")
    for k in own:
        if k not in sd:
            sd[k] = own[k]
    module.load_state_dict(sd, strict=True)
