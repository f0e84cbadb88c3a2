"""``counterface report OUT``: a static HTML page for reviewing a batch, in ``OUT/report/``.

The page needs no server and opens from the file system::

    OUT/report/index.html      the page (template and script from ``counterface/report_assets``)
    OUT/report/report.js|.css  its script and style
    OUT/report/rows.js         the data, ``window.REPORT = {...}`` (a script, since ``fetch`` of a
                               local file is refused on file:// pages)
    OUT/report/thumbs/         JPEG thumbnails of Z, Z1, Z0 and the |Z1 - Z0| heat map
    OUT/report/figures/        Figure 2 and Figure 3 (counterface.figures), when matplotlib is there

One row per pair (result row). Thumbnails show the face's neighbourhood (the landmarks' bounding
square grown :data:`CROP_GROWTH` times) so a change leaking outside the face is visible; full-size
images are links, never inlined. A thumbnail's name is a hash of its source file (path, size,
modification time), the crop and the size, so a rerun makes only the thumbnails whose sources
changed and removes the ones no row uses any more.

Outliers (documented in docs/report.md; :data:`THRESHOLDS`):

* ``low_identity``: an identity similarity below its family's threshold (the evaluate summary's,
  :data:`counterface.tables.IDENTITY_THRESHOLDS`): ``identity``, ``identity_z0``, ``identity_z1z0``
  (ArcFace) below ``identity``; ``identity_independent`` (``_z0``, ``_z1z0``; dlib) below
  ``identity_independent``
* ``changed_outside_blend``: ``unchanged_outside_blend`` (or ``_z0``) below 1 with a lossless format
  (png, webp): a pixel the blend mask gives weight 0 differs from Z
* ``low_psnr_outside``: ``psnr_outside`` (or ``_z0``) below ``psnr_outside`` dB
* ``not_scored``: the edited attribute has a scorer (a ``scorer`` column) but it could not score Z1
  or Z0 (empty ``score_z1`` / ``score_z0``, e.g. no face found on an output)
* ``no_score_gain``: alpha > 0 and ``score_delta`` <= 0 (the edit did not raise its attribute's score)

The two score flags look at every scored attribute (``score_*``, or ``<attribute>_score_*`` when
several are edited, :mod:`counterface.scoring`); an attribute without a scorer gets neither.
* ``metrics_error``: ``evaluate`` could not measure the row
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence
from urllib.parse import quote

import numpy as np

from .errors import ConfigError
from .tables import IDENTITY_SUFFIXES, IDENTITY_THRESHOLDS
from .scoring import parse_score_column, score_prefixes

#: default outlier thresholds (``--min-identity``, ``--min-identity-independent``, ``--min-psnr-outside``)
THRESHOLDS = {**IDENTITY_THRESHOLDS, "psnr_outside": 20.0}
#: the thumbnail shows the landmarks' bounding square grown this many times (clipped to the photo)
CROP_GROWTH = 2.0
#: the heat map saturates at this difference (0-255 levels, largest over the channels)
HEAT_SATURATION = 48
LOSSLESS = (".png", ".webp")
#: result columns that are run bookkeeping, not metrics nor manifest columns
RUN_COLUMNS = ("key", "path", "source", "sha256", "job", "face", "faces", "alpha", "z1", "z0", "z1_sidecar",
               "z0_sidecar", "pi1", "pi0", "face_width", "seconds", "shard", "lpips_net", "metrics_error")
ASSETS = ("index.html", "report.js", "report.css")
#: failed photos listed in the page (all of them are in failures*.jsonl)
MAX_FAILURES_LISTED = 1000


# -- outliers ------------------------------------------------------------------------------------------
def _num(v: Any) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return None
    v = float(v)
    return None if math.isnan(v) else v


def outlier_flags(row: Mapping[str, Any], thresholds: Mapping[str, float] = THRESHOLDS) -> list[str]:
    """The outlier flags of one result row (see the module docstring); [] for a row without metrics."""
    flags: list[str] = []
    if row.get("metrics_error"):
        flags.append("metrics_error")
    ids = [(_num(row.get(f"{family}{suffix}")), thresholds.get(family))
           for family in IDENTITY_THRESHOLDS for suffix in IDENTITY_SUFFIXES]
    if any(v is not None and limit is not None and v < limit for v, limit in ids):
        flags.append("low_identity")
    lossless = Path(str(row.get("z1") or "")).suffix.lower() in LOSSLESS
    unchanged = [_num(row.get(c)) for c in ("unchanged_outside_blend", "unchanged_outside_blend_z0")]
    if lossless and any(v is not None and v < 1.0 for v in unchanged):
        flags.append("changed_outside_blend")
    psnr = [_num(row.get(c)) for c in ("psnr_outside", "psnr_outside_z0")]
    if any(v is not None and v < thresholds["psnr_outside"] for v in psnr):
        flags.append("low_psnr_outside")
    alpha = _num(row.get("alpha"))
    prefixes = [p for p in score_prefixes(row) if row.get(f"{p}scorer")]
    if any(_num(row.get(f"{p}score_z1")) is None or (row.get("z0") and _num(row.get(f"{p}score_z0")) is None)
           for p in prefixes):
        flags.append("not_scored")
    deltas = [_num(row.get(f"{p}score_delta")) for p in prefixes]
    if alpha is not None and alpha > 0 and any(d is not None and d <= 0 for d in deltas):
        flags.append("no_score_gain")
    return flags


# -- columns -------------------------------------------------------------------------------------------
def _scalar(v: Any) -> bool:
    return v is None or isinstance(v, (str, int, float, bool))


def column_kinds(rows: Sequence[Mapping[str, Any]], manifest: Iterable[str]) -> list[dict[str, Any]]:
    """The page's columns: ``{"name", "kind": manifest|metric|run, "numeric"}``, manifest columns
    first, then metrics, then the run's bookkeeping; nested values (``seconds``) left out."""
    from .batch.store import METRIC_COLUMNS

    manifest = list(dict.fromkeys(manifest))
    names: dict[str, None] = {}
    for r in rows:
        for k, v in r.items():
            if _scalar(v):
                names.setdefault(k, None)
    out = []
    for name in names:
        values = [r.get(name) for r in rows if r.get(name) is not None]
        numeric = bool(values) and all(_num(v) is not None for v in values)
        if name in manifest:
            kind = "manifest"
        elif (parse_score_column(name) or ("", ""))[1] == "scorer":
            kind = "run"  # the scorer's name
        elif name in METRIC_COLUMNS and name not in RUN_COLUMNS:
            kind, numeric = "metric", True  # an empty metric (no face re-detected) is still a metric
        elif name in RUN_COLUMNS:
            kind = "run"
        elif numeric:
            kind = "metric"
        else:
            kind = "run"
        out.append({"name": name, "kind": kind, "numeric": numeric})
    order = {"manifest": 0, "metric": 1, "run": 2}
    return sorted(out, key=lambda c: order[c["kind"]])


