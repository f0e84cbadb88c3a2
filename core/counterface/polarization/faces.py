"""The edited face of each article: its photo -> crop alignment matrix.

From a batch folder, the pair's Z1 sidecar records the matrix of the face the batch edited (face 0:
the largest, or the matched person with ``--face match``); it is rescaled to the
:data:`~counterface.polarization.features.CROP_SIZE` crop. Pairs without one (a pairs table, or an
unreadable sidecar) fall back on the aligner: the largest face of the published image, the face a
batch edits by default. Used by ``--crop face`` (embed the face, not the whole photo) and by the
identity check (:mod:`.identity`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from .features import CROP_SIZE

class FaceFinder:
    """Matrices per article, the aligner built once and each photo aligned once.

    ``aligner``: the aligner section (``{"name": NAME, **params}``) or a name: ``--aligner``, else the
    one the batch recorded in the pairs' sidecars; None when neither is known (then a pair without
    a recorded face stops the run with one line)."""

    def __init__(self, aligner: str | dict | None = None):
        self.spec = {"name": aligner} if isinstance(aligner, str) else (dict(aligner) if aligner else None)
        self._aligner = None
        self._found: dict[Path, np.ndarray | None] = {}
        self.aligned = 0  # photos the aligner had to look at

    def _align(self, path: Path) -> np.ndarray | None:
        rp = Path(path).resolve()
        if rp not in self._found:
            import counterface
            from ..errors import CounterfaceError
            from ..imageio import read_image

            if self._aligner is None:
                self._aligner = counterface.create("aligner", **self.spec_or_fail())
            self.aligned += 1
            try:
                faces = self._aligner.align(read_image(rp), size=CROP_SIZE)
            except CounterfaceError:
                faces = []
            self._found[rp] = np.asarray(faces[0].matrix, np.float64) if faces else None
        return self._found[rp]

    def spec_or_fail(self) -> dict:
        from ..errors import ConfigError

        if not self.spec:
            raise ConfigError("the pairs do not record the faces or the aligner that found them: name one with "
                              "--aligner NAME (see `counterface plugins`)")
        return dict(self.spec)

    def matrix(self, pair, image: Path) -> np.ndarray | None:
        """The photo -> :data:`CROP_SIZE` crop matrix of the article's edited face, or None (no face)."""
        if pair is not None and pair.matrix is not None and pair.size:
            return np.asarray(pair.matrix, np.float64) * (CROP_SIZE / float(pair.size))
        return self._align(image)

    def matrices(self, pairs: Sequence, images: Sequence[Path]) -> list[np.ndarray | None]:
        return [self.matrix(p, im) for p, im in zip(pairs, images)]
