"""--pi1 / --pi0 operators end to end (tiny preset, offline): a 64-dimensional boundary learned from
latents, pairs at the boundary's on/off distances, neutral at 0, several attributes, leakage, and the
one clear error of a target operator with the published (intercept-free) smile vector."""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from counterface import config
from counterface.boundary import load_boundary
from counterface.cli import cli
from counterface.imageio import read_image
from counterface.pipeline import Pipeline

NO_TUNING = ["--set", "tuner.latent_steps=0", "--set", "tuner.tune_steps=0"]


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def learn(tmp, name, normal, intercept, seed):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((400, 64)).astype(np.float32)
    y = (x @ normal + intercept > 0).astype(int)
    np.savez(tmp / f"{name}.npz", latents=x, labels=y)
    out = tmp / f"{name}.safetensors"
    r = invoke("directions", "learn", tmp / f"{name}.npz", "--label", "labels", "--attribute", name[:-2], "-o", out)
    assert r.exit_code == 0, r.output
    return out


@pytest.fixture(scope="module")
def setup(tmp_path_factory, photos):
    """A learned 64-dim boundary, a second correlated one, and a tuned pivot of the photo."""
    tmp = tmp_path_factory.mktemp("ops")
    rng = np.random.default_rng(0)
    n = rng.standard_normal(64)
    n /= np.linalg.norm(n)
    m = 0.5 * n + np.sqrt(0.75) * (lambda v: v / np.linalg.norm(v))(rng.standard_normal(64))
    smile = learn(tmp, "smile64", n, 0.2, 1)
    age = learn(tmp, "age64", m / np.linalg.norm(m), -0.1, 2)
    photo = photos / "astronaut.jpg"
    out = tmp / "first"
    r = invoke("pairs", photo, "--preset", "tiny", "--direction", smile, "--pi1", "on", "--pi0", "off", "-o", out,
               "--save-pivot", tmp / "pivot.safetensors")
    assert r.exit_code == 0, r.output
    return {"tmp": tmp, "smile": smile, "age": age, "photo": photo, "out": out, "pivot": tmp / "pivot.safetensors"}


def side(folder, role):
    return json.loads(next(folder.glob(f"*_{role}.json")).read_text())


def test_pairs_on_off_reach_the_boundarys_distances(setup):
    b = load_boundary(setup["smile"])
    assert b.has_intercept and b.w_dim == 64
    z1, z0 = side(setup["out"], "z1"), side(setup["out"], "z0")
    for s, role, op, target in ((z1, "z1", "on", b.on_distance), (z0, "z0", "off", b.off_distance)):
        a = s["attributes"][0]
        assert s["role"] == role and a["operator"] == op and a["direction"] == str(setup["smile"])
        assert a["layers"] == list(range(10)) and len(a["distance_after"]) == len(a["layers"]) == len(a["alpha"])
        assert np.allclose(a["distance_after"], target, atol=1e-3)
        assert not np.allclose(a["distance_before"], target, atol=1e-2)  # it did move
        assert a["file_sha256"] == __import__("hashlib").sha256(setup["smile"].read_bytes()).hexdigest()
    # outside the blend region the photo is unchanged
    photo = read_image(setup["photo"])
    pipe = Pipeline.from_config(config.resolve(preset="tiny"))
    mask = pipe.mask(photo, pipe.faces(photo)[0])
    for role in ("z1", "z0"):
        img = read_image(next(setup["out"].glob(f"*_{role}.png")))
        assert np.array_equal(img[mask == 0], photo[mask == 0])
        assert not np.array_equal(img, photo)


def test_neutral_gives_zero_and_distance_option(setup, tmp_path):
    r = invoke("pairs", setup["photo"], "--preset", "tiny", "--direction", setup["smile"], "--pi1", "on",
               "--distance", "1.5", "--pi0", "neutral", "--pivot", setup["pivot"], "-o", tmp_path)
    assert r.exit_code == 0, r.output
    assert np.allclose(side(tmp_path, "z0")["attributes"][0]["distance_after"], 0.0, atol=1e-3)
    assert np.allclose(side(tmp_path, "z1")["attributes"][0]["distance_after"], 1.5, atol=1e-3)
    r = invoke("pairs", setup["photo"], "--preset", "tiny", "--direction", setup["smile"], "--pi1", "on",
               "--pi0", "off", "--distance", "1", "--pivot", setup["pivot"], "-o", tmp_path / "x")
    assert r.exit_code == 2 and "ambiguous" in r.stderr and "--set pi0.distance" in r.stderr


def test_published_smile_vector_with_on_is_one_clear_error(photos, tmp_path):
    for args in (["--pi1", "on"], ["--preset", "tiny", "--direction", "smile", "--pi0", "neutral"]):
        r = invoke("edit", photos / "astronaut.jpg", *args, "-o", tmp_path / "out")
        assert r.exit_code == 2, r.output
        lines = r.stderr.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith("error: ") and "no intercept" in lines[0]
        assert "directions learn" in lines[0] and "directions calibrate" in lines[0]
        assert "Traceback" not in r.output
        assert not (tmp_path / "out").exists()


