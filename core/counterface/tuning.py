"""Inversion and tuning: the pivot of a face (steps 2-4), and the check that a pivot fits the
generator. A part of :class:`counterface.pipeline.Pipeline`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .convert import to_tensor
from .errors import ConfigError
from .provenance import Timer
from .types import AlignedFace, Pivot


def _seed(seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    np.random.seed(seed % (2**32))


class Tuning:
    """The inversion and tuning part of a pipeline (mixed into :class:`~counterface.pipeline.Pipeline`)."""

    def invert(self, face: AlignedFace):
        """Step 2: (num_ws, w_dim) initial latent."""
        import torch

        inv = self.component("inverter")
        self._check_family(inv, "inverter")
        with torch.no_grad():
            w = inv.invert(to_tensor(face.crop), self.generator)
        return w[0].detach().float().cpu()

    def _region(self, face: AlignedFace):
        import torch

        return torch.from_numpy(np.ascontiguousarray(self.region_mask(face), dtype=np.float32))[None, None]

    def tune(self, face: AlignedFace, w0, progress: Callable[[dict[str, float]], None] | None = None) -> Pivot:
        """Steps 3-4: refine the latent and tune the generator around it."""
        _seed(int(self.edit["seed"]))
        identity = self.component("identity") if self.has("identity") else None
        pivot = self.component("tuner").tune(self.generator, w0, to_tensor(face.crop), region_mask=self._region(face),
                                             identity=identity, progress=progress)
        pivot.generator = self.generator_record()
        return pivot

    def tune_many(self, faces: list[AlignedFace], w0s: list, progress=None) -> list[Pivot]:
        """Steps 3-4 for several faces at once (``--tune-batch``): the tuner's ``tune_many``, one pivot
        per face, each equal within float tolerance to :meth:`tune` on that face alone."""
        _seed(int(self.edit["seed"]))
        identity = self.component("identity") if self.has("identity") else None
        targets = [to_tensor(f.crop) for f in faces]
        masks = [self._region(f) for f in faces]
        pivots = self.component("tuner").tune_many(self.generator, list(w0s), targets, region_masks=masks,
                                                   identity=identity, progress=progress)
        for p in pivots:
            p.generator = self.generator_record()
        return pivots

    def pivot(self, face: AlignedFace, progress=None) -> tuple[Pivot, dict[str, float]]:
        """Steps 2-4 for one face, with per-stage seconds."""
        t = Timer()
        with t("invert"):
            w0 = self.invert(face)
        with t("tune"):
            pivot = self.tune(face, w0, progress=progress)
        pivot.meta.setdefault("seconds", {}).update(t.seconds)
        return pivot, t.seconds

    def pivots(self, faces: list[AlignedFace], progress=None) -> list[tuple[Pivot, dict[str, float]]]:
        """Steps 2-4 for several faces tuned together: (pivot, per-stage seconds) per face, where
        ``tune`` is the face's share (the batch's seconds divided by its faces)."""
        if not faces:
            return []
        timings, w0s = [], []
        for face in faces:
            t = Timer()
            with t("invert"):
                w0s.append(self.invert(face))
            timings.append(t.seconds)
        t = Timer()
        with t("tune"):
            pivots = self.tune_many(faces, w0s, progress=progress)
        share = round(t.seconds["tune"] / len(faces), 4)
        out = []
        for pivot, seconds in zip(pivots, timings):
            seconds = {**seconds, "tune": share}
            pivot.meta.setdefault("seconds", {}).update(seconds)
            out.append((pivot, seconds))
        return out

    def generator_record(self) -> dict[str, Any]:
        g = self.generator
        return {"name": g.name, "family": getattr(g, "family", ""), "params": g.describe()}

    def check_pivot(self, pivot: Pivot) -> None:
        """A pivot may only be applied to the generator it was tuned on (name, family, parameters
        other than the device, latent and tensor shapes); ConfigError otherwise."""
        mine = self.generator_record()
        theirs = pivot.generator or {}
        if theirs and (theirs.get("name"), theirs.get("family")) != (mine["name"], mine["family"]):
            raise ConfigError(
                f"pivot was tuned on generator {theirs.get('name')!r} ({theirs.get('family')}), "
                f"not {mine['name']!r} ({mine['family']})"
            )
        a = {k: v for k, v in (theirs.get("params") or {}).items() if k != "device"}
        b = {k: v for k, v in (mine.get("params") or {}).items() if k != "device"}
        if theirs and a != b:
            diff = sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
            raise ConfigError(f"pivot was tuned on a generator with other parameters ({', '.join(diff[:4])})")
        g = self.generator
        if tuple(pivot.w.shape) != (g.num_ws, g.w_dim):
            raise ConfigError(f"pivot latent has shape {tuple(pivot.w.shape)}, the generator needs ({g.num_ws}, {g.w_dim})")
        params = dict(g.module.named_parameters())
        for k, v in pivot.tensors.items():
            if k not in params or tuple(params[k].shape) != tuple(v.shape):
                raise ConfigError(f"pivot tensor {k!r} does not fit the generator")
