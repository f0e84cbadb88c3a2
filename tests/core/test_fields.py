"""Attribute fields (`directions learn --method mlp`), per-face paths, `directions apply`, and the
validation of boundary and field files (issues 19 and 21)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface.boundary import Boundary, save_boundary
from counterface.cli import cli
from counterface.field import AttributeField, load_field, save_field
from counterface.fieldpath import kept, move_latents


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res, match=""):
    assert res.exit_code != 0, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert match in lines[0], lines[0]
    assert "Traceback" not in res.output and "internal error" not in res.output


def curved(d=32, n=3000, n_test=600, kappa=0.6, flip=0.03, seed=0, scale=1.0, wplus=0):
    """Planted curved boundary: on iff n1.x + kappa ((n2.x)^2 - 1) > 0; a kept attribute nk.x + 0.2 > 0."""
    rng = np.random.default_rng(seed)
    q, _ = np.linalg.qr(rng.normal(size=(d, 3)))
    n1, n2, n3 = q.T
    nk = 0.4 * n1 + np.sqrt(1 - 0.16) * n3

    def truth(lat):
        x = np.asarray(lat, np.float64)
        x = (x.mean(1) if x.ndim == 3 else x) / scale
        return (x @ n1 + kappa * ((x @ n2) ** 2 - 1) > 0).astype(int), (x @ nk + 0.2 > 0).astype(int)

    def sample(m, noisy):
        x = rng.normal(size=(m, d))
        y, k = truth(x * scale)
        if noisy:
            f = rng.random(m) < flip
            y[f] = 1 - y[f]
        lat = x * scale
        if wplus:
            lat = np.repeat(lat[:, None], wplus, 1) + 0.01 * scale * rng.normal(size=(m, wplus, d))
        return {"latents": lat.astype(np.float32), "labels": y, "keep": k}

    return sample(n, True), sample(n_test, False), truth


def test_a_planted_curved_boundary_is_recovered_and_the_kept_attribute_stays(tmp_path):
    """The fast version of the issue's check (32-d instead of 512-d)."""
    train, test, truth = curved()
    np.savez(tmp_path / "train.npz", **train)
    np.savez(tmp_path / "test.npz", **test)
    res = run("directions", "learn", tmp_path / "train.npz", "--method", "mlp", "--folds", "2",
              "-o", tmp_path / "field.safetensors")
    assert res.exit_code == 0, res.output
    f = load_field(tmp_path / "field.safetensors")
    assert f.on_distance > 0 > f.off_distance and f.meta["calibration"]["ece"] < 0.2 and not f.is_linear
    assert run("directions", "learn", tmp_path / "train.npz", "--label", "keep", "--folds", "0",
               "-o", tmp_path / "keep.safetensors").exit_code == 0
    y0, k0 = truth(test["latents"])
    for op, want in (("on", 1), ("off", 0)):
        res = run("directions", "apply", tmp_path / "test.npz", "--direction", tmp_path / "field.safetensors",
                  "--operator", op, "--keep", tmp_path / "keep.safetensors", "-o", tmp_path / f"{op}.npz")
        assert res.exit_code == 0, res.output
        out = np.load(tmp_path / f"{op}.npz")
        assert out["latents"].shape == test["latents"].shape and out["reached"].mean() > 0.99
        y1, k1 = truth(out["latents"])
        assert (y1 == want).mean() >= 0.93, op
        assert (k1 == k0).mean() >= 0.97, op
        side = json.loads((tmp_path / f"{op}.json").read_text())
        assert side["operator"] == op and side["reached"] > 0.99


