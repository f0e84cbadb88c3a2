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


def check_folder_outputs(folder: PathLike, names: Iterable[str], inputs: Iterable[PathLike], *,
                         hint: str = "choose another output folder") -> None:
    """Refuse (``OutputError``) when a file that a command writes in ``folder`` under a fixed name is
    one of ``inputs``. ``names`` are paths relative to ``folder`` or glob patterns (``results*.jsonl``,
    ``figures/*.png``): an input whose resolved path falls under ``folder`` and matches one is
    refused, and so is an input that is the same file (a link, a hard link) as an existing match."""
    import fnmatch

    names = list(names)
    inputs = [Path(p) for p in inputs if p is not None]
    if not inputs or not names:
        return
    try:
        root = Path(folder).resolve()
    except (OSError, RuntimeError):
        return
    existing: list[Path] = []
    for pattern in names:
        try:
            existing.extend(root.glob(pattern) if any(c in pattern for c in "*?[") else [root / pattern])
        except (OSError, ValueError):
            continue
    for inp in inputs:
        try:
            resolved = inp.resolve()
        except (OSError, RuntimeError):
            continue
        rel = None
        if resolved != root and root in resolved.parents:
            rel = resolved.relative_to(root).as_posix()
        hit = rel if rel is not None and any(fnmatch.fnmatchcase(rel, n) for n in names) else None
        if hit is None:
            hit = next((p.relative_to(root).as_posix() for p in existing if p.exists() and same_file(p, inp)), None)
        if hit is not None:
            raise OutputError(f"refusing to overwrite an input file: {inp} is {root / hit}, which this command "
                              f"writes; {hint}")
