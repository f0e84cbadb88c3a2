"""Attribute field vs boundary on planted curved 512-d latents (issue 19's check, run through the CLI).

    python benchmarks/bench_fields.py OUT_DIR [--seed S] [--kappa K] [--flip F] [--scale X] [--wplus R] [--aniso A]
    python benchmarks/bench_fields.py OUT_DIR --grid [--seeds 3] [--variant NAME ...]

Planted latents: x ~ N(0, I_512) * scale; on iff n1.x + kappa ((n2.x)^2 - 1) > 0 (a parabola), a share
``flip`` of the training labels flipped; a kept attribute nk.x + 0.2 > 0 with nk correlated 0.4 with n1.
6,000 training and 2,000 held-out latents in ``train.npz``/``test.npz`` (arrays latents, labels, keep).
Runs `directions learn --method mlp`, `directions learn --label keep`, `directions apply` for on and
off with `--keep`, then the same with a linear boundary, and prints the share of edited held-out
latents on the true side and the share whose kept attribute is unchanged.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
from pathlib import Path

import numpy as np


def planted(seed=0, n_train=6000, n_test=2000, d=512, kappa=0.5, flip=0.03, scale=1.0, wplus=0, aniso=1.0):
    """(train, test, truth). ``aniso`` > 1: the latents' standard deviations run log-evenly from
    sqrt(aniso) down to 1/sqrt(aniso) along a random basis (the planted directions stay random unit
    vectors, so they mix high- and low-variance axes); the truth is read in the same units."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, 3)))
    n1, n2, n3 = q.T
    nk = 0.4 * n1 + np.sqrt(1 - 0.16) * n3
    if aniso != 1.0:
        basis, _ = np.linalg.qr(rng.normal(size=(d, d)))
        sd = np.exp(np.linspace(0.5, -0.5, d) * np.log(aniso))
        # the planted directions see unit variance on average: the boundary keeps its shape in distribution
        mix = basis * sd[None, :]
    else:
        mix = None

    def truth(lat):
        x = np.asarray(lat, np.float64)
        x = (x.mean(1) if x.ndim == 3 else x) / scale
        return (x @ n1 + kappa * ((x @ n2) ** 2 - 1) > 0).astype(int), (x @ nk + 0.2 > 0).astype(int)

    def sample(n, noisy):
        x = rng.normal(size=(n, d))
        x = (x if mix is None else x @ mix.T) * scale
        y, k = truth(x)
        if noisy:
            f = rng.random(n) < flip
            y[f] = 1 - y[f]
        if wplus:
            x = np.repeat(x[:, None], wplus, 1) + 0.01 * scale * rng.normal(size=(n, wplus, d))
        return {"latents": x.astype(np.float32), "labels": y, "keep": k}

    return sample(n_train, True), sample(n_test, False), truth


#: the grid of planted variants (``--grid``): name -> planted() settings; seeds are added by --seeds
GRID = {
    "base": {},
    "curvature 0.3": {"kappa": 0.3},
    "curvature 0.8": {"kappa": 0.8},
    "flip 0%": {"flip": 0.0},
    "flip 8%": {"flip": 0.08},
    "scale x3": {"scale": 3.0},
    "anisotropic x10": {"aniso": 10.0},
    "4,000 latents": {"n_train": 4000},
    "8,000 latents": {"n_train": 8000},
    "hard (0.8, 5%, x3)": {"kappa": 0.8, "flip": 0.05, "scale": 3.0},
    "hard, 4,000, 8%": {"kappa": 0.8, "flip": 0.08, "scale": 3.0, "n_train": 4000},
}


