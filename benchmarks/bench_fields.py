"""Attribute field vs boundary on planted curved 512-d latents (issue 19's check, run through the CLI).

    python benchmarks/bench_fields.py OUT_DIR [--seed S] [--kappa K] [--flip F] [--scale X] [--wplus R]

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


def planted(seed=0, n_train=6000, n_test=2000, d=512, kappa=0.5, flip=0.03, scale=1.0, wplus=0):
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, 3)))
    n1, n2, n3 = q.T
    nk = 0.4 * n1 + np.sqrt(1 - 0.16) * n3

    def truth(lat):
        x = np.asarray(lat, np.float64)
        x = (x.mean(1) if x.ndim == 3 else x) / scale
        return (x @ n1 + kappa * ((x @ n2) ** 2 - 1) > 0).astype(int), (x @ nk + 0.2 > 0).astype(int)

    def sample(n, noisy):
        x = rng.normal(size=(n, d)) * scale
        y, k = truth(x)
        if noisy:
            f = rng.random(n) < flip
            y[f] = 1 - y[f]
        if wplus:
            x = np.repeat(x[:, None], wplus, 1) + 0.01 * scale * rng.normal(size=(n, wplus, d))
        return {"latents": x.astype(np.float32), "labels": y, "keep": k}

    return sample(n_train, True), sample(n_test, False), truth


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("out")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--kappa", type=float, default=0.5)
    ap.add_argument("--flip", type=float, default=0.03)
    ap.add_argument("--scale", type=float, default=1.0)
    ap.add_argument("--wplus", type=int, default=0)
    a = ap.parse_args()
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    train, test, truth = planted(a.seed, kappa=a.kappa, flip=a.flip, scale=a.scale, wplus=a.wplus)
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
