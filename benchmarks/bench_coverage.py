"""Coverage of rho_T's interval, measured: rerun the planted study many times.

Each simulated study is the planted study of docs/polarization.md (``counterface.polarization.synthetic``:
a smooth random image, a visual mark as the attribute T, two outlets), made in memory: two
politicians with ``n`` articles each. For ``planted`` a marked image goes to ``right`` with
probability sigmoid(effect / 2) and an unmarked one with sigmoid(-effect / 2), so
rho_T(planted, left, right) = -effect exactly; for ``null`` the outlet is a fair coin, rho_T = 0.
The estimator is the command's own (:func:`counterface.polarization.analyse` with the reference
``logistic`` outlet model and the ``pixels`` embedder, default settings apart from the number of
bootstrap replicates and permutations). To keep each study cheap the images are 16 x 16 and the
embedding 4 x 4 pixels (48 features).

Reported per size and politician: the mean estimate, its bias (absolute and relative to the
planted effect), the coverage of the nominal interval, its mean width, and how often the placebo
rejects at 0.05 (under the null: its size; for the planted politician: its power).

    python3 benchmarks/bench_coverage.py --studies 200 --sizes 150,600 --out coverage.jsonl

Rows go to ``--out`` as they finish (JSON lines; a rerun skips the studies already there), the table
to stdout. Cost: (1 + B + R) x splits x folds fits of g per study; about 7 s per study at the
defaults on one busy core.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

TRUTH = {"planted": None, "null": 0.0}  # planted: -effect (outlets in sorted order: left, right)


def simulate(n_per: int, seed: int, effect: float = 3.0, image_size: int = 16, embed_size: int = 4):
    """(Study, (E, E1, E0)): one planted study in memory."""
    import counterface
    from counterface.polarization.data import Study
    from counterface.polarization.synthetic import _image, mark

    rng = np.random.default_rng([seed, 17])
    emb = counterface.create("embedder", "pixels", size=embed_size)
    n = 2 * n_per
    pol, out, shown, z1s, z0s = [], [], [], [], []
    for i in range(n):
        p = ("planted", "null")[i % 2]
        base = _image(rng, image_size)
        z1, z0 = mark(base), base
        marked = bool(rng.random() < 0.5)
        logit = (effect / 2 if marked else -effect / 2) if p == "planted" else 0.0
        out.append("right" if rng.random() < 1 / (1 + np.exp(-logit)) else "left")
        pol.append(p)
        shown.append(z1 if marked else z0)
        z1s.append(z1)
        z0s.append(z0)
    keys = [f"s{seed}a{i}" for i in range(n)]
    study = Study(keys=keys, politician=np.array(pol, dtype=object), outlet=np.array(out, dtype=object),
                  cluster=np.array(keys, dtype=object), covariates=np.zeros((n, 0)), covariate_names=[],
                  classes=["left", "right"])
    return study, tuple(emb.embed(x) for x in (shown, z1s, z0s))


def one_study(n_per: int, seed: int, bootstrap: int, permutations: int, splits: int, effect: float) -> dict:
    import counterface
    from counterface.polarization import analysis

    t0 = time.perf_counter()
    study, embeddings = simulate(n_per, seed, effect)
    settings = analysis.Settings(bootstrap=bootstrap, permutations=permutations, splits=splits, seed=seed)
    res = analysis.analyse(study, settings, model=counterface.create("outlet_model", "logistic"),
                           embeddings=embeddings)
    row = {"n": n_per, "seed": seed, "seconds": round(time.perf_counter() - t0, 2)}
    reps = res.bootstrap_values
    for i, p in enumerate(res.layout.politicians):
        q1, q3 = np.nanpercentile(reps[:, i], [25, 75])
        row[p] = {"rho": float(res.values[i]), "ci_low": float(res.ci_low[i]), "ci_high": float(res.ci_high[i]),
                  "p": float(res.p_placebo[i]), "se_sd": float(np.nanstd(reps[:, i], ddof=1)),
                  "se_iqr": float((q3 - q1) / 1.3489795003921634), "rep_mean": float(np.nanmean(reps[:, i]))}
    return row


Z95 = 1.959963984540054


def summarise(rows: list[dict], effect: float, level: float = 0.05, variant: str | None = None) -> list[dict]:
    """Per size and politician: bias, coverage, width, placebo rejections. ``variant`` ("sd" or "iqr")
    scores the interval rho +- z * that bootstrap standard error instead of the one the rows hold
    (rows made before the command's interval changed hold both standard errors)."""
    table = []
    for n in sorted({r["n"] for r in rows}):
        for p, truth in (("planted", -effect), ("null", 0.0)):
            rs = [r[p] for r in rows if r["n"] == n]
            rho = np.array([r["rho"] for r in rs])
            lo = np.array([r["ci_low"] for r in rs])
            hi = np.array([r["ci_high"] for r in rs])
            if variant is not None:  # another interval from the same replicates: rho +- z * se_<variant>
                se = np.array([r[f"se_{variant}"] for r in rs])
                lo, hi = rho - Z95 * se, rho + Z95 * se
            pv = np.array([r["p"] for r in rs])
            cover = float(np.mean((lo <= truth) & (truth <= hi)))
            table.append({"n": n, "politician": p, "truth": truth, "studies": len(rs), "mean": float(rho.mean()),
                          "bias": float(rho.mean() - truth),
                          "relative_bias": float((rho.mean() - truth) / effect),
                          "coverage": cover, "coverage_se": float(np.sqrt(cover * (1 - cover) / len(rs))),
                          "width": float(np.mean(hi - lo)), "sd": float(rho.std(ddof=1)) if len(rs) > 1 else 0.0,
                          "reject": float(np.mean(pv <= level))})
    return table


def markdown(table: list[dict]) -> str:
    lines = ["| articles per politician | politician | true rho | studies | mean rho | bias (% of effect) "
             "| coverage of 95% CI | mean CI width | placebo rejects at 0.05 |",
             "|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        lines.append(f"| {t['n']} | {t['politician']} | {t['truth']:g} | {t['studies']} | {t['mean']:.3f} | "
                     f"{t['bias']:+.3f} ({100 * t['relative_bias']:+.1f}%) | {t['coverage']:.3f} "
                     f"(se {t['coverage_se']:.3f}) | {t['width']:.3f} | {t['reject']:.3f} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--studies", type=int, default=200)
    ap.add_argument("--sizes", default="150,600", help="articles per politician, comma-separated")
    ap.add_argument("--bootstrap", type=int, default=40)
    ap.add_argument("--permutations", type=int, default=19, help="19: the placebo rejects at 0.05 when no draw is as extreme")
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--effect", type=float, default=3.0)
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=None, help="JSON lines, one per study (appended; reruns resume)")
    ap.add_argument("--variant", choices=["sd", "iqr"], default=None,
                    help="score rho +- z * this bootstrap standard error instead of the rows' interval")
    a = ap.parse_args(argv)
    sizes = [int(s) for s in a.sizes.split(",")]
    rows: list[dict] = []
    if a.out is not None and a.out.is_file():
        rows = [json.loads(line) for line in a.out.read_text().splitlines() if line.strip()]
    done = {(r["n"], r["seed"]) for r in rows}
    for seed in range(a.first_seed, a.first_seed + a.studies):
        for n in sizes:
            if (n, seed) in done:
                continue
            row = one_study(n, seed, a.bootstrap, a.permutations, a.splits, a.effect)
            rows.append(row)
            if a.out is not None:
                with open(a.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
            print(f"n={n} seed={seed}: planted {row['planted']['rho']:.3f} [{row['planted']['ci_low']:.3f}, "
                  f"{row['planted']['ci_high']:.3f}] null {row['null']['rho']:.3f} [{row['null']['ci_low']:.3f}, "
                  f"{row['null']['ci_high']:.3f}] p={row['null']['p']:.3f} ({row['seconds']} s)", file=sys.stderr,
                  flush=True)
    rows = [r for r in rows if r["n"] in sizes]
    print(markdown(summarise(rows, a.effect, variant=a.variant)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