def grid_case(settings: dict, seed: int) -> dict:
    """One planted variant, in-process (the fit of `learn --method mlp`, which `--folds` does not change;
    a linear kept boundary as `learn --label keep` fits it; `apply --operator on/off --keep`)."""
    import time

    import torch

    from counterface import learn
    from counterface.boundary import Boundary
    from counterface.fieldpath import kept, move_latents

    train, test, truth = planted(seed, **settings)
    kb = learn.fit_hyperplane(train["latents"], train["keep"], folds=0, seed=seed)
    keep = kept(Boundary(normal=torch.from_numpy(kb.normal).float()[None], intercept=torch.tensor([kb.intercept])))
    t0 = time.perf_counter()
    fit = learn.fit_field(train["latents"], train["labels"], folds=0, seed=0, density=False)
    seconds = time.perf_counter() - t0
    y0, k0 = truth(test["latents"])
    out = {"seed": seed, "fit_seconds": seconds, "validation_accuracy": fit.validation_accuracy,
           "test_accuracy": float(np.mean((fit.field.logit(torch.from_numpy(test["latents"])).numpy() > 0) == y0))}
    kept_share = []
    for op, want in (("on", 1), ("off", 0)):
        moved, _ = move_latents(fit.field, torch.from_numpy(test["latents"].astype(np.float64)), op, keep=[keep])
        y1, k1 = truth(moved.numpy())
        out[op] = float(np.mean(y1 == want))
        kept_share.append(float(np.mean(k1 == k0)))
    out["kept"] = min(kept_share)
    return out


def run_grid(out: Path, seeds: int, names: list[str] | None) -> None:
    """Every variant of :data:`GRID` for ``seeds`` seeds: a markdown table of the medians over seeds
    (true side under on and off, kept attribute unchanged: the worse of on and off) and grid.json."""
    import json

    rows = {}
    for name, settings in GRID.items():
        if names and name not in names:
            continue
        rows[name] = [grid_case(settings, seed) for seed in range(seeds)]
        r = rows[name]
        med = {k: float(np.median([c[k] for c in r])) for k in ("on", "off", "kept", "test_accuracy", "fit_seconds")}
        worst = {k: min(c[k] for c in r) for k in ("on", "off", "kept")}
        print(f"| {name} | {100 * med['on']:.1f} / {100 * med['off']:.1f} / {100 * med['kept']:.1f} | "
              f"{100 * worst['on']:.1f} / {100 * worst['off']:.1f} / {100 * worst['kept']:.1f} | "
              f"{med['test_accuracy']:.3f} | {med['fit_seconds']:.0f} s |", flush=True)
        (out / "grid.json").write_text(json.dumps(rows, indent=1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kappa", type=float, default=0.5)
    ap.add_argument("--flip", type=float, default=0.03)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--wplus", type=int, default=0)
    ap.add_argument("--aniso", type=float, default=1.0)
    ap.add_argument("--grid", action="store_true", help="run the planted variants of GRID in-process instead")
    ap.add_argument("--seeds", type=int, default=3, help="--grid: seeds per variant")
    ap.add_argument("--variant", action="append", default=None, help="--grid: only this variant (repeatable)")
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    if a.grid:
        print("| planted variant | on / off / kept, % (median) | worst seed | test accuracy | fit |")
        print("|---|---|---|---|---|")
        run_grid(out, a.seeds, a.variant)
        return
    train, test, truth = planted(a.seed, kappa=a.kappa, flip=a.flip, scale=a.scale, wplus=a.wplus, aniso=a.aniso)
    np.savez(out / "train.npz", **train)
    np.savez(out / "test.npz", **test)
    cf = [sys.executable, "-m", "counterface", "directions"]

    def run(*args):
        subprocess.run([*cf, *map(str, args)], check=True, cwd=out)

    run("learn", "train.npz", "--method", "mlp", "-o", "field.safetensors")
    run("learn", "train.npz", "--label", "keep", "-o", "keep.safetensors")
    run("learn", "train.npz", "-o", "boundary.safetensors")
    y0, k0 = truth(test["latents"])
    for editor in ("field", "boundary"):
        for op, want in (("on", 1), ("off", 0)):
            run("apply", "test.npz", "--direction", f"{editor}.safetensors", "--operator", op, "--keep",
                "keep.safetensors", "-o", f"{editor}-{op}.npz")
            y1, k1 = truth(np.load(out / f"{editor}-{op}.npz")["latents"])
            print(f"{editor:<8} {op:<3} true side {np.mean(y1 == want):.3f}  kept unchanged {np.mean(k1 == k0):.3f}")


if __name__ == "__main__":
    main()
