"""The files of ``counterface polarization`` (written atomically into OUT):

* ``rho.csv``: politician, outlet_1, outlet_2, rho, ci_low, ci_high, n, p_placebo, flag (why the
  interval is degenerate or the rho empty), p_conditional_on_g; with ``--group``, also one row per
  group (politician = ``COLUMN=value``): its pooled rho with its own interval and placebo p, and the
  group-versus-other-politicians contrast in contrast, contrast_ci_low, contrast_ci_high, p_contrast;
  rho_uncorrected: rho before the bootstrap bias correction (built-in route);
* ``slant.csv``: outlet, reference, slant, ci_low, ci_high, n, p_placebo, flag, slant_uncorrected;
* ``articles.csv``: one row per article and outlet pair: its log-odds difference d (the mean over
  the cross-fitting splits; fold is the article's fold in the first split);
* ``ovp.csv``: politician, ovp, ci_low, ci_high, n, flag (built-in route; :mod:`.ovp`);
* ``group_slant.csv`` (with ``--group``): group, outlet, reference, slant, ci_low, ci_high, n,
  p_placebo, flag (:mod:`.group_slant`);

Every ``flag`` column means the same: why that row's interval cannot be read at face value (fewer
bootstrap replicates than asked, none, zero width; empty when it can); the printed lines end with
`` FLAG: <why>`` exactly when it is not empty.
* ``polarization.json``: settings, versions, seeds, counts, warnings, g's held-out accuracy/log-loss;
* ``forest.png``: rho with its interval per politician and outlet pair (needs matplotlib).

Numbers are written with full precision (``repr``); an undefined value is an empty cell.
"""

from __future__ import annotations

import csv
import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from ..imageio import write_bytes, write_json
from .analysis import Result
from .data import Study

RHO_COLUMNS = ("politician", "outlet_1", "outlet_2", "rho", "ci_low", "ci_high", "n", "p_placebo", "flag",
               "p_conditional_on_g", "contrast", "contrast_ci_low", "contrast_ci_high", "p_contrast",
               "rho_uncorrected")
SLANT_COLUMNS = ("outlet", "reference", "slant", "ci_low", "ci_high", "n", "p_placebo", "flag", "slant_uncorrected")
OVP_COLUMNS = ("politician", "ovp", "ci_low", "ci_high", "n", "flag")
GROUP_SLANT_COLUMNS = ("group", "outlet", "reference", "slant", "ci_low", "ci_high", "n", "p_placebo", "flag")
#: every file the command may write into OUT (checked against the inputs before anything is written)
OUTPUT_FILES = ("rho.csv", "slant.csv", "articles.csv", "polarization.json", "forest.png", "ovp.csv",
                "group_slant.csv", "cache/embeddings.npz")
#: the forest plot shows at most this many rows
MAX_FOREST_ROWS = 120


def _num(v: Any) -> Any:
    if v is None:
        return ""
    if isinstance(v, (float, np.floating)):
        return "" if math.isnan(float(v)) else repr(float(v))
    if isinstance(v, (np.integer,)):
        return int(v)
    return v


def _csv(path: Path, columns: Sequence[str], rows: Sequence[dict], out_dir: Path) -> Path:
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(columns)
    for r in rows:
        w.writerow([_num(r.get(c)) for c in columns])
    return write_bytes(path, buf.getvalue().encode("utf-8"), out_dir=out_dir)


def _raw(res: Result, i: int):
    """Statistic i before the bootstrap bias correction (the estimate itself when none was made)."""
    return res.raw_values[i] if res.raw_values is not None else res.values[i]


def rho_rows(res: Result, group_column: str | None = None) -> list[dict]:
    lay, cls = res.layout, res.classes
    rows = []
    units = [(p, False) for p in lay.politicians] + [(g, True) for g in lay.groups]
    conditional = res.placebo == "pairs"  # the p-value takes g as given
    for u, (label, is_group) in enumerate(units):
        for j, (a, b) in enumerate(lay.pairs):
            i = u * len(lay.pairs) + j
            row = {"politician": f"{group_column}={label}" if is_group else label,
                   "outlet_1": cls[a], "outlet_2": cls[b], "rho": res.values[i], "ci_low": res.ci_low[i],
                   "ci_high": res.ci_high[i], "n": int(res.counts[i]), "p_placebo": res.p_placebo[i],
                   "flag": res.flags[i] if res.flags else "", "p_conditional_on_g": str(conditional).lower(),
                   "rho_uncorrected": _raw(res, i)}
            if is_group and res.contrast is not None:
                k = (u - len(lay.politicians)) * len(lay.pairs) + j
                row.update(contrast=res.contrast["value"][k], contrast_ci_low=res.contrast["ci_low"][k],
                           contrast_ci_high=res.contrast["ci_high"][k], p_contrast=res.group_p[k])
            rows.append(row)
    return rows


