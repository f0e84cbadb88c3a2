"""``counterface evaluate``: the metrics of a finished batch output folder, measured from the files
on disk and appended to ``metrics.jsonl``.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from ..errors import ConfigError, ImageError
from ..imageio import file_sha256, read_image
from .store import Appender, merged_rows, write_table

#: a row holding any of these (or an attribute score) has been measured
METRIC_MARKERS = ("psnr_outside", "identity", "score_z1")


def face_from_sidecar(record: Mapping[str, Any], photo: np.ndarray):
    """The :class:`~counterface.types.AlignedFace` a sidecar describes (crop cut again from ``photo``
    with the recorded matrix; regions are rebuilt from the landmarks)."""
    from ..metrics import transform_points, warp_to_crop
    from ..types import AlignedFace

    f = record.get("face") or {}
    try:
        matrix = np.asarray(f["matrix"], dtype=np.float64)
        landmarks = np.asarray(f["landmarks"], dtype=np.float64)
        size = int(f["size"])
    except (KeyError, TypeError, ValueError):
        raise ConfigError("sidecar has no usable face record (matrix, landmarks, size)") from None
    crop = warp_to_crop(photo, matrix, size)
    return AlignedFace(landmarks=landmarks, matrix=matrix, crop=crop, crop_landmarks=transform_points(landmarks, matrix),
                       box=None if f.get("box") is None else tuple(f["box"]), score=f.get("score"),
                       index=int(f.get("index", 0)))


def evaluate_folder(out_dir: str | os.PathLike, lpips_net: str = "alex", force: bool = False, size: int = 256,
                    progress: bool = False, exclude=None, identity_independent: Any = None,
                    ) -> tuple[int, int, list[dict[str, Any]]]:
    """Compute the metrics of every result row of a batch output folder from the files on disk and
    append them to ``metrics.jsonl``; regenerate ``results.csv``. Rows that already carry metrics
    (measured during the batch, or by an earlier ``evaluate``) are skipped unless ``force``.

    Returns (rows evaluated, rows that failed, the merged rows). Reconstruction metrics need the
    pivot and are only measured during the batch. Rows an exclusion list (``exclude``, an
    :class:`~counterface.batch.exclusions.Exclusions`) rejects are neither measured nor returned.
    ``identity_independent``: the second recogniser of the ``identity_independent*`` columns
    (:func:`counterface.metrics.independent_identity`), or None.
    """
    from .. import metrics
    from ..pipeline import Pipeline
    from ..scoring import pipeline_scorers

    out = Path(out_dir).resolve()
    rows = merged_rows(out)
    if not rows:
        raise ConfigError(f"{out}: no results*.jsonl rows; run `counterface batch` first")
    if exclude is not None:
        rows, _ = exclude.split(rows)
    todo = [r for r in rows if force or not any(r.get(m) is not None for m in METRIC_MARKERS)]
    appender = Appender(out / "metrics.jsonl")
    lp = metrics.lpips_model(lpips_net) if todo else None
    pipelines: dict[str, Any] = {}
    scorers: dict[str, Any] = {}  # job -> its scored attributes (built once per configuration)
    evaluated = failed = 0
    bar = None
    if progress and todo:
        from tqdm import tqdm

        bar = tqdm(total=len(todo), unit="face", desc="evaluate")
    try:
        for r in todo:
            try:
                side = json.loads((out / r["z1_sidecar"]).read_text(encoding="utf-8"))
                job = r.get("job") or ""
                if job not in pipelines:
                    cfg = {**side.get("config", {}), "edit": side.get("edit", {}), "preset": side.get("preset")}
                    pipelines[job] = Pipeline(cfg)
                pipe = pipelines[job]
                if job not in scorers:
                    scorers[job] = pipeline_scorers(pipe)
                if file_sha256(r["path"]) != r.get("sha256"):
                    raise ImageError(f"{r['path']}: the photo changed since the batch (sha256 differs); "
                                     "rerun `counterface batch` for it")
                photo = read_image(r["path"])
                z1 = read_image(out / r["z1"])
                z0 = read_image(out / r["z0"]) if r.get("z0") else None
                face = face_from_sidecar(side, photo)
                ev = metrics.Evaluator(identity=pipe.component("identity") if pipe.has("identity") else None,
                                       identity_independent=identity_independent, lpips=lp,
                                       aligner=pipe.component("aligner"), size=size, lpips_net=lpips_net,
                                       region=pipe.metrics_region(), scorers=scorers[job])
                mask = pipe.component("blender").mask(photo.shape[:2], face)
                values = ev.evaluate(photo, face, z1, z0, blend_mask=mask)
            except (ImageError, ConfigError, OSError, KeyError, json.JSONDecodeError) as exc:
                values = {"metrics_error": f"{type(exc).__name__}: {' '.join(str(exc).split())[:200]}"}
                failed += 1
            else:
                evaluated += 1
            appender.append([{"key": r.get("key"), "sha256": r.get("sha256"), "job": r.get("job"),
                              "face": r.get("face"), "alpha": r.get("alpha"), **values}])
            if bar is not None:
                bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        write_table(out)
    rows = merged_rows(out)
    return evaluated, failed, (rows if exclude is None else exclude.split(rows)[0])
