"""`counterface polarization`: rho_T from the pairs (see docs/polarization.md)."""

from __future__ import annotations

from pathlib import Path

import click

from .. import kinds
from ..errors import ConfigError
from ._common import check_output_dir, finite, progress_enabled

SET_KINDS = kinds.sections(scope=kinds.POLARIZATION)  # embedder, outlet_model (counterface.kinds)


def _params(sets: tuple[str, ...]) -> dict[str, dict]:
    from ..config import parse_set

    out: dict[str, dict] = {k: {} for k in SET_KINDS}
    for item in sets:
        kind, param, value = parse_set(item)
        if kind not in SET_KINDS or param == "name":
            raise ConfigError(f"--set {item!r}: polarization takes embedder.PARAM=VALUE or outlet_model.PARAM=VALUE "
                              "(choose the components with --embedder and --outlet-model)")
        out[kind][param] = value
    return out


def _columns(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


@click.command("polarization")
@click.argument("articles", type=click.Path(path_type=Path))
@click.option("--pairs", type=click.Path(path_type=Path), default=None,
              help="A batch output folder, or a CSV/JSONL with key, z1, z0 (the built-in outlet model).")
@click.option("--scores", type=click.Path(path_type=Path), default=None,
              help="Your own model's probabilities: CSV/JSONL with key, outlet, p_z1, p_z0 (no model is fitted).")
@click.option("-o", "--output", "out_dir", required=True, type=click.Path(file_okay=False, path_type=Path),
              help="Output folder: rho.csv, slant.csv, ovp.csv, articles.csv, polarization.json, forest.png "
                   "(and group_slant.csv with --group).")
@click.option("--embedder", default="resnet18", show_default=True, metavar="NAME",
              help="Image features for g: pixels (offline), arcface, resnet18, resnet50 or a plugin's.")
@click.option("--outlet-model", "outlet_model", default="logistic", show_default=True, metavar="NAME",
              help="The outlet model g (kind outlet_model).")
@click.option("--by-politician", is_flag=True, help="One outlet model per politician instead of image x politician "
              "interactions (sets outlet_model.by_politician=true).")
@click.option("--set", "sets", multiple=True, metavar="KIND.PARAM=VALUE",
              help="A parameter of the embedder or outlet model, e.g. --set embedder.size=8 --set outlet_model.C=0.5.")
@click.option("--covariates", default=None, metavar="A,B",
              help="Article columns X given to g (numeric or categorical).")
@click.option("--date-column", default=None, metavar="COLUMN",
              help="Article column with the publication date (ISO): year-month effects in g, levels fitted per "
                   "training fold.")
@click.option("--title-column", default=None, metavar="COLUMN",
              help="Article column with the title: topic shares (scikit-learn LDA) in g, fitted inside each training "
                   "fold only.")
@click.option("--topics", type=click.IntRange(min=1), default=None,
              help="Topics of the title LDA (--title-column; default 5).")
@click.option("--crop", type=click.Choice(["photo", "face"]), default="photo", show_default=True,
              help="What the embedder sees: the whole published image and its pair, or the edited face's aligned crop "
                   "(from the pair's sidecar, else the largest face found by --aligner), for any embedder.")
@click.option("--aligner", default=None, metavar="NAME",
              help="Finds the faces (--crop face, identity check) that the pairs do not record, and the reference "
                   "photos' faces (default: the aligner the batch recorded in the pairs' sidecars, e.g. dlib).")
@click.option("--scorer", default=None, metavar="NAME",
              help="Manipulation check: the scorer run on Z1 and Z0 (default: the one named like the pairs' attribute; "
                   "none to skip).")
@click.option("--references", type=click.Path(exists=True, file_okay=False), default=None, metavar="DIR",
              help="Identity check: reference photos DIR/<name>.jpg or DIR/<name>/*.jpg of each politician (the name "
                   "from --reference-column); also run when ARTICLES has a reference column.")
@click.option("--reference-column", default=None, metavar="COLUMN",
              help="With --references: the article column naming the person (default: politician).")
@click.option("--matcher", default=None, metavar="NAME",
              help="Identity check: the identity component that compares faces (default: the batch's matcher, "
                   "recorded in the pairs' sidecars; dlib in the reference presets).")
@click.option("--match-threshold", type=finite(), default=None, metavar="T",
              help="Identity check: lowest cosine similarity to the reference (default: the matcher's, 0.92 for dlib); "
                   "articles below it are left out.")
@click.option("--folds", type=int, default=2, show_default=True, help="K of the K-fold cross-fitting.")
@click.option("--splits", type=int, default=3, show_default=True, metavar="S",
              help="Repeated cross-fitting: rho is the median over S random K-fold splits (bootstrap and placebo too).")
@click.option("--min-articles", "min_articles", type=int, default=4, show_default=True, metavar="N",
              help="A politician with fewer articles (or seen by one outlet only) gets no rho.")
@click.option("--reference-outlet", default=None, metavar="OUTLET",
              help="Compare every outlet with this one (rho rows and slant); default: every outlet pair, and the "
                   "first outlet in sorted order as the slant's reference.")
@click.option("--bootstrap", type=int, default=200, show_default=True, metavar="B",
              help="Bootstrap replicates (each refits g on the built-in route).")
@click.option("--bias-correction/--no-bias-correction", "bias_correction", default=True, show_default=True,
              help="Subtract the bootstrap's estimate of g's small-sample bias from rho and slant (rho_uncorrected "
                   "keeps the estimate before it; built-in route with --bootstrap > 0).")
@click.option("--cluster", default=None, metavar="COLUMN", help="Resample (and fold) whole clusters of this column.")
@click.option("--permutations", type=int, default=999, show_default=True, metavar="R",
              help="Most placebo permutations; drawing stops once every rho has 20 as extreme (Besag-Clifford).")
@click.option("--placebo", type=click.Choice(["auto", "outlets", "pairs"]), default="auto", show_default=True,
              help="outlets: permute outlet labels within politician and refit g; pairs: swap Z1/Z0 within pairs. "
                   "auto: outlets on the built-in route, pairs with --scores.")
@click.option("--group", default=None, metavar="COLUMN",
              help="Also report rho per group of politicians (e.g. party), with a placebo that permutes the labels.")
@click.option("--alpha", type=finite(), default=None, help="Use the pairs made at this alpha (a sweep's batch folder).")
@click.option("--level", type=finite(min=0, max=1, min_open=True, max_open=True), default=0.95, show_default=True,
              help="Confidence level of the intervals.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of folds, bootstrap and placebo.")
@click.option("--jobs", type=click.IntRange(min=1), default=1, show_default=True, help="Processes for bootstrap and placebo replicates.")
@click.option("--plot/--no-plot", default=True, show_default=True, help="Write the forest plot (needs matplotlib).")
@click.option("--exclude", "exclude_file", type=click.Path(path_type=Path), default=None, metavar="CSV",
              help="Exclusion list: the review CSV of `counterface report` (key, face, alpha, decision); articles "
                   "whose pair is rejected are left out and counted.")
def polarization_cmd(articles, pairs, scores, out_dir, embedder, outlet_model, by_politician, sets, covariates, folds,
                     splits, min_articles, reference_outlet, bootstrap, bias_correction, cluster, permutations, placebo, group, alpha,
                     level, seed, jobs, plot, exclude_file, date_column, title_column, topics, crop, aligner, scorer,
                     references, reference_column, matcher, match_threshold) -> None:
    """Estimate rho_T(p, y1, y2) from ARTICLES (path, outlet, politician, id) and their pairs.

    Fits the outlet model g with K-fold cross-fitting (or takes --scores), writes rho.csv, slant.csv,
    ovp.csv, articles.csv, polarization.json and forest.png into OUT, and prints g's held-out accuracy.
    """
    from .. import polarization

    if pairs is None and scores is None:
        raise ConfigError("give --pairs PAIRS (built-in outlet model) or --scores FILE")
    if pairs is not None and scores is not None:
        raise ConfigError("give either --pairs or --scores, not both")
    if jobs < 1:
        raise ConfigError("--jobs must be >= 1")
    params = _params(sets)
    exclude = None
    if exclude_file is not None:
        from ..batch.exclusions import read_exclusions

        exclude = read_exclusions(exclude_file)
    if by_politician:
        params["outlet_model"]["by_politician"] = True
    check_output_dir(out_dir)
    settings = polarization.Settings(folds=folds, splits=splits, min_articles=min_articles, bootstrap=bootstrap, bias_correction=bias_correction,
                                     permutations=permutations, placebo=placebo,
                                     reference_outlet=reference_outlet, level=level, seed=seed, jobs=jobs)
    bars: dict = {}

    def progress(stage: str, i: int, n: int) -> None:
        if not progress_enabled():
            return
        from tqdm import tqdm

        if stage not in bars:
            bars[stage] = tqdm(total=n or None, desc=stage, unit="img" if stage == "embed" else "rep",
                               leave=False, file=click.get_text_stream("stderr"))
        bars[stage].update(i if stage == "embed" else 1)

    try:
        polarization.run(articles, out_dir, pairs=pairs, scores=scores, embedder=embedder, outlet_model=outlet_model,
                         embedder_params=params["embedder"], model_params=params["outlet_model"],
                         covariates=_columns(covariates), cluster=cluster, group=group, alpha=alpha,
                         date_column=date_column, title_column=title_column, topics=topics, crop=crop,
                         aligner=aligner, scorer=scorer, references=references, reference_column=reference_column,
                         matcher=matcher, match_threshold=match_threshold,
                         settings=settings, plot=plot, echo=click.echo, exclude=exclude,
                         warn=lambda m: click.echo(f"warning: {m}", err=True), progress=progress)
    finally:
        for bar in bars.values():
            bar.close()
