"""The seed's figures, drawn from a batch output folder (matplotlib, imported only here).

``figure2``: a grid of faces, each cell the original Z beside pi_1(Z) (and optionally pi_0(Z)),
cut with the face's own alignment matrix and named from a manifest column.
``figure3``: the edited attribute's score (its scorer's, :mod:`counterface.scoring`; one panel per
scored attribute, none for an attribute without a scorer) and the identity similarity as functions of alpha, from a
sweep (a batch run with ``--alphas``): one thin line per face, the median in bold and
the interquartile range shaded.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from .errors import ConfigError


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise ConfigError("figures need matplotlib: pip install 'counterface[figures]' (or pip install matplotlib)") from None
    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def _face_crops(out_dir: Path, row: Mapping[str, Any], size: int, roles: Sequence[str]) -> list[np.ndarray]:
    from .batch import face_from_sidecar
    from .imageio import read_image
    from .metrics import scale_matrix, warp_to_crop

    side = json.loads((out_dir / row["z1_sidecar"]).read_text(encoding="utf-8"))
    photo = read_image(row["path"])
    face = face_from_sidecar(side, photo)
    m = scale_matrix(face.matrix, size / float(face.size))
    images = {"z": photo, "z1": read_image(out_dir / row["z1"])}
    if "z0" in roles:
        images["z0"] = read_image(out_dir / row["z0"])
    return [warp_to_crop(images[r], m, size) for r in roles]


def figure_rows(out_dir: Path) -> tuple[list[dict[str, Any]], str]:
    """The rows a figure draws from a batch folder, and a note for the title ('' when nothing was left out).

    Only the current version of each photo's rows (:func:`counterface.tables.current_rows`), and of
    one configuration: when the folder holds rows of several jobs (reruns with other settings),
    the job of the last run (``batch.json``) is drawn, or else the one with the most rows.
    """
    from collections import Counter

    from .batch import merged_rows
    from .tables import current_rows

    rows = current_rows(merged_rows(Path(out_dir)))
    jobs = Counter(r.get("job") for r in rows)
    if len(jobs) <= 1:
        return rows, ""
    try:
        last = json.loads((Path(out_dir) / "batch.json").read_text(encoding="utf-8")).get("job")
    except (OSError, ValueError, AttributeError):
        last = None
    job = last if last in jobs else sorted(jobs, key=lambda j: (-jobs[j], str(j)))[0]
    return [r for r in rows if r.get("job") == job], f"job {job} only ({len(jobs)} configurations in the folder)"


def _pick_rows(rows: Sequence[Mapping[str, Any]], alpha: float | None) -> list[Mapping[str, Any]]:
    """One row per face: the requested alpha, or each face's largest alpha."""
    best: dict[tuple, Mapping[str, Any]] = {}
    for r in rows:
        k = (r.get("key"), r.get("face"))
        a = float(r.get("alpha") or 0.0)
        if alpha is not None:
            if math.isclose(a, alpha, abs_tol=1e-9):
                best[k] = r
        elif k not in best or a > float(best[k].get("alpha") or 0.0):
            best[k] = r
    return list(best.values())


