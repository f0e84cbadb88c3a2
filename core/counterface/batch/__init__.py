"""Batches of thousands of photos: manifests, shards, a resumable runner and its results table.

Input: a folder (every image file below it, recursively, hidden files and the output folder
skipped) or a manifest, CSV or JSONL, with a ``path`` column (relative paths are relative to the
manifest's folder) and any other columns (politician, outlet, ...) which are carried into every
result row. An ``id`` column, when present, is the row's key; otherwise the path as written is.

Output folder::

    OUT/pairs/<name>_z1.png + .json     pi_1(Z) and its sidecar, one per face (and alpha)
    OUT/pairs/<name>_z0.png + .json     pi_0(Z), from the operator chosen with --pi0

    <name> = <file stem>-<8 hex of (key, sha256, job)>_face<i>[_a<alpha>] (the alpha tag only in sweeps,
    written like ``counterface sweep`` does: a+1, a-0.5)
    OUT/results.jsonl                   one row per face (per alpha): keys, paths, timings, metrics
    OUT/failures.jsonl                  one row per photo that failed, with ``reason`` and ``message``
    OUT/results.csv                     the table, regenerated from every results*.jsonl
    OUT/batch.json                      the configuration and settings of the last run
    OUT/pivots/                         each face's tuned pivot, reused by reruns (or --pivots DIR; pivots.py)
    OUT/claims/                         the photos being worked on right now (claims.py)

Resuming: a photo is *done* when its rows are in ``results*.jsonl`` (or a final failure is in
``failures*.jsonl``) under the same job key: manifest key + SHA-256 of the file + digest of the
configuration and alphas. Rows are appended (one ``write`` per photo, then ``fsync``) only after both
images and both sidecars of every face are on disk (written atomically), so an interrupted run loses
at most the photo in flight and a rerun never duplicates a row (rows are also de-duplicated by key
on reading). Sharded runs (``--shard I/N``) write ``results.shard-I-of-N.jsonl`` so that N machines
can share one output folder; every reader takes all of them.
"""

from .evaluate import METRIC_MARKERS, evaluate_folder, face_from_sidecar
from .exclusions import Exclusions, read_exclusions
from .manifest import (PATH_COLUMNS, Item, alpha_tag, output_stem, parse_shard, read_manifest, scan_folder,
                       select_shard, shard_of, slug)
from .options import BatchOptions, Job
from .runner import FINAL_REASONS, LOSSLESS, BatchInterrupted, Prepared, Runner, Summary, prepare
from .store import (METRIC_COLUMNS, RESERVED, Appender, load_rows, merged_rows, read_jsonl, row_key, table_files,
                    write_csv, write_table)

__all__ = [
    "BatchOptions", "Job",
    "METRIC_MARKERS", "evaluate_folder", "face_from_sidecar",
    "Exclusions", "read_exclusions",
    "PATH_COLUMNS", "Item", "alpha_tag", "output_stem", "parse_shard", "read_manifest", "scan_folder",
    "select_shard", "shard_of", "slug",
    "FINAL_REASONS", "LOSSLESS", "BatchInterrupted", "Prepared", "Runner", "Summary", "prepare",
    "METRIC_COLUMNS", "RESERVED", "Appender", "load_rows", "merged_rows", "read_jsonl", "row_key", "table_files",
    "write_csv", "write_table",
]
