"""Plugin selection (COUNTERFACE_PLUGINS, COUNTERFACE_DISABLE_PLUGINS, --disable-plugin), hooks called
through pluggy with per-plugin attribution, qualified names, and the registry following plugin changes."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

import counterface
from counterface import plugins, registry

from .test_registry import BAD_HOOK, GOOD


def _two_plugins(plugin_env):
    plugin_env("cf-sel", "2.0", {"good": "cfplug_sel_good", "badhook": "cfplug_sel_badhook"},
               {"cfplug_sel_good": GOOD, "cfplug_sel_badhook": BAD_HOOK})


def _reference_plugins() -> set[str]:
    import importlib.metadata as md

    return {ep.name for ep in md.entry_points(group=plugins.GROUP)
            if ep.dist is not None and ep.dist.metadata["Name"] == plugins.DISTRIBUTION}


def test_allow_list_chooses_among_third_party_plugins(plugin_env, monkeypatch):
    monkeypatch.setenv(plugins.ALLOW_ENV, "good, nonexistent")
    _two_plugins(plugin_env)
    assert "shift" in counterface.available("direction")
    assert plugins.skipped() == ["badhook"]  # the reference plugins stay
    assert "stylegan2" in counterface.available("generator") and "boundary" in counterface.available("direction")
    assert {n for n in _reference_plugins() if plugins.plugin_info(n)} == _reference_plugins()
    errors = {f.name: f.error for f in plugins.failures()}
    assert "badhook" not in errors  # never imported, so its hook never ran
    assert "not installed" in errors["nonexistent"]


def test_empty_allow_list_loads_only_the_reference_plugins(plugin_env, monkeypatch):
    monkeypatch.setenv(plugins.ALLOW_ENV, "")
    _two_plugins(plugin_env)
    assert sorted(plugins.skipped()) == ["badhook", "good"]
    assert "shift" not in counterface.available("direction") and "smile" in counterface.available("direction")
    assert plugins.get_plugin_manager().get_plugin(plugins.CORE) is not None  # core's defaults stay


def test_disable_env_names_reference_plugins_too(plugin_env, monkeypatch):
    monkeypatch.setenv(plugins.ALLOW_ENV, "good")
    monkeypatch.setenv(plugins.DISABLE_ENV, "directions,stylegan2")
    _two_plugins(plugin_env)
    assert sorted(plugins.skipped()) == ["badhook", "directions", "stylegan2"]
    assert counterface.available("generator") == [] and counterface.available("direction") == ["shift"]
    assert counterface.available("blender")  # the other reference plugins stay


def test_disable_env_and_disable_call(plugin_env, monkeypatch):
    monkeypatch.setenv(plugins.DISABLE_ENV, "badhook")
    _two_plugins(plugin_env)
    assert "shift" in counterface.available("direction")
    assert "badhook" not in {f.name for f in plugins.failures()}
    try:
        plugins.disable(["good"])
        assert "shift" not in counterface.available("direction")  # the registry rebuilt itself
        assert "good" in plugins.skipped()
    finally:
        plugins._disabled_in_code.clear()
        plugins.reset()


def test_cli_disable_plugin_option():
    run = [sys.executable, "-m", "counterface"]
    on = subprocess.run([*run, "plugins", "--json"], capture_output=True, text=True, timeout=120)
    off = subprocess.run([*run, "--disable-plugin", "directions", "plugins", "--json"], capture_output=True,
                         text=True, timeout=120)
    assert on.returncode == 0 and off.returncode == 0, off.stderr
    assert '"plugin": "directions"' in on.stdout and '"plugin": "directions"' not in off.stdout
    assert '"plugin": "blend"' in off.stdout  # only that one was left out
    assert json.loads(off.stdout)["skipped"] == ["directions"] and json.loads(on.stdout)["skipped"] == []


def test_hooks_go_through_pluggy_one_plugin_at_a_time(plugin_env):
    """pluggy's hook-call monitoring sees one call per plugin, each with only that plugin's impl."""
    _two_plugins(plugin_env)
    calls = []

    def before(hook_name, impls, kwargs):
        if hook_name in ("register_directions", "register_blenders"):
            calls.append((hook_name, [i.plugin_name for i in impls]))

    undo = plugins.get_plugin_manager().add_hookcall_monitoring(before, lambda *a: None)
    try:
        registry.reset()
        counterface.available("direction")
    finally:
        undo()
    directions = [names for hook, names in calls if hook == "register_directions"]
    assert ["good"] in directions and all(len(n) == 1 for n in directions)
    assert ["badhook"] in [names for hook, names in calls if hook == "register_blenders"]
    errors = {f.name: f.error for f in plugins.failures()}
    assert errors["badhook"].startswith("register_blenders: ValueError: hook exploded")


def test_registry_follows_plugins_registered_in_code():
    class P:
        @counterface.hookimpl
        def register_blenders(self, register):
            register("paste-none", lambda: object(), description="test")

    assert "paste-none" not in counterface.available("blender")
    name = plugins.register_plugin(P(), name="test-code-blender")
    try:
        e = registry.entry("blender", "paste-none")
        assert e.plugin == "test-code-blender" and e.description == "test"
        assert registry.entry("blender", "test-code-blender:paste-none") is e  # the qualified name works too
    finally:
        plugins.unregister_plugin(name)
    assert "paste-none" not in counterface.available("blender")


def test_names_with_a_colon_are_refused(plugin_env):
    bad = GOOD.replace('register("shift", Shift)', 'register("a:b", Shift)')
    plugin_env("cf-colon", "1.0", {"colon": "cfplug_colon"}, {"cfplug_colon": bad})
    assert "a:b" not in counterface.available("direction")
    assert any(f.name == "colon" and "invalid name" in f.error for f in plugins.failures())


@pytest.mark.parametrize("kind", ["direction", "preset"])
def test_reference_names_stay_bare(kind):
    names = counterface.available(kind)
    assert names and not any(":" in n for n in names)
