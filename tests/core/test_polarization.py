"""counterface.polarization: the estimators, cross-fitting, placebo and the reference components."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import counterface
from counterface.errors import ConfigError, WeightsError
from counterface.polarization import analysis, crossfit, estimate
from counterface.polarization.data import Study
from counterface.polarization.features import OutletFeatures

probs = st.integers(2, 4).flatmap(
    lambda k: st.lists(st.lists(st.floats(0.01, 1.0), min_size=k, max_size=k), min_size=1, max_size=6))


def _normalise(rows):
    a = np.array(rows, float)
    return a / a.sum(axis=1, keepdims=True)


# -- the log-odds contributions ---------------------------------------------------------------------
@given(probs, st.data())
def test_contributions_swap_antisymmetry_and_additivity(rows, data):
    p1 = _normalise(rows)
    p0 = _normalise(data.draw(st.lists(st.lists(st.floats(0.01, 1.0), min_size=p1.shape[1], max_size=p1.shape[1]),
                                       min_size=len(p1), max_size=len(p1))))
    k = p1.shape[1]
    pairs = [(a, b) for a in range(k) for b in range(k)]
    d = estimate.contributions(p1, p0, pairs)
    col = {pr: j for j, pr in enumerate(pairs)}
    # swapping Z1 and Z0 negates every contribution; swapping the outlets does too
    np.testing.assert_allclose(estimate.contributions(p0, p1, pairs), -d, atol=1e-9)
    for a in range(k):
        np.testing.assert_allclose(d[:, col[(a, a)]], 0, atol=1e-12)
        for b in range(k):
            np.testing.assert_allclose(d[:, col[(a, b)]], -d[:, col[(b, a)]], atol=1e-9)
            for c in range(k):  # log-odds differences chain: (a, c) = (a, b) + (b, c)
                np.testing.assert_allclose(d[:, col[(a, c)]], d[:, col[(a, b)]] + d[:, col[(b, c)]], atol=1e-9)
    # odds ratios only: unnormalised probabilities (any positive row scale) give the same d
    scale = data.draw(st.floats(0.05, 0.9))
    np.testing.assert_allclose(estimate.contributions(p1 * scale, p0, pairs), d, atol=1e-9)


def test_outlet_pairs_every_pair_or_against_reference():
    assert estimate.outlet_pairs(["a", "b", "c"]) == [(0, 1), (0, 2), (1, 2)]
    assert estimate.outlet_pairs(["a", "b", "c"], "b") == [(0, 1), (2, 1)]


# -- permutations and resampling --------------------------------------------------------------------
@given(st.lists(st.tuples(st.sampled_from("xyz"), st.sampled_from("AB")), min_size=1, max_size=40),
       st.integers(0, 2 ** 32 - 1))
def test_permute_within_is_a_permutation_inside_every_stratum(rows, seed):
    labels = np.array([r[0] for r in rows], dtype=object)
    strata = np.array([r[1] for r in rows], dtype=object)
    out = estimate.permute_within(labels, strata, np.random.default_rng(seed))
    for s in set(strata.tolist()):
        assert sorted(out[strata == s].tolist()) == sorted(labels[strata == s].tolist())


def test_permute_within_draws_different_permutations():
    labels = np.array(list("aaaaabbbbb"), dtype=object)
    strata = np.array(["s"] * 10, dtype=object)
    draws = {tuple(estimate.permute_within(labels, strata, np.random.default_rng(r))) for r in range(30)}
    assert len(draws) > 10  # a real shuffle, not a fixed reordering


@given(st.lists(st.sampled_from("abcdef"), min_size=1, max_size=40), st.integers(0, 2 ** 32 - 1))
def test_cluster_signs_flip_whole_clusters(clusters, seed):
    c = np.array(clusters, dtype=object)
    s = estimate.cluster_signs(c, np.random.default_rng(seed))
    assert set(np.unique(s)) <= {-1.0, 1.0}
    for lv in set(clusters):
        assert len(set(s[c == lv].tolist())) == 1


@given(st.lists(st.sampled_from("abcdefgh"), min_size=1, max_size=30), st.integers(0, 2 ** 32 - 1))
def test_cluster_bootstrap_draws_whole_clusters(clusters, seed):
    c = np.array(clusters, dtype=object)
    idx = estimate.resample_clusters(c, np.random.default_rng(seed))
    drawn = c[idx]
    for lv in set(drawn.tolist()):  # each drawn cluster arrives whole, a whole number of times
        assert (drawn == lv).sum() % (c == lv).sum() == 0
    assert len(set(c.tolist())) == sum((drawn == lv).sum() // (c == lv).sum() for lv in set(drawn.tolist()))


@given(st.lists(st.floats(-5, 5), min_size=1, max_size=5), st.integers(1, 50), st.integers(0, 1000))
def test_permutation_p_bounds(observed, r, seed):
    obs = np.array(observed)
    null = np.random.default_rng(seed).normal(size=(r, len(obs)))
    p = estimate.permutation_p(obs, null)
    assert np.all(p >= 1 / (r + 1) - 1e-12) and np.all(p <= 1)
    # the observed statistic counted among the draws: an extreme value gets exactly 1 / (R + 1)
    p_far = estimate.permutation_p(np.full(len(obs), 1e9), null)
    np.testing.assert_allclose(p_far, 1 / (r + 1))


@given(st.lists(st.tuples(st.sampled_from("abcdefghij"), st.sampled_from("LR")), min_size=6, max_size=40),
       st.integers(2, 3), st.integers(0, 10_000))
@settings(max_examples=40, deadline=None)
def test_folds_never_split_a_group(rows, k, seed):
    groups = np.array([r[0] for r in rows], dtype=object)
    strata = np.array([r[1] for r in rows], dtype=object)
    if len(set(groups.tolist())) < k:
        with pytest.raises(ConfigError):
            crossfit.make_folds(strata, groups, k, seed)
        return
    folds = crossfit.make_folds(strata, groups, k, seed)
    assert set(folds.tolist()) <= set(range(k)) and (folds >= 0).all()
    for g in set(groups.tolist()):
        assert len(set(folds[groups == g].tolist())) == 1


# -- cross-fitting never scores an article with a model that saw it --------------------------------
class _Spy(counterface.OutletModel):
    """Records every fit; its fitted objects check each scored row against the rows they trained on.

    Column 0 of the embedding is the article's id, so copies made by the bootstrap keep their id."""

    def __init__(self):
        self.fits = []
        self.violations = []
        self.scored = 0

    def fit(self, features, outlets, classes, seed=0):
        seen = set(features.embedding[:, 0].astype(int).tolist())
        self.fits.append((seen, list(outlets), list(features.politician)))
        spy = self

        class Fitted:
            def predict_proba(self, feats):
                ids = set(feats.embedding[:, 0].astype(int).tolist())
                spy.violations.extend(sorted(ids & seen))
                spy.scored += len(feats)
                rng = np.random.default_rng(len(ids))
                p = rng.random((len(feats), len(classes))) + 0.1
                return p / p.sum(axis=1, keepdims=True)

        return Fitted()


