"""CPU timings of the full-size networks, built from the conformance det weights.

    python benchmarks/bench_networks.py                       # 1 and 2 threads, 3 repeats
    python benchmarks/bench_networks.py --threads 1 --repeats 5 --reference

Rows: StyleGAN2 1024 synthesis (batch 1, ``torch.inference_mode``), synthesis + backward (one PTI
step: MSE to a target, gradients for every synthesis parameter and the W+), e4e encode of a 256x256
face (skipped until ``counterface_nets.load_e4e`` exists), ArcFace IR-SE50 forward at 112, and the
peak resident memory of a fresh process that loads the generator and synthesizes once (and one that
also backprops). ``--reference`` adds rosinality's literal math (``impl="reference"``: batched grouped
conv + general upfirdn2d) as the "before" row, measured in the same process.

Each cell is the median over ``--repeats`` runs after one warm-up: wall seconds, and process CPU
seconds in brackets. On a shared machine the CPU time is the steadier number (wall time includes
waiting for a core); compare only numbers from one run. Real weights cannot be downloaded here, so
the checkpoints are rebuilt in their real formats from ``tests/data/conformance`` (``--workdir``
keeps them between runs; the e4e encoder file is about 1.1 GB).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SHARED = ROOT / "tests" / "data"  # conformance/ manifests and constants (the repository's test data)


# ------------------------------------------------------------------------------ det checkpoints

def _dw(shared: Path):
    """The project's deterministic-weights builder (tests/conformance.py)."""
    sys.path.insert(0, str(ROOT))
    from tests import conformance

    return conformance


def build_files(shared: Path, workdir: Path, want_e4e: bool) -> dict[str, Path]:
    """Real-format det checkpoints (built once per workdir)."""
    import torch

    dw = _dw(shared)
    conf = shared / "conformance"
    consts = dw.load_constants(conf / "constants.npz")
    workdir.mkdir(parents=True, exist_ok=True)
    files = {"stylegan2": workdir / "stylegan2-ffhq-config-f.det.pt", "arcface": workdir / "model_ir_se50.det.pth"}
    if not files["stylegan2"].exists():
        m = dw.load_manifest(conf / "stylegan2_ffhq_1024.json")
        torch.save(dw.det_checkpoint(m, consts), files["stylegan2"])
    if not files["arcface"].exists():
        m = dw.load_manifest(conf / "arcface_ir_se50.json")
        torch.save(dw.det_state_dict(m, consts), files["arcface"])
    if want_e4e:
        files["e4e"] = workdir / "e4e_ffhq_encode.encoder-only.det.pt"
        if not files["e4e"].exists():
            # the encoder part only (load_e4e reads only encoder.*): saves 130 MB and the decoder build
            m = dw.load_manifest(conf / "e4e_ffhq_encode.json")
            specs = {k: v for k, v in m["state_dict"].items() if k.startswith("encoder.")}
            ckpt = {"state_dict": dw.det_state_dict(specs, consts),
                    "opts": json.loads(json.dumps(m["checkpoint"]["literals"]["opts"])),
                    "latent_avg": dw.det_extra(m, consts)["latent_avg"]}
            torch.save(ckpt, files["e4e"])
    return files


# ------------------------------------------------------------------------------ timing

def timed(fn, repeats: int) -> tuple[float, float]:
    """(median wall s, median process-CPU s) over ``repeats`` runs after one warm-up."""
    fn()
    walls, cpus = [], []
    for _ in range(repeats):
        w, c = time.perf_counter(), time.process_time()
        fn()
        walls.append(time.perf_counter() - w)
        cpus.append(time.process_time() - c)
    return statistics.median(walls), statistics.median(cpus)


def bench(files: dict[str, Path], threads: list[int], repeats: int, reference: bool) -> dict:
    import torch

    import counterface_nets

    gen = counterface_nets.load_generator(files["stylegan2"])
    ws = (gen.latent_avg + 0.5 * torch.randn(1, gen.num_ws, gen.style_dim, generator=torch.Generator().manual_seed(0)))
    target = torch.zeros(1, 3, gen.size, gen.size)

    def synth():
        with torch.inference_mode():
            gen.synthesize(ws)

    def synth_ref():
        with torch.inference_mode():
            gen.synthesize(ws, impl="reference")

    def pti_step(impl="fast"):
        gen.zero_grad(set_to_none=True)
        w = ws.clone().requires_grad_(True)
        loss = torch.nn.functional.mse_loss(gen.synthesize(w, impl=impl), target)
        loss.backward()

    rows: dict[str, dict[int, tuple[float, float]]] = {}
    tasks = [("StyleGAN2 1024 synthesis", synth)]
    if reference:
        tasks.append(("StyleGAN2 1024 synthesis, rosinality math (before)", synth_ref))
    tasks.append(("StyleGAN2 1024 synthesis + backward (PTI step)", pti_step))
    if reference:
        tasks.append(("StyleGAN2 1024 synthesis + backward, rosinality math (before)", lambda: pti_step("reference")))

    enc = None
    if "e4e" in files:
        try:
            enc = counterface_nets.load_e4e(files["e4e"])
        except (ImportError, AttributeError) as exc:  # the e4e module is written by another helper
            print(f"(e4e skipped: {exc})", file=sys.stderr)
    if enc is not None:
        x256 = torch.rand(1, 3, 256, 256, generator=torch.Generator().manual_seed(1)) * 2 - 1

        def encode():
            with torch.inference_mode():
                enc.encode(x256)

        tasks.append(("e4e encode, 256 input", encode))
    try:
        arc = counterface_nets.load_arcface(files["arcface"])
        x112 = torch.rand(1, 3, 112, 112, generator=torch.Generator().manual_seed(2)) * 2 - 1

        def arcface():
            with torch.inference_mode():
                arc(x112)

        tasks.append(("ArcFace IR-SE50 forward, 112 input", arcface))
    except (ImportError, AttributeError) as exc:
        print(f"(arcface skipped: {exc})", file=sys.stderr)

    for name, fn in tasks:
        rows[name] = {}
        for t in threads:
            torch.set_num_threads(t)
            rows[name][t] = timed(fn, repeats)
            print(f"  {name} @ {t} thread(s): wall {rows[name][t][0]:.3f} s, cpu {rows[name][t][1]:.3f} s",
                  file=sys.stderr, flush=True)
    return rows


