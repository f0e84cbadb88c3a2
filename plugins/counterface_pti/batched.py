"""Batched pivotal tuning (:meth:`PTITuner.tune_many`, ``--tune-batch``): B faces tuned together.

Each face keeps its own leaf tensors (latent rows, copies of the selected generator tensors), so the
optimiser updates tensors of the shapes the one-face path updates; the losses are summed, not
averaged, so every face gets its own loss's gradient. On CUDA the B faces go through each network at
once, and (``tuner.graphs``) each stage's B-face step is a captured CUDA graph
(:class:`~counterface_pti.graphs.RefineManyGraph`, :class:`~counterface_pti.graphs.TuneManyGraph`);
elsewhere face by face (then bit-identical to tuning each face alone). :class:`BatchedTuning`
is mixed into :class:`~counterface_pti.tuner.PTITuner` and reads its settings (``latent_lr``,
``lambda_*``, ...).
"""

from __future__ import annotations

from counterface import ConfigError

#: device types on which tune_many runs the B faces through each network at once (elsewhere: face by face)
BATCHED_DEVICES = ("cuda",)


def resize(x, size: int):
    """Antialiased bilinear resize of an NCHW tensor to ``size`` x ``size`` (identity if already)."""
    from torch.nn import functional as F

    if x.shape[-1] == size and x.shape[-2] == size:
        return x
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False, antialias=True)