def figure2(out_dir: str | os.PathLike, path: str | os.PathLike, *, label: str | None = None, max_faces: int = 12,
            alpha: float | None = None, with_z0: bool = False, size: int = 256, columns: int = 4) -> Path:
    """Original vs edited faces, named by the manifest column ``label`` (default: the key)."""
    out_dir = Path(out_dir)
    all_rows, note = figure_rows(out_dir)
    rows = _pick_rows(all_rows, alpha)[:max_faces]
    if not rows:
        raise ConfigError(f"{out_dir}: no result rows{'' if alpha is None else f' at alpha {alpha:g}'} for Figure 2")
    if label is not None and not any(label in r for r in rows):
        raise ConfigError(f"no column {label!r} in the results; columns: {', '.join(sorted(rows[0]))}")
    plt = _pyplot()
    roles = ("z", "z0", "z1") if with_z0 else ("z", "z1")
    titles = {"z": "original", "z0": "pi_0", "z1": "pi_1"}
    ncols = min(columns, len(rows))
    nrows = math.ceil(len(rows) / ncols)
    fig, axes = plt.subplots(nrows, ncols, figsize=(2.6 * len(roles) * ncols / 2 + 0.4, 2.9 * nrows), squeeze=False)
    for ax in axes.flat:
        ax.axis("off")
    for ax, r in zip(axes.flat, rows):
        crops = _face_crops(out_dir, r, size, roles)
        gap = np.full((size, max(2, size // 32), 3), 255, np.uint8)
        strip = np.concatenate([x for c in crops for x in (c, gap)][:-1], axis=1)
        ax.imshow(strip)
        name = str(r.get(label)) if label else str(r.get("key"))
        sub = " | ".join(titles[x] for x in roles) + f"  (alpha {float(r.get('alpha') or 0):g})"
        ax.set_title(f"{name}\n{sub}", fontsize=8)
    return _finish(fig, "Figure 2: original and edited faces", note, path)


def sweep_series(rows: Sequence[Mapping[str, Any]], column: str) -> tuple[np.ndarray, dict[tuple, dict[float, float]]]:
    """(sorted alphas, {(key, face): {alpha: value}}) for one metric column, None values left out.
    ``rows`` must hold one version of one configuration (:func:`figure_rows`)."""
    series: dict[tuple, dict[float, float]] = {}
    alphas = set()
    for r in rows:
        v = r.get(column)
        if v is None or not isinstance(v, (int, float)) or math.isnan(float(v)):
            continue
        a = float(r.get("alpha") or 0.0)
        alphas.add(a)
        series.setdefault((r.get("key"), r.get("face")), {})[a] = float(v)
    return np.array(sorted(alphas)), series


def spread(alphas: np.ndarray, series: Mapping[tuple, Mapping[float, float]]) -> dict[str, np.ndarray]:
    """Per alpha: median, 25th and 75th percentiles and count over the faces that have a value."""
    med, lo, hi, n = [], [], [], []
    for a in alphas:
        vals = np.array([s[a] for s in series.values() if a in s])
        n.append(vals.size)
        med.append(np.median(vals) if vals.size else np.nan)
        lo.append(np.percentile(vals, 25) if vals.size else np.nan)
        hi.append(np.percentile(vals, 75) if vals.size else np.nan)
    return {"median": np.array(med), "q25": np.array(lo), "q75": np.array(hi), "n": np.array(n)}


#: Figure 3's panel after the score panels: (column, title, y-axis label with units)
FIGURE3_PANELS = (
    ("identity", "identity similarity to Z", "ArcFace cosine similarity (1 = same)"),
)


def score_panels(rows: Sequence[Mapping[str, Any]]) -> list[tuple[str, str, str]]:
    """Figure 3's panels of the attribute scores in ``rows``: one per scored attribute
    (``score_z1``, or ``<attribute>_score_z1`` when several were edited), titled with its scorer."""
    from .scoring import score_prefixes

    panels = []
    for prefix in score_prefixes(k for r in rows for k in r):
        names = sorted({str(r[f"{prefix}scorer"]) for r in rows if r.get(f"{prefix}scorer")})
        what = prefix[:-1] + " score" if prefix else "attribute score"
        panels.append((f"{prefix}score_z1", f"{what} of pi_1 ({', '.join(names) or 'scorer'})",
                       f"{', '.join(names) or 'the scorer'}'s scale (higher = more of the attribute)"))
    return panels


def figure3(sweep_dir: str | os.PathLike, path: str | os.PathLike,
            panels: Sequence[tuple[str, str, str]] | None = None) -> Path:
    """Metrics against alpha from a sweep: thin line per face, bold median, shaded IQR; a panel
    without any value (e.g. no face found on any output) says so instead of staying blank.
    ``panels``: (column, title, y label) each; default the score panels (:func:`score_panels`) then
    :data:`FIGURE3_PANELS`."""
    rows, note = figure_rows(Path(sweep_dir))
    if panels is None:
        panels = [*score_panels(rows), *FIGURE3_PANELS]
    alphas = sorted({float(r.get("alpha") or 0.0) for r in rows})
    if len(alphas) < 2:
        raise ConfigError(f"{sweep_dir}: Figure 3 needs a sweep (rows at two or more alphas); "
                          "run `counterface batch ... --alphas -2,-1,0,1,2`")
    if not any(r.get(c) is not None for r in rows for c, *_ in panels):
        raise ConfigError(f"{sweep_dir}: the rows have no metrics; run `counterface evaluate {sweep_dir}` first")
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(panels), figsize=(5.0 * len(panels), 3.8), squeeze=False)
    for ax, (column, title, ylabel) in zip(axes[0], panels):
        xs, series = sweep_series(rows, column)
        for s in series.values():
            pts = sorted(s.items())
            ax.plot([p[0] for p in pts], [p[1] for p in pts], color="0.6", lw=0.7, alpha=0.5)
        if xs.size:
            sp = spread(xs, series)
            ax.fill_between(xs, sp["q25"], sp["q75"], color="C0", alpha=0.25, label="interquartile range")
            ax.plot(xs, sp["median"], color="C0", lw=2.2, marker="o", label=f"median of {len(series)} faces")
            ax.legend(fontsize=8)
        else:
            ax.set_xlim(alphas[0], alphas[-1])
            ax.text(0.5, 0.5, f"no {title.split(' (')[0].split(' of ')[0]} values in {len(rows)} rows\n"
                    f"(column {column} is empty: e.g. no face found on the outputs)",
                    transform=ax.transAxes, ha="center", va="center", fontsize=8, color="C3")
        ax.set_xlabel("alpha (edit strength, units of the direction vector)")
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=10)
        ax.grid(alpha=0.3)
    return _finish(fig, "Figure 3: attribute and identity against edit strength", note, path)


def _finish(fig, title: str, note: str | None, path) -> Path:
    """Title the figure, save it and close it."""
    fig.suptitle(title + (f"\n{note}" if note else ""), fontsize=10)
    fig.tight_layout()
    target = Path(path)
    _save(fig, target)
    _pyplot().close(fig)
    return target


def _save(fig, target: Path) -> None:
    """Save a figure atomically (PNG)."""
    import io

    from .imageio import write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    write_bytes(target, buf.getvalue())


def make_figures(out_dir: str | os.PathLike, fig_dir: str | os.PathLike, *, sweep_dir=None, label: str | None = None,
                 max_faces: int = 12, alpha: float | None = None, warn=None) -> list[Path]:
    """Figure 2 from ``out_dir`` and Figure 3 from ``sweep_dir``. Without ``sweep_dir``, Figure 3 is
    drawn from ``out_dir`` when it holds a sweep and skipped (``warn`` is told why) when it does not."""
    fig_dir = Path(fig_dir)
    made = [figure2(out_dir, fig_dir / "figure2.png", label=label, max_faces=max_faces, alpha=alpha)]
    try:
        made.append(figure3(sweep_dir or out_dir, fig_dir / "figure3.png"))
    except ConfigError as exc:
        if sweep_dir is not None or warn is None:
            raise
        warn(f"figure 3 skipped: {exc}")
    return made
