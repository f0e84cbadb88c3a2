"""The CLI as a user meets it: real processes, one-line errors, exit codes, no tracebacks."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.helpers import png_header


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "counterface", *map(str, args)], capture_output=True, text=True,
                          timeout=300, env=env)


@pytest.fixture
def bad_files(tmp_path, photos):
    good = (photos / "astronaut.jpg").read_bytes()
    files = {
        "corrupt.jpg": good[:200] + bytes(range(256)) * 8,
        "text.jpg": b"Dear editor,\nthis is a letter, not a photo.\n",
        "huge.png": png_header(30000, 30000),
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    return tmp_path


@pytest.mark.parametrize("command", [["align", "--aligner", "dlib"], ["edit", "--preset", "tiny"]])
@pytest.mark.parametrize("name,reason", [("corrupt.jpg", "corrupt or truncated"), ("text.jpg", "not a recognised"),
                                         ("huge.png", "exceeds the limit")])
def test_bad_images_give_one_line_and_nonzero_exit(bad_files, command, name, reason):
    out = bad_files / "out"
    r = cli(command[0], bad_files / name, "-o", out, *command[1:])
    assert r.returncode == 2, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: ") and name in lines[0] and reason in lines[0], lines
    assert "Traceback" not in r.stderr + r.stdout
    assert not out.exists() or not any(out.glob("*.png"))


def test_plugins_and_presets_list_the_reference_components():
    r = cli("plugins", "--json")
    assert r.returncode == 0
    rows = {(c["kind"], c["name"]): c for c in json.loads(r.stdout)["components"]}
    for key in [("aligner", "fan"), ("aligner", "dlib"), ("inverter", "e4e"), ("tuner", "pti"),
                ("direction", "smile"), ("blender", "gaussian"), ("generator", "stylegan2"),
                ("identity", "arcface"), ("operator", "reconstruction"), ("operator", "shift"), ("operator", "on"),
                ("preset", "smilegan-pti"), ("preset", "tiny")]:
        assert rows[key]["package"] == "counterface", key
    r = cli("presets")
    assert r.returncode == 0 and "smilegan-pti" in r.stdout and "tiny" in r.stdout


def test_unknown_component_and_bad_set_are_one_line(tmp_path, photos):
    r = cli("edit", photos / "astronaut.jpg", "--preset", "tiny", "--tuner", "ptl", "-o", tmp_path)
    assert r.returncode == 2 and r.stderr.strip() == "error: unknown tuner 'ptl' (did you mean 'pti'?); valid: pti"
    r = cli("edit", photos / "astronaut.jpg", "--preset", "tiny", "--set", "tuner.stepz=3", "-o", tmp_path)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "stepz" in r.stderr
    r = cli("--threads", "zero", "plugins")
    assert r.returncode == 2 and "--threads" in r.stderr


def test_offline_smilegan_names_the_missing_file(tmp_path, photos):
    import os

    env = dict(os.environ, COUNTERFACE_OFFLINE="1", COUNTERFACE_HOME=str(tmp_path / "home"),
               TORCH_HOME=str(tmp_path / "torch"))
    r = cli("edit", photos / "astronaut.jpg", "--aligner", "dlib", "-o", tmp_path / "out", env=env)
    assert r.returncode == 4, r.stderr
    line = r.stderr.strip()
    assert len(line.splitlines()) == 1 and "Traceback" not in line
    assert "e4e_ffhq_encode.pt" in line and "counterface weights import" in line
    assert str(tmp_path / "home") in line
