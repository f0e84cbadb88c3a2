"""Directions: the real published InterFaceGAN files, layer ranges, shapes, families."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest
import torch

import counterface
from counterface import ConfigError, WeightsError
from counterface_directions import directions as d

HASHES = {  # tests/data/README.md (verified copies of encoder4editing@99ea505)
    "smile.pt": "817a7e732b59dee9eba862bec8bd7e8373568443bc9f9731a21cf9b0356f0653",
    "age.pt": "50074516b1629707d89b5e43d6b8abd1792212fa3b961a87a11323d6a5222ae0",
    "pose.pt": "736e0eacc8488fa0b020a2e7bd256b957284c364191dfea693705e5d06d43e7d",
}


@pytest.fixture(scope="module")
def dirs(shared):
    return shared / "directions"


def wplus(n=18, dim=512, seed=0):
    return torch.randn(2, n, dim, generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize("name", sorted(HASHES))
def test_shared_files_have_published_hashes(dirs, name):
    assert hashlib.sha256((dirs / name).read_bytes()).hexdigest() == HASHES[name]


def test_registry_specs_carry_the_same_hashes():
    from counterface import weights

    for name, sha in HASHES.items():
        assert weights.get_spec(name).sha256 == sha


@pytest.mark.parametrize("name", ["smile", "age", "pose"])
def test_published_directions_load_as_one_unit_row(dirs, name):
    v = counterface.create("direction", name, weights=str(dirs / f"{name}.pt"))._vector()
    assert v.shape == (1, 512) and v.dtype == torch.float32
    assert torch.allclose(v.norm(), torch.tensor(1.0), atol=1e-5)


def test_smile_edits_rows_4_to_6_only(dirs):
    smile = counterface.create("direction", "smile", weights=str(dirs / "smile.pt"))
    assert smile.family == "stylegan2-ffhq-1024" and smile.attribute == "smile"
    w = wplus()
    out = smile.apply(w, 1.5)
    v = torch.load(dirs / "smile.pt", map_location="cpu", weights_only=True)[0]
    for layer in range(18):
        if layer in (4, 5, 6):
            assert torch.equal(out[:, layer], w[:, layer] + 1.5 * v)
        else:
            assert torch.equal(out[:, layer], w[:, layer])  # bit-identical
    assert torch.equal(w, wplus())  # input untouched


@pytest.mark.parametrize("spec,rows", [("all", list(range(18))), ("0,2,16-17", [0, 2, 16, 17]), ([3], [3])])
def test_layer_argument_overrides_default(dirs, spec, rows):
    smile = counterface.create("direction", "smile", weights=str(dirs / "smile.pt"))
    w = wplus()
    out = smile.apply(w, -2.0, counterface.config.parse_layers(spec, 18))
    changed = [i for i in range(18) if not torch.equal(out[:, i], w[:, i])]
    assert changed == rows


def test_age_and_pose_default_to_all_rows(dirs):
    for name in ("age", "pose"):
        direction = counterface.create("direction", name, weights=str(dirs / f"{name}.pt"))
        w = wplus()
        out = direction.apply(w, 1.0)
        assert all(not torch.equal(out[:, i], w[:, i]) for i in range(18))


def test_layers_param_and_alpha_zero(dirs):
    direction = counterface.create("direction", "age", weights=str(dirs / "age.pt"), layers="8-9")
    w = wplus()
    out = direction.apply(w, 3.0)
    assert [i for i in range(18) if not torch.equal(out[:, i], w[:, i])] == [8, 9]
    assert torch.equal(direction.apply(w, 0.0), w)


def test_wrong_family_latent_is_a_config_error(dirs):
    smile = counterface.create("direction", "smile", weights=str(dirs / "smile.pt"))
    with pytest.raises(ConfigError, match="512 dimensions"):
        smile.apply(torch.zeros(1, 8, 64), 1.0)
    with pytest.raises(ConfigError, match="out of range"):
        smile.apply(torch.zeros(1, 4, 512), 1.0)  # rows 4-6 do not exist in a 4-row latent


def test_registry_name_resolves_through_weights_cache(dirs):
    from counterface import weights

    weights.import_file("smile.pt", dirs / "smile.pt")  # hash-checked copy into the isolated cache
    smile = counterface.create("direction", "smile")
    assert smile._vector().shape == (1, 512)


def test_missing_file_is_a_weights_error(tmp_path):
    with pytest.raises(WeightsError):
        counterface.create("direction", "smile", weights=str(tmp_path / "nope.pt"))._vector()


def test_vector_from_npy_and_pt(tmp_path):
    v = np.linspace(-1, 1, 16, dtype=np.float32)
    np.save(tmp_path / "v.npy", v)
    torch.save(torch.from_numpy(v)[None, None].repeat(1, 6, 1), tmp_path / "v.pt")  # (1, 6, 16) identical rows
    a = counterface.create("direction", "vector", path=str(tmp_path / "v.npy"), layers="1-2")
    b = counterface.create("direction", "vector", path=str(tmp_path / "v.pt"), layers="1-2")
    w = torch.zeros(1, 6, 16)
    assert torch.equal(a.apply(w, 2.0), b.apply(w, 2.0))
    assert torch.equal(a.apply(w, 2.0)[0, 1], torch.from_numpy(2 * v))
    assert a.family == "any"


def test_vector_per_layer_rows(tmp_path):
    rows = torch.arange(4 * 3, dtype=torch.float32).reshape(4, 3)
    torch.save(rows, tmp_path / "r.pt")
    direction = counterface.create("direction", "vector", path=str(tmp_path / "r.pt"))
    out = direction.apply(torch.zeros(4, 3), 1.0)
    assert torch.equal(out, rows)


def test_vector_random_is_deterministic_unit():
    a = counterface.create("direction", "vector", dim=32, seed=3)._vector()
    b = counterface.create("direction", "vector", dim=32, seed=3)._vector()
    c = counterface.create("direction", "vector", dim=32, seed=4)._vector()
    assert torch.equal(a, b) and not torch.equal(a, c)
    assert abs(float(a.norm()) - 1.0) < 1e-6


@pytest.mark.parametrize("content", [b"", b"not a tensor file"])
def test_bad_vector_file(tmp_path, content):
    p = tmp_path / "bad.pt"
    p.write_bytes(content)
    with pytest.raises(WeightsError):
        counterface.create("direction", "vector", path=str(p))._vector()


def test_non_finite_vector_rejected(tmp_path):
    np.save(tmp_path / "nan.npy", np.array([1.0, np.nan], dtype=np.float32))
    with pytest.raises(WeightsError, match="NaN"):
        counterface.create("direction", "vector", path=str(tmp_path / "nan.npy"))._vector()


def test_unknown_parameter_is_rejected():
    with pytest.raises(ConfigError, match="unknown parameter"):
        counterface.create("direction", "smile", strength=2)


from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402


@settings(max_examples=40, deadline=None)
@given(rows=st.sets(st.integers(0, 9), min_size=1), alpha=st.floats(-5, 5, allow_nan=False),
       seed=st.integers(0, 1000))
def test_property_only_chosen_rows_move_by_alpha_v(rows, alpha, seed):
    direction = counterface.create("direction", "vector", dim=8, seed=seed)
    w = torch.randn(3, 10, 8, generator=torch.Generator().manual_seed(seed))
    out = direction.apply(w, alpha, sorted(rows))
    v = direction._vector()[0]
    for i in range(10):
        if i in rows:
            assert torch.equal(out[:, i], w[:, i] + alpha * v)
        else:
            assert torch.equal(out[:, i], w[:, i])
