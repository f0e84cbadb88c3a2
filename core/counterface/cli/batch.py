"""`counterface batch`, `counterface evaluate` and `counterface figures`: research batches."""

from __future__ import annotations

import json
from pathlib import Path

import click

from ._common import (
    ALPHA_HELP,
    ALPHAS_HELP,
    check_output_dir,
    edit_flags,
    edit_settings,
    finite,
    operator_options,
    pipeline_options,
    progress_enabled,
)
from .. import matching, ranges

LPIPS_CHOICES = ("auto", "alex", "vgg", "squeeze", "random", "none")
EXCLUDE_HELP = ("Exclusion list: the review CSV of `counterface report` (key, face, alpha, decision); "
                "rows whose decision is reject are left out.")
LPIPS_HELP = ("LPIPS backbone for the metrics. auto: alex, or random when the run's tuner uses a random "
              "LPIPS trunk (the offline tiny preset); random: offline, tests only; none: skip LPIPS.")


INDEPENDENT_HELP = ("Identity encoder of the identity_independent* columns, one the tuner never optimised "
                    "(default: the preset's matcher, edit.matcher; none: skip). When the default cannot be built "
                    "(not installed), it is skipped with a warning.")


def _independent_name(choice: str | None, cfg) -> str | None:
    """``--identity-independent``, else the run's matcher (``edit.matcher``: a recogniser the tuner
    never optimised), else None (no independent identity)."""
    if choice is not None:
        return choice
    matcher = ((cfg or {}).get("edit") or {}).get("matcher")
    if isinstance(matcher, dict):
        matcher = matcher.get("name")
    return str(matcher) if matcher else None


def _lpips_for(choice: str, cfg) -> str:
    """Resolve ``--lpips auto`` from a resolved configuration (the tuner's own LPIPS settings)."""
    if choice != "auto":
        return choice
    tuner = dict((cfg or {}).get("tuner") or {})
    return "random" if tuner.get("lpips_pretrained") is False else "alex"


@click.command("batch")
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder (pairs/, results.jsonl, results.csv, failures.jsonl).")
@pipeline_options
@operator_options
@click.option("--alpha", "alpha_values", multiple=True, metavar="A|auto", help=ALPHA_HELP)
@click.option("--alphas", default=None, metavar="A,A,...", help=ALPHAS_HELP + " One row per face per alpha.")
@click.option("--face", default=None,
              help="Which faces: largest (default), all, an index (largest first), or match (each row's "
                   "reference person).")
@click.option("--reference", multiple=True, type=click.Path(exists=True), metavar="PHOTO",
              help="--face match: photo(s) of the person, for rows without a 'reference' column value.")
@click.option("--references", "references", type=click.Path(exists=True, file_okay=False), default=None, metavar="DIR",
              help="--face match: reference photos DIR/<value>.jpg or DIR/<value>/*.jpg, <value> from "
                   "--reference-column.")
@click.option("--reference-column", default=None, metavar="COLUMN",
              help="--face match with --references: the manifest column naming each row's person.")
@click.option("--matcher", default=None, metavar="NAME",
              help="--face match: the identity component that compares faces (default: the preset's).")
@click.option("--match-threshold", type=finite(), default=None, metavar="T",
              help="--face match: lowest cosine similarity to the reference (default: the matcher's own); "
                   "below it the photo fails with reason target_not_found.")
@click.option("--min-face", type=click.IntRange(min=0), default=None, metavar="PX",
              help="Photos whose faces are all narrower than PX photo pixels fail with reason face_too_small.")
@click.option("--shard", default=None, metavar="I/N",
              help="Process only shard I of N (stable hash of each manifest key), e.g. $SLURM_ARRAY_TASK_ID/N.")
@click.option("--workers", type=click.IntRange(min=0), default=0, show_default=True,
              help="Processes that read and align photos ahead of the GPU stages (0: in this process).")
