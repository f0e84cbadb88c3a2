"""Pivotal tuning (steps 3 and 4 of SmileGAN-PTI).

Step 3, latent refinement (generator frozen)::

    w* = argmin_w  l2 * ||G(w) - Z||^2 + lpips * LPIPS(G(w), Z)            AdamW on w only

starting from the inverter's W+ (``start='e4e'``, the seed) or, as the PTI repository does, from a
single W vector initialised at ``w_avg`` and broadcast to every row (``start='w'``).

Step 4, generator tuning at the pivot w* (w frozen)::

    pixel * |G(w*) - Z|_1 + lpips * LPIPS + region * |M . (G(w*) - Z)|_1 + id * (1 - cos(ArcFace(G), ArcFace(Z)))

``M`` is the edited attribute's region (the direction's :class:`~counterface.types.Region`: the mouth
for smile, the eyes for glasses, the whole face for age). Images are in [-1, 1], so the pixel terms
are 2x (L1) and 4x (MSE) the same formulas on [0, 1] images (see docs/pipeline.md).

AdamW on the selected generator parameters only (see :mod:`.selection`); stops early once LPIPS
falls to ``lpips_threshold`` (PTI's ``LPIPS_value_threshold``). Losses are computed at a working
``resolution`` (both images resized with antialiasing) for speed. The generator is restored
bit-identically before returning; the tuned tensors go into the :class:`~counterface.Pivot`.

Defaults and the PTI repository's (danielroich/PTI ``configs/hyperparameters.py``):

=====================  ==================  ==========================================
parameter              default here        PTI
=====================  ==================  ==========================================
start                  ``e4e`` (seed)      ``first_inv_type = 'w'``
latent_steps           450                 ``first_inv_steps = 450``
latent_lr              5e-3 (constant)     0.01 x a ramp, every step (see below)
tune_steps             350                 ``max_pti_steps = 350``
tune_lr                3e-4                ``pti_learning_rate = 3e-4``
tune_pixel             ``l1`` (seed)       L2 (``pt_l2_lambda = 1``)
lambda_pixel, _lpips   1, 1                ``pt_l2_lambda = 1``, ``pt_lpips_lambda = 1``
lpips_threshold        0.06                ``LPIPS_value_threshold = 0.06``
lpips_net              ``alex``            ``lpips_type = 'alex'``
lambda_region, _id     1.0, 0.1            (not in PTI; the seed's extra terms)
tuned parameters       synthesis >= 64 px  all of G
resolution             256                 full resolution (1024)
=====================  ==================  ==========================================

PTI uses Adam; AdamW with ``weight_decay=0`` (the default) is the same update.

PTI's ``first_inv_lr = 5e-3`` is never used: ``calc_inversions`` calls ``w_projector.project``
without it, so the latent is optimised at the projector's ``initial_learning_rate = 0.01`` times a
ramp recomputed every step (linear warm-up over the first 5 %, cosine decay over the last 25 %).
Here ``latent_lr`` is a constant rate, 5e-3 by default (the latent starts from e4e, not from the
average latent as PTI's projector does).

Batched tuning (:meth:`PTITuner.tune_many`, ``counterface batch --tune-batch B``): B faces at once.
The latents are one (B, num_ws, w_dim) variable; every tuned parameter gets a leading batch dimension
of per-sample copies, rendered by :meth:`counterface.Generator.synthesize_tuned` (StyleGAN2: one grouped
convolution per layer). Each loss is computed per face and the faces' losses are *summed*, so the
gradient of face i's copies is exactly the gradient of face i's own loss; AdamW is elementwise, so one
optimiser over the batched tensors takes each face's own steps. Early stopping is per face: a face
whose LPIPS reaches ``lpips_threshold`` keeps its tensors from then on (the optimiser's step is undone
for it, since AdamW's momentum would still move it) while the others go on. The result per face equals
``tune`` on that face alone within float tolerance (batched convolutions round differently).

``precision`` (``edit.precision``, ``--precision``): ``fp32`` (default), ``tf32`` (TF32 matmuls and
convolutions: set process-wide by the pipeline, nothing to do here) or ``bf16`` (the forward passes
and losses under ``torch.autocast(dtype=bfloat16)``; parameters, gradients and optimiser state stay
float32). bf16 and tf32 need CUDA.

``graphs`` (``auto`` | ``on`` | ``off``): on CUDA, outside the exact path (fp32 + deterministic) and
not in bf16, ``auto`` captures one refinement and one tuning step as CUDA graphs and replays them for
every step and face (:mod:`.graphs`), and :meth:`PTITuner.tune_many` one B-face step of each stage;
early stopping is read every ``graph_check_every`` steps and gives the eager loop's step count. The
pivot's ``meta["graphs"]`` says what ran per stage.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any, Callable

from counterface import ConfigError, Pivot, Tuner

from . import selection
from .batched import BatchedTuning, resize

#: LPIPS trunks the tuner accepts (``counterface.perceptual.BACKBONE_FILES``; that module imports torch)
LPIPS_NETS = ("alex", "vgg")

_STARTS = {"e4e": "e4e", "inverter": "e4e", "w+": "e4e", "w": "w"}
#: numeric precisions of the tuning (``edit.precision``); all but fp32 need CUDA
PRECISIONS = ("fp32", "tf32", "bf16")


@contextlib.contextmanager
def _frozen(module, identity):
    """No gradients for the generator's or the identity network's parameters inside (the tuner turns
    on the ones it tunes); every parameter's ``requires_grad`` is restored on exit."""
    id_module = getattr(identity, "module", None) if identity is not None else None
    modules = [m for m in (module, id_module) if m is not None]
    flags = [[(p, p.requires_grad) for p in m.parameters()] for m in modules]
    try:
        for m in modules:
            m.requires_grad_(False)
        yield
    finally:
        for pairs in flags:
            for p, flag in pairs:
                p.requires_grad_(flag)