def test_the_quadratic_term_is_tied_unit_pairs_that_learn_a_band(tmp_path):
    """f = a.z + b + sum_k c_k (silu(u_k.z) + silu(-u_k.z)): a band |z_2| > 1 no linear part separates."""
    from counterface.learn import fit_field

    rng = np.random.default_rng(0)
    x = rng.normal(size=(1200, 4))
    y = (np.abs(x[:, 1]) > 0.8).astype(int)
    fits = {q: fit_field(x, y, hidden=(2,), quadratic=q, members=1, folds=0, density=False, epochs=60, patience=60)
            for q in (0, 2)}
    f = fits[2].field
    assert f.widths == [2 + 2 * 2] and fits[0].field.widths == [2]
    (w, b), v = f.hidden[0], f.output_weight
    assert torch.equal(w[2:4], -w[4:6]) and torch.equal(b[2:], torch.zeros(4)) and torch.equal(v[2:4], v[4:6])
    assert fits[2].validation_accuracy > 0.8 > 0.7 > fits[0].validation_accuracy
    save_field(f, tmp_path / "q.safetensors")
    g = load_field(tmp_path / "q.safetensors")
    z = torch.from_numpy(x[:50])
    assert torch.allclose(g.logit(z), f.logit(z), atol=1e-6)
    again = fit_field(x, y, hidden=(2,), quadratic=2, members=1, folds=0, density=False, epochs=60, patience=60)
    assert torch.equal(again.field.hidden[0][0], w)  # deterministic


def test_a_noisy_strongly_curved_boundary_the_linear_fit_misses_is_recovered():
    """The fast guard of `bench_fields.py --grid` (curvature 0.8, 8% flipped labels, 16-d): a boundary's
    on/off leave a quarter of the latents on the wrong side, the field almost none."""
    from counterface.learn import fit_field, fit_hyperplane, on_off_distances

    train, test, truth = curved(d=16, n=1500, n_test=600, kappa=0.8, flip=0.08, seed=3)
    x = train["latents"]
    kb = fit_hyperplane(x, train["keep"], folds=0)
    keep = kept(Boundary(normal=torch.from_numpy(kb.normal).float()[None], intercept=torch.tensor([kb.intercept])))
    lin = fit_hyperplane(x, train["labels"], folds=0)
    on, off = on_off_distances(x @ lin.normal + lin.intercept, train["labels"])
    boundary = AttributeField.from_boundary(Boundary(normal=torch.from_numpy(lin.normal).float()[None],
                                                     intercept=torch.tensor([lin.intercept]), on_distance=on,
                                                     off_distance=off))
    field = fit_field(x, train["labels"], folds=0, density=False, members=1, epochs=80).field
    y0, k0 = truth(test["latents"])
    for op, want in (("on", 1), ("off", 0)):
        share = {}
        for name, f in (("field", field), ("boundary", boundary)):
            moved, _ = move_latents(f, torch.from_numpy(test["latents"].astype(np.float64)), op, keep=[keep])
            y1, k1 = truth(moved.numpy())
            share[name] = float(np.mean(y1 == want))
            assert np.mean(k1 == k0) >= 0.97, (name, op)
        assert share["field"] >= 0.96 and share["boundary"] <= 0.85, (op, share)


def test_the_label_noise_likelihood_bounds_what_a_flipped_label_costs():
    from counterface.learn import _robust_loss

    f = torch.linspace(-30, 30, 61, dtype=torch.float64)
    t = torch.ones_like(f)
    plain = torch.nn.functional.binary_cross_entropy_with_logits
    assert torch.allclose(_robust_loss(0.0)(f, t), plain(f, t))
    each = [float(_robust_loss(0.05)(f[i:i + 1], t[i:i + 1])) for i in range(len(f))]
    assert max(each) <= -np.log(0.05) + 1e-9 and each == sorted(each, reverse=True)  # bounded, falls with f
    # P(y=1) = eps + (1 - 2 eps) sigmoid(f): at f = 0 both labels cost log 2
    assert abs(float(_robust_loss(0.05)(torch.zeros(1), torch.ones(1))) - np.log(2)) < 1e-6
    g = f.clone().requires_grad_(True)
    _robust_loss(0.05)(g, t).backward()
    assert abs(float(g.grad[0])) < 1e-9 < abs(float(g.grad[30]))  # a label far on the wrong side stops pulling


def _boundary(d=16, seed=0, rows=1):
    g = torch.Generator().manual_seed(seed)
    n = torch.randn(rows, d, generator=g)
    return Boundary(normal=n, intercept=torch.tensor([0.3] * rows), attribute="a", on_distance=1.5, off_distance=-1.2)


