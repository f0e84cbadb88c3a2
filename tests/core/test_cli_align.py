"""`counterface align` end to end through the CLI (dlib aligner, offline)."""

from __future__ import annotations

import json
import shutil

import numpy as np
from click.testing import CliRunner

import counterface
from counterface import geometry as g
from counterface.cli import cli

import dlib  # noqa: E402,F401  (in the test extra: missing must fail, not skip)


def run(*args):
    return CliRunner().invoke(cli, [str(a) for a in args], catch_exceptions=False)


def test_align_writes_crops_landmarks_and_matrices(photos, tmp_path):
    src = tmp_path / "in" / "two_people.jpg"
    src.parent.mkdir()
    shutil.copy(photos / "two_people.jpg", src)
    before = src.read_bytes()
    out = tmp_path / "out"
    res = run("align", src, "-o", out, "--aligner", "dlib", "--size", 256, "--face", "all")
    assert res.exit_code == 0, res.output
    assert src.read_bytes() == before
    names = sorted(p.name for p in out.iterdir())
    assert names == ["two_people_align.json", "two_people_face0.png", "two_people_face1.png", "two_people_landmarks.png"]
    meta = json.loads((out / "two_people_align.json").read_text())
    assert meta["aligner"]["name"] == "dlib" and len(meta["faces"]) == 2
    assert meta["input"]["sha256"] == counterface.imageio.file_sha256(src)
    photo = counterface.read_image(src)
    drawn = counterface.read_image(out / "two_people_landmarks.png")
    assert drawn.shape == photo.shape and np.any(drawn != photo)
    for rec in meta["faces"]:
        crop = counterface.read_image(out / rec["crop"])
        assert crop.shape == (256, 256, 3) and rec["size"] == 256
        M = np.array(rec["matrix"])
        lm = np.array(rec["landmarks"])
        # the JSON matrix is the exact FFHQ matrix of the JSON landmarks, and the crop is its warp
        np.testing.assert_allclose(M, g.ffhq_matrix(lm, 256), atol=1e-3)
        np.testing.assert_allclose(np.array(rec["crop_landmarks"]), g.apply(M, lm), atol=1e-2)
        from counterface_align.crop import ffhq_crop

        assert np.abs(ffhq_crop(photo, M, 256).astype(int) - crop).mean() < 1.0
    # rerunning gives the same bytes (reproducible)
    first = {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".png"}
    assert run("align", src, "-o", out, "--aligner", "dlib", "--size", 256).exit_code == 0
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.suffix == ".png"} == first


def test_face_selection_and_set_options(photos, tmp_path):
    out = tmp_path / "o"
    res = run("align", photos / "two_people.jpg", "-o", out, "--aligner", "dlib", "--size", 64, "--face", "1",
              "--set", "aligner.upsample=2")
    assert res.exit_code == 0, res.output
    meta = json.loads((out / "two_people_align.json").read_text())
    assert [f["index"] for f in meta["faces"]] == [1]
    assert meta["aligner"]["params"]["upsample"] == 2
    assert not (out / "two_people_face0.png").exists() and (out / "two_people_face1.png").exists()


def test_no_face_is_one_line_and_exit_3(photos, tmp_path):
    res = run("align", photos / "coffee-no-face.jpg", "-o", tmp_path / "o", "--aligner", "dlib")
    assert res.exit_code == 3
    lines = [ln for ln in res.output.splitlines() if ln.strip()]
    assert lines == [f"error: {photos / 'coffee-no-face.jpg'}: no face found"]
    assert "Traceback" not in res.output


def test_batch_of_photos_goes_on_after_a_failure(photos, tmp_path):
    out = tmp_path / "o"
    res = run("align", photos / "coffee-no-face.jpg", photos / "astronaut_small.jpg", tmp_path / "missing.jpg",
              "-o", out, "--aligner", "dlib", "--size", 64)
    assert res.exit_code == 3  # the first failure's status
    assert (out / "astronaut_small_face0.png").exists()
    assert "coffee-no-face.jpg: no face found" in res.output and "missing.jpg" in res.output


def test_unreadable_image_and_unknown_aligner(tmp_path):
    bad = tmp_path / "bad.jpg"
    bad.write_bytes(b"not an image")
    res = run("align", bad, "-o", tmp_path / "o", "--aligner", "dlib")
    assert res.exit_code == 2 and "not a recognised image" in res.output
    res = run("align", bad, "-o", tmp_path / "o", "--aligner", "nope")
    assert res.exit_code == 2 and "unknown aligner 'nope'" in res.output
