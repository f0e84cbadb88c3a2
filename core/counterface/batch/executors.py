"""Where a batch runs: in this process (``local``), on a Ray cluster (``ray``) or as SLURM array jobs
(``slurm``, through submitit). Every executor builds the same :class:`~counterface.batch.runner.Runner`
from one :class:`~counterface.batch.options.Job` (the edit settings and the batch options) and writes into the same output folder, through the same results store, pivot
store and claims, so any mix of runs never duplicates or loses a pair, and a rerun after all of them
finished has nothing left to do.

* ``ray``: one actor per worker (each loads the models once, with ``gpus_per_worker`` GPUs); every
  actor is given every pending photo, in a rotated order, and the claims split them.
* ``slurm``: an array of ``jobs`` tasks; task i runs shard i/N of the photos (the same shards as
  ``--shard i/N``). A task that is pre-empted or reaches its time limit is requeued by submitit
  (checkpointing) and resumes from the store.
"""

from __future__ import annotations

import os
import shutil
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from .manifest import Item, select_shard
from .options import Job
from .runner import Runner, Summary

EXECUTORS = ("local", "ray", "slurm")


def make_runner(job: Job, pipeline=None, warn: Callable[[str], None] | None = None) -> Runner:
    """The runner of ``job`` (``pipeline``: one already built from ``job.settings``)."""
    from .. import metrics as m
    from ..pipeline import Pipeline
    from ..scoring import pipeline_scorers

    warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
    if pipeline is None:
        pipeline = Pipeline(job.settings)
    opts = job.options
    evaluator = None
    if opts.metrics:
        independent = m.independent_identity(opts.identity_independent, device=pipeline.device, warn=warn)
        evaluator = m.Evaluator(identity=pipeline.component("identity") if pipeline.has("identity") else None,
                                identity_independent=independent,
                                lpips=m.lpips_model(opts.lpips_net, device=pipeline.device),
                                aligner=pipeline.component("aligner"), lpips_net=opts.lpips_net,
                                scorers=pipeline_scorers(pipeline))
    return Runner(pipeline, opts, evaluator=evaluator)


def add(summaries: Sequence[Summary | dict]) -> Summary:
    """The sum of several workers' summaries (``total``: the largest, every worker saw every photo)."""
    out = Summary()
    for s in summaries:
        d = s.to_json() if isinstance(s, Summary) else dict(s)
        for k in ("done", "failed", "faces"):
            setattr(out, k, getattr(out, k) + int(d.get(k, 0)))
        out.total = max(out.total, int(d.get("total", 0)))
        out.seconds = max(out.seconds, float(d.get("seconds", 0.0)))
    return out


# -- ray ------------------------------------------------------------------------------------------------
def _import_ray():
    try:
        import ray
    except ImportError:
        raise ConfigError("--executor ray needs Ray: pip install 'counterface[ray]'") from None
    return ray


class BatchWorker:
    """A Ray actor: builds the runner (the models) once, then runs the photos it is given."""

    def __init__(self, job: Job):
        self.job = job
        self.runner = make_runner(job)

    def run(self, items: list[Item]) -> dict[str, Any]:
        return self.runner.run(items).to_json()