@click.option("--metrics/--no-metrics", default=True, show_default=True,
              help="Measure identity, preservation, reconstruction and the attribute's score for every row.")
@click.option("--lpips", "lpips_net", type=click.Choice(LPIPS_CHOICES), default="auto", show_default=True,
              help=LPIPS_HELP)
@click.option("--identity-independent", default=None, metavar="NAME|none", help=INDEPENDENT_HELP)
@click.option("--format", "image_format", type=click.Choice(["png", "jpg", "webp"]), default="png", show_default=True,
              help="Image format of the pairs (png and webp are lossless).")
@click.option("--retry-failures", is_flag=True, help="Retry photos that failed before (unreadable, no face, too small).")
@click.option("--exclude", "exclude_file", type=click.Path(path_type=Path), default=None, metavar="CSV",
              help=EXCLUDE_HELP + " batch skips a photo when any of its pairs is rejected.")
@click.option("--tune-batch", "tune_batch", type=click.IntRange(min=1), default=1, show_default=True, metavar="B",
              help="Faces tuned at once (across photos), each with its own tuned tensors; the same pairs as 1 "
                   "within float tolerance, faster on a GPU (see docs/performance.md).")
@click.option("--pivots", "pivots_dir", type=click.Path(file_okay=False, path_type=Path), default=None, metavar="DIR",
              help="Pivot store (default OUT/pivots; runs may share one): a face whose pivot is there is not "
                   "tuned again (another alpha, operator or direction reuses it). See `counterface pivots`.")
@click.option("--pivot-dtype", type=click.Choice(["float16", "float32"]), default="float16", show_default=True,
              help="How the store keeps tuned generator tensors (the latent is always float32).")
@click.option("--executor", type=click.Choice(["local", "ray", "slurm"]), default="local", show_default=True,
              help="local: this process; ray: Ray actors (pip install 'counterface[ray]'); slurm: submitit "
                   "array jobs (pip install 'counterface[slurm]'). All write into OUT, resumably.")
@click.option("--ray-address", default=None, metavar="ADDR",
              help="--executor ray: an existing cluster (host:port or auto); default: start a local one.")
@click.option("--ray-workers", type=click.IntRange(min=1), default=None, metavar="N",
              help="--executor ray: actors (default: the cluster's GPUs / --gpus-per-worker, or its CPUs).")
@click.option("--gpus-per-worker", type=click.FloatRange(min=0), default=None, metavar="G",
              help="GPUs per Ray actor or SLURM task (default 1 when edit.device is CUDA, else 0).")
@click.option("--slurm-jobs", type=click.IntRange(min=1), default=None, metavar="N",
              help="--executor slurm: array tasks, task i runs shard i/N (default: min(photos, 16)).")
@click.option("--slurm-partition", default=None, metavar="NAME", help="--executor slurm: the partition.")
@click.option("--slurm-gpus", type=click.IntRange(min=0), default=None, metavar="G",
              help="--executor slurm: GPUs per task (default: --gpus-per-worker).")
@click.option("--slurm-time", type=click.IntRange(min=1), default=60, show_default=True, metavar="MIN",
              help="--executor slurm: time limit per task in minutes; a task that reaches it is requeued.")
@click.option("--slurm-local", is_flag=True, envvar="COUNTERFACE_SLURM_LOCAL",
              help="--executor slurm: run the array with submitit's local executor (no SLURM; tests).")
@click.option("--slurm-wait/--slurm-no-wait", default=True, show_default=True,
              help="--executor slurm: wait for the jobs and report, or return after submitting.")