class BatchedTuning:
    """The B-face steps 3 and 4 of :class:`~counterface_pti.tuner.PTITuner` (see the module docstring)."""

    def _losses_many(self, generator, ws, tensors, lp, work, target, mask=None, use_id=False, identity=None,
                     target_emb=None, latent=False):
        """Per-face losses of B faces: (total (B,), {name: (B,)}); ``target``, ``mask`` and ``target_emb``
        are lists with one tensor per face. Each face's terms are computed exactly as
        :meth:`refine` / :meth:`tune_generator` compute them for one face.

        On CUDA the B faces go through every network at once (the generator's batched path, LPIPS and
        identity on the batch); elsewhere face by face (on the CPU the one-sample path is the fastest,
        and the result is then bit-identical to tuning each face alone)."""
        import torch

        if ws.device.type not in BATCHED_DEVICES:
            parts = [self._face_losses(
                resize(generator.synthesize_tuned(ws[i:i + 1], {k: t[i:i + 1] for k, t in (tensors or {}).items()}),
                       work).float(),
                lp, target[i], None if mask is None else mask[i], use_id, identity,
                None if target_emb is None else target_emb[i], latent) for i in range(ws.shape[0])]
            total = torch.stack([p[0] for p in parts])
            return total, {k: torch.stack([p[1][k] for p in parts]) for k in parts[0][1]}
        img = resize(generator.synthesize_tuned(ws, tensors), work).float()
        return self._face_losses(img, lp, torch.cat(target), None if mask is None else torch.cat(mask), use_id,
                                 identity, None if target_emb is None else torch.cat(target_emb), latent, per_face=True)

    def _face_losses(self, img, lp, target, mask, use_id, identity, target_emb, latent, per_face=False):
        """The loss terms: scalars for one face (``per_face`` False: the formulas of :meth:`tune`),
        or (B,) vectors of per-face means."""
        from torch.nn import functional as F

        from counterface import perceptual

        def mean(x):
            return x.flatten(1).mean(1) if per_face else x.mean()

        lpv = _lpips_each(lp, img, target) if per_face else perceptual.distance(lp, img, target).float()
        if latent:
            l2 = mean((img - target).pow(2)) if per_face else F.mse_loss(img, target)
            total = self.latent_lambda_l2 * l2 + self.latent_lambda_lpips * lpv
            return total, {"l2": l2, "lpips": lpv}
        diff = img - target
        pix = mean(diff.abs()) if self.tune_pixel == "l1" else mean(diff.pow(2))
        total = self.lambda_pixel * pix + self.lambda_lpips * lpv
        rec = {"pixel": pix, "lpips": lpv}
        if mask is not None and self.lambda_region > 0:
            rec["region"] = mean((mask * diff).abs())
            total = total + self.lambda_region * rec["region"]
        if use_id:
            emb = identity.embed(img).to(img.device)
            cos = F.cosine_similarity(emb, target_emb, dim=1)
            rec["id"] = 1.0 - (cos if per_face else cos.mean())
            total = total + self.lambda_id * rec["id"]
        return total, rec

    @staticmethod
    def _records(total, rec) -> list[dict[str, float]]:
        """Per-face loss records with one device synchronisation."""
        import torch

        keys = ["loss", *rec]
        rows = torch.stack([total.detach().float(), *(v.detach().float() for v in rec.values())], 1).tolist()
        return [dict(zip(keys, r)) for r in rows]

    def refine_many(self, generator, w_inits, target, lp, work: int, progress=None):
        """Step 3 for B faces: (w (B, num_ws, w_dim) CPU, first records, final records).

        Each face's latent is its own leaf tensor (stacked for the forward pass), so the optimiser
        updates tensors of the very shapes :meth:`refine` updates: the same arithmetic per element."""
        import torch

        from . import graphs

        dev = target[0].device
        n = len(target)
        if self.start == "w":
            start = [generator.w_avg.detach().to(dev, torch.float32).reshape(1, -1)] * n
        else:
            for w0 in w_inits:
                if w0.dim() != 2 or tuple(w0.shape) != (generator.num_ws, generator.w_dim):
                    raise ConfigError(f"initial latent has shape {tuple(w0.shape)}, the generator needs "
                                      f"({generator.num_ws}, {generator.w_dim})")
            start = [w0.detach().to(dev, torch.float32) for w0 in w_inits]
        key = ("refine_many", id(generator.module), id(lp), work, n, tuple(start[0].shape), tuple(target[0].shape))
        graph = self._graph("refine", dev, key, self.latent_steps, lambda: graphs.RefineManyGraph(
                                self, generator, torch.stack(start), torch.cat(target), lp, work))
        if graph is not None:  # CUDA: the captured B-face step, replayed (see graphs.py)
            try:
                var, first = graph.run(torch.stack(start), torch.cat(target), self.latent_steps)
            except Exception as exc:  # noqa: BLE001 - the eager loop below, from the same start
                self._graph_failed("refine", key, exc)
            else:
                ws = var.expand(-1, generator.num_ws, -1) if var.shape[1] == 1 else var
                with torch.no_grad(), self._autocast(dev):
                    final = self._records(*self._losses_many(generator, ws, None, lp, work, target, latent=True))
                if progress is not None:
                    progress({"stage": "refine", "step": self.latent_steps, "steps": self.latent_steps, "faces": n,
                              **{k: sum(r[k] for r in final) / n for k in final[0]}})
                return ws.detach().cpu().clone(), first, final
        leaves = [w0.clone().requires_grad_(True) for w0 in start]

        def wplus():
            return torch.stack([v.expand(generator.num_ws, -1) if v.shape[0] == 1 else v for v in leaves])

        def losses():
            with self._autocast(dev):
                return self._losses_many(generator, wplus(), None, lp, work, target, latent=True)

        opt = torch.optim.AdamW(leaves, lr=self.latent_lr, weight_decay=self.weight_decay)
        first = None
        for step in range(self.latent_steps):
            total, rec = losses()
            if first is None or progress is not None:
                recs = self._records(total, rec)
                first = first or recs
            opt.zero_grad(set_to_none=True)
            total.sum().backward()  # summed, not averaged: each face gets its own loss's gradient
            opt.step()
            if progress is not None:
                progress({"stage": "refine", "step": step + 1, "steps": self.latent_steps, "faces": n,
                          **{k: sum(r[k] for r in recs) / n for k in recs[0]}})
        with torch.no_grad():
            final = self._records(*losses())
            w = wplus().detach().cpu().clone()
        return w, first or final, final

    def tune_generator_many(self, generator, w, target, mask, identity, lp, names, work: int, progress=None):
        """Step 4 for B faces on per-face copies of the selected tensors (the generator itself is not
        changed): (tuned {name: (B, *shape)} CPU, first records, final records, steps, early stops).

        Every face's copy of every tensor is its own leaf (stacked for the forward pass), so the
        optimiser updates tensors of the shapes :meth:`tune_generator` updates; a face that stops
        early gets no gradient from then on, which AdamW skips (its momentum cannot move it)."""
        import torch

        from . import graphs

        dev = target[0].device
        n = len(target)
        params = dict(generator.module.named_parameters())
        wp = w.to(dev)
        use_id = identity is not None and self.lambda_id > 0
        target_emb = None
        if use_id:
            with torch.no_grad():  # one face at a time: the same numbers as tune's
                target_emb = [identity.embed(t).to(dev) for t in target]
        key = ("tune_many", id(generator.module), id(lp), id(identity), work, tuple(names), n, tuple(target[0].shape),
               mask is None, use_id)
        graph = self._graph("tune", dev, key, self.tune_steps, lambda: graphs.TuneManyGraph(
                                self, generator, params, names, wp, torch.cat(target),
                                None if mask is None else torch.cat(mask), identity,
                                None if target_emb is None else torch.cat(target_emb), lp, work))
        if graph is not None:  # CUDA: the captured B-face step, replayed; early stops read every K steps
            try:
                tuned, first, steps, early = graph.run(
                    params, wp, torch.cat(target), None if mask is None else torch.cat(mask),
                    None if target_emb is None else torch.cat(target_emb), self.tune_steps, self.graph_check_every)
            except Exception as exc:  # noqa: BLE001 - the eager loop below (the generator was not changed)
                self._graph_failed("tune", key, exc)
            else:
                with torch.no_grad(), self._autocast(dev):
                    final = self._records(*self._losses_many(generator, wp, tuned, lp, work, target, mask, use_id,
                                                             identity, target_emb))
                if progress is not None:
                    progress({"stage": "tune", "step": max(steps), "steps": self.tune_steps, "faces": n,
                              "active": n - sum(early), **{k: sum(r[k] for r in final) / n for k in final[0]}})
                return {k: v.to("cpu") for k, v in tuned.items()}, first, final, steps, early
        leaves = [{k: params[k].detach().clone().requires_grad_(True) for k in names} for _ in range(n)]

        def stacked():
            return {k: torch.stack([face[k] for face in leaves]) for k in names}

        def losses():
            with self._autocast(dev):
                return self._losses_many(generator, wp, stacked(), lp, work, target, mask, use_id, identity, target_emb)

        opt = torch.optim.AdamW([t for face in leaves for t in face.values()], lr=self.tune_lr,
                                weight_decay=self.weight_decay)
        first = None
        steps, early = [0] * n, [False] * n
        active = [True] * n
        for step in range(self.tune_steps):
            total, rec = losses()
            recs = self._records(total, rec)
            first = first or recs
            for i, r in enumerate(recs):
                if active[i] and r["lpips"] <= self.lpips_threshold:
                    active[i], early[i] = False, True
            if not any(active):
                break
            opt.zero_grad(set_to_none=True)
            total[torch.tensor(active, device=dev)].sum().backward()
            for i in range(n):
                if active[i]:
                    steps[i] = step + 1
                else:  # stopped: no gradient, so AdamW leaves its tensors alone
                    for t in leaves[i].values():
                        t.grad = None
            opt.step()
            if progress is not None:
                progress({"stage": "tune", "step": step + 1, "steps": self.tune_steps, "faces": n,
                          "active": sum(active), **{k: sum(r[k] for r in recs) / n for k in recs[0]}})
        with torch.no_grad():
            final = self._records(*losses())
        tuned = {k: torch.stack([face[k].detach() for face in leaves]).to("cpu") for k in names}
        return tuned, first or final, final, steps, early


def _lpips_each(model, a, b):
    """LPIPS per sample (B,) between two NCHW batches in [-1, 1] (as :func:`counterface.perceptual.distance`,
    without the mean over the batch)."""
    from counterface.perceptual import MIN_SIDE

    if min(a.shape[-2:]) < MIN_SIDE:
        from torch.nn import functional as F

        a = F.interpolate(a, size=(MIN_SIDE, MIN_SIDE), mode="bilinear", align_corners=False)
        b = F.interpolate(b, size=(MIN_SIDE, MIN_SIDE), mode="bilinear", align_corners=False)
    return model(a, b).reshape(a.shape[0]).float()
