"""The one per-photo flow: `flow.process_photo` gives what `counterface pairs` writes, and the
settings object is validated once."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from click.testing import CliRunner

from counterface import flow
from counterface.cli import cli
from counterface.errors import ConfigError
from counterface.imageio import read_image
from counterface.settings import EditSettings, parse_alpha, parse_alphas

FEW_STEPS = ["tuner.latent_steps=2", "tuner.tune_steps=2"]


def test_process_photo_gives_the_pairs_that_the_cli_writes(photos, tmp_path):
    path = photos / "astronaut.jpg"
    settings = EditSettings.resolve(preset="tiny", sets=FEW_STEPS, alpha=["1.5"])
    results = flow.process_photo(path, settings)
    assert len(results) == 1
    r = results[0]
    image = read_image(path)
    for z in (r.z1, r.z0):
        assert z.dtype == np.uint8 and z.shape == image.shape
    assert not np.array_equal(r.z1, r.z0)
    assert {k: v["role"] for k, v in r.sidecars.items()} == {"z1": "z1", "z0": "z0"}
    assert r.sidecars["z1"]["alpha"] == 1.5 and r.sidecars["z1"]["input"]["sha256"] == r.photo.sha256
    assert r.pivot_state == "tuned"

    out = tmp_path / "out"
    cmd = ["pairs", str(path), "--preset", "tiny", "--alpha", "1.5", "-o", str(out)]
    for s in FEW_STEPS:
        cmd += ["--set", s]
    res = CliRunner().invoke(cli, cmd, catch_exceptions=False)
    assert res.exit_code == 0, res.output
    assert np.array_equal(read_image(out / "astronaut_face0_z1.png"), r.z1)
    assert np.array_equal(read_image(out / "astronaut_face0_z0.png"), r.z0)

    arr = flow.process_photo(image, settings)[0]  # an array: same images, no path
    assert np.array_equal(arr.z1, r.z1) and arr.photo.path is None


def test_settings_are_frozen_and_validated_once():
    s = EditSettings.resolve(preset="tiny", alphas="0,1,2")
    assert s.sweep() == [0.0, 1.0, 2.0] and s.alpha == 1.0
    with pytest.raises(dataclasses.FrozenInstanceError):
        s.alphas = (3.0,)
    assert EditSettings.resolve(preset="tiny", precision="fp32").edit["precision"] == "fp32"
    for bad in [dict(edit={"face": "left"}), dict(edit={"min_face": -1}), dict(sets=["edit.alpha_bounds=[3, 1]"]),
                dict(sets=["edit.bogus=1"]), dict(alphas="0,0")]:
        with pytest.raises(ConfigError):
            EditSettings.resolve(preset="tiny", **bad)


@pytest.mark.parametrize("values,n,expected", [
    (None, 1, None), (["2"], 1, 2.0), ([2], 1, 2.0), (["1", "-0.5"], 2, [1.0, -0.5]), (["auto"], 1, "auto"),
    (1.5, 3, 1.5), ([1.0, 2.0], 2, [1.0, 2.0]),
])
def test_one_alpha_parser(values, n, expected):
    assert parse_alpha(values, n) == expected


@pytest.mark.parametrize("values,message", [
    (["0,1"], "use --alphas 0,1"), (["1", "2"], "use --alphas 1,2"), (["x"], "expects numbers"),
    (["nan"], "finite"), (["auto", "1"], "cannot be combined"),
])
def test_one_alpha_parser_refuses(values, message):
    with pytest.raises(ConfigError, match=message):
        parse_alpha(values, 1)


def test_one_sweep_parser():
    assert parse_alphas("-2, -1,0") == [-2.0, -1.0, 0.0] and parse_alphas(None) is None
    for bad in ("1,1", "1,x", "auto", "0,inf", ","):
        with pytest.raises(ConfigError):
            parse_alphas(bad)