def batch_cmd(input_path, out_dir, preset, config_file, sets, components, alpha_values, alphas, face, min_face, shard,
              workers, metrics, lpips_net, image_format, retry_failures, tune_batch, exclude_file, references,
              reference_column, identity_independent, pivots_dir, pivot_dtype, executor, ray_address, ray_workers,
              gpus_per_worker, slurm_jobs, slurm_partition, slurm_gpus, slurm_time, slurm_local, slurm_wait,
              **match) -> None:
    """Run pi_1 and pi_0 over a folder or a CSV/JSONL manifest of photos, resumably.

    INPUT is a folder (every image below it), one photo, or a manifest with a `path` column; other columns
    (politician, outlet, ...) are carried into every result row. Writes one Z1/Z0 pair with sidecars
    per face, a row per face in results.jsonl/results.csv and a row per failed photo in failures.jsonl.
    Rerunning the same command skips finished photos (by content hash and configuration); Ctrl-C or
    SIGTERM loses at most the photo in flight. Exit status 0 even when some photos failed.
    """
    from .. import batch as b
    from ..batch import executors as ex
    from ..pipeline import Pipeline

    operator_settings = match.pop("operator_settings", None)  # --distance, --keep, --watch, --target-score
    settings = edit_settings(preset, config_file, components, sets, operator_settings, alpha=alpha_values,
                             alphas=alphas, roles=("pi1", "pi0"),
                             edit=edit_flags(face=face, min_face=min_face, references=references,
                                             reference_column=reference_column, **match))
    index, count = b.parse_shard(shard)
    check_output_dir(out_dir)
    b.manifest.check_run_inputs(out_dir, [input_path, exclude_file])  # never write over the manifest
    items = b.read_manifest(input_path, exclude=[out_dir])
    mine = b.select_shard(items, index, count)
    excluded = 0
    if exclude_file is not None:  # review decisions of `counterface report`: rejected photos are skipped
        rejected = b.read_exclusions(exclude_file)
        kept = [it for it in mine if not rejected.rejects_photo(it.key)]
        excluded, mine = len(mine) - len(kept), kept
    pipeline = Pipeline(settings)
    pipeline.prepare()  # configuration and weights errors before anything is written
    matching.check_items(pipeline, mine)
    options = b.BatchOptions(out_dir=str(out_dir), metrics=metrics, lpips_net=_lpips_for(lpips_net, settings.config),
                             identity_independent=_independent_name(identity_independent, settings.config),
                             workers=workers, shard=(index, count),
                             image_format=image_format, retry_failures=retry_failures, tune_batch=tune_batch,
                             pivots=None if pivots_dir is None else str(pivots_dir.absolute()),
                             pivot_dtype=pivot_dtype, progress=progress_enabled())
    job = b.Job(settings=settings, options=options)
    runner = ex.make_runner(job, pipeline, warn=lambda msg: click.echo(f"warning: {msg}", err=True))
    where = f" (shard {index}/{count} of {len(items)})" if count > 1 else ""
    if executor == "local":
        s = runner.run(mine)
    else:
        s = _distributed(executor, runner, job, mine, ray_address=ray_address, ray_workers=ray_workers,
                         gpus_per_worker=gpus_per_worker, slurm_jobs=slurm_jobs, slurm_partition=slurm_partition,
                         slurm_gpus=slurm_gpus, slurm_time=slurm_time, slurm_local=slurm_local, slurm_wait=slurm_wait)
        if s is None:
            click.echo(f"rerun the same command after the jobs finish to see what is left; table: {out_dir / 'results.csv'}")
            return
    elsewhere = f", {s.elsewhere} done by another process" if s.elsewhere else ""
    click.echo(f"{s.total} photos{where}: {s.done} done ({s.faces} rows), {s.failed} failed, "
               f"{s.skipped} already done{elsewhere}; table: {out_dir / 'results.csv'}")
    if exclude_file is not None:
        click.echo(f"{excluded} photo(s) excluded by {exclude_file}")
    if s.failed:
        click.echo(f"failures with reasons: {runner.failures.path}")


