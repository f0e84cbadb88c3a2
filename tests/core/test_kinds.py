"""Kinds declared once (counterface.kinds) and kinds added by a plugin (``register_kinds``): the new kind
gets a registration hook, its components are built by ``create()``, listed by ``counterface plugins``
and configured with ``--set KIND.PARAM=VALUE``."""

from __future__ import annotations

import json
from abc import abstractmethod

import pytest
from click.testing import CliRunner

import counterface
from counterface import hookspecs, kinds, plugins, registry
from counterface.batch.pivots import PIVOT_SECTIONS
from counterface.cli import cli
from counterface.cli._common import COMPONENT_OPTIONS
from counterface.cli.polarization import SET_KINDS
from counterface.errors import UnknownComponentError


class GlassesDetector(counterface.Component):
    """Says whether each aligned face wears glasses (kind ``glasses_detector``, a kind a plugin adds).

    ``detect(images)``: a sequence of (H, W, 3) uint8 aligned crops; returns one bool per image.
    """

    @abstractmethod
    def detect(self, images): ...


class ThresholdDetector(GlassesDetector):
    """Glasses where the eye band is darker than ``threshold`` (a toy)."""

    def __init__(self, threshold: float = 0.5):
        self.threshold = float(threshold)

    def detect(self, images):
        return [float(im.mean()) / 255 < self.threshold for im in images]


class KindPlugin:
    """A third-party plugin: declares the kind and registers one component of it."""

    @counterface.hookimpl
    def register_kinds(self, register):
        register("glasses_detector", GlassesDetector, description="says whether a face wears glasses")

    @counterface.hookimpl
    def register_glasses_detectors(self, register):
        register("band", ThresholdDetector)


class OtherPlugin:
    """Another plugin registering a component of the kind it did not declare."""

    @counterface.hookimpl
    def register_glasses_detectors(self, register):
        register("always", lambda: ThresholdDetector(threshold=2.0), description="always glasses")


@pytest.fixture
def kind_plugin():
    names = [plugins.register_plugin(OtherPlugin(), name="test-other"),
             plugins.register_plugin(KindPlugin(), name="test-kind")]
    try:
        yield
    finally:
        for name in names:
            plugins.unregister_plugin(name)


def test_everything_derives_from_the_one_table():
    assert set(kinds.KINDS) == {"aligner", "inverter", "tuner", "generator", "direction", "blender", "identity",
                                "operator", "embedder", "outlet_model", "scorer"}
    for k in kinds.KINDS.values():
        spec = getattr(hookspecs, k.hook)
        assert hasattr(spec, "counterface_spec") and k.contract.__name__ in spec.__doc__
        assert issubclass(k.contract, counterface.Component)
    assert counterface.KINDS is kinds.KINDS
    assert COMPONENT_OPTIONS == ("aligner", "inverter", "tuner", "direction", "blender", "generator", "identity",
                                 "pi1", "pi0", "scorer")
    assert set(SET_KINDS) == {"embedder", "outlet_model"}
    assert set(PIVOT_SECTIONS) == {"aligner", "inverter", "generator", "tuner", "identity"}
    assert registry.kind_of("pi0") == "operator" and registry.kind_of("tuner") == "tuner"
    assert "pi1" in registry.sections() and "operator" not in registry.sections()
    assert "embedder" not in registry.sections()  # configured by counterface polarization, not by edit


def test_the_architecture_table_is_the_declaration():
    """docs/architecture.md's kinds table says what counterface.KINDS declares, row by row."""
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "architecture.md").read_text()
    rows = {}
    for line in text.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 7 and cells[0].startswith("`") and cells[2].startswith("`register_"):
            rows[cells[0].strip("`")] = cells[1:6]
    assert list(rows) == list(kinds.KINDS)
    for name, k in kinds.KINDS.items():
        contract, hook, sections, scope, pivot = rows[name]
        assert contract == f"`{k.contract.__name__}`" and hook == f"`{k.hook}`"
        assert sections == ", ".join(f"`{s}`" for s in k.sections)
        assert scope == k.scope and pivot == ("yes" if k.pivot else "no")


def test_a_plugin_kind_is_usable_through_create(kind_plugin):
    k = registry.kinds()["glasses_detector"]
    assert k.plugin == "test-kind" and k.hook == "register_glasses_detectors" and k.contract is GlassesDetector
    assert counterface.available("glasses_detector") == ["always", "band"]
    det = counterface.create("glasses_detector", "band", threshold=0.25)
    assert isinstance(det, GlassesDetector) and det.threshold == 0.25
    assert det.name == "band"
    e = registry.entry("glasses_detector", "always")
    assert e.plugin == "test-other" and e.description == "always glasses"
    assert "glasses_detector" in registry.sections()


