"""Joining the inputs of ``counterface polarization``: articles, their pairs or the researcher's scores.

Conventions (stated once): an article's key is its manifest key (the ``id`` column when present, else
the path as written, as for ``counterface batch``); ``classes`` is the sorted list of outlets the
articles have; problems that leave the run able to go on are collected as one-line ``notes`` (the
CLI prints each as ``warning: ...``); problems that stop it raise :class:`ConfigError`.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np

from ..errors import ConfigError
from .tables import read_table

#: an outlet with fewer articles than this gets a warning (its log-odds are poorly estimated)
MIN_OUTLET_ARTICLES = 5


@dataclass
class Study:
    """The joined articles, one row each, in manifest order."""

    keys: list[str]
    politician: np.ndarray  # (N,) object
    outlet: np.ndarray  # (N,) object
    cluster: np.ndarray  # (N,) object: the bootstrap's resampling unit (the key by default)
    covariates: np.ndarray  # (N, C) float64, categorical columns one-hot
    covariate_names: list[str]
    classes: list[str]
    group: np.ndarray | None = None  # (N,) object, --group labels
    image: list[Path] | None = None  # the published image Z (built-in route)
    z1: list[Path] | None = None
    z0: list[Path] | None = None
    p_z1: np.ndarray | None = None  # (N, K) the researcher's scores (--scores route)
    p_z0: np.ndarray | None = None
    score_fold: np.ndarray | None = None  # (N,) object: the fold the researcher scored each article in, or None
    score_replicates: np.ndarray | None = None  # (R, 2, N, K): per-replicate p_z1, p_z0 (their refits), or None
    pairs: list | None = None  # the used articles' :class:`~counterface.polarization.pairs.Pair`
    context: dict[str, np.ndarray] = field(default_factory=dict)  # raw --date-column/--title-column values
    meta: list | None = None  # the articles' columns, as read
    base: Path | None = None  # ARTICLES' folder (relative paths in its columns)
    covariate_context: Any = None  # their :class:`~counterface.polarization.covariates.Context` (fitted per fold)
    notes: list[str] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.keys)

    def subset(self, rows: Sequence[int]) -> "Study":
        """The articles at ``rows`` (same classes, notes and counts)."""
        rows = np.asarray(rows, dtype=int)

        def pick(v):
            if v is None:
                return None
            return [v[i] for i in rows] if isinstance(v, list) else v[rows]

        return Study(keys=pick(self.keys), politician=pick(self.politician), outlet=pick(self.outlet),
                     cluster=pick(self.cluster), covariates=pick(self.covariates),
                     covariate_names=self.covariate_names, classes=self.classes, group=pick(self.group),
                     image=pick(self.image), z1=pick(self.z1), z0=pick(self.z0), p_z1=pick(self.p_z1),
                     p_z0=pick(self.p_z0), score_fold=pick(self.score_fold),
                     score_replicates=None if self.score_replicates is None else self.score_replicates[:, :, rows],
                     pairs=pick(self.pairs),
                     context={k: pick(v) for k, v in self.context.items()},
                     meta=pick(self.meta), base=self.base,
                     covariate_context=None if self.covariate_context is None else self.covariate_context.take(rows),
                     notes=self.notes, counts=self.counts)


def read_articles(source: str | Path, photos: Mapping[str, Path] | None = None):
    """ARTICLES as manifest items (``id`` else the path as written is the key), in order. Unlike a
    batch manifest, a key may repeat: several articles (outlets) can publish one photo and share its pair.
    ``photos`` (key -> photo, from a batch folder given as PAIRS): an article with an ``id`` and no path
    column takes the photo its pair was made from."""
    from ..batch.manifest import PATH_COLUMNS, Item

    src = Path(source)
    rows = read_table(src, "articles")
    base = src.resolve().parent
    items = []
    for n, row in enumerate(rows, start=2 if src.suffix.lower() == ".csv" else 1):
        col = next((c for c in PATH_COLUMNS if row.get(c) not in (None, "")), None)
        if col is None:
            key = str(row.get("id") or "")
            if key and photos and photos.get(key) is not None:  # the batch's own photo for this id
                items.append(Item(key=key, path=Path(photos[key]).absolute(),
                                  meta={k: v for k, v in row.items() if k is not None}, base=base))
                continue
            raise ConfigError(f"{src}:{n}: no path; ARTICLES needs a column named one of {', '.join(PATH_COLUMNS)}"
                              " (or an id of a batch folder given as --pairs)")
        raw = str(row[col])
        path = Path(raw).expanduser()
        path = (path if path.is_absolute() else base / path).absolute()
        key = str(row["id"]) if row.get("id") not in (None, "") else raw
        items.append(Item(key=key, path=path, meta={k: v for k, v in row.items() if k != col and k is not None},
                          base=base))
    return items


def _need(row: Mapping[str, Any], cols: Sequence[str], where: str) -> None:
    missing = [c for c in cols if row.get(c) in (None, "")]
    if missing:
        raise ConfigError(f"{where}: missing {', '.join(missing)}")


def read_pairs(source: str | Path, alpha: float | None = None, exclude=None) -> dict[str, tuple[Path, Path]]:
    """key -> (z1, z0) from a batch output folder (its results rows, face 0 of each key) or a
    CSV/JSONL table with ``key, z1, z0`` (paths relative to the table's folder); malformed rows are
    left out (:func:`counterface.polarization.pairs.read` reports them). ``exclude`` (an
    :class:`~counterface.batch.exclusions.Exclusions`): keys whose chosen pair it rejects are left out."""
    from . import pairs as pairs_mod

    return {k: (p.z1, p.z0) for k, p in pairs_mod.read(source, alpha, exclude).pairs.items()}


def read_scores(source: str | Path, extras: dict | None = None) -> dict[str, dict[str, tuple[float, float]]]:
    """key -> {outlet: (p_z1, p_z0)} from a CSV/JSONL with columns ``key, outlet, p_z1, p_z0``.

    Optional columns: ``fold`` (the fold of the researcher's cross-fitting that scored the article)
    and ``replicate`` (rows with a replicate r >= 1 hold the scores of their model refitted for
    replicate r; rows without one are the main scores). When ``extras`` is a dict it receives
    ``{"fold": {key: fold}, "replicates": {r: {key: {outlet: (p_z1, p_z0)}}}}``."""
    src = Path(source)
    rows = read_table(src, "scores")
    out: dict[str, dict[str, tuple[float, float]]] = {}
    folds: dict[str, str] = {}
    reps: dict[int, dict[str, dict[str, tuple[float, float]]]] = {}
    for n, r in enumerate(rows, start=2 if src.suffix.lower() == ".csv" else 1):
        rep_text = r.get("replicate")
        if rep_text not in (None, ""):
            try:
                rep = int(str(rep_text))
                if rep < 1:
                    raise ValueError
            except ValueError:
                raise ConfigError(f"{src}:{n}: replicate must be an integer >= 1 (main scores: leave it empty)") from None
            target = reps.setdefault(rep, {})
        else:
            target = out
            if r.get("fold") not in (None, ""):
                folds[str(r.get("key"))] = str(r["fold"])
        _need(r, ("key", "outlet", "p_z1", "p_z0"), f"{src}:{n}")
        try:
            p1, p0 = float(r["p_z1"]), float(r["p_z0"])
        except (TypeError, ValueError):
            raise ConfigError(f"{src}:{n}: p_z1 and p_z0 must be numbers") from None
        if not (0 < p1 <= 1 and 0 < p0 <= 1):
            raise ConfigError(f"{src}:{n}: p_z1 and p_z0 must be probabilities in (0, 1] (a log-odds needs p > 0)")
        key, outlet = str(r["key"]), str(r["outlet"])
        if outlet in target.setdefault(key, {}):
            raise ConfigError(f"{src}:{n}: key {key!r} and outlet {outlet!r} appear twice"
                              + (f" in replicate {rep_text}" if rep_text not in (None, "") else ""))
        target[key][outlet] = (p1, p0)
    if extras is not None:
        extras.update(fold=folds, replicates=reps)
    return out


def encode_covariates(values: Mapping[str, Sequence[Any]], n: int) -> tuple[np.ndarray, list[str]]:
    """Columns -> (N, C) float64: a column whose every value parses as a number stays numeric, any
    other is one-hot (one column per level, ``name=level``)."""
    blocks, names = [], []
    for name, col in values.items():
        texts = ["" if v is None else str(v) for v in col]
        try:
            nums = np.array([float(t) for t in texts], np.float64)
            if not np.all(np.isfinite(nums)):
                raise ValueError
            blocks.append(nums[:, None])
            names.append(name)
        except ValueError:
            levels = sorted(set(texts))
            blocks.append(np.array([[t == lv for lv in levels] for t in texts], np.float64).reshape(n, len(levels)))
            names.extend(f"{name}={lv}" for lv in levels)
    if not blocks:
        return np.zeros((n, 0), np.float64), []
    return np.concatenate(blocks, axis=1), names


def _exclude(items, table, kept_table, exclude, notes, counts):
    """Leave out the articles whose pairs (scores) the exclusion list rejected; note and count them."""
    dropped = set(table) - set(kept_table)
    n = sum(it.key in dropped for it in items)
    counts["excluded"] = n
    notes.append(f"{n} of {len(items)} articles excluded by {exclude.source} (their pairs were rejected in review)")
    return [it for it in items if it.key not in dropped], kept_table


def _keyed(item, table: Mapping[str, Any]):
    """The article under the key its pair or scores use: the manifest key (``id``, else the path as
    written) or, failing that, a ``key`` column."""
    if item.key in table:
        return item
    alt = item.meta.get("key")
    if alt not in (None, "") and str(alt) in table:
        from dataclasses import replace

        return replace(item, key=str(alt))
    return item


def build_study(articles_src: str | Path, *, pairs: str | Path | None = None, scores: str | Path | None = None,
                covariates: Sequence[str] = (), cluster: str | None = None, group: str | None = None,
                alpha: float | None = None, exclude=None, context: Sequence[str] = ()) -> Study:
    """Read ARTICLES and join each article with its pair (built-in route) or its scores. Articles whose
    pair (or key, with scores) the exclusion list ``exclude`` rejects are left out and counted.
    ``context``: columns kept as raw text in ``Study.context`` (``--date-column``, ``--title-column``)."""
    from . import pairs as pairs_mod

    if (pairs is None) == (scores is None):
        raise ConfigError("give --pairs (the built-in outlet model) or --scores (your own model's probabilities)")
    pair_set = pairs_mod.read(pairs, alpha) if pairs is not None else None
    photos = {k: p.photo for k, p in pair_set.pairs.items()} if pair_set is not None else None
    items = read_articles(articles_src, photos)
    if not items:
        raise ConfigError(f"{articles_src}: no articles")
    needed = ["politician", "outlet", *covariates] + ([cluster] if cluster else []) + ([group] if group else [])
    for c in context:  # values may be empty (an untitled article); the column must be there
        if not any(c in it.meta for it in items):
            raise ConfigError(f"{articles_src}: no column {c!r} (named by --date-column/--title-column)")
    for it in items:
        missing = [c for c in needed if it.meta.get(c) in (None, "")]
        if missing:
            raise ConfigError(f"{articles_src}: article {it.key!r} has no {', '.join(missing)} "
                              f"(ARTICLES needs path, outlet, politician{''.join(', ' + c for c in needed[2:])})")
    notes: list[str] = []
    counts = {"articles": len(items)}
    if pair_set is not None:
        table = pair_set.pairs
        counts["pair_rows"] = pair_set.rows
        counts["pair_rows_malformed"] = len(pair_set.malformed)
        if pair_set.malformed:
            notes.append(f"{len(pair_set.malformed)} of {pair_set.rows} pair rows are malformed and left out "
                         f"({'; '.join(pair_set.malformed[:3])})")
        if pair_set.sidecar_problems:
            counts["pair_sidecars_unusable"] = pair_set.sidecar_problems
            notes.append(f"{pair_set.sidecar_problems} pairs have an unreadable or malformed sidecar: their "
                         "direction or face alignment is unknown")
        if pair_set.alpha_filtered:
            counts["pairs_other_alpha"] = pair_set.alpha_filtered
        items = [_keyed(it, table) for it in items]
        if exclude is not None:
            items, table = _exclude(items, table, pairs_mod.read(pairs, alpha, exclude).pairs, exclude, notes, counts)
        kept = [it for it in items if it.key in table]
        unpaired = [it.key for it in items if it.key not in table]
        if unpaired:
            notes.append(f"{len(unpaired)} of {len(items)} articles have no pair and are left out "
                         f"(e.g. {', '.join(repr(k) for k in unpaired[:3])})")
        counts["unpaired"] = len(unpaired)
        extra = len(set(table) - {it.key for it in items})
        if extra:
            notes.append(f"{extra} pairs match no article and are ignored")
    else:
        extras: dict = {}
        table = read_scores(scores, extras)
        items = [_keyed(it, table) for it in items]
        if exclude is not None:
            items, table = _exclude(items, table, {k: v for k, v in table.items() if not exclude.rejects({"key": k})},
                                    exclude, notes, counts)
        kept = [it for it in items if it.key in table]
        unscored = [it.key for it in items if it.key not in table]
        if unscored:
            notes.append(f"{len(unscored)} of {len(items)} articles have no scores and are left out "
                         f"(e.g. {', '.join(repr(k) for k in unscored[:3])})")
        counts["unscored"] = len(unscored)
    politicians_all = sorted({str(it.meta["politician"]) for it in items})
    politicians_kept = {str(it.meta["politician"]) for it in kept}
    for p in politicians_all:
        if p not in politicians_kept:
            notes.append(f"politician {p!r} has no {'pairs' if pairs is not None else 'scores'}; no rho for them")
    if not kept:
        raise ConfigError(f"no article of {articles_src} has {'a pair' if pairs is not None else 'scores'} "
                          "(do the keys match? an article's key is its id column, else its path as written, "
                          "or its key column)")
    classes = sorted({str(it.meta["outlet"]) for it in kept})
    if len(classes) < 2:
        raise ConfigError(f"the articles have one outlet ({classes[0]!r}); rho compares at least two")
    per_outlet = Counter(str(it.meta["outlet"]) for it in kept)
    for o in classes:
        if per_outlet[o] < MIN_OUTLET_ARTICLES:
            notes.append(f"outlet {o!r} has only {per_outlet[o]} articles (fewer than {MIN_OUTLET_ARTICLES}): "
                         "its log-odds are poorly estimated")
    cov, cov_names = encode_covariates({c: [it.meta[c] for it in kept] for c in covariates}, len(kept))
    study = Study(
        keys=[it.key for it in kept],
        politician=np.array([str(it.meta["politician"]) for it in kept], dtype=object),
        outlet=np.array([str(it.meta["outlet"]) for it in kept], dtype=object),
        cluster=np.array([str(it.meta[cluster]) if cluster else it.key for it in kept], dtype=object),
        covariates=cov, covariate_names=cov_names, classes=classes,
        group=np.array([str(it.meta[group]) for it in kept], dtype=object) if group else None,
        notes=notes, counts=counts)
    counts["used"] = len(kept)
    study.context = {c: np.array([str(it.meta.get(c) or "") for it in kept], dtype=object) for c in context}
    study.meta = [dict(it.meta) for it in kept]
    study.base = kept[0].base
    if pairs is not None:
        study.image = [it.path for it in kept]
        study.pairs = [table[it.key] for it in kept]
        study.z1 = [p.z1 for p in study.pairs]
        study.z0 = [p.z0 for p in study.pairs]
        study.counts["pairs_used"] = len({p.key for p in study.pairs})
        return study
    scored = {o for k in study.keys for o in table[k]}
    unknown = sorted(scored - set(classes))
    if unknown:
        notes.append(f"the scores have outlets the articles do not ({', '.join(map(repr, unknown))}); they are ignored")
    p1 = np.full((len(kept), len(classes)), np.nan)
    p0 = np.full((len(kept), len(classes)), np.nan)
    for i, k in enumerate(study.keys):
        for j, o in enumerate(classes):
            if o in table[k]:
                p1[i, j], p0[i, j] = table[k][o]
    lacking = [o for j, o in enumerate(classes) if np.isnan(p1[:, j]).all()]
    scored_outlets = [o for o in classes if o not in lacking]
    if len(scored_outlets) < 2:  # the documented stop, as on the built-in route
        raise ConfigError(f"the scores cover {len(scored_outlets)} outlet(s) of the articles "
                          f"({', '.join(map(repr, scored_outlets)) or 'none'}); rho compares at least two")
    if lacking:
        notes.append(f"no scores for outlets {', '.join(map(repr, lacking))}: their rho is left empty")
    ok_cols = [j for j, o in enumerate(classes) if o not in lacking]
    partial = int(np.isnan(p1[:, ok_cols]).any(axis=1).sum())
    if partial > 0:
        notes.append(f"{partial} articles lack scores for some outlets; those outlet pairs skip them")
    study.p_z1, study.p_z0 = p1, p0
    if extras["fold"]:
        study.score_fold = np.array([extras["fold"].get(k, "") for k in study.keys], dtype=object)
    if extras["replicates"]:
        reps = extras["replicates"]
        arr = np.full((len(reps), 2, len(kept), len(classes)), np.nan)
        for r_i, r in enumerate(sorted(reps)):
            for i, k in enumerate(study.keys):
                for j, o in enumerate(classes):
                    if o in reps[r].get(k, {}):
                        arr[r_i, :, i, j] = reps[r][k][o]
        study.score_replicates = arr
        counts["score_replicates"] = len(reps)
    if not extras["replicates"]:
        notes.append("--scores without a replicate column: the interval carries the articles' sampling noise only "
                     "and p_placebo is conditional on g" + ("" if extras["fold"] else
                     " (and without a fold column nothing says that g did not see these articles)"))
    return study
