"""Configuration parsing and precedence (hypothesis properties)."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

import counterface
from counterface import config
from counterface.errors import ConfigError

names = st.from_regex(r"[a-z][a-z0-9_]{0,10}", fullmatch=True)
scalars = st.one_of(
    st.integers(-10**6, 10**6),
    st.floats(allow_nan=False, allow_infinity=False, width=64),
    st.booleans(),
    st.text(alphabet=st.characters(codec="ascii", categories=("L", "N")), min_size=1, max_size=12),
)


def _toml_literal(v) -> str:
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, str):
        return '"' + v + '"'
    return repr(v)


@given(section=names, key=names, value=scalars)
def test_set_roundtrips_typed_values(section, key, value):
    s, k, v = config.parse_set(f"{section}.{key}={_toml_literal(value)}")
    assert (s, k) == (section, key)
    assert v == value and type(v) is type(value)


@given(text=st.text(alphabet=st.characters(codec="ascii", categories=("L",)), min_size=1, max_size=12))
def test_bare_words_are_strings_and_non_finite_spellings_are_refused(text):
    if text in ("true", "false"):
        return
    try:
        non_finite = not math.isfinite(float(text))  # nan, inf, infinity in any case
    except ValueError:
        non_finite = False
    if non_finite:
        with pytest.raises(ConfigError, match="not a finite number"):
            config.parse_value(text)
    else:
        assert config.parse_value(text) == text


def test_set_without_key_sets_the_name():
    assert config.parse_set("tuner=pti") == ("tuner", "name", "pti")


@pytest.mark.parametrize("bad", ["tuner", "=3", "a.b.c=1", ".x=1", "tu ner.x=1"])
def test_malformed_set_is_one_line_error(bad):
    with pytest.raises(ConfigError) as e:
        config.parse_set(bad)
    assert "\n" not in str(e.value)


@given(a=st.integers(0, 17), n=st.integers(0, 17))
def test_layer_ranges_are_inclusive(a, n):
    b = min(a + n, 17)
    assert config.parse_layers(f"{a}-{b}", 18) == list(range(a, b + 1))


@given(st.lists(st.integers(0, 17), min_size=1, max_size=8))
def test_layer_lists_sorted_unique(xs):
    spec = ",".join(map(str, xs))
    assert config.parse_layers(spec, 18) == sorted(set(xs))


def test_layers_all_default_and_errors():
    assert config.parse_layers("all", 18) == list(range(18))
    assert config.parse_layers(None) is None
    for bad in ("6-4", "x", "1-2-3"):
        with pytest.raises(ConfigError):
            config.parse_layers(bad, 18)
    with pytest.raises(ConfigError, match="out of range"):
        config.parse_layers("4-18", 18)


PRESET_PLUGIN = '''
import counterface

@counterface.hookimpl
def register_presets(register):
    register("base", counterface.Preset(
        components={"tuner": {"name": "pti", "steps": 350, "lr": 3e-4}, "blender": {"name": "gaussian"}},
        edit={"alpha": 1.0}))
'''


OTHER_TUNER = '''
import counterface

@counterface.hookimpl
def register_tuners(register):
    register("other", lambda: None)
'''


@pytest.fixture
def base_preset(plugin_env):
    plugin_env("cf-presets-test", "0.1", {"p": "cfplug_presets"}, {"cfplug_presets": PRESET_PLUGIN})


def test_precedence_preset_file_option_set(base_preset, tmp_path):
    f = tmp_path / "c.toml"
    f.write_text('preset = "base"\n[tuner]\nsteps = 100\n[edit]\nalpha = 2.5\n')
    cfg = config.resolve(config_file=f, sets=["tuner.lr=0.01"])
    assert cfg["tuner"] == {"name": "pti", "steps": 100, "lr": 0.01}
    assert cfg["edit"]["alpha"] == 2.5 and cfg["preset"] == "base"
    cfg = config.resolve(preset="base", config_file=f, sets=["tuner.steps=7"])
    assert cfg["tuner"]["steps"] == 7


def test_changing_a_component_drops_the_old_ones_params(base_preset, plugin_env):
    plugin_env("cf-other", "0.1", {"o": "cfplug_other"}, {"cfplug_other": OTHER_TUNER})
    cfg = config.resolve(preset="base", components={"tuner": "other"})
    assert cfg["tuner"] == {"name": "other"}
    with pytest.raises(counterface.UnknownComponentError, match="unknown tuner 'nope'"):
        config.resolve(preset="base", components={"tuner": "nope"})
    cfg = config.resolve(preset="base", components={"tuner": "pti"})
    assert cfg["tuner"]["steps"] == 350
    cfg = config.resolve(preset="base", components={"tuner": {"name": "pti", "steps": 5}}, sets=["tuner.lr=0.1"])
    assert cfg["tuner"] == {"name": "pti", "steps": 5, "lr": 0.1}  # a whole section replaces the preset's
    with pytest.raises(counterface.ConfigError, match="unknown section 'tunre'"):
        config.resolve(preset="base", components={"tunre": {"name": "pti"}})


def test_config_errors(base_preset, tmp_path):
    with pytest.raises(ConfigError, match="unknown section 'tunre'"):
        config.resolve(preset="base", sets=["tunre.steps=1"])
    bad = tmp_path / "bad.toml"
    bad.write_text("[tuner\nsteps=")
    with pytest.raises(ConfigError, match="invalid TOML"):
        config.resolve(config_file=bad)
    with pytest.raises(ConfigError, match="not found"):
        config.resolve(config_file=tmp_path / "missing.toml")
    with pytest.raises(counterface.UnknownComponentError, match="valid: base"):
        config.resolve(preset="nope")
    with pytest.raises(ConfigError, match="need a name"):
        config.resolve(preset="base", sets=["aligner.size=256"])
