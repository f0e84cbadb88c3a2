"""CUDA graphs of the tuning steps (``tuner.graphs``): one refinement step and one tuning step
(forward, losses, backward, fused AdamW with ``capturable=True``) captured once and replayed for every
step and every face.

* **Static buffers** (:class:`StaticBuffers`): a graph reads and writes fixed addresses, so the
  latent, the target, the mask, the identity embedding, the loss records and the optimiser state live
  in buffers made once; a new face is *copied in* (``copy_``, same storage), results are *copied out*
  (clones). The tuned generator tensors are the generator's own parameters, which the tuner restores
  in place after every face, so their addresses never change.
* **No host synchronisation inside a step**: the step's losses go to a device buffer (one row per
  step, indexed by a device counter); early stopping (LPIPS <= ``lpips_threshold``) is decided on the
  device: a sticky ``active`` flag, and a stopped face's update is undone in the same step
  (``where(active, new, old)``), so the tuned tensors equal the eager loop's exactly in exact arithmetic.
  The host reads the flag every ``K`` steps (:func:`drive`) and ends the loop then: at most ``K - 1``
  wasted steps after the one the eager loop stops at, and the reported step count is the eager one.
* **Fallback**: anything that cannot be captured (no CUDA, a host sync hidden in a network, an
  unsupported op) runs the very same step function eagerly (:func:`make_runner`); the reason is
  recorded in the pivot's metadata (``graphs``).

Nothing here is used on the CPU (the tuner's eager loops are unchanged there); the driver, the
buffers and the fallback are tested on the CPU with the eager runner, the replay on CUDA
(``tests/plugins/test_cuda_graphs.py``).
"""

from __future__ import annotations

from typing import Callable

#: ``tuner.graphs`` values: auto (CUDA, not the exact path, not bf16), on (CUDA; eager fallback), off
GRAPH_MODES = ("auto", "on", "off")
#: eager warm-up steps before a capture (cuDNN plans, the optimiser's state, the allocator)
WARMUP_STEPS = 2


def wanted(mode: str, device, precision: str, exact: bool) -> tuple[bool, str]:
    """(use graphs?, why) for ``tuner.graphs = mode`` on ``device``."""
    if mode == "off":
        return False, "off"
    if getattr(device, "type", str(device).split(":")[0]) != "cuda":
        return False, "eager: not CUDA"
    if mode == "auto" and exact:
        return False, "eager: the exact path (fp32 + deterministic)"
    if precision == "bf16":
        return False, "eager: bf16 autocast is not captured"
    return True, "graph"



def restart(graph, leaves, wp, target, mask, target_emb) -> None:
    """Start a tuning graph (:class:`TuneGraph` or :class:`TuneManyGraph`) on new faces: copy them (the
    latent, target image, region mask and identity embedding, where the captured step uses them) into
    its static buffers with the counters and stop flags reset, zero the optimiser's state in place, and
    re-attach the captured step's own gradient buffers to ``leaves``."""
    statics = graph.statics
    values = {"wp": wp, "target": target, "count": 0, "done": 0, "active": True}
    if statics.mask is not None:
        values["mask"] = mask
    if statics.target_emb is not None:
        values["target_emb"] = target_emb
    statics.load(**values)
    reset_optimizer(graph.opt)
    for t, g in zip(leaves, graph.grads):
        t.grad = g


class StaticBuffers:
    """Named tensors at fixed addresses: :meth:`load` copies values in (shape and dtype must match),
    :meth:`read` returns detached clones. ``buffers.name`` is the static tensor itself."""

    def __init__(self, **tensors):
        self.__dict__["_t"] = dict(tensors)

    def __getattr__(self, name):
        try:
            return self.__dict__["_t"][name]
        except KeyError:
            raise AttributeError(name) from None

    def __setattr__(self, name, value):
        raise AttributeError("static buffers are filled with load(), never replaced")

    def names(self):
        return list(self._t)

    def load(self, **values) -> None:
        import torch

        with torch.no_grad():
            for name, value in values.items():
                dst = self._t[name]
                value = torch.as_tensor(value)
                if value.dim() == 0 and dst.dim() > 0:  # a scalar fills the buffer (per-face flags)
                    dst.fill_(value.item())
                    continue
                if tuple(value.shape) != tuple(dst.shape):
                    raise ValueError(f"static buffer {name}: shape {tuple(dst.shape)}, got {tuple(value.shape)}")
                dst.copy_(value.to(dst.dtype))

    def read(self, name):
        return self._t[name].detach().clone()