def test_edit_several_attributes_kept_and_watched(setup, tmp_path):
    """--direction twice (one alpha each), --keep the correlated one, --watch it: both attributes in
    the sidecar, the kept distance unchanged, leakage ~0; without --keep the leakage is not 0."""
    age = load_boundary(setup["age"])
    r = invoke("pairs", setup["photo"], "--preset", "tiny", "--direction", setup["smile"], "--layers", "2-5",
               "--pi1", "on", "--pi0", "off", "--keep", setup["age"], "--watch", setup["age"],
               "--pivot", setup["pivot"], "-o", tmp_path / "kept")
    assert r.exit_code == 0, r.output
    z1 = side(tmp_path / "kept", "z1")
    assert z1["attributes"][0]["layers"] == [2, 3, 4, 5]
    assert abs(z1["leakage_age"]) < 1e-4 and z1["leakage"]["age"]["rows"] == [2, 3, 4, 5]
    r = invoke("pairs", setup["photo"], "--preset", "tiny", "--direction", setup["smile"], "--layers", "2-5",
               "--pi1", "on", "--pi0", "off", "--watch", setup["age"], "--pivot", setup["pivot"], "-o", tmp_path / "free")
    assert r.exit_code == 0, r.output
    assert abs(side(tmp_path / "free", "z1")["leakage_age"]) > 1e-2
    assert age.has_intercept
    r = invoke("edit", setup["photo"], "--preset", "tiny", "--direction", setup["smile"], "--direction", setup["age"],
               "--alpha", "1", "--alpha", "-0.5", "--pivot", setup["pivot"], "-o", tmp_path / "two")
    assert r.exit_code == 0, r.output
    s = side(tmp_path / "two", "z1")
    assert [a["direction"] for a in s["attributes"]] == [str(setup["smile"]), str(setup["age"])]
    assert s["attributes"][0]["alpha"][0] == pytest.approx(1.0) and s["attributes"][1]["alpha"][0] == pytest.approx(-0.5)
    assert s["alpha"] == [1.0, -0.5]


def test_batch_rows_carry_distances_and_leakage(setup, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(setup["photo"].read_bytes())
    r = invoke("batch", folder, "-o", tmp_path / "out", "--preset", "tiny", "--direction", setup["smile"],
               "--pi1", "on", "--pi0", "off", "--no-metrics", "--watch", setup["age"], *NO_TUNING)
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[0])
    b = load_boundary(setup["smile"])
    assert row["pi1"] == "on" and row["pi0"] == "off"
    assert row["distance_after_smile"] == pytest.approx(b.on_distance, abs=1e-3)
    assert row["distance_after_smile_z0"] == pytest.approx(b.off_distance, abs=1e-3)
    assert row["distance_before_smile"] is not None and "leakage_age" in row
    z0 = json.loads((tmp_path / "out" / row["z0_sidecar"]).read_text())
    assert z0["role"] == "z0" and np.allclose(z0["attributes"][0]["distance_after"], b.off_distance, atol=1e-3)


def test_alpha_auto_records_its_search(setup, tmp_path):
    """--alpha auto with a scorer that cannot score the tiny preset's faces (NaN): the upper bound is
    used, a warning says so, and the sidecar records the search; without --target-score: one line."""
    r = invoke("edit", setup["photo"], "--preset", "tiny", "--alpha", "auto", "--scorer", "smile",
               "--pivot", setup["pivot"], "-o", tmp_path / "x")
    assert r.exit_code == 2 and "--target-score" in r.stderr
    r = invoke("edit", setup["photo"], "--preset", "tiny", "--alpha", "auto", "--target-score", "0.1", "--scorer",
               "smile", "--set", "edit.alpha_bounds=[0.0, 2.0]", "--pivot", setup["pivot"], "-o", tmp_path / "y")
    assert r.exit_code == 0, r.output
    s = side(tmp_path / "y", "z1")
    auto = s["alpha_auto"]
    assert auto["bounds"] == [0.0, 2.0] and auto["scorer"] == "smile" and auto["target_score"] == 0.1
    assert auto["curve"][0][0] == 0.0 and all(0.0 <= a <= 2.0 for a, _ in auto["curve"])
    if not auto["reached"]:
        assert s["alpha"] == 2.0 and "warning:" in r.stderr
    assert s["attributes"][0]["alpha"] == [s["alpha"]] * 3


def test_batch_alpha_auto_one_search_per_face(setup, tmp_path):
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(setup["photo"].read_bytes())
    args = ["batch", folder, "-o", tmp_path / "out", "--preset", "tiny", "--no-metrics", "--alpha", "auto",
            "--target-score", "0.1", "--scorer", "smile", *NO_TUNING]
    r = invoke(*args)
    assert r.exit_code == 0, r.output
    row = json.loads((tmp_path / "out" / "results.jsonl").read_text().splitlines()[0])
    z1 = json.loads((tmp_path / "out" / row["z1_sidecar"]).read_text())
    assert row["alpha"] == z1["alpha_auto"]["alpha"] and row["alpha_auto_reached"] == z1["alpha_auto"]["reached"]
    r = invoke(*args)  # resumes: the photo is done
    assert r.exit_code == 0 and "1 already done" in r.output


def test_batch_alpha_is_one_value_per_direction(setup, tmp_path):
    """`batch --alpha` means what it means in `edit`: one strength per --direction (not a sweep); the
    row records them as text, the sidecar as a list, and Z1 equals `edit`'s."""
    folder = tmp_path / "in"
    folder.mkdir()
    (folder / "a.jpg").write_bytes(setup["photo"].read_bytes())
    args = ["--preset", "tiny", "--direction", setup["smile"], "--direction", setup["age"], "--alpha", "1",
            "--alpha", "-0.5", *NO_TUNING]
    r = invoke("batch", folder, "-o", tmp_path / "out", "--no-metrics", *args)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / "out" / "results.jsonl").read_text().splitlines()]
    assert len(rows) == 1 and rows[0]["alpha"] == "1,-0.5"
    s = json.loads((tmp_path / "out" / rows[0]["z1_sidecar"]).read_text())
    assert s["alpha"] == [1.0, -0.5]
    assert [a["alpha"][0] for a in s["attributes"]] == pytest.approx([1.0, -0.5])
