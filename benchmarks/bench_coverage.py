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

``--generator independent`` (blob images, a translucent bar, exact shares of marked images) and
``--generator checker`` (the CLI tests' planted generator, in memory) check the estimator on designs
that share nothing with synthetic.py; ``--small N`` adds a 50-article-like politician to every study.

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



def _study(pol, out, keys):
    from counterface.polarization.data import Study

    n = len(keys)
    return Study(keys=keys, politician=np.array(pol, dtype=object), outlet=np.array(out, dtype=object),
                 cluster=np.array(keys, dtype=object), covariates=np.zeros((n, 0)), covariate_names=[],
                 classes=sorted(set(out)))


def simulate(n_per: int, seed: int, effect: float = 3.0, image_size: int = 16, embed_size: int = 4,
             small: int = 0):
    """(Study, (E, E1, E0), truths): one planted study in memory (``synthetic.py``'s design).

    ``small`` > 0 adds a third politician, ``small``, with the planted effect and that many articles
    (a politician with little coverage in the same study as two large ones)."""
    import counterface
    from counterface.polarization.synthetic import _image, mark

    rng = np.random.default_rng([seed, 17])
    emb = counterface.create("embedder", "pixels", size=embed_size)
    n = 2 * n_per
    names = [("planted", "null")[i % 2] for i in range(n)]
    if small > 0:
        names += ["small"] * small
    pol, out, shown, z1s, z0s = [], [], [], [], []
    for p in names:
        base = _image(rng, image_size)
        z1, z0 = mark(base), base
        marked = bool(rng.random() < 0.5)
        logit = (effect / 2 if marked else -effect / 2) if p != "null" else 0.0
        out.append("right" if rng.random() < 1 / (1 + np.exp(-logit)) else "left")
        pol.append(p)
        shown.append(z1 if marked else z0)
        z1s.append(z1)
        z0s.append(z0)
    keys = [f"s{seed}a{i}" for i in range(len(names))]
    truths = {"planted": -effect, "null": 0.0} | ({"small": -effect} if small > 0 else {})
    return _study(pol, out, keys), tuple(emb.embed(x) for x in (shown, z1s, z0s)), truths


def _blobs(rng: np.random.Generator, size: int) -> np.ndarray:
    """An image unlike ``synthetic.py``'s gradients: a tinted background, 3-6 Gaussian blobs of random
    colour, position and width, and pixel noise."""
    yy, xx = np.mgrid[0:size, 0:size] / size
    img = np.ones((size, size, 3)) * rng.uniform(60, 190, 3)
    for _ in range(int(rng.integers(3, 7))):
        cy, cx, w = rng.uniform(0, 1), rng.uniform(0, 1), rng.uniform(0.05, 0.3)
        g = np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * w * w))
        img += g[..., None] * rng.uniform(-90, 90, 3)
    return np.clip(img + rng.normal(0, 8, img.shape), 0, 255).astype(np.uint8)