def drive(run_step: Callable[[], None], total: int, k: int, stopped: Callable[[], bool]) -> int:
    """Run ``run_step`` up to ``total`` times, asking ``stopped()`` (the one host read) after every
    ``k`` steps and at the end; returns the number of steps run. A stop decided on the device at step
    ``s`` therefore ends the loop after at most ``s + k`` steps."""
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    n = 0
    while n < total:
        for _ in range(min(k, total - n)):
            run_step()
            n += 1
        if stopped():
            break
    return n


class Runner:
    """One step, replayed (``graph``) or run eagerly; ``mode`` says which and why."""

    def __init__(self, step: Callable[[], None], graph=None, mode: str = "graph", warmed: int = 0):
        self.step, self.graph, self.mode, self.warmed = step, graph, mode, warmed

    def __call__(self) -> None:
        if self.graph is not None:
            self.graph.replay()
        else:
            self.step()


def make_runner(step: Callable[[], None], device, use_graph: bool, reason: str = "",
                warmup: int = WARMUP_STEPS, capture=None, pool=None) -> Runner:
    """Capture ``step`` as a CUDA graph after ``warmup`` eager steps, or fall back to the eager step
    (``Runner.mode`` = ``eager: <reason>``). The warm-up steps are real steps (``Runner.warmed`` of
    them ran, in the graph and the fallback case alike); a failed capture runs nothing, so the state
    stays consistent; a warm-up step that fails raises. ``capture(step, device) -> graph`` (with
    ``replay()``): tests replace it; default :func:`_capture`."""
    if not use_graph:
        return Runner(step, None, reason or "eager")
    capture = capture or _capture
    # a warm-up step that fails raises: the step itself is broken (the caller restarts the stage
    # eagerly from its start, since the failed steps may have changed the tuned tensors part-way)
    warmed = _warm(step, device, warmup)
    try:
        return Runner(step, capture(step, device) if pool is None else capture(step, device, pool), "graph", warmed)
    except Exception as exc:  # noqa: BLE001 - any capture failure: run the same step eagerly
        why = " ".join(str(exc).split())[:160]
        return Runner(step, None, f"eager: capture failed ({type(exc).__name__}: {why})", warmed)


def _warm(step, device, n: int) -> int:
    """``n`` eager steps (on a side stream on CUDA, as graph capture requires); returns ``n``."""
    if getattr(device, "type", str(device).split(":")[0]) != "cuda":
        for _ in range(n):
            step()
        return n
    import warnings

    import torch

    side = torch.cuda.Stream(device)
    side.wait_stream(torch.cuda.current_stream(device))
    with torch.cuda.stream(side), warnings.catch_warnings():
        # a capturable optimiser stepping outside a capture warns once; here that is the point
        warnings.filterwarnings("ignore", message=".*capturable=True.*")
        for _ in range(n):
            step()
    torch.cuda.current_stream(device).wait_stream(side)
    return n


def _capture(step, device, pool=None):
    """``step`` captured as a CUDA graph; ``pool``: a memory pool shared with the tuner's other
    graphs (:func:`shared_pool`)."""
    import torch

    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph, pool=pool):
        step()
    return graph


def shared_pool(tuner, device):
    """One CUDA-graph memory pool for all of a tuner's captured steps (None off CUDA). Safe because
    the steps are replayed one after another on one stream and leave nothing alive in the pool: all
    they keep between replays (statics, gradients, optimiser state) is allocated before the capture,
    so each replay writes its temporaries before reading them. It halves the graphs' memory (the
    refine and tune steps' activations share it), which matters for ``--tune-batch`` 8 at 1024."""
    if getattr(device, "type", str(device).split(":")[0]) != "cuda":
        return None
    pool = tuner.__dict__.get("_graph_pool")
    if pool is None:
        import torch

        pool = tuner.__dict__["_graph_pool"] = torch.cuda.graph_pool_handle()
    return pool


