"""Per-stage time and peak memory of the whole pipeline (align -> invert -> refine -> tune -> pi_1 -> pi_0).

    python benchmarks/bench_pipeline.py                          # tiny and full, CPU, 1 thread
    python benchmarks/bench_pipeline.py --configs tiny --threads 1 2
    python benchmarks/bench_pipeline.py --configs full --steps 5 --device cuda

Configurations:

* ``tiny``: the ``tiny`` preset as shipped (dlib, 64 px networks, 10 + 10 optimisation steps).
* ``full``: the ``smilegan-pti`` preset at full size (1024 StyleGAN2 with ``style_dim=512, n_mlp=8,
  channel_multiplier=2``, 50-layer e4e and ArcFace), dlib alignment instead of FAN (FAN's weights
  cannot be downloaded here), ``--steps`` latent and tuning steps (PTI runs 450 + up to 350: multiply
  the per-step seconds), the default 256 px loss resolution and the default tuned-parameter selection.
  The networks are randomly initialised at the released architectures (time and memory do not depend
  on the weights' values) and the LPIPS trunk is random (no ImageNet download), so this runs on any
  machine without files. The smile direction is a seeded random unit vector on rows 4-6 (the same
  cost as the published one).

Every configuration runs in a fresh process, so ``peak_rss_mb`` (the process's maximum resident set,
imports and all) belongs to it alone; on CUDA ``peak_cuda_mb`` is ``torch.cuda.max_memory_allocated``.
Stage times are wall seconds of the first (cold) call, what one photo costs; ``refine`` and ``tune``
are the tuner's own timings (each includes one extra forward pass for the final losses, so the
per-step columns slightly overstate a step); ``tune setup`` is building the tuner, LPIPS (importing
``lpips`` imports torchvision) and the identity network. Compare only numbers from one run on one machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT / "tests" / "data"  # photos/ (the repository's test data)

FULL_SETS = [
    "aligner=dlib",
    "generator.weights=''", "generator.size=1024", "generator.style_dim=512", "generator.n_mlp=8",
    "generator.channel_multiplier=2",
    "inverter.weights=''", "inverter.units=[3, 4, 14, 3]", "inverter.width=1.0",
    "identity.weights=''", "identity.units=[3, 4, 14, 3]", "identity.width=1.0",
    "tuner.lpips_pretrained=false", "tuner.lpips_threshold=0.0",
    "direction=vector", "direction.dim=512", "direction.layers='4-6'", "direction.attribute='smile-random'",
]


def photo(path: str | None):
    """The benchmark photo: ``--photo``, else tests/data/photos/astronaut.jpg, else skimage's astronaut."""
    from counterface.imageio import read_image

    if path:
        return read_image(path), path
    p = DEFAULT_SHARED / "photos" / "astronaut.jpg"
    if p.is_file():
        return read_image(p), str(p)
    from skimage import data

    return data.astronaut(), "skimage.data.astronaut()"


