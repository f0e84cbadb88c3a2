"""``counterface polarization`` as one function: read, join, embed, estimate, write.

The CLI (:mod:`counterface.cli.polarization`) is a thin layer over :func:`run`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from . import analysis, data, features, outputs


def _versions() -> dict[str, Any]:
    from ..provenance import environment, package_version

    env = environment()
    env["scikit-learn"] = package_version("scikit-learn")
    return env


def run(articles: str | Path, out_dir: str | Path, *, pairs: str | Path | None = None,
        scores: str | Path | None = None, embedder: str = "resnet18", outlet_model: str = "logistic",
        embedder_params: dict | None = None, model_params: dict | None = None, covariates: Sequence[str] = (),
        cluster: str | None = None, group: str | None = None, alpha: float | None = None,
        settings: analysis.Settings | None = None, plot: bool = True,
        echo: Callable[[str], None] = print, warn: Callable[[str], None] = print,
        progress: Callable[[str, int, int], None] | None = None, exclude=None) -> dict[str, Any]:
    """Run the whole analysis; returns ``{"paths": ..., "result": Result, "study": Study, "record": ...}``.

    ``echo`` receives the report lines, ``warn`` one line per input problem the run went past.
    """
    import counterface
    from ..provenance import component_record

    settings = settings or analysis.Settings()
    analysis.check_settings(settings)
    out = Path(out_dir).resolve()
    t0 = time.perf_counter()
    study = data.build_study(articles, pairs=pairs, scores=scores, covariates=covariates, cluster=cluster,
                             group=group, alpha=alpha, exclude=exclude)
    n_clusters = len(set(study.cluster.tolist()))
    if study.image is not None and n_clusters < settings.folds:  # before embedding anything
        raise ConfigError(analysis.folds_message(settings.folds, len(study), n_clusters))
    inputs = {"articles": str(Path(articles).resolve())}
    components: dict[str, Any] = {}
    embedding_stats = None
    model = None
    embeddings = None
    if study.image is not None:
        inputs["pairs"] = str(Path(pairs).resolve())
        missing = [i for i in range(len(study)) if not all(Path(p).is_file() for p in
                                                           (study.image[i], study.z1[i], study.z0[i]))]
        if missing:
            study.notes.append(f"{len(missing)} articles have a missing image, Z1 or Z0 file and are left out "
                               f"(e.g. {study.keys[missing[0]]!r})")
            study.counts["missing_files"] = len(missing)
            keep = [i for i in range(len(study)) if i not in set(missing)]
            if not keep:
                raise ConfigError("no article has all of its image, Z1 and Z0 files")
            study = study.subset(keep)
            study.counts["used"] = len(study)
        for note in study.notes:
            warn(note)
        emb = counterface.create("embedder", embedder, **(embedder_params or {}))
        model = counterface.create("outlet_model", outlet_model, **(model_params or {}))
        components = {"embedder": component_record("embedder", emb),
                      "outlet_model": component_record("outlet_model", model)}
        n = len(study)
        rows, embedding_stats = features.embed_files(
            emb, list(study.image) + list(study.z1) + list(study.z0),
            cache_file=out / "cache" / "embeddings.npz", out_dir=out,
            progress=(lambda k: progress("embed", k, 0)) if progress else None)
        bad = embedding_stats.pop("unreadable")
        if bad:
            broken = np.isnan(rows).any(axis=1).reshape(3, n).any(axis=0)
            first = next(iter(bad.items()))
            warn(f"{int(broken.sum())} articles have an unreadable image, Z1 or Z0 and are left out "
                 f"(e.g. {first[0]}: {first[1]})")
            study.notes.append(f"{int(broken.sum())} articles have an unreadable image, Z1 or Z0 and are left out")
            study.counts["unreadable"] = int(broken.sum())
            keep = np.flatnonzero(~broken)
            if not len(keep):
                raise ConfigError("no article has readable image, Z1 and Z0 files")
            study = study.subset(keep)
            study.counts["used"] = len(study)
            rows = np.concatenate([rows[:n][keep], rows[n:2 * n][keep], rows[2 * n:][keep]])
            n = len(study)
        embeddings = (rows[:n], rows[n:2 * n], rows[2 * n:])
        echo(f"embedded {embedding_stats['images']} images with {embedder} "
             f"({embedding_stats['cached']} from the cache), {rows.shape[1]} features each")
    else:
        inputs["scores"] = str(Path(scores).resolve())
        for note in study.notes:
            warn(note)
    if study.image is not None:  # copies of one image file share a cluster (folds, bootstrap, placebo)
        from ..imageio import file_sha256
        from .crossfit import join_copies

        study.cluster, dup = join_copies(study.cluster, [file_sha256(p) for p in study.image])
        study.counts["duplicate_images"] = dup
        echo(f"duplicates: {dup} articles reuse the image file of another article (same content); "
             f"copies share a cluster ({len(set(study.cluster.tolist()))} clusters)")
    echo(f"articles: {study.counts['articles']} read, {len(study)} used; politicians: "
         f"{len(set(study.politician.tolist()))}; outlets: {', '.join(study.classes)}")
    res = analysis.analyse(study, settings, model=model, embeddings=embeddings, progress=progress)
    if res.dropped:
        study.counts["politicians_without_rho"] = len(res.dropped)
        msg = (f"{len(res.dropped)} politicians get no rho: "
               + "; ".join(f"{p!r} ({why})" for p, why in res.dropped.items()))
        warn(msg)
        study.notes.append(msg)
    study = res.study if res.study is not None else study
    if res.heldout is not None:
        h = res.heldout
        echo(f"outlet model g, held out ({settings.folds}-fold cross-fitting, {settings.splits} splits): accuracy "
             f"{_f(h['accuracy'])} (chance {_f(h['chance_accuracy'])}, balanced {_f(h['balanced_accuracy'])}), "
             f"log-loss {_f(h['log_loss'])} (uniform {_f(h['uniform_log_loss'])})")
        if h["accuracy"] is not None and h["accuracy"] <= h["chance_accuracy"] \
                and h["log_loss"] >= h["uniform_log_loss"]:
            msg = "the outlet model predicts held-out outlets no better than chance: its rho means little"
            warn(msg)
            study.notes.append(msg)
    else:
        if study.score_replicates is not None:
            echo(f"outlet model: your --scores with {len(study.score_replicates)} refitted replicates (the interval "
                 "carries g's noise through them; the p-value is conditional on g)")
        else:
            echo("outlet model: your --scores (no refit: the interval carries the articles' sampling noise only, "
                 "and the p-value is conditional on g)")
    from ..imageio import file_sha256

    for k in list(inputs):
        if Path(inputs[k]).is_file():
            inputs[f"{k}_sha256"] = file_sha256(inputs[k])
    record = {
        "command": "polarization",
        "route": "builtin" if res.heldout is not None else "scores",
        "inputs": inputs,
        "settings": res.settings | {"covariates": list(covariates), "cluster": cluster, "group": group,
                                    "alpha": alpha, "embedder": embedder if model else None,
                                    "outlet_model": outlet_model if model else None},
        "seeds": {"seed": settings.seed, "folds": "SeedSequence([seed, 0, split])",
                  "bootstrap": "SeedSequence([seed, 1, b]), its folds SeedSequence([seed, 1, b, split])",
                  "placebo": "SeedSequence([seed, 2, r]), its folds SeedSequence([seed, 2, r, split])",
                  "group_placebo": "SeedSequence([seed, 3, r])"},
        "components": components,
        "outlet_model_heldout": res.heldout,
        "ci": {"method": "percentile bootstrap over " + (f"clusters ({cluster})" if cluster else "articles"),
               "level": settings.level, "refits_outlet_model": res.heldout is not None or study.score_replicates is not None,
               "replicates": res.replicates,
               "estimate": "median over the cross-fitting splits" if res.heldout is not None else "your scores"},
        "no_rho": res.dropped,
        "placebo": {"method": {"outlets": "outlet labels permuted by whole clusters within politician, g refitted",
                               "pairs": "Z1 and Z0 swapped within pairs (per cluster)"}[res.placebo],
                    "permutations": settings.permutations, "drawn": res.replicates.get("permutations_drawn"),
                    "stopping": f"Besag-Clifford: stop at {settings.stop_hits} draws as extreme, for every statistic",
                    "conditional_on_g": res.placebo == "pairs",
                    "group": "contrast: group labels permuted across politicians" if group else None},
        "classes": res.classes,
        "reference_outlet": res.classes[res.layout.reference],
        "covariate_columns": study.covariate_names,
        "counts": study.counts,
        "embeddings": embedding_stats,
        "warnings": list(study.notes),
        "versions": _versions(),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    paths = outputs.write_all(out, study, res, record, group_column=group, plot=plot)
    for r in outputs.rho_rows(res, group):
        echo(f"rho[{r['politician']}: {r['outlet_1']} vs {r['outlet_2']}] = {_f(r['rho'])} "
             f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}] n={r['n']} p_placebo={_f(r['p_placebo'], 4)}"
             + (f" contrast={_f(r['contrast'])} [{_f(r['contrast_ci_low'])}, {_f(r['contrast_ci_high'])}] "
                f"p_contrast={_f(r['p_contrast'], 4)}" if r.get("contrast") is not None else "")
             + (f" FLAG: {r['flag']}" if r.get("flag") else ""))
    echo(f"wrote {', '.join(p.name for p in paths.values())} in {out}")
    return {"paths": paths, "result": res, "study": study, "record": record}


def _f(v, digits: int = 3) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return "nan" if v != v else f"{v:.{digits}f}"
