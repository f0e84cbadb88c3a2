"""Pivot files: safetensors + JSON header, atomic, validated on load."""

from __future__ import annotations

import json

import pytest
import torch

from counterface import Pivot, WeightsError
from counterface import pivot as pv


def make_pivot():
    g = torch.Generator().manual_seed(0)
    return Pivot(
        w=torch.randn(8, 16, generator=g),
        tensors={"convs.2.conv.weight": torch.randn(1, 4, 4, 3, 3, generator=g), "to_rgbs.1.bias": torch.zeros(1, 3, 1, 1)},
        generator={"name": "fake", "family": "fake", "params": {"resolution": 32, "seed": 0}},
        meta={"losses": {"refine": {"loss": 0.5}, "tune": {"loss": 0.25}}, "steps": {"refine": 3, "tune": 4}},
    )


def test_roundtrip(tmp_path):
    p = make_pivot()
    path = pv.save_pivot(p, tmp_path / "a.pivot.safetensors")
    q = pv.load_pivot(path)
    assert torch.equal(p.w, q.w)
    assert sorted(p.tensors) == sorted(q.tensors)
    assert all(torch.equal(p.tensors[k], q.tensors[k]) for k in p.tensors)
    assert q.generator == p.generator and q.meta == p.meta
    assert [x.name for x in tmp_path.iterdir()] == ["a.pivot.safetensors"]  # no temp files left


def test_same_pivot_same_bytes():
    assert pv.to_bytes(make_pivot()) == pv.to_bytes(make_pivot())


def test_header_is_plain_json_in_safetensors_metadata(tmp_path):
    from safetensors import safe_open

    path = pv.save_pivot(make_pivot(), tmp_path / "p.safetensors")
    with safe_open(str(path), "pt") as f:
        header = json.loads(f.metadata()[pv.META_KEY])
        assert set(f.keys()) == {"w", "g/convs.2.conv.weight", "g/to_rgbs.1.bias"}
    assert header["format"] == 1 and header["generator"]["name"] == "fake"


def test_not_a_pivot(tmp_path):
    from safetensors.torch import save_file

    other = tmp_path / "other.safetensors"
    save_file({"x": torch.zeros(2)}, str(other))
    with pytest.raises(WeightsError, match="not a counterface pivot"):
        pv.load_pivot(other)
    junk = tmp_path / "junk.safetensors"
    junk.write_bytes(b"\x00" * 3 + b"garbage")
    with pytest.raises(WeightsError):
        pv.load_pivot(junk)
    with pytest.raises(WeightsError, match="not found"):
        pv.load_pivot(tmp_path / "missing.safetensors")


def test_refuses_to_overwrite_input(tmp_path):
    from counterface import OutputError

    target = tmp_path / "photo.jpg"
    target.write_bytes(b"x")
    with pytest.raises(OutputError):
        pv.save_pivot(make_pivot(), target, inputs=[target])
    assert target.read_bytes() == b"x"
