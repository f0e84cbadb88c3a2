"""`counterface edit / pairs / sweep` end to end on a real photo with the tiny preset (offline)."""

from __future__ import annotations

import hashlib
import json
import shutil

import numpy as np
import pytest
from click.testing import CliRunner

from counterface.cli import cli
from counterface.imageio import read_image

NO_TUNING = ["--set", "tuner.latent_steps=0", "--set", "tuner.tune_steps=0"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


@pytest.fixture(scope="module")
def photo_path(photos):
    return photos / "astronaut.jpg"


@pytest.fixture(scope="module")
def tune_calls():
    """Count PTI tunings (the CLI runs in this process)."""
    from counterface_pti.tuner import PTITuner

    calls = []
    original = PTITuner.tune

    def counting(self, *a, **k):
        calls.append(1)
        return original(self, *a, **k)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(PTITuner, "tune", counting)
        yield calls


@pytest.fixture(scope="module")
def sweep(tmp_path_factory, photo_path, tune_calls):
    out = tmp_path_factory.mktemp("sweep")
    before = len(tune_calls)
    r = invoke("sweep", photo_path, "--preset", "tiny", "--alphas", "-2,0,2", "-o", out,
               "--save-pivot", out / "astronaut.pivot.safetensors")
    assert r.exit_code == 0, r.output
    return out, len(tune_calls) - before


@pytest.fixture(scope="module")
def face_and_mask(photo_path):
    from counterface.pipeline import Pipeline

    pipe = Pipeline.from_preset("tiny")
    photo = read_image(photo_path)
    face = pipe.faces(photo)[0]
    return photo, face, pipe.mask(photo, face)


def png(path):
    return read_image(path)


def test_sweep_tunes_once_and_writes_every_alpha(sweep, photo_path, face_and_mask):
    out, tunings = sweep
    assert tunings == 1
    photo, face, mask = face_and_mask
    names = ["astronaut_face0_a-2", "astronaut_face0_a+0", "astronaut_face0_a+2", "astronaut_face0_sweep"]
    for n in names:
        assert (out / f"{n}.png").is_file() and (out / f"{n}.json").is_file()
    images = [png(out / f"{n}.png") for n in names[:3]]
    for im in images:
        assert im.shape == photo.shape
        assert np.array_equal(im[mask == 0], photo[mask == 0])  # outside the blend mask: the input's pixels
    assert not np.array_equal(images[0], images[2])  # alpha changes the face
    strip = png(out / "astronaut_face0_sweep.png")
    assert strip.shape[0] == 256 and strip.shape[1] % 3 == 0
    assert (out / "astronaut.pivot.safetensors").is_file()


def test_sidecar_content(sweep, photo_path, face_and_mask):
    out, _ = sweep
    _, face, _ = face_and_mask
    side = json.loads((out / "astronaut_face0_a+2.json").read_text())
    assert side["input"]["sha256"] == hashlib.sha256(photo_path.read_bytes()).hexdigest()
    assert side["input"]["path"] == str(photo_path)
    assert side["face"]["index"] == 0
    assert np.allclose(side["face"]["matrix"], face.matrix)
    assert side["alpha"] == 2.0 and side["seed"] == 0 and side["preset"] == "tiny"
    assert set(side["seconds"]) >= {"read", "align", "invert", "tune", "edit", "synthesize", "blend"}
    assert set(side["losses"]) == {"refine", "tune"}
    assert side["losses"]["tune"]["lpips"] > 0
    comps = side["components"]
    assert {"aligner", "inverter", "generator", "tuner", "direction", "blender"} <= set(comps)
    assert comps["tuner"]["version"] and comps["tuner"]["package"] == "counterface"
    assert comps["tuner"]["params"]["tune_steps"] == 10
    assert side["environment"]["torch"]
    assert side["pivot"]["meta"]["source"]["input_sha256"] == side["input"]["sha256"]


def test_same_seed_same_bytes(sweep, photo_path, tmp_path):
    """A separate `edit` run (its own inversion and tuning) reproduces the sweep's alpha = 2 image."""
    out, _ = sweep
    r = invoke("edit", photo_path, "--preset", "tiny", "--alpha", "2", "-o", tmp_path, "--seed", "0")
    assert r.exit_code == 0, r.output
    assert (tmp_path / "astronaut_face0_z1.png").read_bytes() == (out / "astronaut_face0_a+2.png").read_bytes()
    assert json.loads((tmp_path / "astronaut_face0_z1.json").read_text())["role"] == "z1"


def test_saved_pivot_reloads_and_reconstruction_pairs(sweep, photo_path, tmp_path, tune_calls):
    """pairs --pivot: no tuning; z1 equals the sweep's alpha 2, z0 (reconstruction) its alpha 0."""
    out, _ = sweep
    before = len(tune_calls)
    r = invoke("pairs", photo_path, "--preset", "tiny", "--alpha", "2", "--pivot", out / "astronaut.pivot.safetensors",
               "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert len(tune_calls) == before
    assert np.array_equal(png(tmp_path / "astronaut_face0_z1.png"), png(out / "astronaut_face0_a+2.png"))
    assert np.array_equal(png(tmp_path / "astronaut_face0_z0.png"), png(out / "astronaut_face0_a+0.png"))
    z0 = json.loads((tmp_path / "astronaut_face0_z0.json").read_text())
    assert z0["role"] == "z0" and z0["components"]["pi0"]["name"] == "reconstruction"
    assert z0["pivot_file"].endswith("astronaut.pivot.safetensors")


def test_pairs_original_baseline_is_the_photo(sweep, photo_path, tmp_path):
    out, _ = sweep
    r = invoke("pairs", photo_path, "--preset", "tiny", "--pi0", "original", "--pivot",
               out / "astronaut.pivot.safetensors", "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert np.array_equal(png(tmp_path / "astronaut_face0_z0.png"), read_image(photo_path))


def test_pivot_from_another_photo_is_refused(sweep, photos, tmp_path):
    out, _ = sweep
    r = CliRunner().invoke(cli, ["edit", str(photos / "astronaut_240p.jpg"), "--preset", "tiny", "--pivot",
                                 str(out / "astronaut.pivot.safetensors"), "-o", str(tmp_path)])
    assert r.exit_code == 2
    assert "another photo" in r.output and "Traceback" not in r.output


def test_no_face_exit_3(photos, tmp_path):
    r = CliRunner().invoke(cli, ["edit", str(photos / "coffee-no-face.jpg"), "--preset", "tiny", "-o", str(tmp_path)])
    assert r.exit_code == 3
    assert r.output.strip().splitlines() == [f"error: {photos / 'coffee-no-face.jpg'}: no face found"]


def test_batch_goes_on_after_a_failure(photos, photo_path, tmp_path):
    r = CliRunner().invoke(cli, ["edit", str(photos / "coffee-no-face.jpg"), str(photo_path), "--preset", "tiny",
                                 "-o", str(tmp_path), *NO_TUNING])
    assert r.exit_code == 3
    assert "coffee-no-face.jpg: no face found" in r.output
    assert (tmp_path / "astronaut_face0_z1.png").is_file()


def test_inputs_never_overwritten(photo_path, tmp_path):
    shutil.copy(photo_path, tmp_path / "a.jpg")
    victim = tmp_path / "a_face0_z1.png"
    victim.write_bytes(b"precious")
    r = CliRunner().invoke(cli, ["edit", str(tmp_path / "a.jpg"), str(victim), "--preset", "tiny", "-o",
                                 str(tmp_path), *NO_TUNING])
    assert r.exit_code != 0
    assert victim.read_bytes() == b"precious"
    assert "refusing to overwrite an input" in r.output


@pytest.mark.parametrize("args,msg", [(["--layers", "40-41"], "out of range"), (["--alphas", "1,x"], "invalid --alphas"),
                                      (["--face", "7"], "face 7 requested")])
def test_bad_options_one_line(photo_path, tmp_path, args, msg):
    r = CliRunner().invoke(cli, ["sweep", str(photo_path), "--preset", "tiny", "-o", str(tmp_path), *NO_TUNING, *args])
    assert r.exit_code in (2, 3)
    assert msg in r.output and len(r.output.strip().splitlines()) == 1
