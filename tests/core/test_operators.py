"""The pi operators on the pivot latent, through the pipeline (fake generator: 8 W+ rows of 16 dims).

* on / off / neutral put every edited row at its target signed distance (1e-4);
* rows outside the edited layers are bit-identical;
* several attributes and kept attributes: each edited distance reaches its target, kept ones do not move;
* leakage is n . (w1 - w0) on the edited rows;
* --alpha auto finds the smallest alpha reaching the target score (a fake scorer).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface import ConfigError, config
from counterface.boundary import Boundary, save_boundary
from counterface.counterfactual import move, search_alpha
from counterface.pipeline import Pipeline
from counterface.types import Pivot
from tests.helpers import fake_components

NUM_WS, W_DIM = 8, 16


@pytest.fixture(scope="module")
def fakes():
    with fake_components():
        yield


def unit(rng, n=W_DIM):
    v = rng.standard_normal(n)
    return v / np.linalg.norm(v)


def write(path, normal, intercept=0.0, on=2.0, off=-1.5, layers=(2, 3, 4), attribute="a"):
    b = Boundary(normal=torch.as_tensor(np.asarray(normal), dtype=torch.float32),
                 intercept=None if intercept is None else torch.tensor([float(intercept)]), attribute=attribute,
                 family="fake", layers=None if layers is None else list(layers), on_distance=on, off_distance=off)
    return str(save_boundary(b, path))


def pipeline(directions, sets=(), keep=(), watch=(), **edit):
    cfg = config.resolve(preset="fake", components={"direction": list(directions)}, sets=list(sets), edit=edit)
    cfg["edit"].update({k: list(v) for k, v in (("keep", keep), ("watch", watch)) if v})
    return Pipeline.from_config(cfg)


def distances(path_normal, intercept, w, rows):
    n = torch.as_tensor(np.asarray(path_normal), dtype=torch.float64)
    n = n / n.norm(dim=-1, keepdim=True)
    n = n.expand(NUM_WS, W_DIM) if n.dim() == 1 else n
    x = w.double()
    return torch.stack([x[r] @ n[r] + intercept for r in rows])


settings_ = settings(max_examples=20, deadline=None)


@settings_
@given(seed=st.integers(0, 10_000), intercept=st.floats(-3, 3), on=st.floats(0.5, 6), off=st.floats(-6, -0.5),
       layers=st.lists(st.integers(0, NUM_WS - 1), min_size=1, max_size=NUM_WS, unique=True),
       per_row=st.booleans(), scale=st.floats(0.1, 5))
def test_targets_reached_and_other_rows_bit_identical(fakes, tmp_path_factory, seed, intercept, on, off, layers,
                                                      per_row, scale):
    rng = np.random.default_rng(seed)
    normal = np.stack([unit(rng) for _ in range(NUM_WS)]) if per_row else unit(rng)
    f = write(tmp_path_factory.mktemp("b") / "a.safetensors", normal, intercept, on, off, sorted(layers))
    pivot = Pivot(w=torch.as_tensor(rng.standard_normal((NUM_WS, W_DIM)) * scale, dtype=torch.float32))
    rows = sorted(layers)
    outside = [r for r in range(NUM_WS) if r not in rows]
    for op, target in (("on", on), ("off", off), ("neutral", 0.0)):
        pipe = pipeline([f], sets=[f"pi1={op}"])
        w, records, photo = pipe.counterfactual_latent(pivot, "pi1")
        assert not photo and records[0]["layers"] == rows and records[0]["operator"] == op
        d = distances(normal, intercept, w, rows)
        assert torch.allclose(d, torch.full_like(d, target), atol=1e-4, rtol=0), (op, d, target)
        assert np.allclose(records[0]["distance_after"], target, atol=1e-4)
        assert np.allclose(records[0]["distance_before"], distances(normal, intercept, pivot.w, rows).numpy(), atol=1e-4)
        assert np.allclose(np.asarray(records[0]["alpha"]), target - np.asarray(records[0]["distance_before"]), atol=1e-4)
        assert torch.equal(w[outside], pivot.w[outside])


def test_shift_is_the_directions_own_edit(fakes, tmp_path):
    """--pi1 shift (the default) is today's alpha * v: bit-identical to the direction's apply."""
    rng = np.random.default_rng(1)
    f = write(tmp_path / "a.safetensors", unit(rng))
    pipe = pipeline([f], alpha=1.7)
    pivot = Pivot(w=torch.randn(NUM_WS, W_DIM))
    w, records, _ = pipe.counterfactual_latent(pivot, "pi1")
    assert torch.equal(w, pipe.component("direction").apply(pivot.w, 1.7, [2, 3, 4]))
    assert records[0]["alpha"] == [1.7] * 3
    w0, rec0, _ = pipe.counterfactual_latent(pivot, "pi0")  # reconstruction
    assert torch.equal(w0, pivot.w) and rec0[0]["alpha"] == [0.0] * 3
    assert np.allclose(rec0[0]["distance_after"], rec0[0]["distance_before"])


def test_conditioned_edit_keeps_the_other_distance(fakes, tmp_path):
    rng = np.random.default_rng(2)
    a, c = unit(rng), unit(rng)
    b = 0.5 * a + np.sqrt(0.75) * unit(rng)  # correlated with a (cosine about 0.5)
    fa = write(tmp_path / "a.safetensors", a, 0.2, on=3.0, layers=(2, 3, 4), attribute="a")
    fb = write(tmp_path / "b.safetensors", b / np.linalg.norm(b), -0.4, layers=None, attribute="b")
    fc = write(tmp_path / "c.safetensors", c, 0.1, on=-1.0, layers=(3, 4, 5), attribute="c")
    pivot = Pivot(w=torch.randn(NUM_WS, W_DIM))
    rows = [2, 3, 4]
    nb = b / np.linalg.norm(b)
    for op, target in (("on", 3.0), ("shift", None)):
        pipe = pipeline([fa], sets=[f"pi1={op}"], keep=[fb], alpha=1.25)
        w, rec, _ = pipe.counterfactual_latent(pivot, "pi1")
        before_b = distances(nb, -0.4, pivot.w, rows)
        assert torch.allclose(distances(nb, -0.4, w, rows), before_b, atol=1e-4)  # kept
        moved = distances(a, 0.2, w, rows) - distances(a, 0.2, pivot.w, rows)
        expected = (3.0 - distances(a, 0.2, pivot.w, rows)) if target is not None else torch.full((3,), 1.25, dtype=torch.float64)
        assert torch.allclose(moved, expected, atol=1e-4)
    # without --keep the correlated attribute moves: the test can fail
    w, _, _ = pipeline([fa], sets=["pi1=on"]).counterfactual_latent(pivot, "pi1")
    assert not torch.allclose(distances(nb, -0.4, w, rows), distances(nb, -0.4, pivot.w, rows), atol=1e-2)
    # two edited attributes on overlapping rows: both reach their own targets, rows 2-5 only
    pipe = pipeline([fa, fc], sets=["pi1=on"])
    w, rec, _ = pipe.counterfactual_latent(pivot, "pi1")
    assert [r["direction"] for r in rec] == [fa, fc]
    assert torch.allclose(distances(a, 0.2, w, rows), torch.full((3,), 3.0, dtype=torch.float64), atol=1e-4)
    assert torch.allclose(distances(c, 0.1, w, [3, 4, 5]), torch.full((3,), -1.0, dtype=torch.float64), atol=1e-4)
    assert torch.equal(w[[0, 1, 6, 7]], pivot.w[[0, 1, 6, 7]])


def test_leakage_is_the_projection_of_the_pair_difference(fakes, tmp_path):
    rng = np.random.default_rng(3)
    a = unit(rng)
    b = 0.6 * a + 0.8 * unit(rng)
    b /= np.linalg.norm(b)
    fa = write(tmp_path / "a.safetensors", a, 0.0, attribute="smile")
    fb = write(tmp_path / "b.safetensors", b, None, layers=None, attribute="age")  # no intercept needed
    pivot = Pivot(w=torch.randn(NUM_WS, W_DIM))
    for keep, expect_zero in (((), False), ((fb,), True)):
        pipe = pipeline([fa], sets=["pi1=on", "pi0=off"], keep=keep, watch=[fb])
        w1, _, _ = pipe.counterfactual_latent(pivot, "pi1")
        w0, _, _ = pipe.counterfactual_latent(pivot, "pi0")

        class R:  # what the leakage reads from an EditResult
            def __init__(self, w):
                self.meta = {"latent": w}

        out = pipe.leakage(pivot, R(w1), R(w0))
        want = np.mean([float((w1[r] - w0[r]).double() @ torch.as_tensor(b)) for r in (2, 3, 4)])
        assert out["leakage_age"] == pytest.approx(want, abs=1e-5)
        assert out["leakage"]["age"]["rows"] == [2, 3, 4]
        assert (abs(out["leakage_age"]) < 1e-4) == expect_zero


def test_several_alphas_and_bad_counts(fakes, tmp_path):
    rng = np.random.default_rng(4)
    fa = write(tmp_path / "a.safetensors", unit(rng))
    fb = write(tmp_path / "b.safetensors", unit(rng), layers=(5, 6))
    pivot = Pivot(w=torch.randn(NUM_WS, W_DIM))
    pipe = pipeline([fa, fb], alpha=[1.0, -2.0])
    _, rec, _ = pipe.counterfactual_latent(pivot, "pi1")
    assert rec[0]["alpha"] == [1.0] * 3 and rec[1]["alpha"] == [-2.0] * 2
    with pytest.raises(ConfigError, match="one per --direction"):
        pipeline([fa, fb], alpha=[1.0, 2.0, 3.0]).counterfactual_latent(pivot, "pi1")


def test_target_operator_without_intercept_is_one_config_error(fakes, tmp_path):
    rng = np.random.default_rng(5)
    f = write(tmp_path / "bare.safetensors", unit(rng), None)
    for role, op in (("pi1", "on"), ("pi0", "off"), ("pi0", "neutral")):
        pipe = pipeline([f], sets=[f"{role}={op}"])
        with pytest.raises(ConfigError, match="directions learn.*directions calibrate"):
            pipe.operator(role)
    # shift, negate, reconstruction need none
    for role, op in (("pi1", "shift"), ("pi0", "negate"), ("pi0", "reconstruction")):
        pipeline([f], sets=[f"{role}={op}"]).operator(role)


def test_move_rejects_parallel_normals():
    from counterface.counterfactual import AttributeEdit

    n = torch.zeros(1, 4)
    n[0, 0] = 1.0
    b = Boundary(normal=n, intercept=torch.zeros(1))
    e1 = AttributeEdit("x", None, b, [0])
    e2 = AttributeEdit("y", None, b, [0])
    with pytest.raises(ConfigError, match="linearly dependent"):
        move(torch.zeros(2, 4), [e1], [torch.ones(1, dtype=torch.float64)], keep=[e2])


# -- --alpha auto ---------------------------------------------------------------------------------
@settings(max_examples=30, deadline=None)
@given(crossing=st.floats(0.01, 2.99), lo=st.floats(-1, 0), hi=st.floats(3, 4))
def test_search_alpha_finds_the_smallest_alpha(crossing, lo, hi):
    found = search_alpha(lambda a: a - crossing, 0.0, (lo, hi), iterations=10)
    assert found.reached and found.score >= 0
    assert crossing <= found.alpha <= crossing + (hi - lo) / 2**10 + 1e-12


def test_search_alpha_bounds():
    assert search_alpha(lambda a: 5.0, 1.0, (0, 3)).alpha == 0  # already there: the smallest is the lower bound
    miss = search_alpha(lambda a: float("nan"), 1.0, (0, 3))
    assert not miss.reached and miss.alpha == 3
    with pytest.raises(ConfigError):
        search_alpha(lambda a: a, 1.0, (3, 0))


class FakeScorer:
    """Scores a crop by its mean absolute difference from a reference crop: grows with the edit."""

    name = "fake"
    attribute = "a"

    def __init__(self, ref):
        self.ref = ref.astype(np.float64)
        self.calls = 0

    def score(self, images):
        self.calls += len(images)
        return np.array([np.abs(np.asarray(im, np.float64) - self.ref).mean() for im in images])


def test_alpha_auto_reaches_the_target_score(fakes, tmp_path):
    rng = np.random.default_rng(6)
    f = write(tmp_path / "a.safetensors", unit(rng), layers=(0, 1, 2, 3))
    photo = np.ascontiguousarray(rng.integers(0, 255, (48, 40, 3), dtype=np.uint8))
    pipe = pipeline([f], alpha="auto", target_score=None)
    face = pipe.faces(photo)[0]
    pivot = Pivot(w=torch.randn(NUM_WS, W_DIM) * 0.3)
    recon = pipe.render(photo, face, pivot, 0.0).crop
    scorer = FakeScorer(recon)
    pipe.config["scorer"] = {"name": "fake"}
    pipe._components["scorer"] = scorer
    with pytest.raises(ConfigError, match="target-score"):
        pipe.auto_alpha(photo, face, pivot)
    top = scorer.score([pipe.render(photo, face, pivot, 3.0).crop])[0]
    pipe.edit["target_score"] = target = 0.5 * top
    found = pipe.auto_alpha(photo, face, pivot)
    assert found.reached and 0 < found.alpha <= 3
    score = lambda a: scorer.score([pipe.render(photo, face, pivot, a).crop])[0]  # noqa: E731
    assert score(found.alpha) >= target
    assert score(found.alpha - 3.0 / 2**8) < target  # the smallest, to the search's resolution
    z1 = pipe.pi1(photo, face, pivot)  # edit.alpha == "auto": searched, then applied
    assert z1.alpha == found.alpha and np.array_equal(z1.crop, pipe.render(photo, face, pivot, found.alpha).crop)


def test_summaries_include_attribute_columns():
    from counterface.tables import summarize

    rows = [{"key": k, "job": "j", "face": 0, "alpha": 1.0, "leakage_age": v, "distance_after_smile": d}
            for k, v, d in (("a", 0.1, 2.0), ("b", 0.3, None), ("c", 0.5, 4.0))]
    (entry,) = summarize(rows)
    assert entry["leakage_age"]["mean"] == pytest.approx(0.3) and entry["leakage_age"]["n"] == 3
    assert entry["distance_after_smile"]["n"] == 2 and entry["distance_after_smile"]["missing"] == 1