def test_the_linear_limit_is_todays_boundary_operators():
    b = _boundary()
    f = AttributeField.from_boundary(b)
    n = b.normal[0].double()
    w = torch.randn(5, 6, 16, dtype=torch.float64)  # W+ rows that differ
    d = w @ n + float(b.intercept[0])
    for op, t in (("on", 1.5), ("off", -1.2), ("neutral", 0.0)):
        moved, path = move_latents(f, w, op, rows=[1, 2, 3])
        want = w.clone()
        want[:, 1:4] = w[:, 1:4] + ((t - d[:, 1:4]) / (n @ n))[..., None] * n  # cf.move's formula
        assert torch.allclose(moved, want, atol=1e-10, rtol=0)
        assert torch.equal(moved[:, [0, 4, 5]], w[:, [0, 4, 5]])  # other rows bit-identical
        assert bool(path.reached.all()) and int(path.steps.max()) == 1
    # a point already within the path tolerance of the target still takes the exact step
    near = (w[:, 0] + ((1.5 + 2e-4 - d[:, 0]) / (n @ n))[:, None] * n)
    moved, _ = move_latents(f, near, "on")
    assert torch.allclose(moved @ n + float(b.intercept[0]), torch.full((5,), 1.5, dtype=torch.float64), atol=1e-12, rtol=0)
    moved, _ = move_latents(f, w, "shift", alpha=2.5)
    assert torch.allclose(moved, w + 2.5 * n / n.norm(), atol=1e-10, rtol=0)
    assert torch.allclose(moved, w + 2.5 * n, atol=1e-6)  # the float32 unit normal
    # with a kept linear attribute: the min-norm move of counterface.counterfactual.move
    k = _boundary(seed=1)
    m = k.normal[0].double()
    moved, _ = move_latents(f, w[:, 0], "on", keep=[kept(k)])
    m = m / m.norm()
    pn = n - (n @ m) * m
    want = w[:, 0] + ((1.5 - d[:, 0]) / (n @ pn))[:, None] * pn
    assert torch.allclose(moved, want, atol=1e-10, rtol=0)


def _random_field(d, seed, hidden=(8,)):
    g = torch.Generator().manual_seed(seed)
    hid, prev = [], d
    for h in hidden:
        hid.append((torch.randn(h, prev, generator=g) / prev ** 0.5, torch.randn(h, generator=g) * 0.1))
        prev = h
    return AttributeField(mean=torch.zeros(d), scale=1.0, linear_weight=torch.randn(d, generator=g), linear_bias=0.1,
                          hidden=hid, output_weight=torch.randn(prev, generator=g), on_distance=2.0, off_distance=-2.0,
                          step=0.05, tolerance=1e-4)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), op=st.sampled_from(["on", "off", "neutral", "shift"]))
def test_keep_projection_leaves_the_kept_score_unmoved(seed, op):
    d = 12
    f = _random_field(d, seed)
    k = _boundary(d=d, seed=seed + 1)
    kf = _random_field(d, seed + 2)
    x = torch.randn(7, d, dtype=torch.float64, generator=torch.Generator().manual_seed(seed))
    moved, path = move_latents(f, x, op, alpha=0.7, keep=[kept(k)])
    m = k.normal[0].double()
    assert torch.allclose(moved @ m, x @ m, atol=1e-9)
    if op != "shift":
        reached = path.reached
        assert torch.allclose(path.logit_after[reached], f.logit(moved)[reached])
    # a kept field: its gradient is projected out at every step, so its logit moves only to second order
    moved2, _ = move_latents(f, x, op, alpha=0.7, keep=[kept(kf)], step=0.01)
    free, _ = move_latents(f, x, op, alpha=0.7, step=0.01)
    moved_kf = (kf.logit(moved2) - kf.logit(x)).abs()
    free_kf = (kf.logit(free) - kf.logit(x)).abs()
    assert float(moved_kf.mean()) <= float(free_kf.mean()) + 1e-6


