"""Numbers within range, not only finite (issue 21): `--alpha 1e308` (and 1e30, 1e6) is refused in one
line with exit 2 on every route, and an edit that leaves the generator's working range is a failure,
never a written pair."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from counterface import batch, ranges
from counterface.cli import cli
from counterface.errors import ConfigError, EditRangeError
from tests.helpers import synthetic_photos

FAKE = ["--preset", "fake"]


def run(args):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    return r


def one_line_exit_2(r, *words):
    assert r.exit_code == 2, r.output
    lines = r.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    for w in words:
        assert w in lines[0], lines[0]


@pytest.mark.parametrize("value", ["1e308", "1e30", "1e6", "-1e6", "50.5"])
@pytest.mark.parametrize("command", ["edit", "pairs", "batch", "sweep", "set", "set-batch", "alpha-list"])
def test_alpha_out_of_range_exits_2_with_one_line(fakes, tmp_path, command, value):
    (photo,) = synthetic_photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    args = {
        "edit": ["edit", photo, *FAKE, "--alpha", value, "-o", out],
        "pairs": ["pairs", photo, *FAKE, f"--alpha={value}", "-o", out],
        "batch": ["batch", tmp_path / "in", *FAKE, f"--alpha={value}", "-o", out],
        "sweep": ["sweep", photo, *FAKE, f"--alphas=0,{value}", "-o", out],
        "set": ["edit", photo, *FAKE, "--set", f"edit.alpha={value}", "-o", out],
        "set-batch": ["batch", tmp_path / "in", *FAKE, "--set", f"edit.alpha={value}", "-o", out],
        "alpha-list": ["batch", tmp_path / "in", *FAKE, f"--alphas=0,1,{value}", "-o", out],
    }[command]
    r = run(args)
    one_line_exit_2(r, "outside its range", "[-50, 50]")
    assert not out.exists() or not list(out.rglob("*.png"))  # nothing written


def test_alpha_bounds_and_distance_have_ranges(fakes, tmp_path):
    (photo,) = synthetic_photos(tmp_path / "in", 1)
    r = run(["edit", photo, *FAKE, "--set", "edit.alpha_bounds=[0, 1e9]", "-o", tmp_path / "o"])
    one_line_exit_2(r, "edit.alpha_bounds")
    r = run(["pairs", photo, *FAKE, "--pi1", "on", "--distance", "1e30", "-o", tmp_path / "o"])
    assert r.exit_code == 2 and "--distance" in r.output and len(r.output.strip().splitlines()) == 1


def test_alpha_at_the_limit_is_accepted(fakes, tmp_path):
    (photo,) = synthetic_photos(tmp_path / "in", 1)
    r = run(["edit", photo, *FAKE, "--alpha", "-50", "-o", tmp_path / "o"])
    assert r.exit_code == 0, r.output


@given(st.floats(allow_nan=True, allow_infinity=True))
def test_range_check_accepts_exactly_the_interval(x):
    inside = np.isfinite(x) and -50 <= x <= 50
    if inside:
        assert ranges.check("alpha", x) == x
    else:
        with pytest.raises(ConfigError) as ei:
            ranges.check("alpha", x)
        assert "\n" not in str(ei.value)


def test_latent_and_image_checks():
    ok = torch.ones(4, 8)
    assert ranges.check_latent(ok) is ok and ranges.check_image(ok) is ok
    for bad in (torch.full((4, 8), float("nan")), torch.full((4, 8), float("inf")), torch.full((4, 8), 1e6)):
        with pytest.raises(EditRangeError):
            ranges.check_latent(bad)
    with pytest.raises(EditRangeError):
        ranges.check_image(torch.tensor([0.0, float("nan")]))
    assert ranges.check_latent(np.zeros((2, 3))) is not None


def _huge_direction(tmp_path, value=1e6):
    p = tmp_path / "huge.npy"
    np.save(p, np.full(16, value, dtype=np.float32))
    return ["--set", f'direction.path="{p}"']


def test_a_batch_edit_that_leaves_the_working_range_is_a_failure_not_a_pair(fakes, tmp_path):
    synthetic_photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    r = run(["batch", tmp_path / "in", *FAKE, "--no-metrics", *_huge_direction(tmp_path), "--alpha", "1",
             "-o", out])
    assert r.exit_code == 0, r.output
    assert "2 failed" in r.output
    fails = batch.read_jsonl(out / "failures.jsonl")
    assert [f["reason"] for f in fails] == ["out_of_range", "out_of_range"]
    assert "working range" in fails[0]["message"]
    assert not batch.read_jsonl(out / "results.jsonl") if (out / "results.jsonl").exists() else True
    assert not list((out / "pairs").glob("*")) if (out / "pairs").exists() else True


def test_an_edit_that_leaves_the_working_range_is_refused(fakes, tmp_path):
    (photo,) = synthetic_photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    r = run(["pairs", photo, *FAKE, *_huge_direction(tmp_path), "-o", out])
    assert r.exit_code == 2 and "working range" in r.output and len(r.output.strip().splitlines()) == 1
    assert not out.exists() or not list(out.glob("*.png"))


def test_a_boolean_is_not_an_alpha(fakes, tmp_path):
    (photo,) = synthetic_photos(tmp_path / "in", 1)
    r = run(["edit", photo, *FAKE, "--set", "edit.alpha=true", "-o", tmp_path / "o"])
    one_line_exit_2(r, "edit.alpha expects numbers")