def _distributed(executor, runner, job, items, *, ray_address, ray_workers, gpus_per_worker, slurm_jobs,
                 slurm_partition, slurm_gpus, slurm_time, slurm_local, slurm_wait):
    """Run ``items`` on Ray or SLURM; the summary counts what was already done before they started."""
    from .. import batch as b
    from ..batch import executors as ex
    from ..batch.claims import DoneIndex

    if gpus_per_worker is None:
        gpus_per_worker = 1.0 if str(runner.pipeline.device).startswith("cuda") else 0.0
    runner.out_dir.mkdir(parents=True, exist_ok=True)
    index = DoneIndex(runner.out_dir, len(runner.alphas), b.FINAL_REASONS, job.options.retry_failures).refresh()
    pending = [it for it in items if not index.done((it.key, runner._hash(it), runner.job))]
    skipped = len(items) - len(pending)
    if not pending:
        s = ex.Summary(total=len(items), skipped=skipped)
    elif executor == "ray":
        s = ex.run_ray(job, pending, address=ray_address, gpus_per_worker=gpus_per_worker, workers=ray_workers,
                       echo=click.echo)
    else:
        s = ex.run_slurm(job, pending, jobs=slurm_jobs or min(len(pending), 16), partition=slurm_partition,
                         gpus=int(slurm_gpus if slurm_gpus is not None else gpus_per_worker), time_min=slurm_time,
                         local=slurm_local, wait=slurm_wait, echo=click.echo)
        if s is None:
            return None
    s.total, s.skipped = len(items), skipped
    b.write_table(runner.out_dir)
    return s


def _independent(name: str | None, device: str = "cpu"):
    from .. import metrics as m

    return m.independent_identity(name, device=device, warn=lambda msg: click.echo(f"warning: {msg}", err=True))


def _fmt(v) -> str:
    return "-" if v is None else f"{v:.4g}"


@click.command("evaluate")
@click.argument("out_dir", metavar="OUT", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--lpips", "lpips_net", type=click.Choice(LPIPS_CHOICES), default="auto", show_default=True,
              help=LPIPS_HELP)
@click.option("--force", is_flag=True, help="Measure every row again, even those that already have metrics.")
@click.option("--by", "group_by", multiple=True, metavar="COLUMN",
              help="Group the summary by these columns (default: alpha), e.g. --by politician.")
@click.option("--json", "as_json", is_flag=True, help="Print the summary as JSON.")
@click.option("--identity-independent", default=None, metavar="NAME|none", help=INDEPENDENT_HELP)
@click.option("--identity-threshold", type=finite(*ranges.bounds("identity_threshold")), default=None, metavar="T",
              help="Flag pairs whose identity, identity_z0 or identity_z1z0 is below T (default 0.5).")
@click.option("--identity-independent-threshold", type=finite(*ranges.bounds("identity_independent_threshold")),
              default=None, metavar="T",
              help="Flag pairs whose identity_independent* is below T (default 0.92, dlib's same-person threshold).")
@click.option("--exclude", "exclude_file", type=click.Path(path_type=Path), default=None, metavar="CSV",
              help=EXCLUDE_HELP + " Rejected pairs are neither measured nor summarised.")
