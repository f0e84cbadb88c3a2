"""Numbers within range, not only finite: the documented range of each numeric setting, and the
check that an edit stays inside the generator's working range.

A finite number can still be nonsense: ``--alpha 1e308`` overflows float32 (a black face), and
``1e30`` or ``1e6`` move the latent so far from anything the generator was trained on that the output
is noise. So every numeric option has a range (:data:`RANGES`, listed in docs/cli.md by
``docs/gen_cli.py``), checked where the value enters (one line, exit 2), and every edited latent and
synthesized image is checked on the way (:func:`check_latent`, :func:`check_image`): an edit that
leaves the working range is an :class:`~counterface.errors.EditRangeError` (a failure row in a batch),
never a written pair.

Why these bounds: ``alpha`` and ``distance`` are in units of the direction's *unit* normal in W
space, where a face's latent rows have a norm of a few tens and published edits use |alpha| <= 3-5;
at |alpha| = 50 the moved rows are several times their own size away from the face. Cosine
similarities lie in [-1, 1].
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Iterable

from .errors import ConfigError, EditRangeError


def finite_float(value: Any, name: str) -> float:
    """``value`` as a finite float; ConfigError (one line naming ``name``) for a bool, a non-number,
    NaN or an infinity."""
    if isinstance(value, bool):  # TOML/JSON true is not the number 1
        raise ConfigError(f"{name} expects a number, got {str(value).lower()}")
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} expects a number, got {value!r}") from None
    if not math.isfinite(number):
        raise ConfigError(f"{name} expects a finite number, got {value!r}")
    return number


@dataclass(frozen=True)
class Range:
    """The closed interval ``[low, high]`` a numeric setting must lie in, and what it measures."""

    option: str
    low: float
    high: float
    meaning: str

    def check(self, value: Any, option: str | None = None) -> float:
        """``value`` as a float inside the range; ConfigError (one line, exit 2) otherwise."""
        name = option or self.option
        number = finite_float(value, name)
        if not self.low <= number <= self.high:
            raise ConfigError(f"{name} {number:g} is outside its range [{self.low:g}, {self.high:g}] "
                              f"({self.meaning}; see 'Numeric ranges' in docs/cli.md)")
        return number


#: |alpha| and |distance| above this leave the generator's working range (see the module docstring)
STRENGTH_LIMIT = 50.0
#: largest |value| of an edited W+ latent; beyond it the generator's input is nonsense (and float32
#: products in its first layers start to overflow)
LATENT_LIMIT = 1e4

#: every ranged numeric setting: key -> Range (rendered in docs/cli.md)
RANGES: dict[str, Range] = {
    "alpha": Range("--alpha", -STRENGTH_LIMIT, STRENGTH_LIMIT,
                   "strength of the shift/negate operators, in units of the direction's unit normal"),
    "alphas": Range("--alphas", -STRENGTH_LIMIT, STRENGTH_LIMIT, "the strengths of a sweep, as --alpha"),
    "alpha_bounds": Range("edit.alpha_bounds", -STRENGTH_LIMIT, STRENGTH_LIMIT,
                          "the interval --alpha auto searches, as --alpha"),
    "distance": Range("--distance", -STRENGTH_LIMIT, STRENGTH_LIMIT,
                      "target signed distance of the on/off operators, in units of the unit normal"),
    "match_threshold": Range("--match-threshold", -1.0, 1.0, "a cosine similarity (checked by counterface.matching)"),
    "identity_threshold": Range("--identity-threshold", -1.0, 1.0, "a cosine similarity"),
    "identity_independent_threshold": Range("--identity-independent-threshold", -1.0, 1.0, "a cosine similarity"),
}


def check(key: str, value: Any, option: str | None = None) -> float:
    """``RANGES[key].check(value)``: the value, or one ConfigError line."""
    return RANGES[key].check(value, option)


def bounds(key: str) -> tuple[float, float]:
    """(low, high) of ``RANGES[key]``, e.g. for a click ``finite(*bounds("distance"))`` option type."""
    r = RANGES[key]
    return r.low, r.high


def check_alpha(value: Any, option: str = "--alpha") -> Any:
    """An alpha setting as given (a number, a list of numbers, ``"auto"`` or None), each number
    checked against :data:`RANGES` ``alpha``; returned unchanged so a call site stays one line."""
    if value is None or (isinstance(value, str) and value.strip().lower() == "auto"):
        return value
    for v in (value if isinstance(value, (list, tuple)) else [value]):
        check("alpha", v, option)
    return value


def check_edit(edit: dict[str, Any]) -> None:
    """The numeric edit settings of a resolved configuration (``--set edit.alpha=...``, a TOML
    ``[edit]`` table, or the options): ``alpha`` and ``alpha_bounds`` (``match_threshold`` is checked
    by :mod:`counterface.matching`)."""
    check_alpha(edit.get("alpha"), "edit.alpha")
    for b in _as_list(edit.get("alpha_bounds")):
        check("alpha_bounds", b)


def check_latent(w, what: str = "the edited latent"):
    """``w`` (a W+ tensor or array) unchanged when it is finite and within :data:`LATENT_LIMIT`;
    EditRangeError otherwise (the edit left the generator's working range)."""
    import numpy as np

    if w is None:
        return w
    try:
        import torch

        if isinstance(w, torch.Tensor):
            finite = bool(torch.isfinite(w).all())
            peak = float(w.detach().abs().max()) if finite and w.numel() else 0.0
        else:
            raise TypeError
    except (ImportError, TypeError):
        arr = np.asarray(w, dtype=np.float64)
        finite = bool(np.isfinite(arr).all())
        peak = float(np.abs(arr).max()) if finite and arr.size else 0.0
    if not finite:
        raise EditRangeError(f"{what} is not finite (NaN or infinity): the edit left the generator's working "
                             "range; no pair is written (use a smaller alpha or distance)")
    if peak > LATENT_LIMIT:
        raise EditRangeError(f"{what} reaches {peak:.3g}, beyond the generator's working range (|w| <= "
                             f"{LATENT_LIMIT:g}); no pair is written (use a smaller alpha or distance)")
    return w


def check_image(img, what: str = "the synthesized image"):
    """``img`` unchanged when every value is finite; EditRangeError otherwise (a black face)."""
    import numpy as np

    try:
        import torch

        finite = bool(torch.isfinite(img).all()) if isinstance(img, torch.Tensor) else None
    except ImportError:  # pragma: no cover - torch is a dependency
        finite = None
    if finite is None:
        finite = bool(np.isfinite(np.asarray(img, dtype=np.float64)).all())
    if not finite:
        raise EditRangeError(f"{what} holds NaN or infinite values: the edit left the generator's working "
                             "range; no pair is written")
    return img


def markdown() -> str:
    """The 'Numeric ranges' section of docs/cli.md."""
    lines = ["\n## Numeric ranges\n",
             "Every numeric option is finite and, where listed here, inside its range; a value outside is",
             "refused with one line and exit 2 (`--set edit.<key>=...` and TOML values too). An edit whose",
             f"latent leaves the generator's working range (not finite, or |w| > {LATENT_LIMIT:g}) or whose image",
             "is not finite is refused (a batch records a failure row): it is never written as a pair.\n",
             "| option | range | what it is |", "|---|---|---|"]
    for r in RANGES.values():
        lines.append(f"| `{r.option}` | [{r.low:g}, {r.high:g}] | {r.meaning} |")
    return "\n".join(lines) + "\n"


def _as_list(value: Any) -> Iterable:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]