def test_a_field_file_round_trips_and_bad_fields_are_one_line(tmp_path):
    f = _random_field(16, 0)
    save_field(f, tmp_path / "f.safetensors")
    g = load_field(tmp_path / "f.safetensors")
    x = torch.randn(4, 16, dtype=torch.float64)
    assert torch.allclose(f.logit(x), g.logit(x), atol=1e-4)
    # a NaN weight
    f.output_weight[0] = float("nan")
    from safetensors.torch import load_file, save_file

    tensors = load_file(tmp_path / "f.safetensors")
    from counterface.boundary import read_header

    meta = {k: json.dumps(v) for k, v in read_header(tmp_path / "f.safetensors")[1].items()}
    tensors["output.weight"][0] = float("nan")
    save_file(tensors, tmp_path / "nan.safetensors", metadata=meta)
    one_line_error(run("directions", "show", tmp_path / "nan.safetensors"), match="NaN")
    # a pickle posing as a field
    torch.save({"linear.weight": torch.zeros(16)}, tmp_path / "pickle.safetensors")
    one_line_error(run("directions", "show", tmp_path / "pickle.safetensors"))
    one_line_error(run("directions", "apply", tmp_path / "x.npz", "--direction", tmp_path / "pickle.safetensors",
                       "--operator", "on", "-o", tmp_path / "o.npz"))
    # a field of another w_dim
    np.savez(tmp_path / "x.npz", latents=np.zeros((3, 8), np.float32))
    one_line_error(run("directions", "apply", tmp_path / "x.npz", "--direction", tmp_path / "f.safetensors",
                       "--operator", "on", "-o", tmp_path / "o.npz"), match="8 dimensions")
    # the output never replaces an input
    one_line_error(run("directions", "apply", tmp_path / "x.npz", "--direction", tmp_path / "f.safetensors",
                       "--operator", "on", "-o", tmp_path / "x.npz"))


def test_apply_round_trips_w_and_wplus_latents(tmp_path):
    f = _random_field(16, 3)
    save_field(f, tmp_path / "f.safetensors")
    rng = np.random.default_rng(0)
    for shape in ((6, 16), (6, 4, 16)):
        lat = rng.normal(size=shape).astype(np.float32)
        np.savez(tmp_path / "in.npz", latents=lat)
        res = run("directions", "apply", tmp_path / "in.npz", "--direction", tmp_path / "f.safetensors",
                  "--operator", "shift", "--alpha", "0.5", "-o", tmp_path / "out.npz")
        assert res.exit_code == 0, res.output
        out = np.load(tmp_path / "out.npz")
        assert out["latents"].shape == shape and out["latents"].dtype == np.float32
        assert np.allclose(out["path_length"], 0.5)
        # shift then negate returns close to the start for a small step
        np.savez(tmp_path / "mid.npz", latents=out["latents"])
        assert run("directions", "apply", tmp_path / "mid.npz", "--direction", tmp_path / "f.safetensors",
                   "--operator", "negate", "--alpha", "0.5", "-o", tmp_path / "back.npz").exit_code == 0
        back = np.load(tmp_path / "back.npz")["latents"]
        assert np.abs(back - lat).max() < 0.05


def test_a_path_goal_comes_from_the_operator_attributes_not_its_name():
    """A third-party operator: its attributes and its own step decide the path, whatever its name."""
    from counterface import Operator
    from counterface.fieldpath import operator_goal

    class Triple(Operator):
        def step(self, distance, *, alpha, boundary=None, index=0, rows=0):
            return torch.full((int(distance.shape[0]),), 3.0 * alpha, dtype=torch.float64)

    class Level(Triple):
        needs_intercept = True
        uses_alpha = False

        def step(self, distance, *, alpha, boundary=None, index=0, rows=0):
            return 0.5 * boundary.on_distance - distance.double()

    class Still(Triple):
        uses_alpha = False

    b = _boundary()
    f = AttributeField.from_boundary(b)
    assert operator_goal(f, Triple(), alpha=0.4) == (None, pytest.approx(1.2))
    assert operator_goal(f, Level(), alpha=9.0) == (pytest.approx(0.75), None)
    assert operator_goal(f, Still(), alpha=9.0) == (None, 0.0)
    w = torch.randn(4, 16, dtype=torch.float64)
    moved, path = move_latents(f, w, Level())
    assert torch.allclose(path.logit_after, torch.full((4,), 0.75, dtype=torch.float64), atol=1e-9)
    moved, path = move_latents(f, w, Still())
    assert torch.equal(moved, w)
    # a registered target operator honours its own distance parameter
    from counterface import registry

    _, path = move_latents(f, w, registry.create("operator", "on", distance=-0.25))
    assert torch.allclose(path.logit_after, torch.full((4,), -0.25, dtype=torch.float64), atol=1e-9)


