"""Which generator parameters pivotal tuning changes.

StyleGAN2 parameter names (rosinality, kept by the ``stylegan2`` plugin) tell the synthesis
resolution of every parameter::

    input.input, conv1.*, to_rgb1.*      4 x 4
    convs.{2k}.*, convs.{2k+1}.*        2 ** (k + 3)
    to_rgbs.{k}.*                        2 ** (k + 3)
    style.*                              the mapping network (never selected by resolution)

A selection is either a resolution range (``min_resolution`` .. ``max_resolution``, inclusive) or a
list of :func:`fnmatch.fnmatchcase` patterns over parameter names (``['*']`` tunes everything, as the
PTI repository does); both may be combined (union).
"""

from __future__ import annotations

import fnmatch
import re
from typing import Iterable

from counterface import ConfigError

_CONV = re.compile(r"^convs\.(\d+)\.")
_RGB = re.compile(r"^to_rgbs\.(\d+)\.")


def parameter_resolution(name: str) -> int | None:
    """The synthesis resolution a rosinality-named parameter works at, or None (mapping / unknown)."""
    if name.startswith(("input.", "conv1.", "to_rgb1.")):
        return 4
    m = _CONV.match(name)
    if m:
        return 2 ** (int(m.group(1)) // 2 + 3)
    m = _RGB.match(name)
    if m:
        return 2 ** (int(m.group(1)) + 3)
    return None


def select_parameters(names: Iterable[str], *, min_resolution: int | None = None, max_resolution: int | None = None,
                      patterns: Iterable[str] | str | None = None) -> list[str]:
    """The names chosen by a resolution range and/or name patterns, in the given order.

    Raises :class:`ConfigError` when nothing is selected (a tuner that tunes nothing is a mistake).
    """
    names = list(names)
    if isinstance(patterns, str):
        patterns = [p for p in patterns.replace(" ", "").split(",") if p]
    patterns = list(patterns or [])
    use_res = min_resolution is not None or max_resolution is not None
    chosen = []
    for n in names:
        hit = any(fnmatch.fnmatchcase(n, p) for p in patterns)
        if not hit and use_res:
            r = parameter_resolution(n)
            hit = r is not None and (min_resolution is None or r >= min_resolution) and (
                max_resolution is None or r <= max_resolution)
        if hit:
            chosen.append(n)
    if not chosen:
        raise ConfigError(
            f"the tuner's parameter selection (resolutions {min_resolution}-{max_resolution}, patterns {patterns}) "
            f"matches none of the generator's {len(names)} parameters"
        )
    return chosen
