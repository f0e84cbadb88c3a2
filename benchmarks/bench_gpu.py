"""One command for a CUDA machine: pi_1 at 1024 at the default and exact settings, ms per step, kernel
launches per step, batch throughput at --tune-batch 1/4/8, re-edits from stored pivots, peak GPU
memory and the drift against the exact path, in one markdown table + JSON.

    python benchmarks/bench_gpu.py --out bench.json                 # CUDA, full sizes (~5 min on an H200)
    python benchmarks/bench_gpu.py --out bench.json --quick         # CUDA, fewer batch/drift steps
    python benchmarks/bench_gpu.py --out dry.json --device cpu --quick --preset tiny   # a CPU dry run

What runs (``--preset full``, the default):

* networks: the real released file formats built by the project's own code from the conformance
  manifests (``tests/conformance.py``: ``e4e_ffhq_encode.pt`` layout with the FFHQ 1024 decoder, and
  ``model_ir_se50.pth``), deterministic weights (not trained: time and memory do not depend on the
  values); a random LPIPS trunk (torchvision's ImageNet file is a download; same cost); a seeded random
  direction on rows 4-6 (same cost as the published smile vector);
* alignment is skipped: ``counterface.testing``'s fake aligner takes the centred square of each photo
  (dlib's model file is 100 MB and FAN's weights a download); everything after it is the real pipeline;
* ``pi1``: one full pi_1 at 1024 (e4e, 450 latent + 350 tuning steps at the 256 px loss resolution,
  no early stop, the edit, synthesis and paste-back) after a 2 + 2 step warm-up (``cold``: loading
  and CUDA initialisation included);
* ``batch B``: ``counterface.batch.Runner`` over photos with ``tune_batch`` B = 1, 4, 8 (pairs written
  as PNG with sidecars, no metrics), pairs per hour; with ``--quick`` the steps are cut by ``--step-scale``
  and the pairs per hour at full steps are extrapolated from the measured seconds per step;
  ``B4 vs B1``: the largest pixel difference between the pairs of B = 4 and B = 1 (the pinned check);
* ``re-edit``: pairs per hour of ``batch`` rerun with other alphas over the ``batch B1`` pivot store
  (nothing tuned: load the pivot, pi_1 + pi_0, PNG + sidecar);
* ``drift``: pi_1 crop of one face at the default settings (CUDA: tf32, cuDNN autotuning, fused
  kernels, CUDA graphs), tf32 deterministic and bf16, against the exact path (``--precision fp32
  --deterministic``): max, mean and 99th-percentile grey levels;
* ``pi1_exact``: the same pi_1 on the exact path (with ``--quick`` at the batch steps, extrapolated
  to full steps from the measured ms per step);
* ``launches``, ``launches_exact``: host kernel-launch calls per step (torch.profiler over one pivot
  after a warm-up one; a CUDA graph replay counts as one launch).

Every section records ``torch.cuda.max_memory_allocated`` (reset before it). ``--budget`` seconds stops
starting new sections (the ones left are listed as skipped). Needs only the project (``pip install
--no-deps -e .``) and its runtime imports (see benchmarks/gpu_check.sh for what a bare CUDA machine lacks).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PHOTO = ROOT / "tests" / "data" / "photos" / "astronaut.jpg"
FULL_STEPS = {"latent_steps": 450, "tune_steps": 350}


# ------------------------------------------------------------------------------------- setup
def det_weights(folder: Path) -> dict[str, Path]:
    """The e4e (+ FFHQ 1024 decoder) and IR-SE50 files in their released layouts, deterministic."""
    import torch

    sys.path.insert(0, str(ROOT))
    from tests import conformance as dw

    data = ROOT / "tests" / "data" / "conformance"
    constants = dw.load_constants(data / "constants.npz")
    out = {"e4e": folder / "e4e_ffhq_encode.det.pt", "arcface": folder / "model_ir_se50.det.pth"}
    torch.save(dw.det_checkpoint(dw.load_manifest(data / "e4e_ffhq_encode.json"), constants), out["e4e"])
    torch.save(dw.det_state_dict(dw.load_manifest(data / "arcface_ir_se50.json"), constants), out["arcface"])
    return out


#: the exact path's numerics (today's results bit for bit); the default is edit.precision/deterministic auto
EXACT = {"precision": "fp32", "deterministic": True}
DEFAULT = {"precision": "auto", "deterministic": "auto"}


def config(preset: str, device: str, files: dict | None, steps: dict | None = None, precision: str = "auto",
           deterministic="auto") -> dict:
    from counterface import config as config_mod

    edit = {"device": device, "precision": precision, "deterministic": deterministic}
    if preset == "tiny":
        cfg = config_mod.resolve(preset="tiny", edit=edit)
        cfg["aligner"] = {"name": "fake", "size": 64}
    else:
        cfg = config_mod.resolve(preset="smilegan-pti", edit=edit)
        cfg["aligner"] = {"name": "fake", "size": 1024}
        cfg["inverter"] = {"name": "e4e", "weights": str(files["e4e"])}
        cfg["generator"] = {"name": "stylegan2", "weights": str(files["e4e"])}
        cfg["identity"] = {"name": "arcface", "weights": str(files["arcface"])}
        cfg["direction"] = {"name": "vector", "dim": 512, "seed": 0, "layers": "4-6", "attribute": "smile-random"}
        cfg["tuner"].update({"lpips_pretrained": False, "lpips_threshold": 0.0, **FULL_STEPS})
    cfg["tuner"].update(steps or {})
    return cfg


def photos(folder: Path, n: int) -> list[Path]:
    """``n`` different photos: the astronaut, shifted, flipped and re-lit (the fake aligner crops each)."""
    import numpy as np

    from counterface.imageio import read_image, write_image

    base = read_image(PHOTO)
    folder.mkdir(parents=True, exist_ok=True)
    out = []
    for i in range(n):
        img = np.roll(base, shift=(3 * i, -5 * i), axis=(0, 1))
        if i % 2:
            img = img[:, ::-1]
        img = np.clip(img.astype(np.float32) * (0.85 + 0.04 * (i % 7)), 0, 255).astype(np.uint8)
        out.append(write_image(folder / f"photo{i:02d}.png", np.ascontiguousarray(img), out_dir=folder))
    return out


class Interrupted(BaseException):
    """SIGTERM (``timeout`` in gpu_check.sh) or SIGINT: the running section is recorded as failed,
    no other section starts, and the table of what was measured is still printed. A BaseException,
    like KeyboardInterrupt, so that library code catching ``Exception`` (a plugin loader, say) does
    not swallow it half-way."""


class Bench:
    def __init__(self, device: str, budget: float, out: Path | None = None, meta: dict | None = None):
        self.out = out  # rewritten after every section, so a run cut short still leaves its numbers
        self.meta = meta if meta is not None else {}
        self.device = device
        self.t0 = time.perf_counter()
        self.budget = budget
        self.results: dict = {}
        self.skipped: list[str] = []
        self.stopped = ""  # why no further section starts (an interruption)
        self.fail: set[str] = set()  # sections made to fail (--fail, tests of the fail-safe report)

    def interrupt(self, signum, frame):  # noqa: ARG002 - a signal handler
        self.stopped = f"interrupted by signal {signum}"
        raise Interrupted(self.stopped)

    def save(self, partial: bool = True) -> None:
        if self.out is not None:
            self.out.parent.mkdir(parents=True, exist_ok=True)
            self.out.write_text(json.dumps({"meta": self.meta, "results": self.results, "partial": partial},
                                           indent=2, default=str) + "\n")

    def cuda(self) -> bool:
        return self.device.startswith("cuda")

    def sync(self) -> None:
        if self.cuda():
            import torch

            torch.cuda.synchronize()

    def section(self, name: str, fn, *args, partial: dict | None = None, **kwargs):
        """Run one section: its result, or ``{"error": ...}`` when it raised (the others still run; with
        ``partial``, a dict the section fills as it goes, what it had measured is kept); skipped once
        the budget is spent or the run was interrupted."""
        left = self.budget - (time.perf_counter() - self.t0)
        if left <= 0 or self.stopped:
            self.skipped.append(name)
            why = self.stopped or "budget spent"
            print(f"[bench] {name}: skipped ({why})", file=sys.stderr, flush=True)
            return None
        t = time.perf_counter()
        print(f"[bench] {name} ...", file=sys.stderr, flush=True)
        res: dict = {}
        try:
            import gc

            import torch

            gc.collect()  # the previous sections' pipelines (their graphs hold cycles) and GPU memory
            if self.cuda():
                torch.cuda.empty_cache()
                torch.cuda.reset_peak_memory_stats()
            if name in self.fail:
                raise RuntimeError("injected failure (--fail)")
            res = dict(fn(*args, **kwargs) or {})
            self.sync()
        except (Exception, Interrupted) as exc:  # noqa: BLE001 - a failed section is reported, the others run
            import traceback

            traceback.print_exc()
            res = {**(partial or {}), **res, "error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"}
            if type(exc).__name__ == "BatchInterrupted":  # the signal reached counterface.batch's handler
                self.stopped = self.stopped or f"interrupted ({exc})"
        res["wall_s"] = round(time.perf_counter() - t, 3)
        try:
            if self.cuda():
                import torch

                res["peak_gpu_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        except Exception as exc:  # noqa: BLE001 - e.g. a CUDA error left by the section
            res.setdefault("error", f"{type(exc).__name__}: {exc}")
        self.results[name] = res
        print(f"[bench] {name}: {json.dumps(res, default=str)}", file=sys.stderr, flush=True)
        self.save()
        return res


# ---------------------------------------------------------------------------------- sections
def pi1_once(cfg: dict, photo: Path, bench: Bench, full_steps: dict | None = None) -> dict:
    """One full pi_1 (and its pivot) of one photo, per-stage seconds: first a 3 + 3 step warm-up (loads
    the networks, initialises CUDA, captures the CUDA graphs: ``cold``), then the configured steps (``warm``, the number to
    quote). ``full_steps``: when the configured steps are fewer (``--quick`` for the exact path), the
    refine and tune seconds are also extrapolated to these (``full_s``)."""
    from counterface.imageio import read_image
    from counterface.pipeline import Pipeline

    image = read_image(photo)
    out = {}
    pipe = Pipeline.from_config(cfg)
    tuner = pipe.component("tuner")
    full = (tuner.latent_steps, tuner.tune_steps)
    # the cold run takes one step more than the graphs' warm-up, so the steps are captured there
    # (loading, CUDA initialisation, cuDNN autotuning and capture are cold costs) and replayed warm
    from counterface_pti.graphs import WARMUP_STEPS

    few = WARMUP_STEPS + 1
    for run in ("cold", "warm"):
        tuner.latent_steps, tuner.tune_steps = (few, few) if run == "cold" else full
        bench.sync()
        t = time.perf_counter()
        face = pipe.faces(image)[0]
        pivot, seconds = pipe.pivot(face)
        r1 = pipe.pi1(image, face, pivot)
        bench.sync()
        total = time.perf_counter() - t
        m = pivot.meta
        out[run] = {"total_s": round(total, 3), "invert_s": seconds.get("invert"),
                    # the pipeline's "tune" covers steps 3 and 4 (and building LPIPS); "refine" is step 3
                    "refine_s": m["seconds"].get("refine"),
                    "tune_s": round(m["seconds"].get("tune", 0.0) - m["seconds"].get("refine", 0.0), 4),
                    "steps": m["steps"], "synthesize_blend_s": round(sum(r1.meta["seconds"].values()), 3)}
    w = out["warm"]
    for stage, key in (("refine", "latent_steps"), ("tune", "tune_steps")):
        n = max(int(w["steps"][stage]), 1)
        w[f"{stage}_ms_per_step"] = round(1000 * float(w[f"{stage}_s"] or 0.0) / n, 2)
    if full_steps:
        fixed = w["total_s"] - float(w["refine_s"] or 0) - float(w["tune_s"] or 0)
        w["full_s"] = round(fixed + sum(w[f"{st}_ms_per_step"] * full_steps[k] / 1000
                                        for st, k in (("refine", "latent_steps"), ("tune", "tune_steps"))), 3)
    out["resolution"] = int(pipe.generator.resolution)
    out["working_resolution"] = pivot.meta["working_resolution"]
    out["numerics"] = {"precision": pipe.precision, "deterministic": pipe.deterministic,
                       "graphs": pivot.meta.get("graphs")}
    return out


def launches(cfg: dict, photo: Path, bench: Bench) -> dict:
    """Kernel launches per step (host launch calls: ``cudaLaunchKernel`` and friends; a CUDA graph
    replay is one ``cudaGraphLaunch``) over one pivot after a warm-up pivot (graphs captured), divided
    by the steps; includes the pivot's fixed work (e4e, LPIPS setup, final losses), so it overstates
    a step slightly."""
    from torch.profiler import ProfilerActivity, profile

    from counterface.imageio import read_image
    from counterface.pipeline import Pipeline

    image = read_image(photo)
    pipe = Pipeline.from_config(cfg)
    face = pipe.faces(image)[0]
    pivot, _ = pipe.pivot(face)  # warm-up (and capture)
    bench.sync()
    with profile(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as prof:
        pivot, _ = pipe.pivot(face)
        bench.sync()
    events = prof.key_averages()
    names = ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC", "cuLaunchKernelEx", "cudaGraphLaunch")
    counts = {e.key: e.count for e in events if e.key in names}
    steps = int(pivot.meta["steps"]["refine"]) + int(pivot.meta["steps"]["tune"])
    total = sum(counts.values())
    return {"steps": steps, "launch_calls": counts, "launches_per_step": round(total / max(steps, 1), 1),
            "graphs": pivot.meta.get("graphs")}


def batch_run(cfg: dict, folder: Path, out_dir: Path, tune_batch: int, n_photos: int, full: int) -> dict:
    """``batch`` over ``n_photos`` photos at ``--tune-batch`` ``tune_batch``, after an untimed warm-up
    batch of 3 + 3 steps; ``full``: the preset's full number of steps (latent + tuning), for the
    extrapolation of pairs per hour to full steps."""
    from counterface.batch import Runner, read_manifest
    from counterface.pipeline import Pipeline

    from counterface_pti.graphs import WARMUP_STEPS

    items = read_manifest(folder)[:n_photos]
    pipe = Pipeline.from_config(cfg)
    pipe.generator.module  # noqa: B018 - build the networks outside the timing
    tuner = pipe.component("tuner")
    # an untimed warm-up batch of a few steps: cuDNN autotuning and the graph capture (whose steps
    # serve any number of steps) are one-off costs that the extrapolation to full steps would scale
    steps_set = (tuner.latent_steps, tuner.tune_steps)
    few = WARMUP_STEPS + 1
    if min(steps_set) > few:
        tuner.latent_steps = tuner.tune_steps = few
        try:
            Runner(pipe, out_dir.parent / f"{out_dir.name}-warmup", tune_batch=tune_batch, progress=False).run(
                items[:tune_batch])
        finally:
            tuner.latent_steps, tuner.tune_steps = steps_set
    runner = Runner(pipe, out_dir, tune_batch=tune_batch, progress=False)
    t = time.perf_counter()
    summary = runner.run(items)
    secs = time.perf_counter() - t
    rows = [json.loads(x) for x in (out_dir / "results.jsonl").read_text().splitlines()]
    tuning = sum(float(r["seconds"].get("tune", 0)) for r in rows)  # each face's share of its batch
    steps = int(cfg["tuner"]["latent_steps"]) + int(cfg["tuner"]["tune_steps"])
    # the same run at full steps: the tuning scales with the steps, everything else does not
    secs_full = secs - tuning + tuning * full / max(steps, 1)
    return {"tune_batch": tune_batch, "photos": len(items), "pairs": summary.faces, "failed": summary.failed,
            "steps": steps, "seconds": round(secs, 3), "pairs_per_hour": round(3600 * summary.faces / secs, 1),
            "pairs_per_hour_full_steps": round(3600 * summary.faces / secs_full, 1)}


def pair_difference(a: Path, b: Path, n: int) -> dict:
    """Largest and mean grey-level difference between the pairs of two batch folders (same photos)."""
    import numpy as np

    from counterface.imageio import read_image

    ra = {(r["key"], r["face"]): r for r in map(json.loads, (a / "results.jsonl").read_text().splitlines())}
    rb = {(r["key"], r["face"]): r for r in map(json.loads, (b / "results.jsonl").read_text().splitlines())}
    worst, means = 0, []
    for key in sorted(set(ra) & set(rb))[:n]:
        for role in ("z1", "z0"):
            d = np.abs(read_image(a / ra[key][role]).astype(int) - read_image(b / rb[key][role]).astype(int))
            worst, means = max(worst, int(d.max())), means + [float(d.mean())]
    return {"pairs_compared": len(means) // 2, "max_abs_grey": worst,
            "mean_abs_grey": round(float(np.mean(means)), 4) if means else None}


def reedit(cfg: dict, folder: Path, out_dir: Path, pivots: Path, n_photos: int, alphas: list[float],
           together: bool = True) -> dict:
    """Pairs per hour from stored pivots: ``batch`` again over photos whose pivots a previous run
    stored (``pivots``), with other alphas: nothing is tuned (every row ``"pivot": "reused"``); each
    pair is the edit, two syntheses, the paste-back and the PNGs + sidecars. ``together`` (the
    default): a face's alphas and roles in one synthesis, PNGs encoded on the writer's threads;
    False: one output per synthesis, PNGs encoded in the loop (before issue 18). One photo is
    re-edited first, untimed (cuDNN autotuning of the batch shapes, the writer's threads)."""
    from counterface.batch import Runner, read_manifest
    from counterface.pipeline import Pipeline
    from counterface.settings import EditSettings

    items = read_manifest(folder)[:n_photos]
    pipe = Pipeline(EditSettings.from_config(cfg, alphas=alphas))
    pipe.generator.module  # noqa: B018 - build the networks outside the timing
    name = "default" if together else "one_at_a_time"
    for folder_name, todo in ((f"{name}-warmup", items[:1]), (name, items)):
        runner = Runner(pipe, out_dir / folder_name, pivots=pivots, progress=False)
        runner.batch_reedits = runner.use_writer = together
        t = time.perf_counter()
        summary = runner.run(todo)
        secs = time.perf_counter() - t
    rows = [json.loads(x) for x in (out_dir / name / "results.jsonl").read_text().splitlines()]
    reused = sum(1 for r in rows if r.get("pivot") == "reused" or float(r["seconds"].get("tune", 1)) == 0.0)
    return {"alphas": alphas, "together": together, "pairs": summary.faces, "reused": reused,
            "seconds": round(secs, 3), "pairs_per_hour": round(3600 * summary.faces / secs, 1)}


#: the settings the drift section compares with the exact path (name: edit settings)
DRIFT = {"default": DEFAULT, "tf32": {"precision": "tf32", "deterministic": True},
         "bf16": {"precision": "bf16", "deterministic": "auto"}}


def drift(preset: str, device: str, files, steps: dict, photo: Path, out: dict | None = None) -> dict:
    """pi_1 crop of one face at the default settings, tf32 (deterministic) and bf16 against the exact
    path (fp32, deterministic): grey-level differences and seconds. ``out`` is filled as each setting
    finishes (the exact path and the default first), so a run cut short keeps what was measured."""
    import gc

    import numpy as np

    from counterface.imageio import read_image
    from counterface.pipeline import Pipeline

    image = read_image(photo)
    out = {} if out is None else out
    out.update(steps=dict(steps), seconds={})
    exact = None
    for name, numerics in (("exact", EXACT), *DRIFT.items()):
        pipe = Pipeline.from_config(config(preset, device, files, steps, **numerics))
        t = time.perf_counter()
        face = pipe.faces(image)[0]
        pivot, _ = pipe.pivot(face)
        crop = pipe.pi1(image, face, pivot).crop.astype(int)
        out["seconds"][name] = round(time.perf_counter() - t, 3)
        del pipe, pivot
        gc.collect()
        if exact is None:
            exact = crop
            continue
        d = np.abs(crop - exact)
        out[name] = {"max_abs_grey": int(d.max()), "mean_abs_grey": round(float(d.mean()), 4),
                     "p99_abs_grey": float(np.percentile(d, 99))}
    return out


# ------------------------------------------------------------------------------------- report
#: the sections in the order they run: the issue's checks first (pi_1 at the default settings and its
#: ms per step, pairs per hour, re-edits, drift), then what explains them
SECTIONS = ("pi1", "batch_B1", "reedit", "batch_B4", "batch_B8", "drift", "pi1_exact", "launches",
            "launches_exact", "B4_vs_B1", "reedit_before")
#: the issue's goals, shown next to the measured values
GOALS = {"pi1": "<= 10 s", "ms": "<= 10 / <= 15", "pairs": ">= 1,000", "reedit": ">= 10,000",
         "drift": "docs/performance.md: max 4 (tf32)"}


def table(res: dict, meta: dict) -> str:
    """The markdown table of the issue's "How it will be checked" rows; a failed section shows ERROR
    in its cells (its message is listed below the table), a section that did not run shows '-'."""
    def g(*keys, fmt="{}"):
        cur = res
        for k in keys:
            if not isinstance(cur, dict) or k not in cur:
                return "ERROR" if isinstance(res.get(keys[0]), dict) and "error" in res[keys[0]] else "-"
            cur = cur[k]
        return fmt.format(cur) if cur is not None else "-"

    def best_pairs():
        vals = [(res[f"batch_B{b}"].get("pairs_per_hour_full_steps"), b) for b in (1, 4, 8)
                if isinstance(res.get(f"batch_B{b}"), dict)]
        vals = [(v, b) for v, b in vals if isinstance(v, (int, float))]
        return (f"{max(vals)[0]} (B = {max(vals)[1]})") if vals else "-"

    peaks = [(v.get("peak_gpu_mb"), k) for k, v in res.items() if isinstance(v, dict)
             and isinstance(v.get("peak_gpu_mb"), (int, float))]
    peak = f"{max(peaks)[0]} ({max(peaks)[1]})" if peaks else "-"
    lines = [f"GPU: {meta.get('gpu', '-')}, torch {meta.get('torch', '-')}, preset {meta.get('preset', '-')}, "
             f"quick {meta.get('quick', '-')}, device {meta.get('device', '-')}, "
             f"total {meta.get('total_s', '-')} s", "",
             "| measurement | value | goal | steps | peak GPU MB |", "|---|---|---|---|---|"]
    row = lines.append
    row(f"| **full pi_1 at {g('pi1', 'resolution')} px, default settings (s)** ({g('pi1', 'numerics', 'precision')}, "
        f"deterministic {g('pi1', 'numerics', 'deterministic')}; graphs {g('pi1', 'numerics', 'graphs')}): "
        f"invert / refine / tune / synth+blend | **{g('pi1', 'warm', 'total_s')}**: {g('pi1', 'warm', 'invert_s')} / "
        f"{g('pi1', 'warm', 'refine_s')} / {g('pi1', 'warm', 'tune_s')} / {g('pi1', 'warm', 'synthesize_blend_s')} | "
        f"{GOALS['pi1']} | {g('pi1', 'warm', 'steps', 'refine')}+{g('pi1', 'warm', 'steps', 'tune')} | "
        f"{g('pi1', 'peak_gpu_mb')} |")
    row(f"| full pi_1, exact settings (fp32, deterministic) (s): extrapolated to full steps (measured) | "
        f"{g('pi1_exact', 'warm', 'full_s')} ({g('pi1_exact', 'warm', 'total_s')}) | - | "
        f"{g('pi1_exact', 'warm', 'steps', 'refine')}+{g('pi1_exact', 'warm', 'steps', 'tune')} | "
        f"{g('pi1_exact', 'peak_gpu_mb')} |")
    row(f"| pi_1 cold: load, CUDA set-up, graph capture + a few steps (s) | {g('pi1', 'cold', 'total_s')} | - | "
        f"{g('pi1', 'cold', 'steps', 'refine')}+{g('pi1', 'cold', 'steps', 'tune')} | - |")
    row(f"| refine / tune ms per step, default | {g('pi1', 'warm', 'refine_ms_per_step')} / "
        f"{g('pi1', 'warm', 'tune_ms_per_step')} | {GOALS['ms']} | - | - |")
    row(f"| refine / tune ms per step, exact | {g('pi1_exact', 'warm', 'refine_ms_per_step')} / "
        f"{g('pi1_exact', 'warm', 'tune_ms_per_step')} | - | - | - |")
    row(f"| kernel launches per step, default (graphs: {g('launches', 'graphs', 'tune')}) / exact | "
        f"{g('launches', 'launches_per_step')} / {g('launches_exact', 'launches_per_step')} | - | "
        f"{g('launches', 'steps')} | - |")
    for b in (1, 4, 8):
        k = f"batch_B{b}"
        row(f"| pairs per hour, `--tune-batch {b}`: at full steps (measured at the steps shown) | "
            f"{g(k, 'pairs_per_hour_full_steps')} ({g(k, 'pairs_per_hour')}) | - | {g(k, 'steps')} | "
            f"{g(k, 'peak_gpu_mb')} |")
    row(f"| **pairs per hour at full steps, best `--tune-batch`** | **{best_pairs()}** | {GOALS['pairs']} | - | - |")
    row(f"| **re-edits per hour** (from stored pivots; {g('reedit', 'reused')} of {g('reedit', 'pairs')} rows reused) | "
        f"**{g('reedit', 'pairs_per_hour')}** | {GOALS['reedit']} | 0 | {g('reedit', 'peak_gpu_mb')} |")
    row(f"| re-edits per hour, one output at a time, PNGs in the loop (before) | "
        f"{g('reedit_before', 'pairs_per_hour')} | - | 0 | - |")
    row(f"| peak GPU memory (MB), largest section | {peak} | - | - | - |")
    for p in DRIFT:
        row(f"| drift: {p} vs exact pi_1 crop, max / mean / p99 abs grey (s: {g('drift', 'seconds', p)} vs "
            f"{g('drift', 'seconds', 'exact')}) | {g('drift', p, 'max_abs_grey')} / {g('drift', p, 'mean_abs_grey')}"
            f" / {g('drift', p, 'p99_abs_grey')} | {GOALS['drift'] if p == 'default' else '-'} | "
            f"{g('drift', 'steps', 'latent_steps')}+{g('drift', 'steps', 'tune_steps')} | {g('drift', 'peak_gpu_mb')} |")
    row(f"| `--tune-batch 4` vs 1: max / mean abs grey | {g('B4_vs_B1', 'max_abs_grey')} / "
        f"{g('B4_vs_B1', 'mean_abs_grey')} | - | {g('batch_B4', 'steps')} | - |")
    if meta.get("skipped"):
        lines.append(f"\nskipped: {', '.join(meta['skipped'])}")
    errors = [f"{k}: {v['error']}" for k, v in res.items() if isinstance(v, dict) and "error" in v]
    if meta.get("error"):
        errors.insert(0, f"run: {meta['error']}")
    if errors:
        lines.append("\nerrors:\n" + "\n".join(f"- {e}" for e in errors))
    return "\n".join(lines)


def run_sections(args, bench: Bench, work: Path) -> None:
    """Every wanted section in :data:`SECTIONS` order, each on its own (a failure is recorded, the
    next one runs); ``setup`` (the weight files, the photos) is recorded like a section."""
    wanted = {x.strip() for x in args.sections.split(",") if x.strip()}
    if "launches" in wanted:
        wanted.add("launches_exact")
    if "reedit" in wanted:
        wanted.add("reedit_before")
    setup: dict = {}

    def prepare():
        files = None
        if args.preset == "full":
            t = time.perf_counter()
            files = det_weights(work)
            setup["det_weights_s"] = round(time.perf_counter() - t, 2)
        setup["files"] = files
        setup["photos"] = photos(work / "photos", max(args.photos, 8))
        return {k: v for k, v in setup.items() if k == "det_weights_s"}

    bench.section("setup", prepare)
    if "photos" not in setup:
        return
    files, pics = setup["files"], setup["photos"]
    tiny_steps = {"latent_steps": 10, "tune_steps": 10}
    scale = args.step_scale if args.quick else 1.0
    base = FULL_STEPS if args.preset == "full" else tiny_steps
    steps = {k: max(1, int(round(v * scale))) for k, v in base.items()}
    bench.meta["batch_steps"] = steps
    cfg = config(args.preset, args.device, files, steps)
    pivots = work / "batch_B1" / "pivots"
    few = {k: max(3, v // 10) for k, v in steps.items()}
    alphas = [-2.0, -1.0, 0.5, 2.0]
    drift_out: dict = {}
    plan = {
        "pi1": lambda: bench.section("pi1", pi1_once, config(args.preset, args.device, files, base), pics[0], bench),
        "reedit": lambda: bench.section("reedit", reedit, cfg, work / "photos", work / "reedit", pivots, args.photos,
                                        alphas, True) if pivots.is_dir() else None,
        "reedit_before": lambda: bench.section("reedit_before", reedit, cfg, work / "photos", work / "reedit",
                                               pivots, args.photos, alphas, False) if pivots.is_dir() else None,
        "drift": lambda: bench.section("drift", drift, args.preset, args.device, files, steps, pics[1], drift_out,
                                       partial=drift_out)
        if bench.cuda() else bench.results.update(drift={"error": "tf32/bf16 need CUDA (refused on the CPU)"}),
        # with --quick at the batch steps, extrapolated to full steps
        "pi1_exact": lambda: bench.section("pi1_exact", pi1_once, config(args.preset, args.device, files, steps,
                                                                          **EXACT), pics[0], bench,
                                           base if steps != base else None),
        "B4_vs_B1": lambda: bench.section("B4_vs_B1", pair_difference, work / "batch_B1", work / "batch_B4",
                                          args.photos)
        if all((work / f"batch_B{b}" / "results.jsonl").is_file() for b in (1, 4)) else None,
    }
    for b in (1, 4, 8):
        plan[f"batch_B{b}"] = (lambda b=b: bench.section(f"batch_B{b}", batch_run, cfg, work / "photos",
                                                         work / f"batch_B{b}", b, args.photos, sum(base.values())))
    for name, numerics in (("launches", DEFAULT), ("launches_exact", EXACT)):
        plan[name] = (lambda name=name, numerics=numerics: bench.section(
            name, launches, config(args.preset, args.device, files, few, **numerics), pics[0], bench)
            if bench.cuda() else bench.results.update({name: {"error": "counts CUDA kernel launches (CUDA only)"}}))
    for name in SECTIONS:
        if name in wanted:
            try:
                plan[name]()
            except Interrupted:  # outside a section's own try: this one and the next are skipped
                if name not in bench.results and name not in bench.skipped:
                    bench.skipped.append(name)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True, help="JSON file for the results")
    ap.add_argument("--device", default="cuda", help="cuda (default), cuda:N or cpu (a dry run)")
    ap.add_argument("--preset", choices=["full", "tiny"], default="full")
    ap.add_argument("--quick", action="store_true", help="cut the batch and drift steps by --step-scale")
    ap.add_argument("--step-scale", type=float, default=0.1, help="fraction of the full steps with --quick")
    ap.add_argument("--photos", type=int, default=8, help="photos per batch run (one batch of 8 at B = 8)")
    ap.add_argument("--budget", type=float, default=420.0, help="seconds after which no new section starts")
    ap.add_argument("--keep", type=Path, default=None, help="keep the work folder here (default: a temporary one)")
    ap.add_argument("--sections", default="pi1,batch_B1,reedit,batch_B4,batch_B8,drift,pi1_exact,launches,B4_vs_B1",
                    help="comma-separated sections to run (default: all; they run in the order of the issue's checks)")
    ap.add_argument("--table-only", action="store_true",
                    help="print the table of an existing --out JSON (e.g. of a run cut short) and exit")
    ap.add_argument("--fail", default="", help=argparse.SUPPRESS)  # sections made to fail (tests)
    args = ap.parse_args(argv)

    if args.table_only:
        try:
            report = json.loads(args.out.read_text())
        except (OSError, ValueError) as exc:
            print(f"error: cannot read {args.out}: {exc}", file=sys.stderr)
            return 2
        meta = dict(report.get("meta") or {})
        if report.get("partial"):
            meta.setdefault("error", "the run was cut short (partial results)")
        print(table(report.get("results") or {}, meta))
        return 0
    import signal

    import torch

    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print("error: CUDA is not available (use --device cpu for a dry run)", file=sys.stderr)
        return 2
    work = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="counterface-bench-"))
    work.mkdir(parents=True, exist_ok=True)
    meta = {"device": args.device, "preset": args.preset, "quick": args.quick, "torch": torch.__version__,
            "python": platform.python_version(), "machine": platform.platform(), "cpus": os.cpu_count()}
    bench = Bench(args.device, args.budget, args.out, meta)
    bench.fail = {x for x in args.fail.split(",") if x}
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, bench.interrupt)
    try:
        if bench.cuda():
            meta["gpu"] = torch.cuda.get_device_name()
            meta["cuda"] = torch.version.cuda
        from counterface import testing

        testing.install()  # the fake aligner (alignment skipped)
        run_sections(args, bench, work)
    except (Exception, Interrupted) as exc:  # noqa: BLE001 - whatever happens, the table of what was measured prints
        import traceback

        traceback.print_exc()
        meta["error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            signal.signal(sig, signal.SIG_DFL)
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    meta["skipped"] = bench.skipped
    meta["total_s"] = round(time.perf_counter() - bench.t0, 2)
    text = table(bench.results, meta)
    bench.save(partial=False)
    report = json.loads(args.out.read_text()) if args.out.is_file() else {"meta": meta, "results": bench.results}
    report["table"] = text
    args.out.write_text(json.dumps(report, indent=2, default=str) + "\n")
    print(text, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