def test_apply_validates_the_operator_through_the_registry(tmp_path):
    f = _random_field(16, 3)
    save_field(f, tmp_path / "f.safetensors")
    np.savez(tmp_path / "in.npz", latents=np.random.default_rng(0).normal(size=(5, 16)).astype(np.float32))
    res = run("directions", "apply", tmp_path / "in.npz", "--direction", tmp_path / "f.safetensors",
              "--operator", "sideways", "-o", tmp_path / "o.npz")
    one_line_error(res, match="valid: ")
    assert res.exit_code == 2 and "negate" in res.stderr and "shift" in res.stderr
    one_line_error(run("directions", "apply", tmp_path / "in.npz", "--direction", tmp_path / "f.safetensors",
                       "--operator", "original", "-o", tmp_path / "o.npz"), match="photo")
    res = run("directions", "apply", tmp_path / "in.npz", "--direction", tmp_path / "f.safetensors",
              "--operator", "on", "--distance", "0.5", "-o", tmp_path / "o.npz")
    assert res.exit_code == 0, res.output
    assert np.allclose(np.load(tmp_path / "o.npz")["logit_after"], 0.5, atol=1e-3)
    side = json.loads((tmp_path / "o.json").read_text())
    assert side["alpha"] is None and side["distance"] == 0.5


# -- issue 21: boundary files validated in full, learn's warnings, the cache -------------------------
def _bfile(tmp_path, name="b", **meta):
    from safetensors.torch import save_file

    m = {"format": "counterface-boundary/1", "attribute": "a", "family": "", "w_dim": 8, "layers": None,
         "on_distance": 1.0, "off_distance": -1.0}
    m.update(meta)
    p = tmp_path / f"{name}.safetensors"
    save_file({"normal": torch.ones(8) / 8 ** 0.5, "intercept": torch.tensor(0.1)}, p,
              metadata={k: json.dumps(v) for k, v in m.items()})
    return p


@pytest.mark.parametrize("meta,match", [
    ({"layers": []}, "layers"), ({"on_distance": -1.0, "off_distance": 1.0}, "swapped"),
    ({"format": "counterface-boundary/99"}, "unknown format"), ({"w_dim": "512"}, "w_dim"),
    ({"layers": ["a"]}, "layers"), ({"on_distance": "x"}, "on_distance"),
    ({"family": "stylegan2-random-s64-d64-seed0"}, "w_dim 64"),
    ({"family": "stylegan2-random-s64-d8-seed0", "layers": [12]}, "outside"),
])
def test_invalid_boundary_files_are_refused_on_every_read(tmp_path, monkeypatch, meta, match):
    p = _bfile(tmp_path, **meta)
    one_line_error(run("directions", "show", p), match=match)
    one_line_error(run("directions", "show", p, "--json"), match=match)
    monkeypatch.setenv("COUNTERFACE_DIRECTIONS", str(tmp_path))
    res = run("directions", "list", "--json")
    assert res.exit_code == 0, res.output
    row = next(json.loads(x) for x in res.stdout.splitlines() if json.loads(x)["name"] == "b")
    assert match in row["error"]


def test_show_json_is_strict(tmp_path):
    res = run("directions", "show", _bfile(tmp_path), "--json")
    assert res.exit_code == 0, res.output
    json.loads(res.stdout, parse_constant=lambda c: pytest.fail(f"non-strict JSON constant {c}"))


