"""Boundaries: geometry (signed distance, conditioning), fits on planted data, files."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface import ConfigError, WeightsError
from counterface.boundary import Boundary, condition, load_boundary, project_out, read_header, save_boundary
from counterface.learn import binarize, check_classes, fit_hyperplane, fit_intercept, parse_label
from tests.helpers import planted


def correlated(normal, cos, seed):
    r = np.random.default_rng(seed).normal(size=normal.shape)
    r -= (r @ normal) * normal
    r /= np.linalg.norm(r)
    return cos * normal + np.sqrt(1 - cos**2) * r


# -- planted boundaries ----------------------------------------------------------------------------
def test_planted_boundary_is_recovered_normal_intercept_and_accuracy():
    x, y, n = planted()
    fit = fit_hyperplane(x, y, folds=0)
    assert fit.normal @ n >= 0.95
    assert abs(fit.intercept - 0.3) < 0.12
    xt, yt, _ = planted(n=4000, noise=0.0, seed=1, normal=n)  # held out, clean labels
    assert ((xt @ fit.normal + fit.intercept > 0) == yt).mean() >= 0.9
    # a wrong intercept sign would cost accuracy: the check can fail
    assert ((xt @ fit.normal - 3.0 > 0) == yt).mean() < 0.9


def test_cross_validated_accuracy_matches_held_out_accuracy():
    x, y, n = planted(d=64, n=1500, noise=0.05, seed=3)
    fit = fit_hyperplane(x, y, folds=5, method="logistic")
    xt, yt, _ = planted(d=64, n=4000, noise=0.05, seed=4, normal=n)
    held = ((xt @ fit.normal + fit.intercept > 0) == yt).mean()
    assert fit.accuracy == pytest.approx(held, abs=0.03)
    assert 0 < fit.accuracy_sd < 0.05


def test_labels_along_minus_the_normal_give_the_opposite_normal():
    x, y, n = planted(d=32, n=800, noise=0.0, seed=5)
    assert fit_hyperplane(x, 1 - y, folds=0).normal @ n < -0.9


# -- conditioning ----------------------------------------------------------------------------------
def test_conditioning_on_a_correlated_boundary_makes_the_normal_orthogonal():
    x, y, n = planted(d=512, n=3000, seed=6)
    other = correlated(n, 0.5, seed=7)
    assert other @ n == pytest.approx(0.5)
    free = fit_hyperplane(x, y, folds=0)
    assert abs(free.normal @ other) > 0.3  # unconditioned: it follows the correlated attribute
    cond = fit_hyperplane(x, y, folds=0, others=[other])
    assert abs(cond.normal @ other) <= 1e-4
    # what is left is the part of n orthogonal to the other
    rest = n - (n @ other) * other
    assert cond.normal @ (rest / np.linalg.norm(rest)) > 0.8


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 4), corr=st.floats(-0.95, 0.95))
def test_project_out_leaves_a_unit_normal_orthogonal_to_every_other(seed, k, corr):
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(64, generator=g, dtype=torch.float64)
    n /= n.norm()
    others = [corr * n + torch.randn(64, generator=g, dtype=torch.float64) * 0.3 for _ in range(k)]
    others.append(others[0] * 2.0)  # a dependent other adds nothing and must not break the basis
    out = project_out(n, others)
    assert out.dtype == torch.float32 and out.norm().item() == pytest.approx(1.0, abs=1e-6)
    for o in others:
        assert abs(float(out.double() @ (o / o.norm()))) <= 1e-6


def test_project_out_refuses_a_normal_inside_the_span():
    a, b = torch.eye(8)[0], torch.eye(8)[1]
    with pytest.raises(ConfigError, match="span"):
        project_out((a + b) / 2**0.5, [a, b])


def test_condition_keeps_per_row_structure():
    g = torch.Generator().manual_seed(0)
    b = Boundary(torch.randn(4, 16, generator=g), torch.zeros(4), attribute="x")
    o = Boundary(torch.randn(16, generator=g), None, attribute="y")
    c = condition(b, [o])
    assert c.rows == 4 and c.meta["conditioned_on"] == ["y"]
    assert (c.normal @ o.normal[0]).abs().max() < 1e-6


# -- signed distance -------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 10_000), alpha=st.floats(-5, 5), per_row=st.booleans())
def test_moving_a_row_by_alpha_normal_changes_its_distance_by_alpha(seed, alpha, per_row):
    g = torch.Generator().manual_seed(seed)
    rows = 6 if per_row else 1
    b = Boundary(torch.randn(rows, 8, generator=g), torch.randn(rows, generator=g))
    w = torch.randn(6, 8, generator=g)
    moved = w.clone()
    for l in range(6):
        moved[l] += alpha * b.row_normal(l)
    d0, d1 = b.distance(w), b.distance(moved)
    assert d0.shape == (6,)
    assert torch.allclose(d1 - d0, torch.full((6,), float(alpha)), atol=1e-4)
    # by hand: n . w + b on row 2
    assert float(d0[2]) == pytest.approx(float(b.row_normal(2) @ w[2]) + b.row_intercept(2), abs=1e-5)


def test_distance_without_intercept_is_none_and_layers_select_rows():
    b = Boundary(torch.ones(4), None)
    assert not b.has_intercept and b.distance(torch.zeros(3, 4)) is None
    c = Boundary(torch.tensor([1.0, 0, 0, 0]), torch.tensor(0.5), layers=[1])
    w = torch.arange(12.0).reshape(3, 4)
    assert c.distance(w).tolist() == [4.5]  # default: its own layers
    assert c.distance(w, [0, 2]).tolist() == [0.5, 8.5]
    with pytest.raises(ConfigError, match="dimensions"):
        c.distance(torch.zeros(3, 5))


def test_a_normal_is_normalised_and_bad_shapes_are_refused():
    assert torch.allclose(Boundary(torch.tensor([3.0, 4.0])).normal, torch.tensor([[0.6, 0.8]]))
    with pytest.raises(ConfigError):
        Boundary(torch.zeros(4))
    with pytest.raises(ConfigError):
        Boundary(torch.ones(2, 4), torch.zeros(3))


# -- files -----------------------------------------------------------------------------------------
@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), rows=st.sampled_from([1, 5]), has_b=st.booleans(),
       attr=st.text(min_size=0, max_size=12), acc=st.one_of(st.none(), st.floats(0, 1)),
       layers=st.one_of(st.none(), st.lists(st.integers(0, 4), min_size=1, max_size=5)))
def test_boundary_files_round_trip(tmp_path_factory, seed, rows, has_b, attr, acc, layers):
    g = torch.Generator().manual_seed(seed)
    b = Boundary(torch.randn(rows, 12, generator=g), torch.randn(rows, generator=g) if has_b else None,
                 attribute=attr, family="fam-x", layers=layers, on_distance=1.5 if has_b else None,
                 off_distance=-0.5 if has_b else None,
                 meta={"accuracy": acc, "conditioned_on": ["age"], "provenance": {"input": {"sha256": "ab"}}})
    p = tmp_path_factory.mktemp("rt") / "b.safetensors"
    save_boundary(b, p)
    c = load_boundary(p)
    assert torch.equal(c.normal, b.normal)
    assert (c.intercept is None) == (b.intercept is None)
    if has_b:
        assert torch.equal(c.intercept, b.intercept)
    assert (c.attribute or "b") == (attr or "b")  # an empty attribute falls back to the file stem
    assert (c.family, c.layers, c.on_distance, c.off_distance) == (b.family, b.layers, b.on_distance, b.off_distance)
    assert c.meta == b.meta
    tensors, meta = read_header(p)
    assert tensors["normal"]["shape"] == ([12] if rows == 1 else [rows, 12])
    assert meta["w_dim"] == 12 and meta["format"] == "counterface-boundary/1"


def test_published_vectors_load_as_boundaries_without_intercept(shared):
    b = load_boundary(shared / "directions" / "smile.pt")
    assert (b.rows, b.w_dim, b.has_intercept, b.attribute) == (1, 512, False, "smile")
    assert load_boundary(shared / "directions" / "pose.pt").rows == 1  # 18 identical rows collapse


def test_unreadable_boundary_files_raise_weights_errors(tmp_path):
    bad = tmp_path / "bad.safetensors"
    bad.write_bytes(b"not a safetensors file at all")
    with pytest.raises(WeightsError, match="safetensors"):
        load_boundary(bad)
    with pytest.raises(WeightsError, match="not found"):
        load_boundary(tmp_path / "missing.safetensors")
    (tmp_path / "x.txt").write_text("1 2 3")
    with pytest.raises(WeightsError):
        load_boundary(tmp_path / "x.txt")


# -- labels ----------------------------------------------------------------------------------------
def test_labels_parse_words_numbers_and_blanks():
    assert [parse_label(v) for v in ("1", "true", "Yes", "0", "false", "", None, "2.5", True)] == \
        [1.0, 1.0, 1.0, 0.0, 0.0, None, None, 2.5, 1.0]
    with pytest.raises(ConfigError, match="not 0/1"):
        parse_label("maybe")


def test_binarize_threshold_and_keep_extremes():
    v = np.array([0.1, 0.9, 0.5, np.nan, 0.3, 0.7, 0.2, 0.8])
    idx, y = binarize(v, threshold=0.5)
    assert idx.tolist() == [0, 1, 2, 4, 5, 6, 7] and y.tolist() == [0, 1, 0, 0, 1, 0, 1]
    idx, y = binarize(v, keep_extremes=0.25)  # 7 scored: 1 lowest, 1 highest
    assert idx.tolist() == [0, 1] and y.tolist() == [0, 1]
    with pytest.raises(ConfigError, match="--threshold"):
        binarize(v)
    assert binarize(np.array([0.0, 1.0, 1.0]))[1].tolist() == [0, 1, 1]
    assert binarize(np.array([-1.0, 1.0, -1.0]))[1].tolist() == [0, 1, 0]


def test_class_checks_refuse_one_class_and_too_few():
    with pytest.raises(ConfigError, match="both classes"):
        check_classes(np.ones(50))
    with pytest.raises(ConfigError, match="at least 10 of each"):
        check_classes(np.array([1] * 30 + [0] * 9))
    assert check_classes(np.array([1] * 10 + [0] * 10)) == (10, 10)


def test_fit_intercept_finds_the_crossing_point_of_a_given_normal():
    rng = np.random.default_rng(0)
    s = rng.normal(size=2000)
    y = (s - 0.7 > 0).astype(int)
    b, acc, _ = fit_intercept(s, y, folds=3)
    assert b == pytest.approx(-0.7, abs=0.05) and acc > 0.97


@pytest.mark.parametrize("bad", ["nan", "inf", "empty", "int", "two"])
def test_a_published_vector_file_is_checked_before_use(tmp_path, bad):
    """A bare .pt/.npy vector read through the boundary path gets the checks of the direction plugin:
    finite, floating point, one tensor, a (rows, w_dim) shape; a good one loads as (1, w_dim)."""
    good = torch.linspace(-1, 1, 8)
    p = tmp_path / "v.pt"
    torch.save(good, p)
    assert load_boundary(p).normal.shape[-1] == 8
    value = {"nan": good.clone().index_fill_(0, torch.tensor([3]), float("nan")),
             "inf": good.clone().index_fill_(0, torch.tensor([0]), float("inf")),
             "empty": torch.zeros(1, 0), "int": torch.arange(8),
             "two": {"a": good, "b": good}}[bad]
    q = tmp_path / f"{bad}.pt"
    torch.save(value, q)
    with pytest.raises(WeightsError) as ei:
        load_boundary(q)
    assert str(q) in str(ei.value)
    if bad in ("nan", "inf"):
        np.save(tmp_path / "v.npy", value.numpy())
        with pytest.raises(WeightsError, match="NaN or infinite"):
            load_boundary(tmp_path / "v.npy")