def ray_workers(ray, gpus_per_worker: float, requested: int | None) -> int:
    """Actors to start: ``requested``, else as many as the cluster's GPUs (with ``gpus_per_worker``
    > 0) or CPUs hold."""
    if requested:
        return int(requested)
    res = ray.cluster_resources()
    if gpus_per_worker > 0:
        return max(1, int(res.get("GPU", 0) // gpus_per_worker))
    return max(1, int(res.get("CPU", 1)))


def run_ray(job: Job, items: Sequence[Item], *, address: str | None = None, gpus_per_worker: float = 0.0,
            workers: int | None = None, echo: Callable[[str], None] = print) -> Summary:
    """Run ``items`` on Ray: ``address`` an existing cluster (or ``auto``), None a local one."""
    ray = _import_ray()
    started = not ray.is_initialized()
    if started:
        kwargs: dict[str, Any] = {"include_dashboard": False, "log_to_driver": True}
        if address:
            ray.init(address=address, **kwargs)
        else:  # a local cluster with room for every requested actor
            ray.init(num_cpus=max(os.cpu_count() or 1, int(workers or 0)), **kwargs)
    try:
        n = max(1, min(ray_workers(ray, gpus_per_worker, workers), len(items) or 1))
        echo(f"ray: {n} worker(s) on {ray.cluster_resources().get('CPU', 0):g} CPU(s), "
             f"{ray.cluster_resources().get('GPU', 0):g} GPU(s)")
        actor = ray.remote(num_cpus=1, num_gpus=gpus_per_worker)(BatchWorker)
        job = replace(job, options=job.options.replace(progress=False))
        actors = [actor.remote(job) for _ in range(n)]
        items = list(items)
        calls = []
        for i, a in enumerate(actors):  # every actor sees every photo, from a different start: claims split them
            start = (i * len(items)) // n
            calls.append(a.run.remote(items[start:] + items[:start]))
        try:
            return add(ray.get(calls))
        except ray.exceptions.RayError as exc:
            cause = getattr(exc, "cause", None) or exc
            if isinstance(cause, Exception) and hasattr(cause, "exit_code"):
                raise cause from None
            raise ConfigError(f"a Ray worker failed: {' '.join(str(cause).split())[:300]}") from None
    finally:
        if started:
            ray.shutdown()


# -- slurm ----------------------------------------------------------------------------------------------
def _import_submitit():
    try:
        import submitit
    except ImportError:
        raise ConfigError("--executor slurm needs submitit: pip install 'counterface[slurm]'") from None
    return submitit


def _shard_job_class():
    submitit = _import_submitit()

    class ShardJob(submitit.helpers.Checkpointable):
        """One array task: shard ``index``/``count`` of the photos. On pre-emption or timeout submitit
        calls ``checkpoint`` and requeues the same call, which resumes from the store."""

        def __call__(self, job: Job, index: int, count: int) -> dict[str, Any]:
            mine = select_shard(job.items, index, count)
            options = job.options.replace(shard=(index, count), progress=False)
            return make_runner(replace(job, options=options)).run(mine).to_json()

    return ShardJob


def run_slurm(job: Job, items: Sequence[Item], *, jobs: int, partition: str | None = None,
              gpus: int = 0, time_min: int = 60, local: bool = False, wait: bool = True,
              cpus: int | None = None, echo: Callable[[str], None] = print) -> Summary | None:
    """Submit ``jobs`` array tasks (``local``: submitit's local executor, no SLURM needed; also with
    ``COUNTERFACE_SLURM_LOCAL=1``). With ``wait``, return the sum of their summaries."""
    submitit = _import_submitit()
    local = local or os.environ.get("COUNTERFACE_SLURM_LOCAL") == "1"
    if not local and shutil.which("sbatch") is None:
        raise ConfigError("--executor slurm: sbatch not found on this machine (run it on a SLURM login node, "
                          "or use --slurm-local)")
    folder = Path(job.options.out_dir) / "slurm" / "%j"
    executor = submitit.AutoExecutor(folder=folder, cluster="local" if local else "slurm")
    params: dict[str, Any] = {"timeout_min": int(time_min), "name": "counterface-batch"}
    if gpus:
        params["gpus_per_node"] = int(gpus)
    if cpus:
        params["cpus_per_task"] = int(cpus)
    if not local:
        params["slurm_array_parallelism"] = int(jobs)
        if partition:
            params["slurm_partition"] = partition
    executor.update_parameters(**params)
    job_fn = _shard_job_class()()
    job = replace(job, items=list(items), options=job.options.replace(progress=False))
    count = int(jobs)
    submitted = executor.map_array(job_fn, [job] * count, list(range(1, count + 1)), [count] * count)
    echo(f"slurm: submitted {count} job(s): {', '.join(str(j.job_id) for j in submitted)} (logs: {folder.parent})")
    if not wait:
        return None
    results = []
    for j in submitted:
        try:
            results.append(j.result())
        except Exception as exc:  # noqa: BLE001 - submitit wraps the job's failure
            raise ConfigError(f"slurm job {j.job_id} failed: {' '.join(str(exc).split())[-300:]}") from None
    return add(results)