def test_learn_warns_and_refuses(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(200, 8)).astype(np.float32)
    np.savez(tmp_path / "noise.npz", latents=x, labels=rng.integers(0, 2, 200))
    res = run("directions", "learn", tmp_path / "noise.npz", "-o", tmp_path / "n.safetensors", "--folds", "3")
    assert ("near chance" in res.stderr or "below chance" in res.stderr or res.exit_code == 2), res.output
    np.savez(tmp_path / "fam.npz", latents=x, labels=(x[:, 0] > 0).astype(int), family="stylegan2-random-s64-d64-seed0")
    one_line_error(run("directions", "learn", tmp_path / "fam.npz", "-o", tmp_path / "f.safetensors"), match="w_dim 64")
    # conditioning on a boundary from the same labels: no signal left
    np.savez(tmp_path / "s.npz", latents=x, labels=(x[:, 0] > 0).astype(int))
    assert run("directions", "learn", tmp_path / "s.npz", "-o", tmp_path / "s.safetensors", "--folds", "0").exit_code == 0
    res = run("directions", "learn", tmp_path / "s.npz", "-o", tmp_path / "c.safetensors", "--folds", "3",
              "--orthogonal-to", tmp_path / "s.safetensors")
    assert "lost its signal" in res.stderr or res.exit_code == 2, res.output
    # an object array in the npz; calibrate's sample count
    np.savez(tmp_path / "obj.npz", latents=np.array([object()] * 3, dtype=object), labels=np.zeros(3))
    one_line_error(run("directions", "learn", tmp_path / "obj.npz", "-o", tmp_path / "o.safetensors"))
    one_line_error(run("directions", "calibrate", "vector", "--samples", "99999999999", "--preset", "tiny"))


def test_the_latent_cache_is_only_replaced_when_counterface_made_it(tmp_path):
    from counterface.errors import ConfigError
    from counterface.labelled import LatentCache

    mine = tmp_path / "mine.npz"
    np.savez(mine, latents=np.zeros((2, 8)))
    before = mine.read_bytes()
    with pytest.raises(ConfigError, match="not a latent cache"):
        LatentCache(mine)
    assert mine.read_bytes() == before
    c = LatentCache(tmp_path / "c.npz")
    c.put("d", "s1", np.zeros((4, 8)))
    c.put("d", "s2", np.full((4, 8), np.nan))
    c.save()
    again = LatentCache(tmp_path / "c.npz")
    assert again.get("d", "s1") is not None and again.get("d", "s2") is None and again.dropped == 1
    (tmp_path / "t.npz").write_bytes((tmp_path / "c.npz").read_bytes()[:40])
    with pytest.raises(ConfigError, match="unreadable latent cache"):
        LatentCache(tmp_path / "t.npz")


# -- a field wherever --direction works (tiny preset, 64-d) -----------------------------------------
NO_TUNING = ["--set", "tuner.latent_steps=0", "--set", "tuner.tune_steps=0"]


@pytest.fixture(scope="module")
def tiny_field(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("field64")
    train, _, _ = curved(d=64, n=800, n_test=10, seed=5)
    np.savez(tmp / "t.npz", **train)
    r = run("directions", "learn", tmp / "t.npz", "--method", "mlp", "--hidden", "16", "--folds", "0",
            "--attribute", "curvy", "-o", tmp / "field.safetensors")
    assert r.exit_code == 0, r.output
    r = run("directions", "learn", tmp / "t.npz", "--label", "keep", "--folds", "0", "--attribute", "kept",
            "-o", tmp / "keep.safetensors")
    assert r.exit_code == 0, r.output
    return tmp


def test_a_field_in_pairs_and_batch_under_tiny(tiny_field, photos, tmp_path):
    f = load_field(tiny_field / "field.safetensors")
    photo = photos / "astronaut_240p.jpg"
    r = run("pairs", photo, "--preset", "tiny", "--direction", tiny_field / "field.safetensors", "--pi1", "on",
            "--pi0", "off", "--keep", tiny_field / "keep.safetensors", *NO_TUNING, "-o", tmp_path / "p")
    assert r.exit_code == 0, r.output
    for role, target in (("z1", f.on_distance), ("z0", f.off_distance)):
        s = json.loads(next((tmp_path / "p").glob(f"*_{role}.json")).read_text())
        a = s["attributes"][0]
        assert a["field"]["units"] == "logit" and all(a["field"]["reached"])
        assert np.allclose(a["distance_after"], target, atol=2 * f.tolerance)
        assert len(a["field"]["steps"]) == len(a["layers"]) and min(a["field"]["path_length"]) > 0
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(photo.read_bytes())
    r = run("batch", folder, "-o", tmp_path / "out", "--preset", "tiny", "--direction", tiny_field / "field.safetensors",
            "--pi1", "on", "--pi0", "off", "--no-metrics", *NO_TUNING)
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[0])
    assert row["distance_after_curvy"] == pytest.approx(f.on_distance, abs=2 * f.tolerance)
    assert row["distance_after_curvy_z0"] == pytest.approx(f.off_distance, abs=2 * f.tolerance)
    # TOML: the boundary direction with a field file
    (tmp_path / "c.toml").write_text(f'[direction]\nname = "boundary"\npath = "{tiny_field / "field.safetensors"}"\n')
    r = run("edit", photo, "--preset", "tiny", "--config", tmp_path / "c.toml", "--alpha", "0.5", *NO_TUNING,
            "-o", tmp_path / "e")
    assert r.exit_code == 0, r.output
    s = json.loads(next((tmp_path / "e").glob("*.json")).read_text())
    assert np.allclose(s["attributes"][0]["field"]["path_length"], 0.5)


