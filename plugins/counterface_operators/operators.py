"""The reference counterfactual operators (see :class:`counterface.Operator` for the contract).

Each returns, for the edited W+ rows of one attribute, the change of the signed distance
``d_l = normal_l . w_l + intercept_l`` to make; the pipeline moves the latent rows accordingly.

=============== ============================= ==================================================
operator        step on row l                 output
=============== ============================= ==================================================
shift           alpha                         w_l + alpha * n_l (today's edit, no intercept needed)
on              t_on - d_l                    d_l = on_distance (or ``distance``)
original        (none)                        the photo itself
reconstruction  0                             the pivot's own render
negate          -alpha                        w_l - alpha * n_l
off             t_off - d_l                   d_l = off_distance (or ``distance``)
neutral         -d_l                          d_l = 0, on the boundary
=============== ============================= ==================================================

Attributes the pipeline reads instead of names: ``uses_alpha`` (False: the step ignores alpha, so a
sweep or ``--alpha auto`` with it alone is refused), ``renders_pivot`` (True: the output is the
pivot's own render, the metrics' reconstruction), ``returns_photo`` and ``needs_intercept`` (see
:class:`counterface.Operator`).
"""

from __future__ import annotations

import math
from typing import Any, Sequence

from counterface import ConfigError, Operator


class _Constant(Operator):
    """A step that does not depend on the distance: ``factor * alpha`` on every row."""

    factor = 0.0

    def step(self, distance, *, alpha: float, boundary: Any = None, index: int = 0, rows: int = 0):
        import torch

        n = int(distance.shape[0]) if distance is not None else int(rows)
        return torch.full((n,), float(self.factor) * float(alpha), dtype=torch.float64)


class Shift(_Constant):
    """pi(Z): d_l -> d_l + alpha on every edited row (``w_l + alpha * n_l``); the default pi_1 and
    the only one that needs no intercept besides ``negate``/``reconstruction``."""

    factor = 1.0


class Negate(_Constant):
    """pi(Z): d_l -> d_l - alpha (the edit at -alpha): removes or reverses the attribute."""

    factor = -1.0


class Reconstruction(_Constant):
    """pi(Z) = Z through the pivot: no move; the render differs from the photo only by GAN
    reconstruction, like pi_1's output."""

    factor = 0.0
    uses_alpha = False
    renders_pivot = True


class Original(Operator):
    """pi(Z) = the photo itself; the pair then also differs in GAN reconstruction error."""

    returns_photo = True
    uses_alpha = False

    def step(self, distance, *, alpha: float, boundary: Any = None, index: int = 0, rows: int = 0):
        import torch

        n = int(distance.shape[0]) if distance is not None else int(rows)
        return torch.zeros(n, dtype=torch.float64)


class _Target(Operator):
    """Moves every edited row to a signed distance: the ``distance`` parameter (one number, or one
    per ``--direction`` in order), else the boundary's own (``target_field``)."""

    needs_intercept = True
    uses_alpha = False
    target_field = ""

    def __init__(self, *, distance: float | Sequence[float] | None = None):
        if distance is not None and not isinstance(distance, (int, float)):
            distance = [float(x) for x in distance]
            if not distance:
                raise ConfigError(f"{type(self).__name__.lower()}: distance needs at least one value")
        elif distance is not None:
            distance = float(distance)
        values = [distance] if isinstance(distance, float) else (distance or [])
        if any(not math.isfinite(v) for v in values):
            raise ConfigError(f"distance must be finite, got {distance!r}")
        self.distance = distance

    def target(self, boundary: Any, index: int = 0) -> float:
        if isinstance(self.distance, list):
            if index >= len(self.distance):
                raise ConfigError(f"{len(self.distance)} distance(s) given for more directions; give one per --direction")
            return self.distance[index]
        if self.distance is not None:
            return self.distance
        value = getattr(boundary, self.target_field, None)
        if value is None:
            what = getattr(boundary, "attribute", "") or "this direction"
            raise ConfigError(f"the {what} boundary records no {self.target_field}: give the target with --distance D "
                              "or relearn it with `counterface directions learn` / `counterface directions calibrate`")
        return float(value)

    def step(self, distance, *, alpha: float, boundary: Any = None, index: int = 0, rows: int = 0):
        if distance is None:
            raise ConfigError(f"operator {self.name or type(self).__name__.lower()!r} needs the signed distance "
                              "(a boundary with an intercept)")
        return float(self.target(boundary, index)) - distance.double()

    def describe(self) -> dict[str, Any]:
        return {"distance": self.distance}


class On(_Target):
    """pi_1(Z) = (T=1, Z(-T)): every edited row moved along its normal to the boundary's
    ``on_distance`` (the median signed distance of its positive examples), or to ``distance``."""

    target_field = "on_distance"


class Off(_Target):
    """pi_0(Z) = (T=0, Z(-T)): every edited row moved along its normal to the boundary's
    ``off_distance`` (the median signed distance of its negative examples), or to ``distance``."""

    target_field = "off_distance"


class Neutral(_Target):
    """pi_0(Z): every edited row moved onto the boundary (d = 0), neither on nor off."""

    def target(self, boundary: Any, index: int = 0) -> float:
        return 0.0

    def __init__(self):
        self.distance = 0.0

    def describe(self) -> dict[str, Any]:
        return {}
