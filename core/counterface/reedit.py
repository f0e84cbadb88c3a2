"""Re-edits from a stored pivot in one go: every alpha and role of one face's pivot synthesized in
one generator call (the pivot's tuned tensors are shared by all of them, so the batch is an ordinary
batch of latents), pasted back on the synthesis's device, and returned as the per-photo flow's
:class:`~counterface.flow.Step` list, the same as :func:`counterface.flow.render_face` gives.

On devices where the generator does not batch (the CPU, whose one-sample path is the fastest), the
latents go one at a time: the outputs are then those of :func:`~counterface.flow.render_face` bit for
bit. On CUDA the crops stay on the GPU (uint8 tensors) for the blender (its ``on_device`` ``auto``
blends them there); only the finished images come back to the host, for the writer to encode.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from .device import autocast
from .provenance import Timer
from .rendering import ROLES
from .types import EditResult


def batched(pipe) -> bool:
    """Whether ``pipe``'s generator synthesizes several latents in one call on its device."""
    dev = _device(pipe)
    return dev.type in tuple(getattr(pipe.generator, "batched_devices", ()))


def _device(pipe):
    return next(iter(pipe.generator.module.parameters())).device


def _crop_tensor(img):
    """(3, R, R) float in [-1, 1] -> (R, R, 3) uint8 on its device (as :func:`counterface.convert.to_image`)."""
    import torch

    return ((img.float() + 1.0) * 127.5).round().clamp(0, 255).to(torch.uint8).permute(1, 2, 0).contiguous()


def synthesize_many(pipe, pivot, ws: Sequence[Any]) -> list:
    """The crops of ``ws`` (each (num_ws, w_dim)) through the pivot's tuned generator: (R, R, 3)
    uint8 tensors on the generator's device, in one call where the generator batches, else one by one."""
    import torch

    g = pipe.generator
    dev = _device(pipe)
    W = torch.stack([(w[0] if w.dim() == 3 else w) for w in ws]).to(dev, torch.float32)
    chunk = len(ws) if batched(pipe) else 1
    out = []
    with torch.no_grad(), g.load_tensors(pivot.tensors), autocast(pipe.device, pipe.precision):
        for i in range(0, len(ws), chunk):
            imgs = g.synthesize(W[i:i + chunk]).float()
            out.extend(_crop_tensor(im) for im in imgs)
    return out


def render_reused(pipe, photo, face, pivot, *, roles: Sequence[str], alphas: Sequence[Any],
                  seconds: dict[str, float] | None = None, extra: dict[str, Any] | None = None) -> list:
    """:func:`counterface.flow.render_face` for a pivot that is not tuned now, with numeric alphas:
    the operators' latents, one synthesis call for all of them, the paste-backs, leakage and sidecars."""
    from .flow import Step

    if any(a == "auto" for a in alphas):
        raise ValueError("render_reused needs numeric alphas; --alpha auto searches per face")
    pipe.check_pivot(pivot)
    plan = []  # (alpha, role, w, records, is_photo, seconds)
    for alpha in alphas:
        for role in roles:
            t = Timer()
            with t("edit"):
                w, records, is_photo = pipe.counterfactual_latent(pivot, role, alpha)
            plan.append([alpha, role, w, records, is_photo, t.seconds])
    todo = [p for p in plan if not p[4]]
    t = Timer()
    with t("synthesize"):
        crops = synthesize_many(pipe, pivot, [p[2] for p in todo]) if todo else []
    share = t.seconds.get("synthesize", 0.0) / max(len(todo), 1)
    blender = pipe.component("blender")
    results: dict[tuple, EditResult] = {}
    for p, crop in zip(todo, crops):
        alpha, role, w, records, _, secs = p
        crop_np = np.ascontiguousarray(crop.cpu().numpy())
        # a blender that says it can (the gaussian one's on_device) gets the CUDA crop to blend there
        on_gpu = crop.device.type == "cuda" and getattr(blender, "on_device", "never") != "never"
        tb = Timer()
        with tb("blend"):
            image = blender.blend(photo.image, crop if on_gpu else crop_np, face)
        a = float(alpha) if isinstance(alpha, (int, float)) else alpha
        results[id(p)] = EditResult(image=image, crop=crop_np, face=face, alpha=a, meta={
            "seconds": {**secs, "synthesize": share, **tb.seconds}, "attributes": records, "latent": w,
            "role": ROLES[role]})
    steps = []
    for i, alpha in enumerate(alphas):
        step_results, step_seconds = {}, {}
        for p in plan[i * len(roles):(i + 1) * len(roles)]:
            _, role, _, records, is_photo, secs = p
            a = float(alpha) if isinstance(alpha, (int, float)) else alpha
            r = (EditResult(image=photo.image.copy(), crop=face.crop.copy(), face=face, alpha=a,
                            meta={"seconds": secs, "attributes": records, "latent": None, "role": ROLES[role]})
                 if is_photo else results[id(p)])
            step_results[ROLES[role]] = r
            step_seconds[role] = float(sum(r.meta["seconds"].values()))
        first = next(iter(step_results.values()))
        leakage = pipe.leakage(pivot, step_results.get("z1", first), step_results.get("z0"))
        step = Step(alpha=first.alpha, results=step_results, leakage=leakage, seconds=step_seconds)
        for role, r in step_results.items():
            step.sidecars[role] = pipe.sidecar(
                input_path=photo.path, input_sha256=photo.sha256, face=face, alpha=step.alpha, role=role,
                pivot=pivot, seconds={**(seconds or {}), **step_seconds, **r.meta["seconds"]},
                attributes=r.meta["attributes"], extra={**leakage, **(extra or {})})
        steps.append(step)
    return steps