# -- thumbnails ----------------------------------------------------------------------------------------
def crop_box(landmarks: Any, shape: tuple[int, int], growth: float = CROP_GROWTH) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1): the landmarks' bounding square grown ``growth`` times about its centre and
    clipped to an image of ``shape`` (h, w); the whole image without landmarks."""
    h, w = int(shape[0]), int(shape[1])
    pts = np.asarray(landmarks if landmarks is not None else [], dtype=np.float64).reshape(-1, 2)
    pts = pts[np.isfinite(pts).all(axis=1)]
    if not len(pts):
        return 0, 0, w, h
    (x0, y0), (x1, y1) = pts.min(axis=0), pts.max(axis=0)
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0, 1.0) * growth / 2
    box = (int(math.floor(cx - half)), int(math.floor(cy - half)), int(math.ceil(cx + half)), int(math.ceil(cy + half)))
    x0, y0, x1, y1 = max(0, box[0]), max(0, box[1]), min(w, box[2]), min(h, box[3])
    if x1 <= x0 or y1 <= y0:
        return 0, 0, w, h
    return x0, y0, x1, y1


def heat_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """|a - b| as an RGB heat map: black where identical, then red, yellow, white as the largest
    channel difference grows to :data:`HEAT_SATURATION` levels (square-root scale; any nonzero
    difference is at least dark red, so a single changed pixel stays visible)."""
    if a.shape != b.shape:
        raise ConfigError(f"Z1 and Z0 differ in size ({a.shape[1]}x{a.shape[0]} vs {b.shape[1]}x{b.shape[0]})")
    d = np.abs(a.astype(np.int16) - b.astype(np.int16)).max(axis=2).astype(np.float64)
    t = np.sqrt(np.clip(d / HEAT_SATURATION, 0.0, 1.0))
    t = np.where(d > 0, np.maximum(t, 0.25), 0.0)
    rgb = np.stack([np.clip(3 * t, 0, 1), np.clip(3 * t - 1, 0, 1), np.clip(3 * t - 2, 0, 1)], axis=2)
    return (rgb * 255).round().astype(np.uint8)


def _max_pool(img: np.ndarray, size: int) -> np.ndarray:
    """Shrink so that the largest side is about ``size`` keeping each block's maximum (a single
    changed pixel of the heat map survives the thumbnail)."""
    f = max(1, int(math.ceil(max(img.shape[:2]) / size)))
    if f == 1:
        return img
    h, w = img.shape[:2]
    ph, pw = -h % f, -w % f
    img = np.pad(img, ((0, ph), (0, pw), (0, 0)))
    return img.reshape((h + ph) // f, f, (w + pw) // f, f, img.shape[2]).max(axis=(1, 3))


def _signature(path: Path) -> str:
    """Identifies a file's version: its resolved path, size and modification time."""
    st = path.stat()
    return f"{path.resolve()}|{st.st_size}|{st.st_mtime_ns}"