def slant_rows(res: Result) -> list[dict]:
    lay, cls = res.layout, res.classes
    start = (len(lay.politicians) + len(lay.groups)) * len(lay.pairs)
    rows = []
    for k in range(lay.outlets):
        i = start + k
        ref = k == lay.reference
        rows.append({"outlet": cls[k], "reference": cls[lay.reference], "slant": res.values[i],
                     "ci_low": res.ci_low[i], "ci_high": res.ci_high[i], "n": int(res.counts[i]),
                     "p_placebo": "" if ref else res.p_placebo[i], "flag": "" if ref else res.flags[i],
                     "slant_uncorrected": _raw(res, i)})
    return rows


def ovp_rows(ovp) -> list[dict]:
    return [{"politician": p, "ovp": ovp.ovp[j], "ci_low": ovp.ci_low[j], "ci_high": ovp.ci_high[j],
             "n": int(ovp.n[j]), "flag": ovp.flags[j] if ovp.flags else ""} for j, p in enumerate(ovp.politicians)]


def group_slant_rows(gs, group_column: str) -> list[dict]:
    rows = []
    for g, name in enumerate(gs.groups):
        for y, outlet in enumerate(gs.classes):
            rows.append({"group": f"{group_column}={name}", "outlet": outlet, "reference": gs.classes[gs.reference],
                         "slant": gs.values[g, y], "ci_low": gs.ci_low[g, y], "ci_high": gs.ci_high[g, y],
                         "n": int(gs.counts[g, y]), "p_placebo": gs.p_placebo[g, y],
                         "flag": gs.flags[g, y] if gs.flags is not None else ""})
    return rows


def article_rows(study: Study, res: Result) -> list[dict]:
    rows = []
    for i, key in enumerate(study.keys):
        for j, (a, b) in enumerate(res.layout.pairs):
            rows.append({"key": key, "politician": study.politician[i], "outlet": study.outlet[i],
                         "cluster": study.cluster[i], "fold": "" if res.folds is None else res.folds[i],
                         "outlet_1": res.classes[a], "outlet_2": res.classes[b], "d": res.contributions[i, j]})
    return rows


def forest_plot(path: Path, rows: Sequence[dict], out_dir: Path, level: float) -> Path | None:
    """rho and its interval per row (politician x outlet pair); None when matplotlib is missing."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    title = "Polarization by politician and outlet pair"
    if len(rows) > MAX_FOREST_ROWS:  # a readable figure: the largest |rho|, in table order
        size = [-abs(np.nan_to_num(float(r["rho"]))) for r in rows]
        keep = sorted(sorted(range(len(rows)), key=size.__getitem__)[:MAX_FOREST_ROWS])
        title += f" (the {MAX_FOREST_ROWS} largest |rho| of {len(rows)}; all in rho.csv)"
        rows = [rows[i] for i in keep]
    labels = [f"{r['politician']}: {r['outlet_1']} vs {r['outlet_2']}" for r in rows]
    rho = np.array([r["rho"] for r in rows], float)
    lo = np.array([r["ci_low"] for r in rows], float)
    hi = np.array([r["ci_high"] for r in rows], float)
    fig, ax = plt.subplots(figsize=(7, 0.45 * len(rows) + 1.4))
    y = np.arange(len(rows))[::-1]
    ok = ~np.isnan(lo) & ~np.isnan(hi)
    ax.hlines(y[ok], lo[ok], hi[ok], color="0.3", lw=2)
    ax.plot(rho, y, "o", color="C0")
    ax.axvline(0, color="0.6", ls="--", lw=1)
    ax.set_yticks(y, labels)
    ax.set_xlabel(f"rho_T (log-odds difference, Z1 vs Z0) with {level:.0%} bootstrap interval")
    ax.set_title(title, fontsize=10)
    fig.tight_layout()
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120)
    plt.close(fig)
    return write_bytes(path, buf.getvalue(), out_dir=out_dir)


def write_all(out_dir: Path, study: Study, res: Result, record: dict, group_column: str | None = None,
              plot: bool = True, ovp=None, group_slant=None) -> dict[str, Path]:
    out_dir = Path(out_dir)
    rows = rho_rows(res, group_column)
    paths = {
        "rho": _csv(out_dir / "rho.csv", RHO_COLUMNS, rows, out_dir),
        "slant": _csv(out_dir / "slant.csv", SLANT_COLUMNS, slant_rows(res), out_dir),
        "articles": _csv(out_dir / "articles.csv",
                         ("key", "politician", "outlet", "cluster", "fold", "outlet_1", "outlet_2", "d"),
                         article_rows(study, res), out_dir),
    }
    if ovp is not None:
        paths["ovp"] = _csv(out_dir / "ovp.csv", OVP_COLUMNS, ovp_rows(ovp), out_dir)
    if group_slant is not None:
        paths["group_slant"] = _csv(out_dir / "group_slant.csv", GROUP_SLANT_COLUMNS,
                                    group_slant_rows(group_slant, group_column), out_dir)
    if plot and rows:
        p = forest_plot(out_dir / "forest.png", rows, out_dir, res.settings.get("level", 0.95))
        if p is not None:
            paths["forest"] = p
    record = dict(record, outputs={k: v.name for k, v in paths.items()} | {"record": "polarization.json"})
    paths["record"] = write_json(out_dir / "polarization.json", record, out_dir=out_dir)
    return paths
