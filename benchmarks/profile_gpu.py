"""Where a PTI step's time goes on a CUDA machine (the 1024 preset, det weights, alignment skipped).

    python benchmarks/profile_gpu.py --out profile.json [--steps 20]

1. Seconds per refinement step and per tuning step under five settings, in one process and one
   order, so they compare: the exact path (fp32, cuDNN deterministic, no autotuning, eager),
   ``fp32+autotune`` (fused kernels, CUDA graphs), ``tf32`` deterministic, the default (``auto``:
   tf32, autotuning, fused kernels, CUDA graphs) and ``bf16``.
2. A ``torch.profiler`` trace of a few default steps: the wall time, the summed CUDA kernel time (how
   busy the GPU is; a small fraction means the step is bound by Python and kernel launches, not by the
   GPU), and the operators with the most CUDA time.

Prints one JSON object and writes it to ``--out``. Needs only the project (``pip install --no-deps -e .``).
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import bench_gpu  # noqa: E402  (the same det weights, photos and configuration as the benchmark)


def step_seconds(files, photo, steps: int, precision: str, deterministic) -> dict:
    import torch

    from counterface.imageio import read_image
    from counterface.pipeline import Pipeline

    pipe = Pipeline.from_config(bench_gpu.config("full", "cuda", files, {"latent_steps": steps, "tune_steps": steps},
                                                 precision=precision, deterministic=deterministic))
    image = read_image(photo)
    face = pipe.faces(image)[0]
    pipe.pivot(face)  # warm-up: networks, LPIPS, cuDNN plans
    torch.cuda.synchronize()
    pivot, _ = pipe.pivot(face)
    sec = pivot.meta["seconds"]
    refine = float(sec.get("refine", 0.0))
    tune = float(sec.get("tune", 0.0)) - refine
    return {"refine_ms_per_step": round(1000 * refine / steps, 2), "tune_ms_per_step": round(1000 * tune / steps, 2)}


def profile(files, photo, steps: int) -> dict:
    import torch
    from torch.profiler import ProfilerActivity, profile as prof

    from counterface.imageio import read_image
    from counterface.pipeline import Pipeline

    pipe = Pipeline.from_config(bench_gpu.config("full", "cuda", files, {"latent_steps": steps, "tune_steps": steps}))
    image = read_image(photo)
    face = pipe.faces(image)[0]
    pipe.pivot(face)
    torch.cuda.synchronize()
    t = time.perf_counter()
    with prof(activities=[ProfilerActivity.CPU, ProfilerActivity.CUDA]) as p:
        pipe.pivot(face)
        torch.cuda.synchronize()
    wall = time.perf_counter() - t
    events = p.key_averages()
    cuda_us = sum(getattr(e, "self_device_time_total", getattr(e, "self_cuda_time_total", 0)) for e in events)
    launches = sum(e.count for e in events if e.key in ("cudaLaunchKernel", "cuLaunchKernel", "cudaLaunchKernelExC"))
    top = sorted(events, key=lambda e: getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0)), reverse=True)
    return {"steps": steps, "wall_s_profiled": round(wall, 3), "cuda_kernel_s": round(cuda_us / 1e6, 3),
            "gpu_busy_fraction": round(cuda_us / 1e6 / wall, 3), "kernel_launches": launches,
            "launches_per_step": round(launches / (2 * steps), 1),
            "top_ops": [{"op": e.key, "count": e.count,
                         "cuda_ms": round(getattr(e, "device_time_total", getattr(e, "cuda_time_total", 0)) / 1e3, 2),
                         "cpu_ms": round(e.cpu_time_total / 1e3, 2)} for e in top[:15]]}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, required=True)
    ap.add_argument("--steps", type=int, default=20)
    args = ap.parse_args(argv)
    import torch

    if not torch.cuda.is_available():
        print("error: CUDA is not available", file=sys.stderr)
        return 2
    from counterface import testing

    testing.install()
    work = Path(tempfile.mkdtemp(prefix="counterface-profile-"))
    files = bench_gpu.det_weights(work)
    photo = bench_gpu.photos(work / "photos", 1)[0]
    report: dict = {"gpu": torch.cuda.get_device_name(), "torch": torch.__version__, "variants": {}}
    for name, precision, deterministic in (("exact (fp32, deterministic)", "fp32", True),
                                           ("fp32+autotune", "fp32", False), ("tf32, deterministic", "tf32", True),
                                           ("default (auto)", "auto", "auto"), ("bf16", "bf16", "auto")):
        try:
            report["variants"][name] = step_seconds(files, photo, args.steps, precision, deterministic)
        except Exception as exc:  # noqa: BLE001 - a report of what ran
            report["variants"][name] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
        print(name, report["variants"][name], flush=True)
        args.out.write_text(json.dumps(report, indent=2) + "\n")
    try:
        report["profile"] = profile(files, photo, max(3, args.steps // 4))
    except Exception as exc:  # noqa: BLE001
        report["profile"] = {"error": f"{type(exc).__name__}: {exc}"[:300]}
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