def _module_device(module):
    import torch

    for p in module.parameters():
        return p.device
    return torch.device("cpu")


class PTITuner(BatchedTuning, Tuner):
    """Pivotal Tuning Inversion: refine the latent, then tune a part of the generator around it.

    See the module docstring for every parameter and its PTI default.
    """

    def __init__(
        self,
        *,
        start: str = "e4e",
        latent_steps: int = 450,
        latent_lr: float = 5e-3,
        latent_lambda_l2: float = 1.0,
        latent_lambda_lpips: float = 1.0,
        tune_steps: int = 350,
        tune_lr: float = 3e-4,
        tune_pixel: str = "l1",
        lambda_pixel: float = 1.0,
        lambda_lpips: float = 1.0,
        lambda_region: float = 1.0,
        lambda_id: float = 0.1,
        lpips_threshold: float = 0.06,
        tune_min_resolution: int | None = 64,
        tune_max_resolution: int | None = None,
        tune_params: Any = None,
        lpips_net: str = "alex",
        lpips_pretrained: bool = True,
        resolution: int | None = 256,
        weight_decay: float = 0.0,
        seed: int = 0,
        device: str = "auto",
        precision: str = "fp32",
        graphs: str = "auto",
        graph_check_every: int = 10,
    ):
        if start not in _STARTS:
            raise ConfigError(f"tuner.start must be one of {', '.join(_STARTS)}, got {start!r}")
        if tune_pixel not in ("l1", "l2"):
            raise ConfigError(f"tuner.tune_pixel must be 'l1' or 'l2', got {tune_pixel!r}")
        if lpips_net not in LPIPS_NETS:
            raise ConfigError(f"tuner.lpips_net must be one of {', '.join(LPIPS_NETS)}, got {lpips_net!r}")
        for name, v in (("latent_steps", latent_steps), ("tune_steps", tune_steps)):
            if int(v) < 0:
                raise ConfigError(f"tuner.{name} must be >= 0, got {v}")
        if precision not in PRECISIONS:
            raise ConfigError(f"tuner.precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
        if resolution is not None and int(resolution) < 16:
            raise ConfigError(f"tuner.resolution must be >= 16 (or none for full size), got {resolution}")
        self.start = _STARTS[start]
        self.latent_steps = int(latent_steps)
        self.latent_lr = float(latent_lr)
        self.latent_lambda_l2 = float(latent_lambda_l2)
        self.latent_lambda_lpips = float(latent_lambda_lpips)
        self.tune_steps = int(tune_steps)
        self.tune_lr = float(tune_lr)
        self.tune_pixel = tune_pixel
        self.lambda_pixel = float(lambda_pixel)
        self.lambda_lpips = float(lambda_lpips)
        self.lambda_region = float(lambda_region)
        self.lambda_id = float(lambda_id)
        self.lpips_threshold = float(lpips_threshold)
        self.tune_min_resolution = None if tune_min_resolution is None else int(tune_min_resolution)
        self.tune_max_resolution = None if tune_max_resolution is None else int(tune_max_resolution)
        if isinstance(tune_params, str):
            tune_params = [p for p in tune_params.replace(" ", "").split(",") if p]
        self.tune_params = None if tune_params is None else [str(p) for p in tune_params]
        self.lpips_net = lpips_net
        self.lpips_pretrained = bool(lpips_pretrained)
        self.resolution = None if resolution in (None, 0) else int(resolution)
        self.weight_decay = float(weight_decay)
        self.seed = int(seed)
        self.device = device
        self.precision = precision
        from .graphs import GRAPH_MODES

        if graphs not in GRAPH_MODES:
            raise ConfigError(f"tuner.graphs must be one of {', '.join(GRAPH_MODES)}, got {graphs!r}")
        if int(graph_check_every) < 1:
            raise ConfigError(f"tuner.graph_check_every must be >= 1, got {graph_check_every}")
        self.graphs = graphs
        self.graph_check_every = int(graph_check_every)
        self._graph_cache: dict = {}  # captured steps (graphs.RefineGraph / TuneGraph) by configuration
        self._graph_modes: dict = {}  # stage -> "graph" or "eager: why" (the last run's; in the pivot's meta)

    # -- helpers ---------------------------------------------------------------------------------
    def selected(self, generator) -> list[str]:
        """Names of the generator parameters this tuner changes."""
        use_res = self.tune_params is None or self.tune_min_resolution is not None or self.tune_max_resolution is not None
        return selection.select_parameters(
            [n for n, _ in generator.module.named_parameters()],
            min_resolution=self.tune_min_resolution if use_res else None,
            max_resolution=self.tune_max_resolution if use_res else None,
            patterns=self.tune_params,
        )

    def _device(self, generator):
        dev = _module_device(generator.module)
        if self.device not in (None, "auto"):
            import torch

            if torch.device(self.device).type != dev.type:
                raise ConfigError(f"tuner.device is {self.device!r} but the generator lives on {dev}; "
                                  "set the generator's device (or edit.device) instead")
        return dev

    def _autocast(self, dev):
        """bf16 autocast for the forward passes and losses (``precision='bf16'``), else a no-op."""
        import contextlib

        import torch

        if self.precision != "bf16":
            return contextlib.nullcontext()
        if dev.type != "cuda":
            raise ConfigError(f"precision bf16 needs CUDA; the generator is on {dev} (use fp32 on the CPU)")
        return torch.autocast(device_type="cuda", dtype=torch.bfloat16)

    def _lpips(self, dev):
        from counterface import perceptual

        return perceptual.build(self.lpips_net, self.lpips_pretrained, self.seed, str(dev))

    # -- the two stages --------------------------------------------------------------------------
    def refine(self, generator, w_init, target, lp, work: int, progress=None):
        """Step 3: returns (w (num_ws, w_dim) CPU, first-step losses, final losses, steps run)."""
        import torch

        from . import graphs

        dev = target.device
        if self.start == "w":
            var = generator.w_avg.detach().to(dev, torch.float32).reshape(1, -1).clone()
        else:
            var = w_init.detach().to(dev, torch.float32).clone()
            if var.dim() != 2 or var.shape != (generator.num_ws, generator.w_dim):
                raise ConfigError(f"initial latent has shape {tuple(var.shape)}, the generator needs "
                                  f"({generator.num_ws}, {generator.w_dim})")
        var.requires_grad_(True)

        def wplus(v):
            return v.expand(generator.num_ws, -1) if v.shape[0] == 1 else v

        def losses(v):
            total, t = self._refine_terms(generator, v, target, lp, work)
            return total, {"loss": total.item(), "l2": t["l2"].item(), "lpips": t["lpips"].item()}

        key = ("refine", id(generator.module), id(lp), work, tuple(var.shape), tuple(target.shape))
        graph = self._graph("refine", dev, key, self.latent_steps, lambda: graphs.RefineGraph(
            self, generator, var, target, lp, work))
        if graph is not None:  # CUDA: the captured step, replayed (see graphs.py)
            try:
                var_g, first = graph.run(var, target, self.latent_steps)
            except Exception as exc:  # noqa: BLE001 - the eager loop below, from the same start
                self._graph_failed("refine", key, exc)
            else:
                with torch.no_grad():
                    _, final = losses(var_g)
                if progress is not None:
                    progress({"stage": "refine", "step": self.latent_steps, "steps": self.latent_steps, **final})
                return wplus(var_g.detach()).cpu().clone(), first or final, final, self.latent_steps

        opt = torch.optim.AdamW([var], lr=self.latent_lr, weight_decay=self.weight_decay)
        first = None
        for step in range(self.latent_steps):
            total, rec = losses(var)
            first = first or rec
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            if progress is not None:
                progress({"stage": "refine", "step": step + 1, "steps": self.latent_steps, **rec})
        with torch.no_grad():
            _, final = losses(var)
        return wplus(var.detach()).cpu().clone(), first or final, final, self.latent_steps

    def _refine_terms(self, generator, v, target, lp, work):
        """Step 3's loss of latent ``v`` ((num_ws | 1, w_dim)): (total, {"l2", "lpips"}) as tensors."""
        from torch.nn import functional as F

        from counterface import perceptual

        with self._autocast(target.device):
            wp = v.expand(generator.num_ws, -1) if v.shape[0] == 1 else v
            img = resize(generator.synthesize(wp[None]), work).float()
            l2 = F.mse_loss(img, target)
            lpv = perceptual.distance(lp, img, target).float()
            total = self.latent_lambda_l2 * l2 + self.latent_lambda_lpips * lpv
        return total, {"l2": l2, "lpips": lpv}

    def _tune_terms(self, generator, wp, target, mask, identity, target_emb, lp, work, use_id):
        """Step 4's loss at the pivot ``wp`` (1, num_ws, w_dim): (total, {"pixel", "lpips", ["region",
        "id"]}) as tensors."""
        from torch.nn import functional as F

        from counterface import perceptual

        with self._autocast(target.device):
            img = resize(generator.synthesize(wp), work).float()
            diff = img - target
            pix = diff.abs().mean() if self.tune_pixel == "l1" else diff.pow(2).mean()
            lpv = perceptual.distance(lp, img, target)
            total = self.lambda_pixel * pix + self.lambda_lpips * lpv
            rec = {"pixel": pix, "lpips": lpv}
            if mask is not None and self.lambda_region > 0:
                rec["region"] = (mask * diff).abs().mean()
                total = total + self.lambda_region * rec["region"]
            if use_id:
                emb = identity.embed(img).to(target.device)
                rec["id"] = 1.0 - F.cosine_similarity(emb, target_emb, dim=1).mean()
                total = total + self.lambda_id * rec["id"]
        return total, rec

    def _graph(self, stage: str, dev, key: tuple, steps: int, build):
        """The cached :mod:`.graphs` step of ``stage`` for ``key`` (``build()`` makes it on first use;
        the entry's closures hold the objects whose ids are in the key, so ids stay unique), or None
        for the eager loop: the CPU, ``graphs='off'``, the exact path, bf16, too few steps."""
        from counterface.device import numerics

        from . import graphs

        use, why = graphs.wanted(self.graphs, dev, self.precision, bool(numerics().get("exact", False)))
        if use and steps <= graphs.WARMUP_STEPS:
            use, why = False, "eager: too few steps"
        self._graph_modes[stage] = why
        if not use:
            return None
        entry = self._graph_cache.get(key)
        if entry is None:
            try:
                entry = build()
            except Exception as exc:  # noqa: BLE001 - e.g. an op the warm-up or capture cannot run
                self._graph_failed(stage, key, exc)
                return None
            self._graph_cache[key] = entry
        self._graph_modes[stage] = entry.runner.mode
        return entry

    def _graphs_wanted(self, dev) -> bool:
        from counterface.device import numerics

        from . import graphs

        return graphs.wanted(self.graphs, dev, self.precision, bool(numerics().get("exact", False)))[0]

    def _graph_failed(self, stage: str, key: tuple, exc: Exception) -> None:
        """Forget a graph step that failed; the stage runs the eager loop (recorded in meta.graphs)."""
        self._graph_cache.pop(key, None)
        self._graph_modes[stage] = f"eager: graph step failed ({type(exc).__name__}: {' '.join(str(exc).split())[:160]})"

    def release_graphs(self) -> None:
        """Drop the captured step graphs (and the GPU memory they hold)."""
        self._graph_cache.clear()
        self.__dict__.pop("_graph_pool", None)

    def tune_generator(self, generator, w, target, mask, identity, lp, names, work: int, progress=None):
        """Step 4 on the live module (the caller restores it): returns (first, final, steps run, early stop)."""
        import torch

        from . import graphs

        params = dict(generator.module.named_parameters())
        dev = target.device
        wp = w.to(dev)[None]
        use_id = identity is not None and self.lambda_id > 0
        target_emb = None
        if use_id:
            with torch.no_grad():
                target_emb = identity.embed(target).to(dev)

        def losses():
            total, rec = self._tune_terms(generator, wp, target, mask, identity, target_emb, lp, work, use_id)
            return total, {"loss": total.item(), **{k: v.item() for k, v in rec.items()}}

        key = ("tune", id(generator.module), id(lp), id(identity), work, tuple(names), tuple(target.shape),
               mask is None, use_id)
        start = {n: params[n].detach().clone() for n in names} if self._graphs_wanted(dev) else None
        graph = self._graph("tune", dev, key, self.tune_steps, lambda: graphs.TuneGraph(
            self, generator, params, names, wp, target, mask, identity, target_emb, lp, work))
        if graph is not None:  # CUDA: the captured step, replayed; early stop read every K steps
            try:
                first, steps, early = graph.run(wp, target, mask, target_emb, self.tune_steps,
                                                self.graph_check_every)
            except Exception as exc:  # noqa: BLE001 - the eager loop below, from the same start
                self._graph_failed("tune", key, exc)
            else:
                with torch.no_grad():
                    _, final = losses()
                if progress is not None:
                    progress({"stage": "tune", "step": steps, "steps": self.tune_steps, **final})
                return first or final, final, steps, early
        if start is not None:  # a graph set-up or run that failed may have stepped: start again
            with torch.no_grad():
                for n in names:
                    params[n].copy_(start[n])
                    params[n].grad = None

        opt = torch.optim.AdamW([params[n] for n in names], lr=self.tune_lr, weight_decay=self.weight_decay)
        first, steps, early = None, 0, False
        for step in range(self.tune_steps):
            total, rec = losses()
            first = first or rec
            if rec["lpips"] <= self.lpips_threshold:
                early = True
                break
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            steps = step + 1
            if progress is not None:
                progress({"stage": "tune", "step": steps, "steps": self.tune_steps, **rec})
        with torch.no_grad():
            _, final = losses()
        return first or final, final, steps, early

    # -- Tuner -----------------------------------------------------------------------------------
    def _setup(self, generator):
        """(device, module, its parameters by name, the names to tune, resolution, working resolution)."""
        module = generator.module
        res = int(generator.resolution)
        work = res if self.resolution is None or self.resolution >= res else self.resolution
        return self._device(generator), module, dict(module.named_parameters()), self.selected(generator), res, work

    def tune(self, generator, w_init, target, region_mask=None, identity=None,
             progress: Callable[[dict[str, float]], None] | None = None) -> Pivot:
        import torch

        dev, module, params, names, res, work = self._setup(generator)
        target = resize(target.detach().to(dev, torch.float32), work)
        mask = None
        if region_mask is not None:
            mask = resize(region_mask.detach().to(dev, torch.float32), work).clamp(0, 1)
        lp = self._lpips(dev)

        seconds: dict[str, float] = {}
        torch.manual_seed(self.seed)
        with _frozen(module, identity):
            t0 = time.perf_counter()
            w, r_first, r_final, r_steps = self.refine(generator, w_init, target, lp, work, progress)
            seconds["refine"] = round(time.perf_counter() - t0, 4)
            originals = {n: params[n].detach().clone() for n in names}
            t0 = time.perf_counter()
            try:
                for n in names:
                    params[n].requires_grad_(True)
                t_first, t_final, t_steps, early = self.tune_generator(
                    generator, w, target, mask, identity, lp, names, work, progress)
                tuned = {n: params[n].detach().to("cpu").clone() for n in names}
            finally:
                with torch.no_grad():
                    for n in names:
                        params[n].copy_(originals[n])
                        params[n].grad = None
            seconds["tune"] = round(time.perf_counter() - t0, 4)
        meta = self._meta(params, names, work, (r_first, t_first), (r_final, t_final), (r_steps, t_steps), early,
                          seconds)
        return Pivot(w=w.float(), tensors=tuned, meta=meta)

    def _meta(self, params, names, work, first, final, steps, early, seconds) -> dict:
        """A pivot's provenance: the (refine, tune) first and final losses and steps, timings."""
        return {
            "tuner": "pti",
            "params": self.describe(),
            "losses_start": {"refine": first[0], "tune": first[1]},
            "losses": {"refine": final[0], "tune": final[1]},
            "steps": {"refine": steps[0], "tune": steps[1]},
            "early_stop": early,
            "working_resolution": work,
            "tuned_parameters": names,
            "tuned_numel": int(sum(params[n].numel() for n in names)),
            "generator_numel": int(sum(p.numel() for p in params.values())),
            "seconds": seconds,
            "graphs": dict(self._graph_modes),
        }

    # -- batched tuning ----------------------------------------------------------------------------
    def tune_many(self, generator, w_inits, targets, region_masks=None, identity=None,
                  progress: Callable[[dict[str, float]], None] | None = None) -> list[Pivot]:
        """Tune B faces at once (see the module docstring): one pivot per face, each equal within float
        tolerance to :meth:`tune` on that face alone. ``w_inits`` (num_ws, w_dim) each, ``targets``
        (1, 3, R, R) each, ``region_masks`` (1, 1, R, R) each or None."""
        import torch

        n = len(targets)
        if n == 0:
            return []
        if len(w_inits) != n or (region_masks is not None and len(region_masks) != n):
            raise ConfigError(f"tune_many needs one latent and one mask per target ({n} targets)")
        dev, module, params, names, res, work = self._setup(generator)
        # per-face tensors, each in its own memory layout (as tune gets it: convolutions round by layout)
        target = [resize(t.detach().to(dev, torch.float32), work) for t in targets]
        mask = None
        if region_masks is not None and any(m is not None for m in region_masks):
            zeros = torch.zeros(1, 1, res, res)  # a face without a mask has no region term (weight 0)
            mask = [resize((zeros if m is None else m).detach().to(dev, torch.float32), work).clamp(0, 1)
                    for m in region_masks]
        lp = self._lpips(dev)

        seconds: dict[str, float] = {}
        torch.manual_seed(self.seed)
        with _frozen(module, identity):
            t0 = time.perf_counter()
            w, r_first, r_final = self.refine_many(generator, w_inits, target, lp, work, progress)
            seconds["refine"] = round((time.perf_counter() - t0) / n, 4)
            t0 = time.perf_counter()
            tuned, t_first, t_final, t_steps, early = self.tune_generator_many(
                generator, w, target, mask, identity, lp, names, work, progress)
            seconds["tune"] = round((time.perf_counter() - t0) / n, 4)

        pivots = []
        for i in range(n):
            # seconds: the batch's wall seconds divided by its faces (each face's share)
            meta = {**self._meta(params, names, work, (r_first[i], t_first[i]), (r_final[i], t_final[i]),
                                 (self.latent_steps, t_steps[i]), early[i], dict(seconds)), "tune_batch": n}
            pivots.append(Pivot(w=w[i].float().clone(), tensors={k: v[i].clone() for k, v in tuned.items()}, meta=meta))
        return pivots