def child(config: str, threads: int, device: str, steps: int, photo_path: str | None) -> dict:
    """Run one configuration in this process and return its measurements."""
    import torch

    torch.set_num_threads(threads)
    from counterface import config as config_mod
    from counterface.pipeline import Pipeline

    sets = [] if config == "tiny" else list(FULL_SETS) + [f"tuner.latent_steps={steps}", f"tuner.tune_steps={steps}"]
    cfg = config_mod.resolve(preset="tiny" if config == "tiny" else "smilegan-pti", sets=sets,
                             edit={"device": device})
    for kind in ("generator", "inverter", "identity"):  # '' in TOML stands for None (random weights)
        if cfg.get(kind, {}).get("weights") == "":
            cfg[kind]["weights"] = None
    image, source = photo(photo_path)
    pipe = Pipeline.from_config(cfg)
    sec: dict[str, float] = {}

    def stage(name, fn):
        if pipe.device.startswith("cuda"):
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if pipe.device.startswith("cuda"):
            torch.cuda.synchronize()
        sec[name] = round(time.perf_counter() - t0, 3)
        return out

    face = stage("align", lambda: pipe.faces(image)[0])
    w0 = stage("invert", lambda: pipe.invert(face))
    pivot = stage("refine+tune", lambda: pipe.tune(face, w0))
    m = pivot.meta
    sec["refine"], sec["tune"] = m["seconds"]["refine"], m["seconds"]["tune"]
    # building the tuner, LPIPS (importing lpips imports torchvision: seconds) and the identity network
    sec["tune setup"] = round(sec["refine+tune"] - sec["refine"] - sec["tune"], 3)
    stage("pi1", lambda: pipe.pi1(image, face, pivot))
    stage("pi1 again", lambda: pipe.pi1(image, face, pivot))
    stage("pi0", lambda: pipe.pi0(image, face, pivot))
    out = {
        "config": config, "device": pipe.device, "threads": threads, "photo": source,
        "photo_size": list(image.shape[:2]), "resolution": pipe.generator.resolution,
        "steps": m["steps"], "seconds": sec,
        "refine_per_step": round(sec["refine"] / max(1, m["steps"]["refine"]), 3),
        "tune_per_step": round(sec["tune"] / max(1, m["steps"]["tune"]), 3),
        "tuned_numel": m["tuned_numel"], "generator_numel": m["generator_numel"],
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }
    if pipe.device.startswith("cuda"):
        out["peak_cuda_mb"] = round(torch.cuda.max_memory_allocated() / 2**20, 1)
        out["gpu"] = torch.cuda.get_device_name()
    return out


def table(rows: list[dict]) -> str:
    stages = ["align", "invert", "tune setup", "refine", "tune", "pi1", "pi1 again", "pi0"]
    head = ("| config | device | threads | steps (refine/tune) | " + " | ".join(stages)
            + " | s/step refine | s/step tune | peak RSS MB | peak CUDA MB |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        s = r["seconds"]
        lines.append(
            f"| {r['config']} | {r['device']} | {r['threads']} | {r['steps']['refine']}/{r['steps']['tune']} | "
            + " | ".join(f"{s[k]:.2f}" for k in stages)
            + f" | {r['refine_per_step']:.2f} | {r['tune_per_step']:.2f} | {r['peak_rss_mb']:.0f} | "
            + (f"{r['peak_cuda_mb']:.0f}" if "peak_cuda_mb" in r else "-") + " |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--configs", nargs="+", default=["tiny", "full"], choices=["tiny", "full"])
    ap.add_argument("--threads", type=int, nargs="+", default=[1])
    ap.add_argument("--device", default="cpu", help="cpu, cuda or auto")
    ap.add_argument("--steps", type=int, default=2, help="latent and tuning steps of the full configuration")
    ap.add_argument("--photo", default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write the rows here")
    ap.add_argument("--child", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.child:
        config, threads = args.child.split(":")
        print(json.dumps(child(config, int(threads), args.device, args.steps, args.photo)))
        return 0
    rows = []
    for config in args.configs:
        for threads in args.threads:
            cmd = [sys.executable, __file__, "--child", f"{config}:{threads}", "--device", args.device,
                   "--steps", str(args.steps)] + (["--photo", args.photo] if args.photo else [])
            env = {**os.environ, "COUNTERFACE_PROGRESS": "0", "OMP_NUM_THREADS": str(threads)}
            res = subprocess.run(cmd, capture_output=True, text=True, env=env)
            if res.returncode != 0:
                print(f"{config} ({threads} threads) failed:\n{res.stderr[-2000:]}", file=sys.stderr)
                return 1
            rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
            print(json.dumps(rows[-1]), file=sys.stderr)
    print(f"machine: {platform.platform()}, {os.cpu_count()} CPUs, python {platform.python_version()}")
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