def adamw(params, lr: float, weight_decay: float, device):
    """AdamW for a captured step: the fused implementation (one kernel per parameter group and no
    ``.item()`` of its step counter; the same update as the eager loop's AdamW), ``capturable`` on
    CUDA (the step counter and the bias corrections stay on the device). ``lr`` stays a Python float:
    it is constant, so the captured value is the right one for every replay. On the CPU (the tests)
    fused without ``capturable``, which CUDA alone supports."""
    import torch

    cuda = getattr(device, "type", str(device).split(":")[0]) == "cuda"
    return torch.optim.AdamW(params, lr=float(lr), weight_decay=float(weight_decay), fused=True,
                             **({"capturable": True} if cuda else {}))


def reset_optimizer(opt) -> None:
    """Zero an optimiser's state in place (same storage: a captured step keeps reading it)."""
    import torch

    with torch.no_grad():
        for state in opt.state.values():
            for value in state.values():
                if torch.is_tensor(value):
                    value.zero_()


# --------------------------------------------------------------------------- the two tuner steps

#: what a refinement step records (row 0 of ``rec``: the first step's values)
REFINE_TERMS = ("loss", "l2", "lpips")


def refine(graph, var0, target, steps: int):
    """Run a refinement graph (:class:`RefineGraph` or :class:`RefineManyGraph`) for ``steps`` steps
    from ``var0``; returns its statics. The capture's warm-up steps ran on the first face: they are its
    first steps."""
    s = graph.statics
    if graph.runner.warmed:
        done, graph.runner.warmed = graph.runner.warmed, 0
    else:
        done = 0
        s.load(var=var0, target=target, count=0)
        reset_optimizer(graph.opt)
        s.var.grad = graph.grad
    drive(graph.runner, steps - done, max(steps, 1), lambda: False)
    return s


class RefineGraph:
    """Step 3 (the latent; generator frozen) for any face with this key (any number of steps):
    statics ``var``, ``target``, records ``rec`` (2, 3: total, l2, lpips of the first step, then a
    scratch row every later step writes) and the step counter."""

    def __init__(self, tuner, generator, var0, target, lp, work, steps: int = 0, use_graph: bool = True,
                 reason: str = "", capture=None):
        import torch

        dev = target.device
        self.statics = StaticBuffers(var=var0.detach().clone().requires_grad_(True), target=target.detach().clone(),
                                     rec=torch.zeros(2, 3, device=dev),
                                     count=torch.zeros((), dtype=torch.long, device=dev))
        s = self.statics
        self.opt = adamw([s.var], tuner.latent_lr, tuner.weight_decay, dev)

        def step():
            total, terms = tuner._refine_terms(generator, s.var, s.target, lp, work)
            row = torch.stack([total.detach().float(), terms["l2"].detach().float(), terms["lpips"].detach().float()])
            s.rec.index_copy_(0, s.count.clamp(max=1).view(1), row.view(1, 3))  # row 0: the first step's
            s.count.add_(1)
            self.opt.zero_grad(set_to_none=False)
            total.backward()
            self.opt.step()

        self.runner = make_runner(step, dev, use_graph, reason, capture=capture, pool=shared_pool(tuner, dev))
        self.grad = s.var.grad  # held: the captured backward writes there

    def run(self, var0, target, steps: int):
        """Refine one face from ``var0``; returns (var, first record)."""
        s = refine(self, var0, target, steps)
        first = dict(zip(REFINE_TERMS, s.rec[0].tolist())) if steps else None
        return s.var.detach().clone(), first