class Thumbnailer:
    """Makes the JPEG thumbnails into ``folder``, once: a thumbnail's file name hashes its sources'
    path, size and modification time, the crop box and the size, so an existing file is up to date."""

    def __init__(self, folder: Path, size: int = 128):
        self.folder = Path(folder)
        self.size = int(size)
        self.made = self.kept = 0
        self.used: set[str] = set()
        self._images: dict[str, np.ndarray] = {}
        self._signatures: dict[Path, str] = {}  # a run's files do not change under it: stat each once

    def signature(self, path: Path) -> str:
        if path not in self._signatures:
            self._signatures[path] = _signature(path)
        return self._signatures[path]

    def _read(self, path: Path, sig: str) -> np.ndarray:
        from .imageio import read_image

        if sig not in self._images:
            if len(self._images) > 8:
                self._images.clear()
            self._images[sig] = read_image(path)
        return self._images[sig]

    def _name(self, *parts: Any) -> str:
        h = hashlib.sha1("|".join(map(str, (*parts, self.size))).encode()).hexdigest()[:20]
        return f"{h}.jpg"

    def _write(self, name: str, make: Callable[[], np.ndarray]) -> str:
        from PIL import Image

        from .imageio import write_bytes

        if name in self.used:  # made or checked earlier in this run (a photo shared by several pairs)
            return f"thumbs/{name}"
        self.used.add(name)
        target = self.folder / name
        if target.exists():
            self.kept += 1
            return f"thumbs/{name}"
        img = Image.fromarray(make())
        img.thumbnail((self.size, self.size), Image.Resampling.LANCZOS)
        import io

        buf = io.BytesIO()
        img.save(buf, format="JPEG", quality=85)
        write_bytes(target, buf.getvalue())
        self.made += 1
        return f"thumbs/{name}"

    def image(self, path: Path, box: tuple[int, int, int, int]) -> str:
        sig = self.signature(path)
        x0, y0, x1, y1 = box
        return self._write(self._name("image", sig, box), lambda: self._read(path, sig)[y0:y1, x0:x1])

    def difference(self, z1: Path, z0: Path, box: tuple[int, int, int, int]) -> str:
        s1, s0 = self.signature(z1), self.signature(z0)
        x0, y0, x1, y1 = box

        def make():
            return _max_pool(heat_map(self._read(z1, s1), self._read(z0, s0))[y0:y1, x0:x1], self.size)

        return self._write(self._name("diff", s1, s0, box), make)

    def prune(self) -> int:
        """Remove thumbnails no row uses any more; returns how many."""
        n = 0
        if self.folder.is_dir():
            for p in self.folder.glob("*.jpg"):
                if p.name not in self.used:
                    p.unlink(missing_ok=True)
                    n += 1
        return n


# -- the report ----------------------------------------------------------------------------------------
@dataclass
class Report:
    """What :func:`build_report` wrote."""

    index: Path
    rows: int
    thumbnails_made: int
    thumbnails_kept: int
    figures: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


def _href(target: Path, base: Path) -> str:
    """A URL for ``target`` relative to the folder ``base`` (percent-encoded)."""
    try:
        rel = os.path.relpath(Path(target).resolve(), Path(base).resolve())
    except ValueError:  # another drive
        return Path(target).resolve().as_uri()
    return quote(Path(rel).as_posix())


