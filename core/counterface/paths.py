"""Output paths checked against input paths: no command ever writes over one of its inputs.

Every command that writes files names its inputs (photos, manifests, tables, caches, boundary files)
and its outputs (tables, images, caches) and calls :func:`check_outputs` before writing anything.
Paths are compared after resolving links (``Path.resolve``) and, where both exist, by device and
inode (``os.path.samefile``), so a symlink or a hard link to an input is caught too. Writing *into*
an input's folder is fine; replacing an input file is an :class:`~counterface.errors.OutputError`
(one line, exit 2).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Iterable

from .errors import OutputError

PathLike = str | os.PathLike


def same_file(a: PathLike, b: PathLike) -> bool:
    """Whether ``a`` and ``b`` name the same file: the same resolved path, or the same inode."""
    pa, pb = Path(a), Path(b)
    try:
        if pa.resolve() == pb.resolve():
            return True
    except (OSError, RuntimeError):  # a link loop: compare what can be compared below
        pass
    try:
        return os.path.samefile(pa, pb)
    except OSError:  # one of them does not exist (yet): different files
        return False


def check_not_input(output: PathLike, inputs: Iterable[PathLike], what: str = "output") -> Path:
    """``output`` as a resolved path, after checking that it is none of ``inputs``."""
    for inp in inputs:
        if inp is None:
            continue
        if same_file(output, inp):
            raise OutputError(f"refusing to overwrite an input file: the {what} {output} is the input {inp}; "
                              "choose another output path")
    return Path(output).resolve()


def check_outputs(outputs: Iterable[PathLike], inputs: Iterable[PathLike]) -> None:
    """Refuse (``OutputError``) when any of ``outputs`` is one of ``inputs``."""
    inputs = [p for p in inputs if p is not None]
    for out in outputs:
        if out is not None:
            check_not_input(out, inputs)