def peak_child(path: str, mode: str, threads: int) -> None:
    """Run in a fresh process: load the generator, synthesize once (``mode='backward'``: + backward),
    print JSON with the resident-set sizes."""
    import torch

    torch.set_num_threads(threads)
    import counterface_nets

    gen = counterface_nets.load_generator(path)
    after_load = _rss_now()
    ws = gen.latent_avg.expand(1, gen.num_ws, -1).clone()
    if mode == "backward":
        ws.requires_grad_(True)
        gen.synthesize(ws).square().mean().backward()
    else:
        with torch.inference_mode():
            gen.synthesize(ws)
    print(json.dumps({"after_load_mb": after_load, "peak_mb": _peak_rss()}))


def _status_mb(field: str) -> float | None:
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return None


def _rss_now() -> float:
    v = _status_mb("VmRSS")
    return float("nan") if v is None else v


def _peak_rss() -> float:
    """Peak resident set of this process (VmHWM; ru_maxrss would include the parent's size, since
    Linux carries it across fork + exec)."""
    v = _status_mb("VmHWM")
    if v is None:  # not Linux: ru_maxrss is KB on Linux, bytes on macOS
        r = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
        return r / 2 ** 20 if sys.platform == "darwin" else r / 1024
    return v


def peaks(path: Path, threads: int) -> dict[str, dict]:
    out = {}
    for mode in ("synthesis", "backward"):
        res = subprocess.run([sys.executable, __file__, "--peak-child", str(path), "--mode", mode,
                              "--threads", str(threads)], capture_output=True, text=True, check=True)
        out[mode] = json.loads(res.stdout.strip().splitlines()[-1])
    return out


def machine() -> str:
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return (f"{cpu}, {os.cpu_count()} logical CPUs; Python {platform.python_version()}, torch {torch.__version__}, "
            f"oneDNN {'on' if torch.backends.mkldnn.is_available() else 'off'}; load average at start "
            f"{os.getloadavg()[0]:.1f}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--reference", action="store_true", help="also time rosinality's literal math (slow)")
    ap.add_argument("--no-e4e", action="store_true", help="skip the e4e encoder (its det file is ~1.1 GB)")
    ap.add_argument("--shared", type=Path, default=DEFAULT_SHARED)
    ap.add_argument("--workdir", type=Path, default=None, help="keep the det checkpoints here between runs")
    ap.add_argument("--peak-child", help=argparse.SUPPRESS)
    ap.add_argument("--mode", default="synthesis", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.peak_child:
        peak_child(args.peak_child, args.mode, args.threads[0])
        return 0
    with tempfile.TemporaryDirectory() as tmp:
        workdir = args.workdir or Path(tmp)
        print(f"machine: {machine()}", flush=True)
        files = build_files(args.shared, workdir, want_e4e=not args.no_e4e)
        rows = bench(files, args.threads, args.repeats, args.reference)
        mem = peaks(files["stylegan2"], args.threads[0])
    head = " | ".join(f"{t} thread{'s' if t > 1 else ''}: wall (cpu) s" for t in args.threads)
    print(f"\n| operation (batch 1, median of {args.repeats}) | {head} |")
    print("|---|" + "---|" * len(args.threads))
    for name, cells in rows.items():
        print(f"| {name} | " + " | ".join(f"{cells[t][0]:.2f} ({cells[t][1]:.2f})" for t in args.threads) + " |")
    print(f"\n| peak resident memory, fresh process, {args.threads[0]} thread(s) | after load | peak |")
    print("|---|---|---|")
    for mode, m in mem.items():
        label = "load + one 1024 synthesis (inference_mode)" if mode == "synthesis" else "load + synthesis + backward"
        print(f"| {label} | {m['after_load_mb']:.0f} MB | {m['peak_mb']:.0f} MB |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