def _finite(v: Any) -> Any:
    if isinstance(v, float) and not math.isfinite(v):
        return None
    return v


def _figures(out: Path, fig_dir: Path, rows_mtime: float, sweep_dir: Path | None, label: str | None,
             notes: list[str]) -> list[str]:
    """Figure 2 and Figure 3 into ``fig_dir`` (skipped when newer than the results); notes say why a
    figure is absent."""
    from . import figures as figs

    from .batch.store import table_files
    from .imageio import write_json

    names = []
    try:
        figs._pyplot()
    except ConfigError as exc:
        notes.append(str(exc))
        return names
    if sweep_dir is not None:
        files = table_files(sweep_dir, "results") + table_files(sweep_dir, "metrics")
        rows_mtime = max([rows_mtime, *(p.stat().st_mtime for p in files)])
    stamp_file = fig_dir / "settings.json"
    stamp = {"label": label, "sweep": None if sweep_dir is None else str(sweep_dir)}
    try:
        same = json.loads(stamp_file.read_text(encoding="utf-8")) == stamp
    except (OSError, ValueError):
        same = False
    jobs = (("figure2.png", lambda p: figs.figure2(out, p, label=label)),
            ("figure3.png", lambda p: figs.figure3(sweep_dir or out, p)))
    for name, draw in jobs:
        target = fig_dir / name
        if same and target.exists() and target.stat().st_mtime >= rows_mtime:  # up to date
            names.append(f"figures/{name}")
            continue
        try:
            draw(target)
        except (ConfigError, OSError, ValueError, KeyError) as exc:
            target.unlink(missing_ok=True)
            notes.append(f"{name.split('.')[0].replace('figure', 'Figure ')} not drawn: {' '.join(str(exc).split())}")
            continue
        names.append(f"figures/{name}")
    write_json(stamp_file, stamp)
    return names


def _manifest_columns(side: Mapping[str, Any]) -> list[str]:
    from .batch.store import METRIC_COLUMNS, RESERVED

    meta = ((side.get("batch") or {}).get("meta") or {}) if isinstance(side, Mapping) else {}
    return [f"user_{k}" if k in RESERVED or k in METRIC_COLUMNS else k for k in meta]


class _Pairs:
    """The thumbnails and links of each result row, with the per-run caches (sidecars, links, image
    sizes) that make a 10,000-row batch of a few thousand photos quick."""

    def __init__(self, out: Path, rdir: Path, thumbs: Thumbnailer):
        self.out, self.rdir, self.thumbs = out, rdir, thumbs
        self.manifest: dict[str, None] = {}  # manifest columns, in first-seen order
        self._sidecars: dict[Path, Any] = {}
        self._hrefs: dict[Path, str] = {}
        self._shapes: dict[str, tuple[int, int]] = {}

    def _sidecar(self, path: Path) -> Mapping[str, Any]:
        if path not in self._sidecars:
            if len(self._sidecars) > 256:
                self._sidecars.clear()
            self._sidecars[path] = json.loads(path.read_text(encoding="utf-8"))
        return self._sidecars[path]

    def _href(self, p: Path) -> str:
        if p not in self._hrefs:
            self._hrefs[p] = _href(p, self.rdir)
        return self._hrefs[p]

    def _shape(self, p: Path) -> tuple[int, int]:
        from PIL import Image

        sig = self.thumbs.signature(p)
        if sig not in self._shapes:
            with Image.open(p) as im:
                self._shapes[sig] = (im.height, im.width)
        return self._shapes[sig]

    def files(self, row: Mapping[str, Any]) -> tuple[dict[str, str | None], dict[str, str | None]]:
        """(thumbnails, links) of Z, Z1, Z0 (and the heat map ``diff``), relative to the report folder."""
        side = self._sidecar(self.out / str(row["z1_sidecar"]))
        for c in _manifest_columns(side):
            self.manifest.setdefault(c, None)
        z, z1 = Path(str(row["path"])), self.out / str(row["z1"])
        z0 = self.out / str(row["z0"]) if row.get("z0") else None
        links = {"z": self._href(z), "z1": self._href(z1), "z0": self._href(z0) if z0 else None}
        box = crop_box((side.get("face") or {}).get("landmarks"), self._shape(z1))
        thumbs = {"z": self.thumbs.image(z, box), "z1": self.thumbs.image(z1, box), "z0": None, "diff": None}
        if z0 is not None:
            thumbs["z0"] = self.thumbs.image(z0, box)
            thumbs["diff"] = self.thumbs.difference(z1, z0, box)
        return thumbs, links