def _bar(image: np.ndarray) -> np.ndarray:
    """The independent generator's mark: a blue bar over the bottom eighth, blended at 70 % opacity
    (so Z1 - Z0 depends on the image under the bar, unlike synthetic.py's opaque square)."""
    out = image.astype(np.float64)
    h = max(image.shape[0] // 8, 1)
    out[-h:] = 0.3 * out[-h:] + 0.7 * np.array([30.0, 60.0, 220.0])
    return np.clip(out, 0, 255).astype(np.uint8)


def simulate_independent(n_per: int, seed: int, effect: float = 2 * np.log(3), image_size: int = 32,
                         embed_size: int = 16, small: int = 0):
    """(Study, (E, E1, E0), truths): a planted study from a generator that shares nothing with
    ``synthetic.py`` (blob images, a translucent bar as T, the ``pixels`` embedder at its default
    16 x 16), with **exact shares** of marked images, as an outside checker would make it.

    Outlets ``Alpha`` and ``Beta`` get half of each politician's articles. For ``planted`` (and
    ``small``), a share q = sigmoid(effect / 2) of Alpha's articles show the mark and 1 - q of Beta's,
    exactly (rounded), so in the study g(Alpha | marked) = q and g(Alpha | unmarked) = 1 - q, and
    rho_T(planted, Alpha, Beta) = 2 logit(q) = effect (2 ln 3 = 2.197 at q = 0.75). For ``null`` half
    of each outlet's articles are marked: rho_T = 0. The truth is that of the study's own articles
    (a finite-population g), the one an outside checker computes in closed form."""
    import counterface

    rng = np.random.default_rng([seed, 29])
    emb = counterface.create("embedder", "pixels", size=embed_size)
    q = 1 / (1 + np.exp(-effect / 2))
    pol, out, marked = [], [], []
    for p, count in (("planted", n_per), ("null", n_per), ("small", small)):
        share = q if p != "null" else 0.5
        for o, sh in (("Alpha", share), ("Beta", 1 - share)):
            k = count // 2 if o == "Alpha" else count - count // 2
            m = int(round(sh * k))
            flags = np.array([True] * m + [False] * (k - m))[rng.permutation(k)]
            pol += [p] * k
            out += [o] * k
            marked += flags.tolist()
    order = rng.permutation(len(pol))  # articles in random order
    pol, out, marked = [pol[i] for i in order], [out[i] for i in order], [marked[i] for i in order]
    z0s = [_blobs(rng, image_size) for _ in pol]
    z1s = [_bar(z) for z in z0s]
    shown = [a if m else b for a, b, m in zip(z1s, z0s, marked)]
    keys = [f"i{seed}a{i}" for i in range(len(pol))]
    q_round = {}  # the exact truth with the rounded shares
    for p in ("planted", "null", "small"):
        rows = [i for i, x in enumerate(pol) if x == p]
        if not rows:
            continue
        ma = sum(1 for i in rows if marked[i] and out[i] == "Alpha")
        mb = sum(1 for i in rows if marked[i] and out[i] == "Beta")
        ua = sum(1 for i in rows if not marked[i] and out[i] == "Alpha")
        ub = sum(1 for i in rows if not marked[i] and out[i] == "Beta")
        q_round[p] = float(np.log(ma / mb) - np.log(ua / ub)) if min(ma, mb, ua, ub) > 0 else float("nan")
    return _study(pol, out, keys), tuple(emb.embed(x) for x in (shown, z1s, z0s)), q_round


def simulate_checker(n_per: int, seed: int, effect: float = 2 * np.log(3), image_size: int = 32,
                     embed_size: int = 16, small: int = 0):
    """(Study, (E, E1, E0), truths): the design of the CLI tests' ``planted`` generator
    (tests/core/test_cli_polarization.py), in memory: sinusoidal colour images, the mark an opaque dark
    blue triangle over the bottom-right corner (x + y > 1.5 x size), outlets ``Gazette`` and
    ``Herald`` alternating, exact shares (for ``planted``: the first round(q n / 2) articles of each
    outlet marked, q = sigmoid(effect / 2) in Gazette and 1 - q in Herald; ``null``: a half), the
    ``pixels`` embedder at its default 16 x 16. rho_T(planted, Gazette, Herald) = effect."""
    import counterface

    rng = np.random.default_rng([seed, 31])
    q = 1 / (1 + np.exp(-effect / 2))
    yy, xx = np.mgrid[0:image_size, 0:image_size]
    pol, out, shown, z1s, z0s, truths = [], [], [], [], [], {}
    for name, count, s1, s2 in (("planted", n_per, q, 1 - q), ("null", n_per, 0.5, 0.5), ("small", small, q, 1 - q)):
        if count <= 0:
            continue
        marks = {}
        for j in range(count):
            outlet = ("Gazette", "Herald")[j % 2]
            marked = j // 2 < round((s1 if outlet == "Gazette" else s2) * count / 2)
            marks[outlet, marked] = marks.get((outlet, marked), 0) + 1
            freq = rng.uniform(0.2, 0.8, 3)
            base = 128 + 70 * np.sin(freq[None, None, :] * (xx[..., None] + 2 * yy[..., None]) + rng.uniform(0, 6, 3))
            base = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
            z1 = base.copy()
            z1[xx + yy > 1.5 * image_size] = (20, 40, 160)
            pol.append(name)
            out.append(outlet)
            shown.append(z1 if marked else base)
            z1s.append(z1)
            z0s.append(base)
        g = lambda o, m: marks.get((o, m), 0)  # noqa: E731
        truths[name] = float(np.log(g("Gazette", True) / g("Herald", True)) - np.log(g("Gazette", False) / g("Herald", False)))
    emb = counterface.create("embedder", "pixels", size=embed_size)
    keys = [f"c{seed}a{i}" for i in range(len(pol))]
    return _study(pol, out, keys), tuple(emb.embed(x) for x in (shown, z1s, z0s)), truths


GENERATORS = {"planted": simulate, "independent": simulate_independent, "checker": simulate_checker}
#: with more bootstrap replicates than this, rows also hold the standard error of the first FEW only
#: (``--variant sd_first``: the same studies' interval with B = FEW, to show B does not change coverage)
FEW = 40


def one_study(n_per: int, seed: int, bootstrap: int, permutations: int, splits: int, effect: float,
              generator: str = "planted", small: int = 0, model_params: dict | None = None,
              embed_size: int | None = None) -> dict:
    import counterface
    from counterface.polarization import analysis

    t0 = time.perf_counter()
    extra = {} if embed_size is None else {"embed_size": embed_size}
    study, embeddings, truths = GENERATORS[generator](n_per, seed, effect, small=small, **extra)
    settings = analysis.Settings(bootstrap=bootstrap, permutations=permutations, splits=splits, seed=seed)
    res = analysis.analyse(study, settings, model=counterface.create("outlet_model", "logistic", **(model_params or {})),
                           embeddings=embeddings)
    row = {"n": n_per, "seed": seed, "generator": generator, "small": small, "bootstrap": bootstrap,
           "embed_size": embed_size,
           "splits": splits, "model": model_params or {}, "seconds": round(time.perf_counter() - t0, 2)}
    reps = res.bootstrap_values
    for i, p in enumerate(res.layout.politicians):
        q1, q3 = np.nanpercentile(reps[:, i], [25, 75]) if len(reps) else (np.nan, np.nan)
        row[p] = {"truth": truths[p], "rho": float(res.values[i]), "ci_low": float(res.ci_low[i]),
                  "ci_high": float(res.ci_high[i]), "p": float(res.p_placebo[i]),
                  "se_sd": float(np.nanstd(reps[:, i], ddof=1)) if len(reps) > 1 else float("nan"),
                  "se_iqr": float((q3 - q1) / 1.3489795003921634), "rep_mean": float(np.nanmean(reps[:, i]))
                  if len(reps) else float("nan"), "n": int(res.counts[i]),
                  "raw": float(res.raw_values[i]) if getattr(res, "raw_values", None) is not None else float(res.values[i])}
        row[p]["corrected"] = bool(getattr(res, "bias", None) is not None and np.isfinite(res.bias[i]))
        if len(reps) > FEW:  # the interval a run with only the first FEW replicates would have had
            row[p]["se_sd_first"] = float(np.nanstd(reps[:FEW, i], ddof=1))
            row[p]["rep_mean_first"] = float(np.nanmean(reps[:FEW, i]))
    return row


Z95 = 1.959963984540054


def binomial_interval(hits: int, trials: int, level: float = 0.95) -> tuple[float, float]:
    """Clopper-Pearson interval of a proportion (the Monte-Carlo error of a coverage)."""
    from scipy.stats import beta

    a = (1 - level) / 2
    lo = beta.ppf(a, hits, trials - hits + 1) if hits > 0 else 0.0
    hi = beta.ppf(1 - a, hits + 1, trials - hits) if hits < trials else 1.0
    return float(lo), float(hi)


def _truth(r: dict, p: str, effect: float) -> float:
    if "truth" in r[p]:
        return float(r[p]["truth"])
    return -effect if p == "planted" else 0.0  # rows made before truths were stored


def summarise(rows: list[dict], effect: float, level: float = 0.05, variant: str | None = None) -> list[dict]:
    """Per size and politician: bias, coverage (with its binomial standard error and Clopper-Pearson
    interval over the studies), width, placebo rejections. ``variant`` ("sd", "iqr" or "sd_first")
    scores the interval rho +- z * that bootstrap standard error instead of the one the rows hold."""
    table = []
    order = ["planted", "small", "null"]
    for n in sorted({r["n"] for r in rows}):
        at = [r for r in rows if r["n"] == n]
        pols = sorted({p for r in at for p in r if isinstance(r[p], dict) and "rho" in r[p]}, key=lambda p: (p not in order,
                      order.index(p) if p in order else 0, p))
        for p in pols:
            rs = [r for r in at if p in r]
            truth = np.array([_truth(r, p, effect) for r in rs])
            rs = [r[p] for r in rs]
            rho = np.array([r["rho"] for r in rs])
            lo = np.array([r["ci_low"] for r in rs])
            hi = np.array([r["ci_high"] for r in rs])
            if variant in ("raw", "bc"):  # uncorrected / bootstrap-bias-corrected, +- z * the replicates' sd
                raw = np.array([r.get("raw", r["rho"]) for r in rs])
                rho = raw if variant == "raw" else 2 * raw - np.array([r["rep_mean"] for r in rs])
                se = np.array([r["se_sd"] for r in rs])
                lo, hi = rho - Z95 * se, rho + Z95 * se
            elif variant == "sd_first":  # as the command with only the first FEW replicates
                raw = np.array([r.get("raw", r["rho"]) for r in rs])
                rho = np.array([2 * r["raw"] - r["rep_mean_first"] if r.get("corrected") else r.get("raw", r["rho"])
                                for r in rs])
                se = np.array([r["se_sd_first"] for r in rs])
                lo, hi = rho - Z95 * se, rho + Z95 * se
            elif variant is not None:  # another interval from the same replicates: rho +- z * se_<variant>
                se = np.array([r[f"se_{variant}"] for r in rs])
                lo, hi = rho - Z95 * se, rho + Z95 * se
            pv = np.array([r["p"] for r in rs])
            hits = int(np.sum((lo <= truth) & (truth <= hi)))
            cover = hits / len(rs)
            c_lo, c_hi = binomial_interval(hits, len(rs))
            err = rho - truth
            scale = abs(float(np.mean(truth))) if abs(float(np.mean(truth))) > 0 else effect
            table.append({"n": n, "politician": p, "articles": int(np.median([r.get("n", n) for r in rs])),
                          "truth": float(np.mean(truth)), "studies": len(rs), "mean": float(rho.mean()),
                          "bias": float(err.mean()), "bias_se": float(err.std(ddof=1) / np.sqrt(len(rs)))
                          if len(rs) > 1 else float("nan"),
                          "relative_bias": float(err.mean() / scale),
                          "coverage": cover, "coverage_se": float(np.sqrt(cover * (1 - cover) / len(rs))),
                          "coverage_low": c_lo, "coverage_high": c_hi,
                          "width": float(np.mean(hi - lo)), "sd": float(rho.std(ddof=1)) if len(rs) > 1 else 0.0,
                          "se_mean": float(np.mean((hi - lo) / (2 * Z95))),
                          "reject": float(np.mean(pv[np.isfinite(pv)] <= level)) if np.isfinite(pv).any()
                          else float("nan"), "placebo_studies": int(np.isfinite(pv).sum())})
    return table


def _reject(t: dict) -> str:
    """The placebo's rejection rate, with its number of studies when not every study ran a placebo."""
    if not t.get("placebo_studies"):
        return "-"
    return f"{t['reject']:.3f}" + ("" if t["placebo_studies"] == t["studies"] else f" ({t['placebo_studies']} studies)")


def markdown(table: list[dict]) -> str:
    lines = ["| articles per politician | politician (its articles) | true rho | studies | mean rho "
             "| bias +- MC se (% of effect) | coverage of 95% CI (MC se; 95% binomial interval) | mean CI width "
             "| sd of rho / mean CI half-width / z | placebo rejects at 0.05 |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for t in table:
        lines.append(f"| {t['n']} | {t['politician']} ({t['articles']}) | {t['truth']:.3g} | {t['studies']} "
                     f"| {t['mean']:.3f} | {t['bias']:+.3f} +- {t['bias_se']:.3f} ({100 * t['relative_bias']:+.1f}%) "
                     f"| {t['coverage']:.3f} ({t['coverage_se']:.3f}; {t['coverage_low']:.3f}-{t['coverage_high']:.3f}) "
                     f"| {t['width']:.3f} | {t['sd']:.3f} / {t['se_mean']:.3f} | {_reject(t)} |")
    return "\n".join(lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--studies", type=int, default=200)
    ap.add_argument("--sizes", default="150,600", help="articles per politician, comma-separated")
    ap.add_argument("--small", type=int, default=0,
                    help="add a politician 'small' with the planted effect and this many articles to every study")
    ap.add_argument("--generator", choices=sorted(GENERATORS), default="planted",
                    help="planted: synthetic.py's design; independent: another image model, mark and design "
                         "(exact shares), as an outside checker makes it; checker: the CLI tests' planted generator")
    ap.add_argument("--bootstrap", type=int, default=40)
    ap.add_argument("--permutations", type=int, default=19, help="19: the placebo rejects at 0.05 when no draw is as extreme")
    ap.add_argument("--splits", type=int, default=3)
    ap.add_argument("--effect", type=float, default=None,
                    help="the planted |rho| (default 3 for planted, 2 ln 3 = 2.197 for independent)")
    ap.add_argument("--first-seed", type=int, default=0)
    ap.add_argument("--embed-size", type=int, default=None,
                    help="side of the pixels embedding (default 4 for planted, 16 for independent)")
    ap.add_argument("--model", action="append", default=[], metavar="KEY=VALUE",
                    help="a parameter of the logistic outlet model (as --set outlet_model.KEY=VALUE), e.g. C=0.1")
    ap.add_argument("--out", type=Path, default=None, help="JSON lines, one per study (appended; reruns resume)")
    ap.add_argument("--variant", choices=["sd", "iqr", "sd_first", "raw", "bc"], default=None,
                    help="score another interval from the same rows: rho +- z * this bootstrap standard error "
                         "(sd, iqr, sd_first: of the first 40 replicates), or the estimate without (raw) or with (bc) "
                         "the bootstrap bias correction +- z * the replicates' sd")
    a = ap.parse_args(argv)
    effect = a.effect if a.effect is not None else (3.0 if a.generator == "planted" else float(2 * np.log(3)))
    sizes = [int(s) for s in a.sizes.split(",")]
    model_params = {}
    for kv in a.model:
        key, _, value = kv.partition("=")
        model_params[key] = float(value) if key == "C" else (int(value) if key == "components" else value)
    rows: list[dict] = []
    if a.out is not None and a.out.is_file():
        rows = [json.loads(line) for line in a.out.read_text().splitlines() if line.strip()]
    done = {(r["n"], r["seed"]) for r in rows}
    for seed in range(a.first_seed, a.first_seed + a.studies):
        for n in sizes:
            if (n, seed) in done:
                continue
            row = one_study(n, seed, a.bootstrap, a.permutations, a.splits, effect, a.generator, a.small, model_params,
                            a.embed_size)
            rows.append(row)
            if a.out is not None:
                with open(a.out, "a") as f:
                    f.write(json.dumps(row) + "\n")
            print(f"n={n} seed={seed}: " + " ".join(
                f"{p} {v['rho']:.3f} [{v['ci_low']:.3f}, {v['ci_high']:.3f}] (truth {v['truth']:.3f})"
                for p, v in row.items() if isinstance(v, dict) and "rho" in v) + f" ({row['seconds']} s)", file=sys.stderr, flush=True)
    rows = [r for r in rows if r["n"] in sizes and r.get("generator", "planted") == a.generator]
    print(markdown(summarise(rows, effect, variant=a.variant)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