def _study(n=40, clusters=None):
    rng = np.random.default_rng(0)
    pol = np.array(["p", "q"] * (n // 2), dtype=object)
    outlet = np.array(rng.choice(["a", "b", "c"], n), dtype=object)
    keys = [f"k{i}" for i in range(n)]
    cl = np.array(clusters if clusters is not None else keys, dtype=object)
    return Study(keys=keys, politician=pol, outlet=outlet, cluster=cl, covariates=np.zeros((n, 0)),
                 covariate_names=[], classes=["a", "b", "c"])


@pytest.mark.parametrize("clustered", [False, True])
def test_crossfitting_never_scores_an_article_with_a_model_that_saw_it(clustered):
    n = 40
    study = _study(n, clusters=[f"c{i // 4}" for i in range(n)] if clustered else None)
    ids = np.arange(n, dtype=np.float32)[:, None]
    emb = (np.hstack([ids, np.zeros((n, 2), np.float32)]), np.hstack([ids, np.ones((n, 2), np.float32)]),
           np.hstack([ids, 2 * np.ones((n, 2), np.float32)]))
    spy = _Spy()
    res = analysis.analyse(study, analysis.Settings(folds=3, splits=2, bootstrap=6, permutations=4, seed=5,
                                                    min_articles=1), model=spy, embeddings=emb)
    assert spy.violations == []
    # main fit, every bootstrap replicate and permutation refit: K folds x S splits each
    assert len(spy.fits) == 3 * 2 * (1 + 6 + 4)
    assert spy.scored >= 2 * (3 * n + 2 * n * (6 + 4))
    assert res.replicates["bootstrap"] == 6
    if clustered:  # a cluster is never split between a training and a scoring fold
        for f in np.unique(res.folds):
            assert not ({c for c, ff in zip(study.cluster, res.folds) if ff == f}
                        & {c for c, ff in zip(study.cluster, res.folds) if ff != f})
    # the placebo refits on outlets permuted within politician: same labels per politician, new order
    main_counts = sorted(zip(spy.fits[0][2], spy.fits[0][1]))
    assert main_counts  # the main fit saw labelled rows
    placebo_fits = spy.fits[-3 * 2 * 4:]
    assert any(f[1] != spy.fits[i][1] for i, f in enumerate(placebo_fits[:3]))


# -- the reference components ------------------------------------------------------------------------
def test_logistic_outlet_model_contract():
    rng = np.random.default_rng(1)
    n = 120
    emb = rng.normal(size=(n, 5)).astype(np.float32)
    pol = np.array(["p", "q", "r"] * (n // 3), dtype=object)
    y = np.where(emb[:, 0] + (pol == "p") * emb[:, 1] > 0, "a", "b").astype(object)
    y[:10] = "c"
    feats = OutletFeatures(emb, pol, rng.normal(size=(n, 2)))
    for by in (False, True):
        model = counterface.create("outlet_model", "logistic", by_politician=by)
        before = model.describe()
        fitted = model.fit(feats, y, ["a", "b", "c", "d"], seed=3)
        assert model.describe() == before
        p = fitted.predict_proba(feats)
        assert p.shape == (n, 4)
        assert np.isnan(p[:, 3]).all()  # an outlet absent from the training rows
        np.testing.assert_allclose(p[:, :3].sum(axis=1), 1.0, atol=1e-9)
        np.testing.assert_array_equal(p, model.fit(feats, y, ["a", "b", "c", "d"], seed=3).predict_proba(feats))
        assert (np.array(["a", "b", "c"])[p[:, :3].argmax(1)] == y).mean() > 0.7


def test_sparse_interactions_fit_like_dense(monkeypatch):
    import counterface_polarization.outlet_model as om

    rng = np.random.default_rng(4)
    n = 90
    feats = OutletFeatures(rng.normal(size=(n, 6)).astype(np.float32),
                           np.array(["p", "q", "r"] * (n // 3), dtype=object), np.zeros((n, 0)))
    y = np.where(rng.random(n) < 0.5, "a", "b").astype(object)
    model = counterface.create("outlet_model", "logistic")
    dense = model.fit(feats, y, ["a", "b"], seed=0).predict_proba(feats)
    monkeypatch.setattr(om, "DENSE_LIMIT", 0)
    sp = model.fit(feats, y, ["a", "b"], seed=0)
    assert __import__("scipy").sparse.issparse(sp.parts[None].design(feats.embedding, feats.politician, None))
    np.testing.assert_allclose(sp.predict_proba(feats), dense, atol=2e-3)  # L-BFGS (sparse) vs Newton (dense)


def test_pixels_embedder_rows_are_per_image():
    emb = counterface.create("embedder", "pixels", size=4)
    rng = np.random.default_rng(0)
    imgs = [rng.integers(0, 256, (20 + i, 30, 3), dtype=np.uint8) for i in range(3)]
    copy = [im.copy() for im in imgs]
    rows = emb.embed(imgs)
    assert rows.shape == (3, 48) and rows.dtype == np.float32
    np.testing.assert_array_equal(emb.embed(imgs[1:2])[0], rows[1])  # independent of the other images
    assert all((a == b).all() for a, b in zip(imgs, copy))
    with pytest.raises(ConfigError):
        emb.embed([np.zeros((4, 4), np.uint8)])


def test_resnet_embedders_random_offline_and_weights_registered(monkeypatch, tmp_path):
    from counterface import weights

    for arch, dim in (("resnet18", 512),):
        emb = counterface.create("embedder", arch, weights="none")
        rows = emb.embed([np.full((40, 50, 3), 120, np.uint8), np.zeros((30, 30, 3), np.uint8)])
        assert rows.shape == (2, dim) and np.isfinite(rows).all()
    for name, prefix in (("resnet18-f37072fd.pth", "f37072fd"), ("resnet50-0676ba61.pth", "0676ba61")):
        spec = weights.get_spec(name)
        assert spec.urls[0] == f"https://download.pytorch.org/models/{name}"
        assert spec.sha256.startswith(prefix) and spec.managed_by == "torchvision"
    # the real file goes through the weights manager: offline and absent, a one-line WeightsError
    monkeypatch.setenv("COUNTERFACE_OFFLINE", "1")
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COUNTERFACE_HOME", str(tmp_path / "home"))
    emb = counterface.create("embedder", "resnet18")
    with pytest.raises(WeightsError):
        emb.embed([np.zeros((30, 30, 3), np.uint8)])


def test_resnet_loads_a_state_dict_with_weights_only(tmp_path):
    import torch
    import torchvision

    sd = torchvision.models.resnet18(weights=None).state_dict()
    path = tmp_path / "r18.pth"
    torch.save(sd, path)
    emb = counterface.create("embedder", "resnet18", weights=str(path))
    assert emb.embed([np.zeros((32, 32, 3), np.uint8)]).shape == (1, 512)
    torch.save({"not": "a resnet"}, tmp_path / "bad.pth")
    with pytest.raises(WeightsError):
        counterface.create("embedder", "resnet18", weights=str(tmp_path / "bad.pth")).embed(
            [np.zeros((32, 32, 3), np.uint8)])


def test_arcface_embedder_random_network():
    emb = counterface.create("embedder", "arcface", weights="none")
    rows = emb.embed([np.full((64, 64, 3), 90, np.uint8), np.full((64, 64, 3), 200, np.uint8)])
    assert rows.shape == (2, 512)
    np.testing.assert_allclose(np.linalg.norm(rows, axis=1), 1.0, atol=1e-4)


def test_kinds_are_registered():
    assert counterface.KINDS["embedder"].contract is counterface.Embedder
    assert counterface.KINDS["outlet_model"].contract is counterface.OutletModel
    assert {"pixels", "arcface", "resnet18", "resnet50"} <= set(counterface.available("embedder"))
    assert "logistic" in counterface.available("outlet_model")


def test_scores_route_bootstrap_is_seeded_and_placebo_is_sign_flip():
    n = 30
    study = _study(n)
    rng = np.random.default_rng(2)
    p1 = rng.random((n, 3)) + 0.05
    p0 = rng.random((n, 3)) + 0.05
    study.p_z1, study.p_z0 = p1 / p1.sum(1, keepdims=True), p0 / p0.sum(1, keepdims=True)
    s = analysis.Settings(bootstrap=50, permutations=50, seed=4)
    a = analysis.analyse(study, s)
    b = analysis.analyse(study, s)
    np.testing.assert_array_equal(a.ci_low, b.ci_low)
    np.testing.assert_array_equal(a.p_placebo, b.p_placebo)
    assert a.placebo == "pairs"
    assert np.all(a.ci_low <= a.values + 1e-12) or math.isnan(a.ci_low[0])
    with pytest.raises(ConfigError):
        analysis.analyse(study, analysis.Settings(placebo="outlets"))


def test_articles_join_on_id_or_key_column(tmp_path):
    from counterface.polarization.data import build_study

    (tmp_path / "a.csv").write_text("key,path,politician,outlet\nk1,x.png,p,a\nk2,y.png,q,b\nk3,z.png,q,a\n")
    (tmp_path / "s.csv").write_text("key,outlet,p_z1,p_z0\nk1,a,0.5,0.4\nk1,b,0.5,0.6\nk2,a,0.3,0.4\nk2,b,0.7,0.6\n")
    st = build_study(tmp_path / "a.csv", scores=tmp_path / "s.csv")
    assert st.keys == ["k1", "k2"] and st.counts["unscored"] == 1
    assert any("1 of 3 articles have no scores" in n for n in st.notes)


def test_group_placebo_permutes_politician_labels():
    n = 60
    pols = np.array([f"p{i % 6}" for i in range(n)], dtype=object)
    study = Study(keys=[f"k{i}" for i in range(n)], politician=pols,
                  outlet=np.array([["a", "b"][(i // 6) % 2] for i in range(n)], dtype=object),
                  cluster=np.array([f"k{i}" for i in range(n)], dtype=object), covariates=np.zeros((n, 0)),
                  covariate_names=[], classes=["a", "b"],
                  group=np.array(["D" if int(p[1]) < 3 else "R" for p in pols], dtype=object))
    # party D's politicians all lean one way, R's the other: a group contrast the labels explain
    shift = np.where(study.group == "D", 0.8, -0.8) + np.random.default_rng(0).normal(0, 0.1, n)
    p1 = np.stack([1 / (1 + np.exp(-shift)), 1 - 1 / (1 + np.exp(-shift))], axis=1)
    study.p_z1, study.p_z0 = p1, np.full((n, 2), 0.5)
    res = analysis.analyse(study, analysis.Settings(bootstrap=0, permutations=200, seed=1))
    assert res.layout.groups == ["D", "R"]
    # 6 politicians, 3 per group: 20 distinct labellings, the observed one the most extreme (with its mirror)
    np.testing.assert_allclose(res.group_p, (1 + 200 * 2 / 20) / 201, atol=0.06)
    assert res.values[len(res.layout.politicians)] > 0 > res.values[len(res.layout.politicians) + 1]


def test_scores_are_used_as_given_even_when_tiny():
    p1 = np.array([[1e-15, 1 - 1e-15]])
    p0 = np.array([[0.5, 0.5]])
    d = estimate.contributions(p1, p0, [(0, 1)])
    assert d[0, 0] == pytest.approx(math.log(1e-15 / (1 - 1e-15)), rel=1e-12)


def test_refitting_bootstrap_carries_the_outlet_models_noise(tmp_path):
    """The interval of a politician without an effect: refitting g in every replicate covers 0 and is
    several times wider than resampling the contributions of one fitted g (which ignores g's noise)."""
    from counterface.polarization import data, features, synthetic

    info = synthetic.make_study(tmp_path, articles=160, effect=3.0, size=16, seed=2)
    st = data.build_study(info["articles"], pairs=info["pairs"])
    rows, _ = features.embed_files(counterface.create("embedder", "pixels", size=8), st.image + st.z1 + st.z0)
    n = len(st)
    res = analysis.analyse(st, analysis.Settings(bootstrap=30, permutations=0),
                           model=counterface.create("outlet_model", "logistic"),
                           embeddings=(rows[:n], rows[n:2 * n], rows[2 * n:]))
    null = st.politician == "null"
    d = res.contributions[null, 0]
    fixed = [d[estimate.resample_clusters(st.cluster[null], np.random.default_rng(b))].mean() for b in range(200)]
    lo, hi = np.percentile(fixed, [2.5, 97.5])
    assert res.ci_low[0] < 0 < res.ci_high[0]
    assert res.ci_high[0] - res.ci_low[0] > 2 * (hi - lo)


# -- clusters, cluster permutations, sequential p-values, flags -------------------------------------
@given(st.lists(st.tuples(st.sampled_from("abcdef"), st.sampled_from("uvwxyz")), min_size=1, max_size=40))
def test_join_copies_holds_copies_and_clusters_together(rows):
    cluster = [r[0] for r in rows]
    digest = [r[1] for r in rows]
    labels, dup = crossfit.join_copies(cluster, digest)
    assert dup == len(rows) - len(set(digest))
    for i in range(len(rows)):
        for j in range(len(rows)):
            if cluster[i] == cluster[j] or digest[i] == digest[j]:
                assert labels[i] == labels[j]
    # and nothing more: the labels are the connected components (an article's label is one of the clusters
    # it is connected to)
    for i in range(len(rows)):
        assert labels[i] in set(cluster)
    comps = {}
    for c, d, lab in zip(cluster, digest, labels):
        comps.setdefault(lab, (set(), set()))
        comps[lab][0].add(c)
        comps[lab][1].add(d)
    for a in comps:
        for b in comps:
            if a != b:
                assert not (comps[a][0] & comps[b][0]) and not (comps[a][1] & comps[b][1])


@given(st.lists(st.tuples(st.sampled_from("xyz"), st.sampled_from("AB"), st.integers(0, 6)), min_size=1, max_size=40),
       st.integers(0, 2 ** 32 - 1))
def test_cluster_permutation_moves_whole_clusters_within_a_politician(rows, seed):
    labels = np.array([r[0] for r in rows], dtype=object)
    strata = np.array([r[1] for r in rows], dtype=object)
    cluster = np.array([f"c{r[2]}" for r in rows], dtype=object)
    out = estimate.permute_clusters_within(labels, strata, cluster, np.random.default_rng(seed))
    for s in set(strata.tolist()):
        assert sorted(out[strata == s].tolist()) == sorted(labels[strata == s].tolist())
        blocks = {c: sorted(labels[(strata == s) & (cluster == c)].tolist()) for c in set(cluster[strata == s].tolist())}
        for c in blocks:  # each cluster receives the label multiset of some cluster of the same size
            got = sorted(out[(strata == s) & (cluster == c)].tolist())
            assert got in [b for b in blocks.values() if len(b) == len(got)]


def test_cluster_permutation_is_a_real_shuffle():
    labels = np.array(list("aaaabbbb"), dtype=object)
    strata = np.array(["s"] * 8, dtype=object)
    cluster = np.array(["c1", "c1", "c2", "c2", "c3", "c3", "c4", "c4"], dtype=object)
    draws = {tuple(estimate.permute_clusters_within(labels, strata, cluster, np.random.default_rng(r)))
             for r in range(40)}
    assert len(draws) >= 4
    for d in draws:  # clusters move whole: each pair holds two equal labels
        assert d[0] == d[1] and d[2] == d[3] and d[4] == d[5] and d[6] == d[7]


def test_sequential_p_stops_early_and_reaches_small_p():
    rng = np.random.default_rng(0)
    null = rng.normal(size=(999, 2))
    calls = []

    def draw(r):
        calls.append(r)
        return null[r]

    # an unremarkable statistic: stops once both have 20 draws as extreme
    p, drawn = estimate.sequential_p(np.array([0.1, 0.2]), draw, 999, 20)
    assert drawn < 100 and len(calls) == drawn
    assert np.all(p > 0.5)
    # Besag-Clifford: h / (the draw of the h-th extreme one)
    ext = np.abs(null[:drawn, 0]) >= 0.1
    assert p[0] == pytest.approx(20 / (np.flatnonzero(ext)[19] + 1))
    # a statistic beyond every draw: all 999 drawn, p = 1 / 1000 < 0.001 reachable
    p, drawn = estimate.sequential_p(np.array([50.0, 0.1]), lambda r: null[r], 999, 20)
    assert drawn == 999 and p[0] == pytest.approx(1 / 1000)
    # no permutations: no p
    p, drawn = estimate.sequential_p(np.array([1.0]), lambda r: null[r, :1], 0, 20)
    assert drawn == 0 and np.isnan(p).all()


@given(st.lists(st.floats(-5, 5), min_size=2, max_size=30), st.floats(-5, 5), st.floats(-2, 2))
def test_bias_correction_subtracts_the_replicates_shift(reps, value, shift):
    """2 x estimate - mean of the replicates: replicates shifted by c move the corrected value by -c;
    replicates centred on the estimate leave it alone; a column without replicates keeps its value."""
    reps = np.array(reps)[:, None]
    col = np.column_stack([reps, np.full(len(reps), np.nan)])  # the second statistic: no replicate
    fixed, bias = estimate.bias_corrected(np.array([value, value]), col)
    assert fixed[0] == pytest.approx(2 * value - reps.mean(), abs=1e-9) and bias[0] == pytest.approx(reps.mean() - value)
    assert fixed[1] == value and np.isnan(bias[1])
    moved, _ = estimate.bias_corrected(np.array([value]), reps + shift)
    assert moved[0] == pytest.approx(fixed[0] - shift, abs=1e-9)
    centred, _ = estimate.bias_corrected(np.array([value]), reps - reps.mean() + value)
    assert centred[0] == pytest.approx(value, abs=1e-9)


def test_bias_correction_off_keeps_the_estimate_and_the_interval_width():
    """Settings.bias_correction=False: rho is the uncorrected estimate; on, rho moves by the bootstrap's
    bias estimate and the interval keeps its width (the same replicates)."""
    bench = _planted_arrays(0, 0)
    st_, emb, _ = bench.simulate(40, 7)
    model = counterface.create("outlet_model", "logistic")
    on = analysis.analyse(st_, analysis.Settings(bootstrap=8, permutations=0, splits=1), model=model, embeddings=emb)
    off = analysis.analyse(st_, analysis.Settings(bootstrap=8, permutations=0, splits=1, bias_correction=False),
                           model=model, embeddings=emb)
    np.testing.assert_allclose(off.values, on.raw_values)
    np.testing.assert_allclose(on.values, on.raw_values - on.bias)
    np.testing.assert_allclose(on.ci_high - on.ci_low, off.ci_high - off.ci_low)
    assert np.isnan(off.bias).all() and np.isfinite(on.bias[:2]).all() and not np.allclose(on.values, off.values)


@given(st.integers(0, 50), st.integers(1, 50), st.floats(-3, 3), st.floats(0, 2) | st.floats(0, 1e-4))
def test_interval_flags(k, requested, value, width):
    k = min(k, requested)
    lo, hi = (value - width, value + width) if k else (np.nan, np.nan)  # no replicate: no interval
    flags = estimate.interval_flags(np.array([value]), np.array([lo]), np.array([hi]), np.array([k]), requested)
    assert ("replicates" in flags[0]) == (0 < k < requested)
    assert ("no bootstrap replicate" in flags[0]) == (k == 0)
    assert ("zero-width" in flags[0]) == (k > 0 and hi - lo <= estimate.ZERO_WIDTH * max(1.0, abs(value)))


def _planted_arrays(n_per, seed, effect=3.0):
    import sys
    from pathlib import Path

    sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "benchmarks"))
    import bench_coverage

    return bench_coverage


def test_estimate_does_not_shrink_with_the_penalty_or_the_coverage():
    """The planted -3 comes out near -3 at C = 0.1 and C = 1, at 150 and 600 articles per politician
    (the old, fully penalised g gave -1.15 and -1.97 at C = 1); direction=none shrinks (the contrast)."""
    bench = _planted_arrays(0, 0)
    means = {}
    for n in (150, 600):
        for C in (0.1, 1.0):
            vals = []
            for seed in range(3):
                st_, emb, _ = bench.simulate(n, 100 + seed)
                res = analysis.analyse(st_, analysis.Settings(bootstrap=0, permutations=0, seed=seed),
                                       model=counterface.create("outlet_model", "logistic", C=C), embeddings=emb)
                vals.append(res.values[res.layout.politicians.index("planted")])
            means[n, C] = float(np.mean(vals))
    for key, m in means.items():
        assert -4.0 < m < -2.4, (key, m)
    assert abs(means[150, 0.1] - means[150, 1.0]) < 0.4 and abs(means[600, 0.1] - means[600, 1.0]) < 0.3
    st_, emb, _ = bench.simulate(150, 100)
    old = analysis.analyse(st_, analysis.Settings(bootstrap=0, permutations=0),
                           model=counterface.create("outlet_model", "logistic", C=0.1, direction="none"),
                           embeddings=emb)
    assert old.values[old.layout.politicians.index("planted")] > -1.5  # the penalised direction shrinks


def test_coverage_small_version():
    """A small run of benchmarks/bench_coverage.py: intervals of the planted and the null politician
    cover their truths in most of 10 studies (the full table: docs/polarization.md)."""
    bench = _planted_arrays(0, 0)
    rows = [bench.one_study(150, 1000 + s, 20, 0, 1, 3.0) for s in range(10)]
    table = {t["politician"]: t for t in bench.summarise(rows, 3.0)}
    assert table["planted"]["coverage"] >= 0.7 and table["null"]["coverage"] >= 0.7
    assert abs(table["planted"]["relative_bias"]) < 0.2 and abs(table["null"]["bias"]) < 0.3


def test_fold_covariates_are_fitted_inside_each_training_fold():
    """Covariates fitted per fold (e.g. topics) see the training articles only, in every fit."""
    n = 40
    study = _study(n)
    ids = np.arange(n, dtype=np.float32)[:, None]
    emb = (np.hstack([ids, np.zeros((n, 2), np.float32)]), np.hstack([ids, np.ones((n, 2), np.float32)]),
           np.hstack([ids, 2 * np.ones((n, 2), np.float32)]))
    calls = []

    def topics(train, score):
        calls.append((set(train.tolist()), set(score.tolist())))
        return np.ones((len(train), 1)) * len(train), np.ones((len(score), 1))

    spy = _Spy()
    analysis.analyse(study, analysis.Settings(folds=2, splits=1, bootstrap=2, permutations=2, min_articles=1),
                     model=spy, embeddings=emb, fold_covariates=topics)
    assert len(calls) == len(spy.fits) == 2 * (1 + 2 + 2)
    for train, score in calls:
        assert not train & score and train <= set(range(n))
    assert spy.violations == []