def build_report(out_dir: str | os.PathLike, *, report_dir: str | os.PathLike | None = None, thumb_size: int = 128,
                 thresholds: Mapping[str, float] | None = None, label: str | None = None,
                 sweep_dir: str | os.PathLike | None = None, figures: bool = True,
                 progress: Callable[[int, int], None] | None = None) -> Report:
    """Write the review page of the batch folder ``out_dir`` into ``report_dir`` (default
    ``out_dir/report``) and return what was written. Raises ConfigError when the folder has no rows;
    a row whose files cannot be read gets ``report_error`` instead of thumbnails."""
    from .batch.store import merged_rows, table_files
    from .errors import ImageError
    from .imageio import write_bytes

    out = Path(out_dir).resolve()
    rdir = Path(report_dir).resolve() if report_dir else out / "report"
    thresholds = {**THRESHOLDS, **(thresholds or {})}
    rows = merged_rows(out)
    if not rows:
        raise ConfigError(f"{out}: no results*.jsonl rows; run `counterface batch` first")
    rdir.mkdir(parents=True, exist_ok=True)
    thumbs = Thumbnailer(rdir / "thumbs", size=thumb_size)
    pairs = _Pairs(out, rdir, thumbs)
    notes: list[str] = []
    data = []
    problems = 0
    for i, r in enumerate(rows):
        item: dict[str, Any] = {k: _finite(v) for k, v in r.items() if _scalar(v) and k not in ("z1_sidecar", "z0_sidecar")}
        item["flags"] = outlier_flags(r, thresholds)
        try:
            item["thumbs"], item["links"] = pairs.files(r)
        except (OSError, ValueError, KeyError, TypeError, ConfigError, ImageError) as exc:  # one bad pair: go on
            problems += 1
            item["thumbs"] = {"z": None, "z1": None, "z0": None, "diff": None}
            item["links"] = {"z": None, "z1": None, "z0": None}
            item["report_error"] = f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"
        data.append(item)
        if progress is not None:
            progress(i + 1, len(rows))
    thumbs.prune()
    if problems:
        notes.append(f"{problems} row(s) without thumbnails (their files could not be read; see report_error)")

    sources = table_files(out, "results") + table_files(out, "metrics")
    rows_mtime = max((p.stat().st_mtime for p in sources), default=0.0)
    fig_names = _figures(out, rdir / "figures", rows_mtime, Path(sweep_dir).resolve() if sweep_dir else None,
                         label, notes) if figures else []
    if not figures:
        notes.append("figures not drawn (--no-figures)")
    failures = [{k: f.get(k) for k in ("key", "reason", "message")} for f in load_failures(out)]
    meta = {
        "out": str(out),
        "report_id": hashlib.sha1(str(out).encode()).hexdigest()[:16],
        "rows": len(data),
        "failures": len(failures),
        "failure_list": failures[:MAX_FAILURES_LISTED],
        "columns": column_kinds(data, pairs.manifest),
        "manifest_columns": list(pairs.manifest),
        "thresholds": thresholds,
        "heat_saturation": HEAT_SATURATION,
        "figures": fig_names,
        "notes": notes,
        "label": label,
    }
    payload = json.dumps({"meta": meta, "rows": data}, allow_nan=False, separators=(",", ":"), default=str)
    write_bytes(rdir / "rows.js", f"window.REPORT = {payload};\n".encode("utf-8"))
    assets = resources.files("counterface") / "report_assets"
    for name in ASSETS:
        write_bytes(rdir / name, (assets / name).read_bytes())
    return Report(index=rdir / "index.html", rows=len(data), thumbnails_made=thumbs.made,
                  thumbnails_kept=thumbs.kept, figures=fig_names, notes=notes)


def load_failures(out: Path) -> list[dict[str, Any]]:
    """The failure rows of a batch folder (every shard's ``failures*.jsonl``)."""
    from .batch.store import load_rows

    return load_rows(out, "failures")


__all__ = ["THRESHOLDS", "CROP_GROWTH", "HEAT_SATURATION", "Report", "Thumbnailer", "build_report", "column_kinds",
           "crop_box", "heat_map", "outlier_flags"]
