"""The authors' outputs and context covariates, unit by unit: OVP's two-fit covariance, the group
slant and its label placebo, date/title covariates fitted inside each training fold only."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface.polarization import covariates, crossfit, group_slant, ovp
from counterface.polarization.features import OutletFeatures


# -- OVP ---------------------------------------------------------------------------------------------------
@settings(max_examples=40, deadline=None)
@given(st.integers(2, 6), st.integers(0, 10_000))
def test_ovp_covariance_is_symmetric_and_a_variance_when_the_fits_agree(k, seed):
    rng = np.random.default_rng(seed)
    ra, rb = rng.normal(size=(30, k)), rng.normal(size=(30, k))
    pol = np.array(["a", "b"] * 15, dtype=object)
    c = ovp.covariances(ra, rb, pol, ["a", "b"])
    assert np.allclose(c, ovp.covariances(rb, ra, pol, ["a", "b"]))
    same = ovp.covariances(ra, ra, pol, ["a", "b"])
    assert np.allclose(same, [np.var(ra[pol == p].mean(0), ddof=1) for p in ("a", "b")])
    shifted = ovp.covariances(ra + 5.0, rb - 2.0, pol, ["a", "b"])  # a common shift across outlets cancels
    assert np.allclose(shifted, c)


def test_two_independent_fits_remove_the_noise_bias_of_a_squared_dispersion():
    """Simulated: true log-ratios s across 6 outlets, each fit adds its own noise. The covariance of
    two fits is unbiased for var(s); one fit's variance is inflated by the noise."""
    rng = np.random.default_rng(0)
    s = np.array([0.6, -0.4, 0.1, 0.3, -0.5, -0.1])
    true = np.var(s, ddof=1)
    pol = np.array(["p"] * 4, dtype=object)
    two, one = [], []
    for _ in range(4000):
        ra = np.tile(s + rng.normal(0, 0.5, 6), (4, 1))  # fit A's estimation noise, per outlet
        rb = np.tile(s + rng.normal(0, 0.5, 6), (4, 1))  # fit B's, independent of A's
        two.append(ovp.covariances(ra, rb, pol, ["p"])[0])
        one.append(ovp.covariances(ra, ra, pol, ["p"])[0])
    assert np.mean(two) == pytest.approx(true, abs=0.02)
    assert np.mean(one) > true + 0.15  # + noise variance 0.25


def test_ovp_needs_two_outlets_per_politician():
    ra = np.array([[1.0, np.nan], [2.0, np.nan]])
    assert np.isnan(ovp.covariances(ra, ra, np.array(["p", "p"], dtype=object), ["p"])[0])


# -- group slant --------------------------------------------------------------------------------------------
def test_group_slant_of_two_groups_is_one_contrast_and_the_reference_is_zero():
    rng = np.random.default_rng(1)
    p1, p0 = rng.dirichlet(np.ones(3), 40), rng.dirichlet(np.ones(3), 40)
    d = group_slant.reference_contributions(p1, p0, 0)
    assert np.allclose(d[:, 0], 0)
    labels = np.array(["D", "R"] * 20, dtype=object)
    vals, counts = group_slant.values(d, labels, ["D", "R"])
    assert np.allclose(vals[0], -vals[1]) and (counts == 20).all()
    r = labels == "R"
    assert np.allclose(vals[1], d[r].mean(0) - d[~r].mean(0))


def test_reference_contributions_are_recovered_from_any_pair_layout():
    from counterface.polarization import estimate

    rng = np.random.default_rng(2)
    p1, p0 = rng.dirichlet(np.ones(4), 10), rng.dirichlet(np.ones(4), 10)
    for ref in range(4):
        want = group_slant.reference_contributions(p1, p0, ref)
        for pairs in (estimate.outlet_pairs(list("abcd")), estimate.outlet_pairs(list("abcd"), "abcd"[ref])):
            got = group_slant.from_pairs(estimate.contributions(p1, p0, pairs), pairs, 4, ref)
            assert np.allclose(got, want)


# -- context covariates ---------------------------------------------------------------------------------------
def test_year_month_parses_iso_dates_and_refuses_others():
    assert covariates.year_month("2020-03-14") == "2020-03"
    assert covariates.year_month("2021-11-02T10:00:00Z") == "2021-11"
    assert covariates.year_month("2019-07") == "2019-07"
    with pytest.raises(ValueError):
        covariates.year_month("March 2020")


def _context(n=24, seed=0):
    rng = np.random.default_rng(seed)
    words = ["budget", "senate", "rally", "campaign", "court", "immigration", "economy", "health"]
    titles = np.array([" ".join(rng.choice(words, 4)) for _ in range(n)], dtype=object)
    months = np.array([f"2020-{1 + i % 4:02d}" for i in range(n)], dtype=object)
    return covariates.Context(months=months, titles=titles, topics=3, seed=0)


def test_topics_and_months_are_fitted_on_the_training_rows_only():
    ctx = _context()
    ctx.titles[-4:] = "zebra unicorn zebra unicorn"  # words only the held-out rows have
    ctx.months[-4:] = "2031-01"
    train = ctx.take(np.arange(20))
    fitted = train.fit()
    assert "zebra" not in fitted.vectorizer.vocabulary_ and "2031-01" not in fitted.months
    test = ctx.take(np.arange(20, 24))
    x = fitted.transform(test)
    assert x.shape == (4, len(fitted.months) + 3)
    assert np.allclose(x[:, :len(fitted.months)], 0)  # a month the training rows never saw: no effect
    # the held-out rows' own text changes nothing about the fit
    other = _context()
    assert np.allclose(other.take(np.arange(20)).fit().transform(test), x)


class _Recorder:
    """An outlet model that records what it was trained on and returns uniform probabilities."""

    def __init__(self):
        self.seen = []

    def fit(self, features, outlets, classes, seed=0):
        assert features.context is None  # the model gets numbers, never raw context
        self.seen.append(features.covariates.shape[1])
        k = len(classes)

        class _F:
            def predict_proba(self, feats):
                return np.full((len(feats), k), 1.0 / k)

        return _F()


def test_crossfit_fits_the_context_inside_each_fold():
    ctx = _context()
    n = len(ctx)
    feats = OutletFeatures(np.zeros((n, 2), np.float32), np.array(["p"] * n, dtype=object), np.zeros((n, 0)), ctx)
    folds = np.arange(n) % 2
    model = _Recorder()
    crossfit.crossfit(model, feats, np.array(["a", "b"] * (n // 2), dtype=object), ["a", "b"], folds, [feats])
    months_per_fold = [len(set(ctx.months[folds != f].tolist())) for f in (0, 1)]
    assert model.seen == [m + 3 for m in months_per_fold]


def test_ovp_of_the_planted_study_separates_the_planted_politician_from_the_null(tmp_path):
    from counterface.polarization import Settings, make_study, run

    info = make_study(tmp_path / "s", articles=200, effect=3.0, size=16, seed=1)
    out = run(info["articles"], tmp_path / "o", pairs=info["pairs"], embedder="pixels", embedder_params={"size": 8},
              settings=Settings(bootstrap=12, permutations=0, seed=0), plot=False, scorer="none",
              echo=lambda m: None, warn=lambda m: None)
    rows = {r["politician"]: r for r in csv.DictReader(open(out["paths"]["ovp"]))}
    assert float(rows["planted"]["ovp"]) > 0.2 and float(rows["planted"]["ci_low"]) > 0
    assert float(rows["null"]["ovp"]) < float(rows["planted"]["ovp"]) / 2
    assert out["record"]["ovp"]["cov"]["planted"] > 0