def test_a_field_of_another_w_dim_or_family_is_refused_in_the_pipeline(tiny_field, photos, tmp_path):
    train, _, _ = curved(d=32, n=300, n_test=10, seed=6)
    np.savez(tmp_path / "t.npz", **train)
    assert run("directions", "learn", tmp_path / "t.npz", "--method", "mlp", "--hidden", "8", "--folds", "0",
               "-o", tmp_path / "f32.safetensors").exit_code == 0
    one_line_error(run("edit", photos / "astronaut_240p.jpg", "--preset", "tiny", "--direction",
                       tmp_path / "f32.safetensors", *NO_TUNING, "-o", tmp_path / "x"), match="32")
    f = load_field(tiny_field / "field.safetensors")
    f.family = "stylegan2-random-s64-d64-seed9"
    save_field(f, tmp_path / "other.safetensors")
    one_line_error(run("edit", photos / "astronaut_240p.jpg", "--preset", "tiny", "--direction",
                       tmp_path / "other.safetensors", *NO_TUNING, "-o", tmp_path / "y"), match="seed9")


def test_evaluate_compares_a_boundary_and_a_field(tmp_path):
    train, test, _ = curved(d=16, n=800, n_test=400, seed=9)
    np.savez(tmp_path / "train.npz", **train)
    np.savez(tmp_path / "test.npz", **test)
    assert run("directions", "learn", tmp_path / "train.npz", "--folds", "0", "-o", tmp_path / "lin.safetensors"
               ).exit_code == 0
    assert run("directions", "learn", tmp_path / "train.npz", "--method", "mlp", "--hidden", "16", "--folds", "0",
               "-o", tmp_path / "fld.safetensors").exit_code == 0
    res = run("directions", "evaluate", tmp_path / "test.npz", "--editor", tmp_path / "lin.safetensors", "--editor",
              tmp_path / "fld.safetensors", "--train", tmp_path / "train.npz", "-o", tmp_path / "cmp.json")
    assert res.exit_code == 0, res.output
    out = json.loads((tmp_path / "cmp.json").read_text())
    assert set(out["editors"]) == {"lin", "fld"} and (tmp_path / "cmp.png").stat().st_size > 1000
    lin = out["editors"]["lin"]
    assert lin["cycle_error"] < 1e-6  # a straight line: off after on is off
    flips = [c["flip_rate"] for c in lin["curve"]]
    assert flips == sorted(flips) and flips[-1] > 0.9
    assert "keep" in lin["at_equal_flip"]["leakage"] and 0 <= lin["off_data_share"] <= 1
    one_line_error(run("directions", "evaluate", tmp_path / "test.npz", "--editor", tmp_path / "lin.safetensors",
                       "-o", tmp_path / "test.npz"))
