"""User-acceptance checks of the CLI as a researcher meets it: real processes (``python -m
counterface``), bad inputs through every command, one ``error:`` line on stderr, a non-zero exit,
nothing half-written, inputs untouched; and the documented ``--set`` parameters exist."""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
FAST = ["--set", "tuner.latent_steps=0", "--set", "tuner.tune_steps=0"]


def cli(*args, env=None, cwd=None):
    e = dict(os.environ if env is None else env)
    e.setdefault("COUNTERFACE_PROGRESS", "0")
    return subprocess.run([sys.executable, "-m", "counterface", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=e, cwd=cwd)


def one_error_line(r, code: int | None = None) -> str:
    """The single ``error: ...`` line of a failed run (asserts everything else about it)."""
    assert r.returncode != 0, r.stdout
    if code is not None:
        assert r.returncode == code, r.stderr
    assert "Traceback" not in r.stderr + r.stdout
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), lines
    return lines[0]


def tree(path: Path) -> dict[str, str]:
    return {str(p.relative_to(path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(path.rglob("*")) if p.is_file()}


@pytest.fixture
def work(tmp_path, photos):
    """A folder with a photo, a no-face photo, a file, a manifest; inputs are hashed to check they survive."""
    shutil.copy(photos / "astronaut_small.jpg", tmp_path / "face.jpg")
    shutil.copy(photos / "coffee-no-face.jpg", tmp_path / "eagle.jpg")
    (tmp_path / "afile").write_text("x")
    (tmp_path / "m.csv").write_text("path\nface.jpg\n")
    return tmp_path


@pytest.fixture
def unwritable(tmp_path):
    """A folder this process cannot write into (skipped where root can write anywhere and /sys is absent)."""
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    if os.access(ro, os.W_OK):  # root: fall back to a read-only kernel folder
        ro.chmod(0o755)
        sysfs = Path("/sys")
        if not sysfs.is_dir():
            pytest.skip("no unwritable folder available as root")
        try:
            os.rmdir(__import__("tempfile").mkdtemp(dir=sysfs))
            pytest.skip("/sys is writable here")
        except OSError:
            pass
        yield sysfs / "counterface-test-out"
        return
    yield ro / "out"
    ro.chmod(0o755)


@pytest.mark.parametrize("args,needle", [
    (["figures", "{w}", "--sweep", "{w}/nope"], "'--sweep'"),
    (["--bogus"], "No such option '--bogus'"),
    (["edit"], "Missing argument"),
    (["nosuchcommand"], "No such command"),
    (["weights", "path"], "Missing argument 'NAME'"),
    (["edit", "{w}/face.jpg", "--seed", "x"], "'--seed'"),
    (["edit", "{w}/face.jpg", "-o", "{w}/afile"], "is a file"),
    (["edit", "{w}", "--preset", "tiny"], "is a directory"),
    (["evaluate", "{w}/afile"], "is a file"),
])
def test_usage_errors_are_one_line(work, args, needle):
    r = cli(*[a.format(w=work) for a in args])
    line = one_error_line(r, 2)
    assert needle in line and "--help" in line


@pytest.mark.parametrize("command", [
    ["align", "{w}/face.jpg", "--aligner", "dlib", "-o"],
    ["edit", "{w}/face.jpg", "--preset", "tiny", *FAST, "-o"],
    ["batch", "{w}/m.csv", "--preset", "tiny", "--lpips", "none", "-o"],
])
def test_unwritable_or_impossible_output_folder(work, unwritable, command):
    args = [a.format(w=work) for a in command]
    before = tree(work)
    line = one_error_line(cli(*args, unwritable), 2)
    assert "cannot write to output folder" in line
    line = one_error_line(cli(*args, work / "afile" / "sub"), 2)
    assert "cannot be created" in line and "afile" in line
    assert tree(work) == before


@pytest.mark.parametrize("command", [
    ["edit", "{w}/face.jpg", "{w}/eagle.jpg", "--preset", "tiny", *FAST, "-o", "{w}/out"],
    ["batch", "{w}/m.csv", "--preset", "tiny", "--lpips", "none", "-o", "{w}/out"],
])
@pytest.mark.parametrize("bad,needle", [
    (["--set", "tuner.steps=100"], "unknown parameter 'steps' for tuner 'pti'"),
    (["--set", "tuner.tune_steps=abc"], "invalid parameters for tuner 'pti'"),
    (["--set", "edit.layers=4-99"], "out of range"),
    (["--face", "bogus"], "invalid --face 'bogus'"),
    (["--direction", "nope"], "unknown direction 'nope'"),
])
def test_configuration_errors_stop_before_any_photo(work, command, bad, needle):
    """One line without a photo name (it is not about a photo), and nothing written at all."""
    before = tree(work)
    line = one_error_line(cli(*[a.format(w=work) for a in command], *bad), 2)
    assert needle in line and "face.jpg" not in line and "eagle.jpg" not in line
    assert not (work / "out").exists()
    assert tree(work) == before


def test_bad_set_value_in_align_is_a_config_error(work):
    line = one_error_line(cli("align", work / "face.jpg", "--aligner", "dlib", "--set", "aligner.size=abc",
                              "-o", work / "out"), 2)
    assert "invalid parameters for aligner 'dlib'" in line and "size='abc'" in line
    assert not (work / "out").exists()


def test_failed_align_leaves_no_output_folder(work):
    line = one_error_line(cli("align", work / "eagle.jpg", "--aligner", "dlib", "-o", work / "out"), 3)
    assert line == f"error: {work / 'eagle.jpg'}: no face found"
    assert not (work / "out").exists()


def test_offline_fan_is_exactly_one_line(work, tmp_path):
    """No stray 'Downloading: ...' line from torch.hub before the error, and one error for two photos."""
    env = dict(os.environ, COUNTERFACE_OFFLINE="1", TORCH_HOME=str(tmp_path / "torch"))
    r = cli("align", work / "face.jpg", work / "eagle.jpg", "--aligner", "fan", "-o", work / "out", env=env)
    line = one_error_line(r, 4)
    assert "2DFAN4-11f355bf06.pth.tar" in line and "s3fd-619a316812.pth" in line and "--aligner dlib" in line
    assert str(tmp_path / "torch" / "hub" / "checkpoints") in line
    assert not (work / "out").exists()


def test_fan_download_failure_prints_nothing_else(tmp_path, monkeypatch, capfd):
    """Online but unreachable: the files are fetched by counterface first, so face-alignment's own
    'Downloading:' line never appears; the error is the one WeightsError."""
    import urllib.error

    import torch.hub

    import counterface

    import face_alignment  # noqa: F401  (a dependency: missing must fail, not skip)
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("COUNTERFACE_OFFLINE", raising=False)

    def no_network(*a, **k):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)
    aligner = counterface.create("aligner", "fan", device="cpu")
    with pytest.raises(counterface.WeightsError, match="URLError"):
        aligner.model()
    captured = capfd.readouterr()
    assert captured.err == "" and captured.out == ""
    assert not list((tmp_path / "torch").rglob("*.pth*"))  # no partial file left


def test_pivot_of_garbage_and_missing_file(work):
    before = tree(work)
    line = one_error_line(cli("edit", work / "face.jpg", "--preset", "tiny", "--pivot", work / "afile",
                              "-o", work / "out"), 4)
    assert "not a counterface pivot file" in line
    line = one_error_line(cli("edit", work / "face.jpg", "--preset", "tiny", "--pivot", work / "none.safetensors",
                              "-o", work / "out"), 4)
    assert "pivot file not found" in line
    assert not (work / "out").exists() and tree(work) == before


@pytest.mark.parametrize("args,needle", [
    (["--shard", "3/2"], "--shard expects I/N"),
    (["--alpha", "x"], "--alpha expects numbers"),
    (["--alpha", "1,x"], "for a sweep use --alphas 1,x"),
    (["--alphas", "1,x"], "invalid --alphas"),
    (["--config", "{w}/missing.toml"], "config file not found"),
])
def test_batch_bad_options(work, args, needle):
    line = one_error_line(cli("batch", work / "m.csv", "--preset", "tiny", "--lpips", "none", "-o", work / "out",
                              *[a.format(w=work) for a in args]), 2)
    assert needle in line
    assert not (work / "out").exists()


def _documented_sets() -> set[tuple[str, str]]:
    found = set()
    for doc in [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]:
        for kind, param in re.findall(r"--set '?([a-z0-9_]+)\.([a-z0-9_]+)=", doc.read_text()):
            found.add((kind, param))
    return found


def test_every_documented_set_parameter_exists():
    """`--set tuner.steps=100` was once in the README: pti has no `steps`. Each documented
    `--set KIND.PARAM=` must name a parameter some registered component of that kind accepts."""
    import inspect

    from counterface import registry, settings

    sets = _documented_sets()
    assert ("tuner", "tune_steps") in sets  # the scan works
    for kind, param in sorted(sets):
        if kind == "kind" or (kind, param) == ("glasses_detector", "threshold"):
            continue  # the placeholder `--set kind.param=value`; docs/plugins.md's example of a plugin's kind
        if kind == "edit":
            assert param in settings.EDIT_DEFAULTS, param
            continue
        accepted = set()
        for e in registry.entries(registry.kind_of(kind)).values():  # pi1/pi0 name operators
            sig = inspect.signature(e.factory)
            accepted |= set(sig.parameters)
        # third-party examples (the glasses plugin) are not installed here: their parameters are `path`
        assert param in accepted or (kind, param) == ("direction", "path"), (kind, param, sorted(accepted))


def test_a_preset_instance_is_listed_with_its_own_description():
    """docs/plugins.md registers `counterface.Preset(..., description=...)`: that description, not the
    Preset class docstring, is what `counterface plugins` shows."""
    import counterface
    from counterface import registry

    table: dict = {}
    register = registry._make_register("preset", table, "demo", "demo-pkg", "1.0")
    register("p", counterface.Preset(components={"direction": {"name": "smile"}}, description="my own words"))
    register("q", lambda: None, description="given")
    assert table["demo:p"].description == "my own words" and table["demo:q"].description == "given"  # PLUGIN:NAME


def test_relative_output_folders_as_in_the_readme(work):
    """`counterface align photo.jpg -o checks/` and `counterface evaluate runs/x` from the README, run
    in the photos' folder: files land in checks/ and runs/x/, not in checks/checks/ or runs/x/runs/x/."""
    r = cli("align", "face.jpg", "-o", "checks/", "--aligner", "dlib", "--size", "64", cwd=work)
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in (work / "checks").iterdir()) == [
        "face_align.json", "face_face0.png", "face_landmarks.png"]
    r = cli("batch", "m.csv", "-o", "runs/x", "--preset", "tiny", *FAST, "--no-metrics", cwd=work)
    assert r.returncode == 0, r.stderr
    r = cli("evaluate", "runs/x", "--lpips", "none", cwd=work)
    assert r.returncode == 0, r.stderr
    assert (work / "runs" / "x" / "summary.json").is_file() and not (work / "runs" / "x" / "runs").exists()
