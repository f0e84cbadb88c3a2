"""The ``boundary`` direction: a boundary file applied as w + alpha * n on its rows."""

from __future__ import annotations

import pytest
import torch

import counterface
from counterface import ConfigError, WeightsError
from counterface.boundary import Boundary, save_boundary


@pytest.fixture
def bfile(tmp_path):
    g = torch.Generator().manual_seed(0)
    b = Boundary(torch.randn(16, generator=g), torch.tensor(0.25), attribute="glasses", family="fam-a",
                 layers=[1, 2], on_distance=2.0, off_distance=-1.0, meta={"accuracy": 0.9})
    return save_boundary(b, tmp_path / "glasses.safetensors"), b


def test_boundary_direction_edits_its_rows_and_keeps_the_others_bit_identical(bfile):
    path, b = bfile
    d = counterface.create("direction", "boundary", path=str(path))
    assert (d.attribute, d.family, list(d.default_layers)) == ("glasses", "fam-a", [1, 2])
    w = torch.randn(2, 5, 16, generator=torch.Generator().manual_seed(1))
    out = d.apply(w, 1.5, None)
    assert torch.equal(out[:, [0, 3, 4]], w[:, [0, 3, 4]])
    # each edited row's signed distance moved by exactly alpha
    d0, d1 = d.boundary.distance(w, [1, 2]), d.boundary.distance(out, [1, 2])
    assert torch.allclose(d1 - d0, torch.full_like(d0, 1.5), atol=1e-5)
    assert d.boundary.on_distance == 2.0 and d.boundary.meta["file_sha256"]
    assert d.describe()["has_intercept"] is True
    other = counterface.create("direction", "boundary", path=str(path), layers="all")
    assert other.default_layers is None and other.boundary.layers is None


def test_boundary_direction_refuses_other_latents_and_missing_files(bfile, tmp_path):
    path, _ = bfile
    d = counterface.create("direction", "boundary", path=str(path))
    with pytest.raises(ConfigError, match="16 dimensions"):
        d.apply(torch.zeros(1, 5, 64), 1.0)
    with pytest.raises(WeightsError, match="not found"):
        counterface.create("direction", "boundary", path=str(tmp_path / "nope.safetensors"))
    with pytest.raises(ConfigError, match="needs a file"):
        counterface.create("direction", "boundary")


def test_registered_directions_expose_boundaries(shared):
    v = counterface.create("direction", "vector", dim=32, seed=3, layers="1-2")
    b = v.boundary
    assert (b.w_dim, b.has_intercept, b.layers) == (32, False, [1, 2])
    assert torch.equal(b.normal, v._vector())
    p = counterface.create("direction", "pose", weights=str(shared / "directions" / "pose.pt"))
    assert (p.boundary.rows, p.boundary.layers, p.boundary.has_intercept) == (1, None, False)