def test_a_plugin_kind_goes_with_its_plugin(kind_plugin):
    assert "glasses_detector" in registry.kinds()
    plugins.unregister_plugin("test-kind")
    try:
        assert "glasses_detector" not in registry.kinds()
        with pytest.raises(UnknownComponentError, match="unknown component kind 'glasses_detector'"):
            counterface.create("glasses_detector", "band")
    finally:
        plugins.register_plugin(KindPlugin(), name="test-kind")


def test_counterface_plugins_lists_the_plugin_kind(kind_plugin):
    runner = CliRunner()
    text = runner.invoke(cli, ["plugins"])
    assert text.exit_code == 0, text.output
    assert "glasses_detector (a kind declared by plugin 'test-kind'):" in text.output
    assert "  band " in text.output and "  always " in text.output
    out = runner.invoke(cli, ["plugins", "--json"])
    data = json.loads(out.stdout)
    kind = next(k for k in data["kinds"] if k["kind"] == "glasses_detector")
    assert kind["plugin"] == "test-kind" and kind["hook"] == "register_glasses_detectors"
    assert kind["contract"].endswith("GlassesDetector")
    rows = {(r["kind"], r["name"]): r for r in data["components"]}
    assert rows[("glasses_detector", "band")]["plugin"] == "test-kind"
    assert {k["kind"] for k in data["kinds"]} >= set(kinds.KINDS)


def test_set_configures_a_plugin_kind(kind_plugin):
    runner = CliRunner()
    res = runner.invoke(cli, ["config", "--preset", "tiny", "--set", "glasses_detector=band",
                              "--set", "glasses_detector.threshold=0.3"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout)["glasses_detector"] == {"name": "band", "threshold": 0.3}
    bad = runner.invoke(cli, ["config", "--preset", "tiny", "--set", "glasses_detector=bnad"])
    assert bad.exit_code == 2 and "unknown glasses_detector 'bnad' (did you mean 'band'?)" in bad.output
    bad = runner.invoke(cli, ["config", "--preset", "tiny", "--set", "glasses_detector=band",
                              "--set", "glasses_detector.thresh=0.3", "--check"])
    assert bad.exit_code == 2 and "unknown parameter 'thresh' for glasses_detector 'band'" in bad.output


def test_set_of_an_undeclared_kind_is_refused():
    res = CliRunner().invoke(cli, ["config", "--preset", "tiny", "--set", "glasses_detector.threshold=0.3"])
    assert res.exit_code == 2 and "unknown section 'glasses_detector'" in res.output


@pytest.mark.parametrize("args, error", [
    (("aligner", GlassesDetector), "kind 'aligner' is already declared"),
    (("pi0", GlassesDetector), "kind 'pi0' is already declared"),
    (("edit", GlassesDetector), "invalid kind name 'edit'"),
    (("Glasses", GlassesDetector), "invalid kind name 'Glasses'"),
    (("lens", "not a class"), "must be a class"),
    (("lens", GlassesDetector, "register_aligners"), "hook 'register_aligners' already registers the kind 'aligner'"),
    (("lens", GlassesDetector, "register_presets"), "one of counterface's own hooks"),
])
def test_a_refused_declaration_is_reported(args, error):
    class Bad:
        @counterface.hookimpl
        def register_kinds(self, register):
            register(*args)

    name = plugins.register_plugin(Bad(), name="test-bad-kind")
    try:
        assert "lens" not in registry.kinds() and "Glasses" not in registry.kinds()
        assert counterface.available("aligner")  # the others keep working
        found = [f.error for f in plugins.failures() if f.name == "test-bad-kind"]
        assert any(error in f for f in found), found
    finally:
        plugins.unregister_plugin(name)
        plugins._failures.clear()


def test_a_mismatching_implementation_is_reported_and_left_out():
    """A plugin loaded before the kind is declared (an entry point) whose implementation does not
    match the new hook: reported, left out, the others keep working."""
    plugins.reset()  # a fresh manager: the hook of the kind is not specified yet

    class Wrong:
        @counterface.hookimpl
        def register_glasses_detectors(self, reg):  # the spec's argument is `register`
            reg("x", ThresholdDetector)

    wrong = plugins.register_plugin(Wrong(), name="test-wrong-arg")
    good = plugins.register_plugin(KindPlugin(), name="test-kind")
    try:
        assert counterface.available("glasses_detector") == ["band"]
        assert any(f.name == "test-wrong-arg" and "{'reg'}" in f.error for f in plugins.failures())
        assert plugins.get_plugin_manager().get_plugin(wrong) is None
    finally:
        plugins.reset()