class TuneGraph:
    """Step 4 (the selected generator tensors, in place) for any face with this key (any number of
    steps): statics ``wp``, ``target``, ``mask``, ``target_emb``, the device-side ``active`` flag and
    step count, the first step's record and the pre-step copies that undo a stopped face's update."""

    KEYS = ("loss", "pixel", "lpips", "region", "id")

    def __init__(self, tuner, generator, params, names, wp, target, mask, identity, target_emb, lp, work,
                 steps: int = 0, use_graph: bool = True, reason: str = "", capture=None):
        import torch

        dev = target.device
        tensors = [params[n] for n in names]
        use_id = target_emb is not None
        self.statics = StaticBuffers(
            wp=wp.detach().clone(), target=target.detach().clone(),
            mask=None if mask is None else mask.detach().clone(),
            target_emb=None if target_emb is None else target_emb.detach().clone(),
            rec=torch.zeros(2, len(self.KEYS), device=dev),
            count=torch.zeros((), dtype=torch.long, device=dev),
            done=torch.zeros((), dtype=torch.long, device=dev),
            active=torch.ones((), dtype=torch.bool, device=dev))
        s = self.statics
        self.tensors = tensors
        self.backup = [t.detach().clone() for t in tensors]
        self.opt = adamw(tensors, tuner.tune_lr, tuner.weight_decay, dev)
        threshold = float(tuner.lpips_threshold)
        zero = torch.zeros((), device=dev)
        self.present = ("loss",)  # the terms the step computes (the first record has those)

        def step():
            total, terms = tuner._tune_terms(generator, s.wp, s.target, s.mask, identity, s.target_emb, lp, work, use_id)
            self.present = ("loss", *terms)
            row = torch.stack([total.detach().float()] + [terms.get(k, zero).detach().float() for k in self.KEYS[1:]])
            s.rec.index_copy_(0, s.count.clamp(max=1).view(1), row.view(1, -1))  # row 0: the first step's
            s.count.add_(1)
            s.active.logical_and_(terms["lpips"].detach() > threshold)  # sticky: the eager loop's break
            s.done.add_(s.active.long())
            torch._foreach_copy_(self.backup, [t.detach() for t in tensors])
            self.opt.zero_grad(set_to_none=False)
            total.backward()
            self.opt.step()
            with torch.no_grad():  # a stopped face keeps its tensors (the eager loop's break)
                for t, b in zip(tensors, self.backup):
                    t.copy_(torch.where(s.active, t, b))

        self.runner = make_runner(step, dev, use_graph, reason, capture=capture, pool=shared_pool(tuner, dev))
        # the gradients the captured backward writes and the optimiser reads: held here, because the
        # tuner drops ``.grad`` after every face (a freed gradient's memory would be reused elsewhere)
        self.grads = [t.grad for t in tensors]

    def run(self, wp, target, mask, target_emb, steps: int, k: int):
        """Tune one face (the generator's tensors in place); returns (first record, steps, early stop)."""
        s = self.statics
        if self.runner.warmed:
            done, self.runner.warmed = self.runner.warmed, 0
        else:
            done = 0
            restart(self, self.tensors, wp, target, mask, target_emb)
        if done == 0 or bool(s.active):
            drive(self.runner, steps - done, k, lambda: not bool(s.active))
        n_steps = int(s.done)
        early = not bool(s.active)
        first = dict(zip(self.KEYS, s.rec[0].tolist())) if steps else None
        if first is not None:
            first = {k_: v for k_, v in first.items() if k_ in self.present}
        return first, n_steps, early


# ----------------------------------------------------------------- the two steps of batched tuning
class RefineManyGraph:
    """Step 3 for B faces at once (:meth:`~counterface_pti.tuner.PTITuner.tune_many`), for any batch
    with this key: static ``var`` (B, rows, w_dim) (one leaf; AdamW is elementwise, so each face's
    rows take the steps its own leaf would), ``target`` (B, 3, R, R), the first step's records
    (B, 3: total, l2, lpips)."""

    def __init__(self, tuner, generator, var0, target, lp, work, use_graph: bool = True, reason: str = "",
                 capture=None):
        import torch

        dev = target.device
        n = var0.shape[0]
        self.statics = StaticBuffers(var=var0.detach().clone().requires_grad_(True), target=target.detach().clone(),
                                     rec=torch.zeros(2, n, 3, device=dev),
                                     count=torch.zeros((), dtype=torch.long, device=dev))
        s = self.statics
        self.opt = adamw([s.var], tuner.latent_lr, tuner.weight_decay, dev)
        num_ws = generator.num_ws

        def step():
            ws = s.var.expand(-1, num_ws, -1) if s.var.shape[1] == 1 else s.var
            total, rec = tuner._losses_many(generator, ws, None, lp, work, [s.target[i:i + 1] for i in range(n)],
                                            latent=True)
            row = torch.stack([total.detach().float(), rec["l2"].detach().float(), rec["lpips"].detach().float()], 1)
            s.rec.index_copy_(0, s.count.clamp(max=1).view(1), row[None])
            s.count.add_(1)
            self.opt.zero_grad(set_to_none=False)
            total.sum().backward()  # summed: each face gets its own loss's gradient
            self.opt.step()

        self.runner = make_runner(step, dev, use_graph, reason, capture=capture, pool=shared_pool(tuner, dev))
        self.grad = s.var.grad

    def run(self, var0, target, steps: int):
        """Refine B faces from ``var0`` (B, rows, w_dim); returns (var, first records per face)."""
        s = refine(self, var0, target, steps)
        first = [dict(zip(REFINE_TERMS, r)) for r in s.rec[0].tolist()]
        return s.var.detach().clone(), first


