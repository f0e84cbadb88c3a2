"""Plugin loading, the registry, and failure isolation."""

from __future__ import annotations

import pytest

import counterface
from counterface import plugins, registry
from counterface.errors import ConfigError, UnknownComponentError

GOOD = '''
import counterface

class Shift(counterface.AttributeDirection):
    """Adds alpha to every value (a test direction)."""
    attribute = "shift"
    family = "any"

    def __init__(self, amount: float = 1.0):
        self.amount = amount

    def apply(self, w, alpha, layers=None):
        return w + alpha * self.amount

@counterface.hookimpl
def register_directions(register):
    register("shift", Shift)

@counterface.hookimpl
def register_presets(register):
    register("mini", counterface.Preset(components={"direction": {"name": "shift"}}, description="test"))
'''

BAD_IMPORT = "raise RuntimeError('this plugin is broken')\n"

BAD_HOOK = '''
import counterface

@counterface.hookimpl
def register_blenders(register):
    raise ValueError("hook exploded")
'''


def test_entry_point_plugin_registers_with_its_package(plugin_env):
    plugin_env("cf-good", "1.2.3", {"good": "cfplug_good"}, {"cfplug_good": GOOD})
    assert "shift" in counterface.available("direction")
    e = registry.entry("direction", "shift")
    assert (e.package, e.version, e.plugin) == ("cf-good", "1.2.3", "good")
    assert e.description.startswith("Adds alpha")
    d = counterface.create("direction", "shift", amount=2.0)
    assert d.name == "shift" and d.amount == 2.0
    assert counterface.get_preset("mini").components["direction"]["name"] == "shift"


def test_broken_plugins_are_reported_and_others_still_work(plugin_env):
    plugin_env("cf-mixed", "0.1", {"good": "cfplug_good2", "bad": "cfplug_bad", "badhook": "cfplug_badhook"},
               {"cfplug_good2": GOOD, "cfplug_bad": BAD_IMPORT, "cfplug_badhook": BAD_HOOK})
    assert "shift" in counterface.available("direction")
    failures = {f.name: f.error for f in plugins.failures()}
    assert "this plugin is broken" in failures["bad"]
    assert "hook exploded" in failures["badhook"]
    assert "good" not in failures


def test_unknown_kind_and_name_list_valid_ones(plugin_env):
    plugin_env("cf-good", "1.0", {"good": "cfplug_good3"}, {"cfplug_good3": GOOD})
    with pytest.raises(UnknownComponentError) as e:
        counterface.create("direction", "shfit")
    msg = str(e.value)
    assert "did you mean 'shift'" in msg and "valid: " in msg and "\n" not in msg
    with pytest.raises(UnknownComponentError) as e:
        counterface.available("blendr")
    assert "aligner" in str(e.value) and "blender" in str(e.value)


def test_unknown_parameter_is_a_config_error(plugin_env):
    plugin_env("cf-good", "1.0", {"good": "cfplug_good4"}, {"cfplug_good4": GOOD})
    with pytest.raises(ConfigError, match="unknown parameter 'amout'.*valid: amount"):
        counterface.create("direction", "shift", amout=3)


def test_name_clash_is_reported_not_silently_replaced(plugin_env):
    plugin_env("cf-a", "1.0", {"a": "cfplug_a", "b": "cfplug_b"}, {"cfplug_a": GOOD, "cfplug_b": GOOD})
    names = counterface.available("direction")
    assert "shift" not in names and {"a:shift", "b:shift"} <= set(names)  # neither wins by load order
    errors = " ".join(f.error for f in plugins.failures())
    assert "clashes" in errors and "'a:shift'" in errors and "'b:shift'" in errors
    with pytest.raises(ConfigError, match="several plugins.*a:shift, b:shift") as info:
        counterface.create("direction", "shift")
    assert "\n" not in str(info.value)
    assert counterface.create("direction", "b:shift", amount=2.0).amount == 2.0
    assert registry.entry("direction", "a:shift").plugin == "a"


def test_registering_in_code_and_unregistering():
    class P:
        @counterface.hookimpl
        def register_identity_encoders(self, register):
            register("dummy-id", lambda: object())

    name = plugins.register_plugin(P(), name="test-in-code")
    try:
        assert "dummy-id" in counterface.available("identity")
    finally:
        plugins.unregister_plugin(name)
    assert "dummy-id" not in counterface.available("identity")


def test_every_hook_is_documented():
    import inspect

    from counterface import hookspecs

    hooks = [n for n, f in vars(hookspecs).items() if callable(f) and hasattr(f, "counterface_spec")]
    assert len(hooks) >= 11
    for n in hooks:
        doc = inspect.getdoc(getattr(hookspecs, n)) or ""
        assert len(doc) > 30, f"hook {n} needs a docstring contract"
    from pathlib import Path

    docs = (Path(__file__).resolve().parents[2] / "docs" / "plugins.md").read_text()
    for n in hooks:
        assert f"`{n}" in docs, f"hook {n} is missing from docs/plugins.md"


def test_every_kind_has_a_documented_base_class():
    for kind, k in counterface.KINDS.items():
        assert k.name == kind and kind in registry.kinds()
        assert len(k.contract.__doc__ or "") > 80, k.contract