def evaluate_cmd(out_dir, lpips_net, force, group_by, as_json, exclude_file, identity_independent,
                 identity_threshold, identity_independent_threshold) -> None:
    """Measure every result row of a batch output folder and summarise.

    Adds identity similarity, preservation outside the edited region (PSNR, LPIPS), the unchanged
    fraction outside the blend mask and the attribute scores (score_*, by each direction's scorer;
    none for an attribute without one) to rows that lack them (metrics.jsonl,
    merged into results.csv), then writes summary.json: per group, mean/std/median/5th/95th
    percentile of every metric. Pairs below the identity thresholds are listed in summary.json
    (``flags``) and counted here.
    """
    from .. import batch as b
    from .. import tables as m
    from ..imageio import write_json

    check_output_dir(out_dir)
    b.manifest.check_run_inputs(out_dir, [exclude_file])  # never write over the exclusion list
    try:
        run_cfg = json.loads((out_dir / "batch.json").read_text()).get("config")
    except (OSError, ValueError, AttributeError):
        run_cfg = None
    lpips_net = _lpips_for(lpips_net, run_cfg)
    rejected = b.read_exclusions(exclude_file) if exclude_file is not None else None
    independent = _independent(_independent_name(identity_independent, run_cfg))
    n, failed, rows = b.evaluate_folder(out_dir, lpips_net=lpips_net, force=force, progress=progress_enabled(),
                                        exclude=rejected, identity_independent=independent)
    excluded = len(b.merged_rows(out_dir)) - len(rows) if rejected is not None else 0
    by = tuple(group_by) or ("alpha",)
    summary = m.summarize(rows, by=by)
    if summary and "job" in summary[0] and "job" not in by:  # several configurations: never pooled
        by = ("job", *by)
    given = {"identity": identity_threshold, "identity_independent": identity_independent_threshold}
    thresholds = {k: (m.IDENTITY_THRESHOLDS[k] if v is None else v) for k, v in given.items()}
    flags = {"thresholds": thresholds, "pairs": m.flag_rows(rows, thresholds)}
    record = {"group_by": list(by), "groups": summary, "flags": flags}
    if rejected is not None:
        record["excluded"] = {"file": str(exclude_file), "rows": excluded}
    write_json("summary.json", record, out_dir=out_dir)
    if as_json:
        click.echo(json.dumps({"evaluated": n, "failed": failed, "excluded": excluded, "groups": summary,
                               "flags": flags}, indent=2))
        return
    click.echo(f"evaluated {n} row(s), {failed} failed, {len(rows)} in the table; summary: {out_dir / 'summary.json'}")
    if rejected is not None:
        click.echo(f"{excluded} row(s) excluded by {exclude_file}")
    for g in summary:
        head = ", ".join(f"{k}={g[k]}" for k in by)
        click.echo(f"{head} ({g['rows']} rows)")
        for c in m.SUMMARY_COLUMNS:
            st = g.get(c)
            if st and st.get("n"):
                click.echo(f"  {c:<24} median {_fmt(st['median'])}  mean {_fmt(st['mean'])}  "
                           f"p05 {_fmt(st['p05'])}  p95 {_fmt(st['p95'])}  n={st['n']}")
    limits = ", ".join(f"{k}* < {v:g}" for k, v in thresholds.items())
    click.echo(f"flagged {len(flags['pairs'])} pair(s) below the identity thresholds ({limits}); "
               "see flags in summary.json")


@click.command("figures")
@click.argument("out_dir", metavar="OUT", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--sweep", "sweep_dir", type=click.Path(exists=True, file_okay=False, path_type=Path), default=None,
              help="Batch folder with several alphas for Figure 3 (default: OUT itself).")
@click.option("--label", default=None, metavar="COLUMN", help="Manifest column naming each face (default: the key).")
@click.option("--max", "max_faces", type=click.IntRange(min=1), default=12, show_default=True,
              help="Faces shown in Figure 2.")
@click.option("--alpha", "alpha", type=finite(), default=None, help="Which alpha Figure 2 shows (default: the largest).")
@click.option("-o", "--output", "fig_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where to save the PNGs (default: OUT/figures).")
def figures_cmd(out_dir, sweep_dir, label, max_faces, alpha, fig_dir) -> None:
    """Draw Figure 2 (original vs edited, named from the manifest) and Figure 3 (attribute score and
    identity similarity against alpha, with the per-image spread) as PNGs. Needs matplotlib
    (pip install 'counterface[figures]')."""
    from .. import figures

    fig_dir = fig_dir or out_dir / "figures"
    check_output_dir(fig_dir)
    from ..batch.manifest import check_readers_outputs
    check_readers_outputs(fig_dir, ("figure*.png", "settings.json"), [out_dir, sweep_dir])  # no input replaced
    made = figures.make_figures(out_dir, fig_dir, sweep_dir=sweep_dir, label=label, max_faces=max_faces, alpha=alpha,
                                warn=lambda msg: click.echo(f"warning: {msg}", err=True))
    for p in made:
        click.echo(str(p))