class TuneManyGraph:
    """Step 4 for B faces at once, for any batch with this key: one leaf per tuned tensor with the B
    faces' copies stacked (B, *shape) (the generator itself is not changed), statics ``wp``
    (B, num_ws, w_dim), ``target``, ``mask``, ``target_emb``, the per-face ``active`` flags and step
    counts, the first step's records (B, terms). Per-face early stopping as the eager batched loop:
    a stopped face's loss leaves the summed total (no gradient) and its optimiser step is undone."""

    KEYS = TuneGraph.KEYS

    def __init__(self, tuner, generator, params, names, wp, target, mask, identity, target_emb, lp, work,
                 use_graph: bool = True, reason: str = "", capture=None):
        import torch

        dev = target.device
        n = wp.shape[0]
        use_id = target_emb is not None
        self.names = list(names)
        self.leaves = [params[k].detach()[None].repeat(n, *([1] * params[k].dim())).clone().requires_grad_(True)
                       for k in self.names]
        self.statics = StaticBuffers(
            wp=wp.detach().clone(), target=target.detach().clone(),
            mask=None if mask is None else mask.detach().clone(),
            target_emb=None if target_emb is None else target_emb.detach().clone(),
            rec=torch.zeros(2, n, len(self.KEYS), device=dev),
            count=torch.zeros((), dtype=torch.long, device=dev),
            done=torch.zeros(n, dtype=torch.long, device=dev),
            active=torch.ones(n, dtype=torch.bool, device=dev))
        s = self.statics
        self.backup = [t.detach().clone() for t in self.leaves]
        self.opt = adamw(self.leaves, tuner.tune_lr, tuner.weight_decay, dev)
        threshold = float(tuner.lpips_threshold)
        zeros = torch.zeros(n, device=dev)
        self.present = ("loss",)

        def faces(x):
            return None if x is None else [x[i:i + 1] for i in range(n)]

        def step():
            tensors = dict(zip(self.names, self.leaves))
            total, rec = tuner._losses_many(generator, s.wp, tensors, lp, work, faces(s.target), faces(s.mask), use_id,
                                            identity, faces(s.target_emb))
            self.present = ("loss", *rec)
            row = torch.stack([total.detach().float()] + [rec.get(k, zeros).detach().float() for k in self.KEYS[1:]], 1)
            s.rec.index_copy_(0, s.count.clamp(max=1).view(1), row[None])
            s.count.add_(1)
            s.active.logical_and_(rec["lpips"].detach() > threshold)  # sticky, per face: the eager loop's stop
            s.done.add_(s.active.long())
            torch._foreach_copy_(self.backup, [t.detach() for t in self.leaves])
            self.opt.zero_grad(set_to_none=False)
            (total * s.active).sum().backward()  # a stopped face: no gradient, as in the eager loop
            self.opt.step()
            with torch.no_grad():  # ... and its tensors stay (AdamW's momentum would still move them)
                for t, b in zip(self.leaves, self.backup):
                    t.copy_(torch.where(s.active.view(-1, *([1] * (t.dim() - 1))), t, b))

        self.runner = make_runner(step, dev, use_graph, reason, capture=capture, pool=shared_pool(tuner, dev))
        self.grads = [t.grad for t in self.leaves]

    def run(self, params, wp, target, mask, target_emb, steps: int, k: int):
        """Tune B faces from the generator's own tensors; returns (tuned {name: (B, *shape)} on the
        device, first records, steps, early stops), one per face."""
        s = self.statics
        if self.runner.warmed:
            done, self.runner.warmed = self.runner.warmed, 0
        else:
            import torch

            done = 0
            with torch.no_grad():
                for name, t in zip(self.names, self.leaves):
                    t.copy_(params[name].detach()[None].expand_as(t))
            restart(self, self.leaves, wp, target, mask, target_emb)
        if done == 0 or bool(s.active.any()):
            drive(self.runner, steps - done, k, lambda: not bool(s.active.any()))
        n_steps = s.done.tolist()
        early = (~s.active).tolist()
        first = [{k_: v for k_, v in zip(self.KEYS, r) if k_ in self.present} for r in s.rec[0].tolist()]
        tuned = {name: t.detach().clone() for name, t in zip(self.names, self.leaves)}
        return tuned, first, n_steps, early
