"""Bad numbers are refused: NaN/infinite CLI options and --set values (one line, non-zero exit), and
sidecars are strict JSON (a non-finite float becomes null)."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from counterface import config, imageio
from counterface.cli import cli
from counterface.errors import ConfigError

BAD = ["nan", "inf", "-inf", "NaN", "Infinity", "1e999"]


def _strict_loads(text: str):
    def refuse(token):
        raise AssertionError(f"non-standard JSON token {token}")

    return json.loads(text, parse_constant=refuse)


def _one_line_refusal(args, tmp_path):
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, [*args, "-o", str(out)])
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert r.exit_code == 2, (args, r.exit_code, r.output)
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert "Traceback" not in r.output
    assert not out.exists() or not any(out.iterdir())  # nothing written
    return lines[0]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from PIL import Image

    p = tmp_path_factory.mktemp("photo") / "p.png"
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(p)
    return str(p)


@pytest.mark.parametrize("value", BAD)
def test_edit_refuses_a_non_finite_alpha(value, photo, tmp_path):
    line = _one_line_refusal(["edit", photo, "--preset", "tiny", f"--alpha={value}"], tmp_path)
    assert "--alpha" in line and "finite" in line


@pytest.mark.parametrize("args", [
    ["pairs", "{p}", "--preset", "tiny", "--alpha=nan"],
    ["sweep", "{p}", "--preset", "tiny", "--alphas=-1,nan,1"],
    ["sweep", "{p}", "--preset", "tiny", "--alphas=0,inf"],
    ["batch", "{p}", "--preset", "tiny", "--alphas=0,nan"],
    ["align", "{p}", "--aligner", "dlib", "--min-face", "nan"],
    ["align", "{p}", "--aligner", "dlib", "--min-face", "inf"],
    ["align", "{p}", "--aligner", "dlib", "--min-face", "-1"],
    ["edit", "{p}", "--preset", "tiny", "--set", "tuner.latent_lr=nan"],
    ["edit", "{p}", "--preset", "tiny", "--set", "tuner.tune_steps=inf"],
    ["edit", "{p}", "--preset", "tiny", "--set", "blender.sigma=-Infinity"],
    ["edit", "{p}", "--preset", "tiny", "--face", "match", "--reference", "{p}", "--match-threshold", "nan"],
    ["directions", "learn", "{p}", "--label", "x", "--threshold", "nan"],
    ["directions", "learn", "{p}", "--label", "x", "--keep-extremes", "inf"],
    ["directions", "learn", "{p}", "--label", "x", "--keep-extremes", "0"],
    ["polarization", "{p}", "--level", "nan"],
    ["polarization", "{p}", "--level", "1"],
    ["polarization", "{p}", "--alpha", "inf"],
    ["polarization", "{p}", "--jobs", "0"],
    ["batch", "{p}", "--preset", "tiny", "--match-threshold", "nan"],
    ["evaluate", "{p}", "--identity-threshold", "inf"],
])
def test_other_numeric_options_refuse_bad_numbers(args, photo, tmp_path):
    _one_line_refusal([a.replace("{p}", photo) for a in args], tmp_path)


def test_config_file_with_nan_is_refused(photo, tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[tuner]\nlatent_lr = nan\n")
    line = _one_line_refusal(["edit", photo, "--preset", "tiny", "--config", str(cfg)], tmp_path)
    assert "finite" in line and "tuner" in line


@pytest.mark.parametrize("text", BAD + ["[1.0, nan]", "{a = inf}"])
def test_set_values_must_be_finite(text):
    with pytest.raises(ConfigError, match="finite"):
        config.parse_set(f"tuner.x={text}")


@pytest.mark.parametrize("text,value", [("3", 3), ("-0.5", -0.5), ("abc", "abc"), ("[1, 2]", [1, 2]), ("true", True)])
def test_finite_set_values_still_parse(text, value):
    assert config.parse_set(f"tuner.x={text}") == ("tuner", "x", value)


def test_sidecar_json_is_strict(tmp_path):
    p = imageio.write_json(tmp_path / "s.json", {"alpha": 1.5, "metrics": {"psnr": math.inf, "ssim": math.nan},
                                                 "arr": np.array([0.5, np.nan]), "f32": np.float32("nan")})
    data = _strict_loads(p.read_text())
    assert data == {"alpha": 1.5, "metrics": {"psnr": None, "ssim": None}, "arr": [0.5, None], "f32": None}


@given(st.recursive(st.floats(allow_nan=True, allow_infinity=True) | st.integers() | st.text(max_size=3) | st.none(),
                    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=3), inner, max_size=3),
                    max_leaves=12))
def test_dumps_json_always_strict_and_keeps_finite_values(obj):
    back = _strict_loads(imageio.dumps_json(obj))

    def expected(o):
        if isinstance(o, float):
            return o if math.isfinite(o) else None
        if isinstance(o, list):
            return [expected(v) for v in o]
        if isinstance(o, dict):
            return {k: expected(v) for k, v in o.items()}
        return o

    assert back == expected(obj)
