"""The CUDA-graph machinery of the tuner, on the CPU: the K-step early-stopping rule, the static
buffers' copy-in/copy-out, the eager fallback, and the whole replay bookkeeping (two faces through one
cached step) with a stand-in "graph" whose replay runs the captured step. Real replay: test_cuda_graphs.py."""

from __future__ import annotations

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from counterface import ConfigError, testing
from counterface_pti import graphs
from counterface_pti.tuner import PTITuner


@pytest.mark.parametrize("k", [1, 3, 10])
@pytest.mark.parametrize("stop_at", [None, 0, 1, 4, 9, 17])
def test_k_step_rule_stops_within_k_of_the_eager_step(k, stop_at):
    total = 20
    state = {"n": 0, "active": True, "done": 0}

    def step():  # the device side: the flag flips at step stop_at (sticky), done counts active steps
        if stop_at is not None and state["n"] >= stop_at:
            state["active"] = False
        state["done"] += state["active"]
        state["n"] += 1

    reads = []
    ran = graphs.drive(step, total, k, lambda: reads.append(1) or not state["active"])
    eager = total if stop_at is None else stop_at  # the eager loop breaks before step stop_at's update
    assert state["done"] == eager  # the reported step count is the eager one, exactly
    assert ran == (total if stop_at is None else min(total, (stop_at // k + 1) * k))
    assert ran - eager <= k  # at most k steps after the eager stop
    assert len(reads) == -(-ran // k)  # one host read per k steps
    with pytest.raises(ValueError):
        graphs.drive(step, 3, 0, lambda: False)


def test_static_buffers_copy_in_keeps_the_address_and_copy_out_clones():
    buf = graphs.StaticBuffers(x=torch.zeros(2, 3), n=torch.zeros((), dtype=torch.long))
    ptr = buf.x.data_ptr()
    buf.load(x=torch.ones(2, 3), n=7)
    assert buf.x.data_ptr() == ptr and torch.equal(buf.x, torch.ones(2, 3)) and int(buf.n) == 7
    out = buf.read("x")
    buf.load(x=torch.full((2, 3), 2.0))
    assert torch.equal(out, torch.ones(2, 3))  # a copy, not a view of the buffer
    with pytest.raises(ValueError, match="shape"):
        buf.load(x=torch.zeros(3, 2))
    with pytest.raises(AttributeError):
        buf.x = torch.zeros(2, 3)
    assert sorted(buf.names()) == ["n", "x"]


class FakeGraph:
    """Stands in for torch.cuda.CUDAGraph on the CPU: replay() runs the captured step."""

    def __init__(self, step):
        self.step, self.replays = step, 0

    def replay(self):
        self.replays += 1
        self.step()


def test_runner_graph_fallback_and_off():
    calls = []
    step = lambda: calls.append(1)  # noqa: E731
    r = graphs.make_runner(step, torch.device("cpu"), True, capture=lambda s, d: FakeGraph(s))
    assert r.mode == "graph" and r.warmed == graphs.WARMUP_STEPS and len(calls) == graphs.WARMUP_STEPS
    r()
    assert r.graph.replays == 1 and len(calls) == graphs.WARMUP_STEPS + 1

    def broken(s, d):
        raise RuntimeError("operation not permitted when stream is capturing")

    calls.clear()
    r = graphs.make_runner(step, torch.device("cpu"), True, capture=broken)
    assert r.mode.startswith("eager: capture failed (RuntimeError: operation not permitted")
    assert r.graph is None and r.warmed == graphs.WARMUP_STEPS
    r()
    assert len(calls) == graphs.WARMUP_STEPS + 1  # the same step, eagerly
    r = graphs.make_runner(step, torch.device("cpu"), False, "eager: not CUDA")
    assert r.mode == "eager: not CUDA" and r.warmed == 0

    def failing():  # a step that fails while warming up is broken, not uncapturable: it raises
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("out of memory")

    got = []  # the tuner's shared memory pool reaches the capture (CUDA only; None elsewhere)
    graphs.make_runner(step, torch.device("cpu"), True, capture=lambda s, d, p=None: got.append(p) or FakeGraph(s),
                       pool="pool")
    assert got == ["pool"] and graphs.shared_pool(PTITuner(), torch.device("cpu")) is None

    calls.clear()
    with pytest.raises(RuntimeError, match="out of memory"):
        graphs.make_runner(failing, torch.device("cpu"), True, capture=lambda s, d: FakeGraph(s))


@pytest.mark.parametrize("device,exact,precision,mode,expected", [
    ("cpu", False, "tf32", "auto", False), ("cpu", False, "fp32", "on", False),
    ("cuda", True, "fp32", "auto", False), ("cuda", True, "fp32", "on", True),
    ("cuda", False, "tf32", "auto", True), ("cuda", False, "bf16", "auto", False),
    ("cuda", False, "tf32", "off", False)])
def test_when_graphs_are_used(device, exact, precision, mode, expected):
    assert graphs.wanted(mode, torch.device(device), precision, exact)[0] is expected


def test_bad_graph_settings():
    with pytest.raises(ConfigError, match="graphs"):
        PTITuner(graphs="yes")
    with pytest.raises(ConfigError, match="graph_check_every"):
        PTITuner(graph_check_every=0)


FAST = dict(latent_steps=8, tune_steps=9, lpips_pretrained=False, lpips_net="alex", resolution=None,
            tune_min_resolution=16, latent_lr=0.03, tune_lr=3e-3, graph_check_every=4)


def _faces(gen):
    out = []
    for seed in (5, 7):
        w = gen.w_avg[None, None].repeat(1, gen.num_ws, 1) + 0.8 * torch.randn(
            1, 1, gen.w_dim, generator=torch.Generator().manual_seed(seed))
        with torch.no_grad():
            out.append(gen.synthesize(w).clamp(-1, 1))
    return out


@pytest.mark.parametrize("threshold", [0.0, "mid"])
def test_replayed_steps_equal_the_eager_loop_for_two_faces(monkeypatch, threshold):
    """The graph path (one cached step per stage, faces copied into its static buffers, the early
    stop decided on the device) gives the eager loop's pivots: same steps and early stop, tensors
    equal to float rounding. The stand-in graph replays the captured step function itself."""
    gen = testing.FakeGenerator(resolution=32)
    faces = _faces(gen)
    w0 = gen.w_avg[None].repeat(gen.num_ws, 1).clone()
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 10:20, 8:24] = 1
    ident = testing.FakeIdentityEncoder()
    eager_tuner = PTITuner(**FAST, lpips_threshold=0.0, graphs="off")
    if threshold == "mid":  # a threshold the tuning reaches part-way (face 0): early stop on the device
        probe = eager_tuner.tune(gen, w0, faces[0], region_mask=mask, identity=ident)
        threshold = (probe.meta["losses_start"]["tune"]["lpips"] + probe.meta["losses"]["tune"]["lpips"]) / 2
    eager_tuner = PTITuner(**FAST, lpips_threshold=threshold, graphs="off")
    eager = [eager_tuner.tune(gen, w0, f, region_mask=mask, identity=ident) for f in faces]

    monkeypatch.setattr(graphs, "wanted", lambda *a: (True, "graph"))
    monkeypatch.setattr(graphs, "_capture", lambda step, device: FakeGraph(step))
    tuner = PTITuner(**FAST, lpips_threshold=threshold, graphs="on")
    replayed = [tuner.tune(gen, w0, f, region_mask=mask, identity=ident) for f in faces]
    assert len(tuner._graph_cache) == 2  # one refine step and one tune step, reused for the second face
    tune_graph = next(g for k, g in tuner._graph_cache.items() if k[0] == "tune")
    params = dict(gen.module.named_parameters())
    assert all(p.grad is None for p in params.values())  # the tuner drops the gradients after a face ...
    assert all(g is not None for g in tune_graph.grads)  # ... the graph keeps the buffers it writes
    ptrs = [g.data_ptr() for g in tune_graph.grads]
    before = [g.clone() for g in tune_graph.grads]
    tuner.tune(gen, w0, faces[0], region_mask=mask, identity=ident)
    assert [g.data_ptr() for g in tune_graph.grads] == ptrs
    # the replayed steps wrote this face's gradients into those very buffers (re-attached per face)
    assert any(not torch.equal(a, b) for a, b in zip(before, tune_graph.grads)) or threshold
    for e, r in zip(eager, replayed):
        assert r.meta["graphs"] == {"refine": "graph", "tune": "graph"}
        assert eager[0].meta["graphs"] == {"refine": "off", "tune": "off"}
        assert r.meta["steps"] == e.meta["steps"] and r.meta["early_stop"] == e.meta["early_stop"]
        torch.testing.assert_close(r.w, e.w, rtol=1e-4, atol=1e-5)
        for n in e.tensors:
            torch.testing.assert_close(r.tensors[n], e.tensors[n], rtol=1e-4, atol=1e-5)
        for stage in ("refine", "tune"):
            for k, v in e.meta["losses_start"][stage].items():
                assert r.meta["losses_start"][stage][k] == pytest.approx(v, rel=1e-4, abs=1e-6), (stage, k)
    if threshold:
        assert eager[0].meta["early_stop"] and 0 < eager[0].meta["steps"]["tune"] < FAST["tune_steps"]


@pytest.mark.parametrize("where", ["build", "run"])
def test_a_failing_graph_step_falls_back_to_the_eager_loop(monkeypatch, where):
    """A graph step that fails while being built (warm-up) or replayed: the stage starts again eagerly
    from the same start (the tuned tensors restored), and the pivot says so."""
    gen = testing.FakeGenerator(resolution=32)
    face = _faces(gen)[0]
    w0 = gen.w_avg[None].repeat(gen.num_ws, 1).clone()
    eager = PTITuner(**FAST, lpips_threshold=0.0, graphs="off").tune(gen, w0, face)
    monkeypatch.setattr(graphs, "wanted", lambda *a: (True, "graph"))
    monkeypatch.setattr(graphs, "_capture", lambda step, device: FakeGraph(step))
    calls = []

    def broken(*a, **k):
        calls.append(1)
        if where == "run":  # fail after stepping: the fallback must undo what the warm-up changed
            real_run(*a, **k)
        raise RuntimeError("CUDA error: operation not permitted when stream is capturing")

    real_run = graphs.TuneGraph.run
    if where == "build":
        real_init = graphs.TuneGraph.__init__

        def init(self, *a, **k):
            real_init(self, *a, **k)  # the warm-up steps ran, then the failure
            broken()

        monkeypatch.setattr(graphs.TuneGraph, "__init__", init)
    else:
        monkeypatch.setattr(graphs.TuneGraph, "run", broken)
    tuner = PTITuner(**FAST, lpips_threshold=0.0, graphs="on")
    pivot = tuner.tune(gen, w0, face)
    assert calls and pivot.meta["graphs"]["refine"] == "graph"
    assert pivot.meta["graphs"]["tune"].startswith("eager: graph step failed (RuntimeError: CUDA error")
    assert not any(k[0] == "tune" for k in tuner._graph_cache)
    assert pivot.meta["steps"] == eager.meta["steps"]
    torch.testing.assert_close(pivot.w, eager.w, rtol=1e-4, atol=1e-5)
    for n in eager.tensors:
        torch.testing.assert_close(pivot.tensors[n], eager.tensors[n], rtol=1e-4, atol=1e-5)


# ------------------------------------------------------------------ what a capture freezes, on the CPU
#: aten ops that make the host wait for the device (.item(), bool/float/int of a tensor, .tolist(),
#: data-dependent shapes): none may run inside a captured step
HOST_SYNC = {"_local_scalar_dense", "nonzero", "masked_select", "is_nonzero", "equal", "allclose", "unique",
             "_unique2", "unique_consecutive", "repeat_interleave", "item"}


class NoHostSync(TorchDispatchMode):
    """Refuses the ops that synchronise with the host on CUDA (boolean-mask indexing included), and
    ``Tensor.tolist``/``numpy`` (which a CPU tensor serves without dispatching)."""

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        name = func.overloadpacket.__name__
        bool_index = name in ("index", "index_put", "index_put_") and any(
            isinstance(i, torch.Tensor) and i.dtype == torch.bool for i in (args[1] if len(args) > 1 else ()) or ())
        if name in HOST_SYNC or bool_index:
            raise AssertionError(f"host synchronisation inside a captured step: {func}")
        return func(*args, **(kwargs or {}))

    def __enter__(self):
        def refuse(*a, **k):
            raise AssertionError("host synchronisation inside a captured step: tolist/numpy")

        self._saved = torch.Tensor.tolist, torch.Tensor.numpy
        torch.Tensor.tolist = torch.Tensor.numpy = refuse
        return super().__enter__()

    def __exit__(self, *exc):
        torch.Tensor.tolist, torch.Tensor.numpy = self._saved
        return super().__exit__(*exc)


class StrictGraph(FakeGraph):
    """A stand-in graph that models what a real capture freezes: every replay runs the captured step
    as it runs under capture, with every host synchronisation refused and ``stylegan2.capturing``
    true, so code that branches on a tensor value or reads a cache keyed on version counters inside
    the step fails here instead of being silently frozen into a CUDA graph. (A capture records the
    step without running it, hence nothing runs at construction.)"""

    def __init__(self, step, monkeypatch):
        self.monkeypatch = monkeypatch
        self.statics = 0  # static weights the replays asked for (each computed, none from a cache)
        super().__init__(step)

    def _run(self):
        from counterface_nets import stylegan2

        conv = stylegan2.ModulatedConv2d
        counts = {"static": 0, "compute": 0}
        real_static, real_compute = conv._static, conv._static_compute

        def static(self_, *a, **k):
            counts["static"] += 1
            return real_static(self_, *a, **k)

        def compute(self_, *a, **k):
            counts["compute"] += 1
            return real_compute(self_, *a, **k)

        with self.monkeypatch.context() as m:
            m.setattr(stylegan2, "capturing", lambda t: True)
            m.setattr(conv, "_static", static)
            m.setattr(conv, "_static_compute", compute)
            with NoHostSync():
                self.step()
        assert counts["static"] == counts["compute"], "a cached static weight was read inside a captured step"
        self.statics += counts["static"]

    def replay(self):
        self.replays += 1
        self._run()


def test_no_host_sync_guard_catches_item_and_branches():
    x = torch.ones(3)
    for bad in (lambda: x.sum().item(), lambda: bool(x.sum() > 0), lambda: float(x[0]), lambda: x[x > 0],
                lambda: x.tolist(), lambda: x.numpy()):
        with NoHostSync(), pytest.raises(AssertionError, match="host synchronisation"):
            bad()
    with NoHostSync():  # device-side choices are fine
        y = torch.where(x > 0, x, -x)
        y.index_copy_(0, torch.zeros(1, dtype=torch.long).clamp(max=1), torch.zeros(1))
    assert y.tolist() == [0.0, 1.0, 1.0]  # restored on exit


@pytest.mark.parametrize("threshold", [0.0, "mid"])
def test_real_networks_capture_without_host_sync_and_replay_equals_eager(monkeypatch, threshold):
    """The real tiny StyleGAN2, LPIPS and ArcFace through the graph steps under :class:`StrictGraph`:
    no host synchronisation and no weight-cache read inside the captured steps (which would raise or
    freeze a stale weight on CUDA), and the two faces' pivots equal the eager loop's."""
    from counterface_arcface.identity import ArcFaceIdentity
    from counterface_stylegan2.generator import StyleGAN2Generator

    gen = StyleGAN2Generator(weights=None, size=32, style_dim=32, n_mlp=2, channel_multiplier=1, max_channels=16)
    ident = ArcFaceIdentity(weights=None, seed=0)
    faces = _faces(gen)
    w0 = gen.w_avg[None].repeat(gen.num_ws, 1).clone()
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 10:20, 8:24] = 1
    fast = {**FAST, "tune_min_resolution": 16}
    if threshold == "mid":
        probe = PTITuner(**fast, lpips_threshold=0.0, graphs="off").tune(gen, w0, faces[0], region_mask=mask,
                                                                         identity=ident)
        threshold = (probe.meta["losses_start"]["tune"]["lpips"] + probe.meta["losses"]["tune"]["lpips"]) / 2
    eager = [PTITuner(**fast, lpips_threshold=threshold, graphs="off").tune(gen, w0, f, region_mask=mask,
                                                                           identity=ident) for f in faces]
    made = []
    monkeypatch.setattr(graphs, "wanted", lambda *a: (True, "graph"))
    monkeypatch.setattr(graphs, "_capture", lambda step, device: made.append(StrictGraph(step, monkeypatch))
                        or made[-1])
    tuner = PTITuner(**fast, lpips_threshold=threshold, graphs="on")
    replayed = [tuner.tune(gen, w0, f, region_mask=mask, identity=ident) for f in faces]
    assert len(tuner._graph_cache) == 2 and len(made) == 2
    assert all(g.replays > 0 and g.statics > 0 for g in made)  # the frozen layers' weights were computed in-graph
    for e, r in zip(eager, replayed):
        assert r.meta["graphs"] == {"refine": "graph", "tune": "graph"}
        assert r.meta["steps"] == e.meta["steps"] and r.meta["early_stop"] == e.meta["early_stop"]
        assert set(r.meta["losses_start"]["tune"]) == set(e.meta["losses_start"]["tune"])
        torch.testing.assert_close(r.w, e.w, rtol=1e-4, atol=1e-5)
        for n in e.tensors:
            torch.testing.assert_close(r.tensors[n], e.tensors[n], rtol=1e-4, atol=1e-5)
    if threshold:
        assert eager[0].meta["early_stop"]


@pytest.mark.parametrize("layout", ["cpu", "cuda"])
@pytest.mark.parametrize("threshold", [0.0, "split"])
def test_batched_tuning_graphs_equal_the_eager_batched_loop(monkeypatch, layout, threshold):
    """``tune_many`` through the captured B-face steps (:class:`StrictGraph`: no host sync, no weight
    cache inside) against its eager loop: same steps and per-face early stops, tensors equal to float
    rounding, for two batches through one cached step per stage. ``cuda``: the CUDA layout (every
    face through each network at once, per-sample grouped convolutions) forced on the CPU."""
    import counterface_pti.batched as batched_mod
    from counterface_arcface.identity import ArcFaceIdentity
    from counterface_stylegan2.generator import StyleGAN2Generator

    if layout == "cuda":
        monkeypatch.setattr(batched_mod, "BATCHED_DEVICES", ("cuda", "cpu"))
        monkeypatch.setattr(StyleGAN2Generator, "batched_devices", ("cuda", "cpu"))
    gen = StyleGAN2Generator(weights=None, size=32, style_dim=32, n_mlp=2, channel_multiplier=1, max_channels=16)
    ident = ArcFaceIdentity(weights=None, seed=0)
    faces = _faces(gen) + [torch.flip(_faces(gen)[0], [3])]
    w0 = [gen.w_avg[None].repeat(gen.num_ws, 1) + 0.1 * i for i in range(3)]
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 10:20, 8:24] = 1
    masks = [mask, None, mask]
    fast = {**FAST, "tune_min_resolution": 16}
    if threshold == "split":  # some faces stop at once, the others tune on
        starts = [p.meta["losses_start"]["tune"]["lpips"] for p in PTITuner(**fast, graphs="off").tune_many(
            gen, w0, faces, masks, ident)]
        threshold = (min(starts) + max(starts)) / 2
    eager = PTITuner(**fast, lpips_threshold=threshold, graphs="off").tune_many(gen, w0, faces, masks, ident)
    before = {k: v.clone() for k, v in gen.module.state_dict().items()}
    made = []
    monkeypatch.setattr(graphs, "wanted", lambda *a: (True, "graph"))
    monkeypatch.setattr(graphs, "_capture", lambda step, device: made.append(StrictGraph(step, monkeypatch))
                        or made[-1])
    tuner = PTITuner(**fast, lpips_threshold=threshold, graphs="on")
    runs = [tuner.tune_many(gen, w0, faces, masks, ident) for _ in range(2)]  # the 2nd: copied into the statics
    assert len(made) == 2 and sorted(k[0] for k in tuner._graph_cache) == ["refine_many", "tune_many"]
    assert all(g.replays > 0 for g in made)
    assert all(torch.equal(v, before[k]) for k, v in gen.module.state_dict().items())  # the generator untouched
    if threshold:
        steps = [p.meta["steps"]["tune"] for p in eager]
        assert min(steps) == 0 and max(steps) > 0  # per-face stops really happened
    for run in runs:
        for e, r in zip(eager, run):
            assert r.meta["graphs"] == {"refine": "graph", "tune": "graph"}, r.meta["graphs"]
            assert r.meta["steps"] == e.meta["steps"] and r.meta["early_stop"] == e.meta["early_stop"]
            assert set(r.meta["losses_start"]["tune"]) == set(e.meta["losses_start"]["tune"])
            for stage in ("refine", "tune"):
                for k, v in e.meta["losses_start"][stage].items():
                    assert r.meta["losses_start"][stage][k] == pytest.approx(v, rel=1e-4, abs=1e-6), (stage, k)
            torch.testing.assert_close(r.w, e.w, rtol=1e-4, atol=1e-5)
            for n in e.tensors:
                torch.testing.assert_close(r.tensors[n], e.tensors[n], rtol=1e-4, atol=1e-5)
