"""``counterface polarization`` as one function: read, join, embed, estimate, write.

The CLI (:mod:`counterface.cli.polarization`) is a thin layer over :func:`run`.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from typing import Any, Callable, Sequence

from ..errors import ConfigError
from ..paths import check_outputs
from . import analysis, data, features, outputs
from . import covariates as covariates_mod
from . import faces, manipulation, visibility
from . import identity as identity_mod
from . import group_slant as group_slant_mod
from . import ovp as ovp_mod
from . import pairs as pairs_mod


#: what ``--crop`` embeds: the whole published image and its pair, or the edited face's aligned crop
CROPS = ("photo", "face")


def _refuse_contradictions(scores, **given) -> None:
    """Options that cannot act are refused in one line, never silently ignored."""
    if scores is not None:
        acting = {"date_column": "--date-column", "title_column": "--title-column", "topics": "--topics",
                  "scorer": "--scorer", "references": "--references", "reference_column": "--reference-column",
                  "matcher": "--matcher", "match_threshold": "--match-threshold"}
        named = [flag for k, flag in acting.items() if given.get(k) is not None]
        if given.get("crop") == "face":
            named.append("--crop face")
        if named:
            raise ConfigError(f"{named[0]} acts on the pairs and the built-in outlet model; --scores has neither "
                              "(give your own model its covariates, faces and checks)")
    if given.get("topics") is not None and not given.get("title_column"):
        raise ConfigError("--topics is the number of title topics: it needs --title-column")


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
        progress: Callable[[str, int, int], None] | None = None, exclude=None,
        date_column: str | None = None, title_column: str | None = None,
        topics: int | None = None, crop: str = "photo", aligner: str | None = None,
        scorer: str | None = None, references: str | Path | None = None, reference_column: str | None = None,
        matcher: str | None = None, match_threshold: float | None = None) -> dict[str, Any]:
    """Run the whole analysis; returns ``{"paths": ..., "result": Result, "study": Study, "record": ...}``.

    ``echo`` receives the report lines, ``warn`` one line per input problem the run went past.
    ``date_column``/``title_column``: context covariates fitted inside each training fold
    (:mod:`.covariates`); ``crop``: ``photo`` or ``face`` (embed the edited face's aligned crop,
    :mod:`.faces`; ``aligner`` finds it when the pair does not record it, default the batch's own); ``scorer``: the manipulation
    check's scorer (default the pairs' attribute's; ``none`` skips it, :mod:`.manipulation`);
    ``references``/``reference_column``/``matcher``/``match_threshold``: the identity check (:mod:`.identity`).
    """
    import counterface
    from ..provenance import component_record

    settings = settings or analysis.Settings()
    analysis.check_settings(settings)
    out = Path(out_dir).resolve()
    t0 = time.perf_counter()
    check_outputs([out / name for name in outputs.OUTPUT_FILES],
                  [articles, pairs if pairs is not None and not Path(pairs).is_dir() else None, scores,
                   getattr(exclude, "source", None)])
    covariates_mod.check_columns([date_column, title_column])
    _refuse_contradictions(scores, date_column=date_column, title_column=title_column, topics=topics, crop=crop,
                           scorer=scorer, references=references, reference_column=reference_column,
                           matcher=matcher, match_threshold=match_threshold)
    topics = covariates_mod.DEFAULT_TOPICS if topics is None else topics
    study = data.build_study(articles, pairs=pairs, scores=scores, covariates=covariates, cluster=cluster,
                             group=group, alpha=alpha, exclude=exclude,
                             context=[c for c in (date_column, title_column) if c])
    study.covariate_context = covariates_mod.build(study, date_column, title_column, topics, settings.seed)
    n_clusters = len(set(study.cluster.tolist()))
    if study.image is not None and n_clusters < settings.folds:  # before embedding anything
        raise ConfigError(analysis.folds_message(settings.folds, len(study), n_clusters))
    inputs = {"articles": str(Path(articles).resolve())}
    operators = identity = checked = seen = None
    if crop not in CROPS:
        raise ConfigError(f"--crop must be one of {', '.join(CROPS)}")
    components: dict[str, Any] = {}
    embedding_stats = None
    model = None
    embeddings = None
    if study.image is not None:
        inputs["pairs"] = str(Path(pairs).resolve())
        operators = pairs_mod.operators(study.pairs)
        study.notes.extend(pairs_mod.operator_notes(operators))
        finder = faces.FaceFinder(aligner or operators.get("aligner"))
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
        identity = None
        if identity_mod.wanted(study.meta or [], references) or reference_column or matcher \
                or match_threshold is not None:
            identity = identity_mod.check(study, references=references, reference_column=reference_column,
                                          matcher=matcher, threshold=match_threshold, finder=finder,
                                          recorded_matcher=operators.get("matcher"))
        if identity is not None:
            study.notes.extend(identity_mod.notes(identity))
            study.counts.update({f"identity_{k}": v for k, v in identity.counts.items()})
            if not identity.keep:
                raise ConfigError("no article's edited face is its politician (identity check); see the references")
            study = study.subset(identity.keep)
            study.counts["used"] = len(study)
        crops = None
        if crop == "face":
            crops = finder.matrices(study.pairs, study.image)
            faceless = [i for i, m in enumerate(crops) if m is None]
            if faceless:
                study.notes.append(f"--crop face: {len(faceless)} articles have no face to crop and are left out "
                                   f"(e.g. {study.keys[faceless[0]]!r})")
                study.counts["no_face"] = len(faceless)
                keep = [i for i, m in enumerate(crops) if m is not None]
                if not keep:
                    raise ConfigError("--crop face: no article has a face to crop")
                study = study.subset(keep)
                crops = [crops[i] for i in keep]
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
            progress=(lambda k: progress("embed", k, 0)) if progress else None,
            crops=None if crops is None else crops * 3)
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
             f"({embedding_stats['cached']} from the cache), {rows.shape[1]} features each"
             + (" (aligned face crops)" if crop == "face" else ""))
        seen = visibility.measure(*embeddings)
        echo(visibility.line(seen, embedder, "face crops" if crop == "face" else "whole images"))
        if (msg := visibility.warning(seen, crop)) is not None:
            warn(msg)
            study.notes.append(msg)
        name, why = manipulation.scorer_name(scorer, (operators or {}).get("attribute"))
        if name is not None:
            checked = manipulation.check(study, name, level=settings.level, seed=settings.seed)
            echo(manipulation.line(checked))
            if (msg := manipulation.warning(checked)) is not None:
                warn(msg)
                study.notes.append(msg)
        else:
            checked = {"scorer": None, "skipped": why}
            warn(why)
            study.notes.append(why)
    else:
        inputs["scores"] = str(Path(scores).resolve())
        if identity_mod.wanted(study.meta or [], None):
            study.notes.append("the articles' reference column is not checked with --scores (there are no pairs' "
                               "faces to compare)")
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
    if res.study is not None:  # without the politicians that get no rho
        if embeddings is not None and len(res.study) != len(study):
            embeddings = tuple(e[res.kept] for e in embeddings)
        study = res.study
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
    ovp = None
    if model is not None:
        ovp = ovp_mod.estimate(study, model, embeddings, bootstrap=settings.bootstrap, level=settings.level,
                               seed=settings.seed, jobs=settings.jobs)
        for note in ovp.notes:
            warn(note)
            study.notes.append(note)
    else:
        msg = "no OVP with --scores: it needs two independently fitted outlet models"
        warn(msg)
        study.notes.append(msg)
    gslant = group_slant_mod.estimate(study, res, settings=settings, model=model, embeddings=embeddings)
    from ..imageio import file_sha256

    for k in list(inputs):
        if Path(inputs[k]).is_file():
            inputs[f"{k}_sha256"] = file_sha256(inputs[k])
    record = {
        "command": "polarization",
        "route": "builtin" if res.heldout is not None else "scores",
        "inputs": inputs,
        "settings": res.settings | {"covariates": list(covariates), "cluster": cluster, "group": group,
                                    "date_column": date_column, "title_column": title_column,
                                    "crop": crop if model else None, "scorer": scorer,
                                    "topics": topics if title_column else None,
                                    "alpha": alpha, "embedder": embedder if model else None,
                                    "outlet_model": outlet_model if model else None},
        "seeds": {"seed": settings.seed, "folds": "SeedSequence([seed, 0, split])",
                  "bootstrap": "SeedSequence([seed, 1, b]), its folds SeedSequence([seed, 1, b, split])",
                  "placebo": "SeedSequence([seed, 2, r]), its folds SeedSequence([seed, 2, r, split])",
                  "group_placebo": "SeedSequence([seed, 3, r])",
                  "ovp_parts": "SeedSequence([seed, 4])", "ovp_bootstrap": "SeedSequence([seed, 4, b])",
                  "group_slant_bootstrap": "SeedSequence([seed, 5, b])",
                  "group_slant_placebo": "SeedSequence([seed, 6, r])",
                  "manipulation_bootstrap": "SeedSequence([seed, 7, b])",
                  "title_topics": "seed"},
        "components": components,
        "outlet_model_heldout": res.heldout,
        "ci": {"method": "estimate +- z x the standard deviation of a bootstrap over "
                         + (f"clusters ({cluster}, joined with copies of one image)" if cluster else
                            "clusters (copies of one image; else articles)"),
               "level": settings.level, "refits_outlet_model": res.heldout is not None or study.score_replicates is not None,
               "replicates": res.replicates,
               "estimate": ("median over the cross-fitting splits"
                            + (", minus the bootstrap's bias estimate (mean of the replicates minus the estimate; "
                               "rho_uncorrected is the estimate before it)" if res.bias is not None
                               and np.isfinite(res.bias).any() else "")) if res.heldout is not None else "your scores"},
        "no_rho": res.dropped,
        "placebo": {"method": {"outlets": "outlet labels permuted by whole clusters within politician, g refitted",
                               "pairs": "Z1 and Z0 swapped within pairs (per cluster)"}[res.placebo],
                    "permutations": settings.permutations, "drawn": res.replicates.get("permutations_drawn"),
                    "stopping": f"Besag-Clifford: stop at {settings.stop_hits} draws as extreme, for every statistic",
                    "conditional_on_g": res.placebo == "pairs",
                    "group": "contrast: group labels permuted across politicians" if group else None},
        "pairs": {"source": "batch" if Path(pairs).is_dir() else "table", **operators} if operators else None,
        "pi1": operators.get("pi1") if operators else None,
        "pi0": operators.get("pi0") if operators else None,
        "classes": res.classes,
        "reference_outlet": res.classes[res.layout.reference],
        "reference_outlet_named": settings.reference_outlet is not None,
        "manipulation_check": checked,
        "edit_visibility": seen,
        "identity": None if identity is None else identity.record,
        "context": covariates_mod.describe(date_column, title_column, topics),
        "ovp": None if ovp is None else {
            "method": "sqrt of the covariance across outlets of two independent fits' counterfactual log-ratios "
                      f"(three parts: each scored by models fitted on the other two), bootstrap {ovp.replicates} "
                      f"of {ovp.requested} replicates",
            "cov": {p: (None if np.isnan(c) else float(c)) for p, c in zip(ovp.politicians, ovp.cov)}},
        "group_slant": None if gslant is None else {
            "method": "mean d(y, reference) of the group's articles minus the other articles'; bootstrap refits g, "
                      "placebo permutes the group labels among politicians", "replicates": gslant.replicates},
        "covariate_columns": study.covariate_names,
        "counts": study.counts,
        "embeddings": embedding_stats,
        "warnings": list(study.notes),
        "versions": _versions(),
        "seconds": round(time.perf_counter() - t0, 3),
    }
    paths = outputs.write_all(out, study, res, record, group_column=group, plot=plot, ovp=ovp, group_slant=gslant)
    for r in outputs.rho_rows(res, group):
        echo(f"rho[{r['politician']}: {r['outlet_1']} vs {r['outlet_2']}] = {_f(r['rho'])} "
             f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}] n={r['n']} p_placebo={_f(r['p_placebo'], 4)}"
             + (f" contrast={_f(r['contrast'])} [{_f(r['contrast_ci_low'])}, {_f(r['contrast_ci_high'])}] "
                f"p_contrast={_f(r['p_contrast'], 4)}" if r.get("contrast") is not None else "")
             + _flag(r))
    ref = res.classes[res.layout.reference]
    echo(f"slant against the reference outlet {ref}" + ("" if settings.reference_outlet is not None else
         " (none named: the first outlet in sorted order; name one with --reference-outlet)"))
    for r in outputs.slant_rows(res):
        if r["outlet"] != ref:
            echo(f"slant[{r['outlet']} vs {ref}] = {_f(r['slant'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}] "
                 f"n={r['n']} p_placebo={_f(r['p_placebo'], 3)}" + _flag(r))
    if ovp is not None:
        for r in outputs.ovp_rows(ovp):
            echo(f"OVP[{r['politician']}] = {_f(r['ovp'])} [{_f(r['ci_low'])}, {_f(r['ci_high'])}] n={r['n']}"
                 + _flag(r))
    if gslant is not None:
        for r in outputs.group_slant_rows(gslant, group):
            if r["outlet"] != ref:
                echo(f"group slant[{r['group']} at {r['outlet']} vs {ref}] = {_f(r['slant'])} "
                     f"[{_f(r['ci_low'])}, {_f(r['ci_high'])}] n={r['n']} p_placebo={_f(r['p_placebo'], 3)}"
                     + _flag(r))
    echo(f"wrote {', '.join(p.name for p in paths.values())} in {out}")
    return {"paths": paths, "result": res, "study": study, "record": record}


def _flag(row: dict) -> str:
    """`` FLAG: <why>`` for a printed line whose row has a non-empty ``flag`` (the CSV column), else ""."""
    return f" FLAG: {row['flag']}" if row.get("flag") else ""


def _f(v, digits: int = 3) -> str:
    try:
        v = float(v)
    except (TypeError, ValueError):
        return "-"
    return "nan" if v != v else f"{v:.{digits}f}"
