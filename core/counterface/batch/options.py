"""How a batch runs (not what it edits: that is the :class:`~counterface.settings.EditSettings`).

One frozen :class:`BatchOptions`, built once by ``counterface batch`` (or by hand), goes unchanged to
the runner of every executor; together with the settings it is a :class:`Job`, what a Ray actor or a
SLURM task needs to build its runner (picklable).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from ..errors import ConfigError
from ..imageio import IMAGE_SUFFIXES
from .manifest import Item


@dataclass(frozen=True)
class BatchOptions:
    """``out_dir``: the output folder. ``workers``: processes for read + align (0 = in this process).
    ``shard``: (i, n), this process's part of the photos. ``image_format``: of the pairs.
    ``retry_failures``: retry photos that failed for a final reason. ``tune_batch``: faces tuned
    together (across photos). ``pivots``: the pivot store's folder (None: OUT/pivots; False: no
    store, every face tuned); ``pivot_dtype``: how it keeps tuned tensors. ``claims``: claim each
    photo (processes sharing the folder split the work). ``progress``: a tqdm bar on stderr.
    ``metrics``, ``lpips_net``, ``identity_independent``: the metrics stored in each row (the
    independent identity encoder comes from the preset when None). ``max_consecutive_errors``:
    unexpected errors in a row before the batch stops."""

    out_dir: str
    workers: int = 0
    shard: tuple[int, int] = (1, 1)
    image_format: str = "png"
    retry_failures: bool = False
    tune_batch: int = 1
    pivots: str | bool | None = None
    pivot_dtype: str = "float16"
    claims: bool = True
    progress: bool = False
    metrics: bool = True
    lpips_net: str = "alex"
    identity_independent: str | None = None
    max_consecutive_errors: int = 20

    def __post_init__(self):
        object.__setattr__(self, "out_dir", str(Path(self.out_dir).resolve()))
        object.__setattr__(self, "shard", tuple(int(x) for x in self.shard))
        if int(self.workers) < 0:
            raise ConfigError("--workers must be 0 or more")
        if int(self.tune_batch) < 1:
            raise ConfigError("--tune-batch must be 1 or more")
        if f".{self.image_format.lower().lstrip('.')}" not in IMAGE_SUFFIXES:
            raise ConfigError(f"unsupported image format {self.image_format!r}")

    @property
    def suffix(self) -> str:
        return f".{self.image_format.lower().lstrip('.')}"

    def replace(self, **changes: Any) -> "BatchOptions":
        return replace(self, **changes)


@dataclass
class Job:
    """A batch: the edit ``settings``, the ``options`` and, for SLURM, the ``items``."""

    settings: Any  # counterface.settings.EditSettings
    options: BatchOptions
    items: list[Item] = field(default_factory=list)

