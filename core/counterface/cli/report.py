"""`counterface report`: the static HTML review page of a batch output folder."""

from __future__ import annotations

from pathlib import Path

import click

from ._common import check_output_dir, finite, progress_enabled


@click.command("report")
@click.argument("out_dir", metavar="OUT", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("-o", "--output", "report_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to write the page (default: OUT/report).")
@click.option("--min-identity", type=finite(-1.0, 1.0), default=None, metavar="COS",
              help="Outlier when an ArcFace identity similarity (identity, _z0, _z1z0) is below this (default 0.5).")
@click.option("--min-identity-independent", type=finite(-1.0, 1.0), default=None, metavar="COS",
              help="Outlier when a dlib identity similarity (identity_independent, _z0, _z1z0) is below this "
                   "(default 0.92, dlib's same-person threshold).")
@click.option("--min-psnr-outside", type=finite(min=0.0), default=None, metavar="DB",
              help="Outlier when psnr_outside (or _z0) is below this many dB (default 20).")
@click.option("--thumb-size", type=click.IntRange(min=32, max=512), default=128, show_default=True,
              help="Thumbnail size in pixels (largest side).")
@click.option("--label", default=None, metavar="COLUMN", help="Manifest column naming the faces of Figure 2.")
@click.option("--sweep", "sweep_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Batch folder with several alphas for Figure 3 (default: OUT itself).")
@click.option("--figures/--no-figures", default=True, show_default=True,
              help="Draw Figure 2 and Figure 3 into the page (needs matplotlib).")
def report_cmd(out_dir, report_dir, min_identity, min_identity_independent, min_psnr_outside, thumb_size, label,
               sweep_dir, figures) -> None:
    """Write OUT/report/index.html, a page for reviewing every pair of a batch.

    It opens from the file system (no server): one row per pair with Z, Z1, Z0 and a |Z1 - Z0| heat
    map, the metrics and the manifest columns, sorted and filtered by any column, outliers
    highlighted, and the Figure 2 grid and Figure 3 curves. Review with the keyboard (j/k move,
    a accept, r reject, u undo) and export the decisions as a CSV that `batch`, `evaluate` and
    `polarization` take with --exclude. Thumbnails are made once (OUT/report/thumbs).
    """
    from ..batch.manifest import check_readers_outputs
    from ..report import build_report

    target = report_dir or out_dir / "report"
    check_output_dir(target)
    check_readers_outputs(target, ("index.html", "rows.js", "report.*", "thumbs/*.jpg", "figures/*.png",
                                   "figures/settings.json"), [out_dir, sweep_dir])  # no input replaced
    given = (("identity", min_identity), ("identity_independent", min_identity_independent),
             ("psnr_outside", min_psnr_outside))
    thresholds = {k: v for k, v in given if v is not None}
    bar = None
    if progress_enabled():
        from tqdm import tqdm

        bar = tqdm(unit="pair", desc="report")

    def progress(done: int, total: int) -> None:
        if bar is not None:
            bar.total = total
            bar.update(done - bar.n)

    try:
        rep = build_report(out_dir, report_dir=target, thumb_size=thumb_size, thresholds=thresholds, label=label,
                           sweep_dir=sweep_dir, figures=figures, progress=progress)
    finally:
        if bar is not None:
            bar.close()
    for note in rep.notes:
        click.echo(f"note: {note}", err=True)
    click.echo(f"{rep.rows} pairs, {rep.thumbnails_made} thumbnails made, {rep.thumbnails_kept} up to date; "
               f"open {rep.index}")
