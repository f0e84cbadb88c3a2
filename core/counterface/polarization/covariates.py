"""Context covariates built inside each training fold: publication month and title topics.

``--date-column COL`` adds year-month effects (one indicator per month seen in the training rows;
a month the training rows never saw gets none), ``--title-column COL`` adds the topic shares of
scikit-learn's :class:`~sklearn.decomposition.LatentDirichletAllocation` over the titles' word
counts. Both are **fitted on the training rows only** (:meth:`Context.fit`) and then applied to any
rows (:meth:`FittedContext.transform`): the vocabulary, the topics and the month levels of a
cross-fitting fold never see the articles that fold scores, so no text leaks across folds.

:class:`Context` travels with :class:`~counterface.polarization.features.OutletFeatures`
(``context``) through bootstrap draws and folds; :func:`counterface.polarization.crossfit.fit_fold`
fits it next to the outlet model. A fit is cached by the training rows' content (the placebo refits
on the same folds).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Sequence

import numpy as np

from ..errors import ConfigError

#: topics of the title LDA unless ``--topics`` says otherwise
DEFAULT_TOPICS = 5


def year_month(value: Any) -> str:
    """``YYYY-MM`` of a date written as ISO 8601 (``2020-03-14``, ``2020-03-14T10:00``, ``2020-03``);
    ValueError otherwise."""
    text = str(value or "").strip()
    if len(text) == 7 and text[4] == "-":
        text += "-01"
    try:
        d = datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError:
        try:
            d = date.fromisoformat(text[:10])
        except ValueError:
            raise ValueError(f"{value!r} is not an ISO date (YYYY-MM-DD)") from None
    return f"{d.year:04d}-{d.month:02d}"


@dataclass
class Context:
    """Raw per-article context: months (``YYYY-MM`` or None) and titles (or None), row-aligned."""

    months: np.ndarray | None = None  # (N,) object
    titles: np.ndarray | None = None  # (N,) object
    topics: int = DEFAULT_TOPICS
    seed: int = 0
    _cache: dict = field(default_factory=dict, repr=False, compare=False)

    def __len__(self) -> int:
        col = self.months if self.months is not None else self.titles
        return 0 if col is None else len(col)

    def take(self, rows) -> "Context":
        return Context(months=None if self.months is None else self.months[rows],
                       titles=None if self.titles is None else self.titles[rows], topics=self.topics,
                       seed=self.seed, _cache=self._cache)

    def names(self) -> list[str]:
        return (["year_month"] if self.months is not None else []) + \
            ([f"title_topic_{t}" for t in range(self.topics)] if self.titles is not None else [])

    def fit(self) -> "FittedContext":
        """Fit on these rows (the training rows): month levels, vocabulary and topics."""
        digest = hashlib.sha256()
        for col in (self.months, self.titles):
            digest.update(b"\x1e".join(str(v).encode() for v in ([] if col is None else col.tolist())))
            digest.update(b"\x1d")
        key = digest.hexdigest()
        if key in self._cache:
            return self._cache[key]
        months = sorted(set(self.months.tolist())) if self.months is not None else None
        lda = vec = None
        if self.titles is not None:
            from sklearn.decomposition import LatentDirichletAllocation
            from sklearn.feature_extraction.text import CountVectorizer

            vec = CountVectorizer(stop_words="english", lowercase=True)
            try:
                counts = vec.fit_transform([str(t) for t in self.titles])
            except ValueError:  # no word left (empty titles, stop words only): no topics
                vec = None
            else:
                lda = LatentDirichletAllocation(n_components=self.topics, random_state=self.seed,
                                                learning_method="batch").fit(counts)
        fitted = FittedContext(months=months, vectorizer=vec, lda=lda, topics=self.topics,
                               has_titles=self.titles is not None)
        self._cache[key] = fitted
        return fitted


@dataclass
class FittedContext:
    months: list[str] | None
    vectorizer: Any
    lda: Any
    topics: int
    has_titles: bool

    def transform(self, ctx: Context) -> np.ndarray:
        """(N, C) float64: month indicators (the training months' levels) and topic shares."""
        n = len(ctx)
        blocks = []
        if self.months is not None and ctx.months is not None:
            blocks.append((ctx.months[:, None] == np.array(self.months, dtype=object)[None, :]).astype(np.float64))
        if self.has_titles and ctx.titles is not None:
            if self.lda is None:
                blocks.append(np.full((n, self.topics), 1.0 / self.topics))
            else:
                blocks.append(self.lda.transform(self.vectorizer.transform([str(t) for t in ctx.titles])))
        if not blocks:
            return np.zeros((n, 0))
        return np.concatenate(blocks, axis=1).astype(np.float64)


def build(study, date_column: str | None, title_column: str | None, topics: int = DEFAULT_TOPICS,
          seed: int = 0) -> Context | None:
    """The :class:`Context` of the study's articles (``Study.context`` holds the raw columns); articles
    whose date does not parse are named in the ConfigError (one line)."""
    if not date_column and not title_column:
        return None
    if topics < 1:
        raise ConfigError(f"--topics must be at least 1 (got {topics})")
    months = None
    if date_column:
        values = study.context[date_column]
        months, bad = [], []
        for k, v in zip(study.keys, values.tolist()):
            try:
                months.append(year_month(v))
            except ValueError as exc:
                bad.append(f"{k!r}: {exc}")
        if bad:
            raise ConfigError(f"--date-column {date_column}: {len(bad)} articles have no readable date "
                              f"(e.g. {bad[0]})")
        months = np.array(months, dtype=object)
    titles = np.array([str(v) for v in study.context[title_column].tolist()], dtype=object) if title_column else None
    return Context(months=months, titles=titles, topics=int(topics), seed=int(seed))


def describe(date_column: str | None, title_column: str | None, topics: int) -> dict[str, Any]:
    return {"date_column": date_column, "title_column": title_column,
            "topics": topics if title_column else None,
            "date_effects": "year-month indicators, levels from each training fold" if date_column else None,
            "title_topics": (f"scikit-learn LatentDirichletAllocation ({topics} topics) on word counts "
                             "(CountVectorizer, English stop words), fitted inside each training fold only")
            if title_column else None}


def check_columns(names: Sequence[str | None]) -> None:
    seen = [n for n in names if n]
    if len(seen) != len(set(seen)):
        raise ConfigError("--date-column and --title-column must name different columns")
