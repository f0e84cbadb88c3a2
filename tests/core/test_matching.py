"""``--face match``: the reference's person is edited, whatever its size; a stranger is never guessed.

The repository's group photo ``two_people.jpg`` holds the astronaut (the larger face) and Grace Hopper
(the smaller one); ``hopper.jpg`` is another photo of Hopper. The photos of ``../shared/photos``
(when present) add independent captures of the same people: ``biden.jpg`` and the smaller face of
its ``two_people.jpg``.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from counterface import matching
from counterface.errors import ConfigError, ReferencePhotoError, TargetNotFoundError
from counterface.imageio import read_image
from counterface.pipeline import Pipeline, select_faces
from counterface.registry import create

TINY = ["--preset", "tiny", "--set", "tuner.latent_steps=2", "--set", "tuner.tune_steps=2"]


def run_cli(*args, **kw):
    return subprocess.run([sys.executable, "-m", "counterface", *map(str, args)], capture_output=True, text=True,
                          env={**os.environ, "COUNTERFACE_PROGRESS": "0"}, timeout=600, **kw)


def faces_of(path: Path):
    """Every face of a photo (dlib aligner, largest first) and the photo."""
    photo = read_image(path)
    return create("aligner", "dlib").align(photo, size=64), photo


def inside(points: np.ndarray, box) -> bool:
    x0, y0, x1, y1 = box
    c = np.asarray(points, dtype=float).mean(0)
    return bool(x0 <= c[0] <= x1 and y0 <= c[1] <= y1)


def altered(src: Path, dst: Path) -> Path:
    """Another view of a photo: mirrored, rotated 8 degrees, darker (gamma 1.4), blurred and
    shrunk to 70 %, so the reference shares no pixel layout with the face it must find."""
    import cv2

    a = read_image(src)[:, ::-1]
    h, w = a.shape[:2]
    m = cv2.getRotationMatrix2D((w / 2, h / 2), 8.0, 1.0)
    a = cv2.warpAffine(np.ascontiguousarray(a), m, (w, h), borderMode=cv2.BORDER_REFLECT)
    a = (255.0 * (a / 255.0) ** 1.4).astype(np.uint8)
    a = cv2.GaussianBlur(a, (0, 0), 1.2)
    a = cv2.resize(a, (round(w * 0.7), round(h * 0.7)), interpolation=cv2.INTER_AREA)
    Image.fromarray(a).save(dst, quality=85)
    return dst


# -- the pinned check, through the CLI --------------------------------------------------------------------
def test_pairs_face_match_edits_the_reference_person_not_the_largest(photos, tmp_path):
    group, ref = photos / "two_people.jpg", altered(photos / "hopper.jpg", tmp_path / "hopper_view.jpg")
    faces, _ = faces_of(group)
    assert len(faces) == 2
    hopper = next(i for i, f in enumerate(faces) if inside(f.landmarks, (470, 0, 940, 520)))  # the right half
    assert hopper != 0, "the test needs the reference's person not to be the largest face"
    out = tmp_path / "out"
    r = run_cli("pairs", group, *TINY, "--reference", ref, "--face", "match", "-o", out)
    assert r.returncode == 0, r.stderr
    written = sorted(p.name for p in out.iterdir())
    assert written == [f"two_people_face{hopper}_{role}.{ext}" for role in ("z0", "z1") for ext in ("json", "png")]
    for role in ("z1", "z0"):
        side = json.loads((out / f"two_people_face{hopper}_{role}.json").read_text())
        lm = np.asarray(side["face"]["landmarks"])
        assert side["face"]["index"] == hopper
        assert inside(lm, faces[hopper].box) and not inside(lm, faces[0].box)  # that person's landmarks
        np.testing.assert_allclose(lm, faces[hopper].landmarks, atol=1e-3)
        m = side["match"]
        assert m["recogniser"] == "dlib" and m["threshold"] == 0.92 and m["references"] == [str(ref)]
        assert m["similarity"] == max(m["similarities"]) >= m["threshold"] > min(m["similarities"])
        assert m["candidates"] == [0, 1] and m["face"] == hopper == m["candidates"][int(np.argmax(m["similarities"]))]
        assert side["edit"]["face"] == "match" and side["edit"]["reference"] == [str(ref)]
    # the control: without matching, the largest face (the astronaut) is the one edited
    assert select_faces(faces, "largest") == [faces[0]]


def test_a_strangers_reference_fails_with_target_not_found(photos, tmp_path):
    out = tmp_path / "out"
    r = run_cli("pairs", photos / "hopper.jpg", *TINY, "--reference", photos / "astronaut.jpg", "--face", "match",
                "-o", out)
    assert r.returncode == 3, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and "target_not_found" in lines[0] and "hopper.jpg" in lines[0], r.stderr
    assert "Traceback" not in r.stderr and not out.exists()


def test_edit_and_sweep_match_too_and_bad_settings_fail_in_one_line(photos, tmp_path):
    group, ref = photos / "two_people.jpg", photos / "hopper.jpg"
    r = run_cli("sweep", group, *TINY, "--alphas", "0,1", "--reference", ref, "--face", "match", "-o", tmp_path / "s")
    assert r.returncode == 0, r.stderr
    assert {p.name for p in (tmp_path / "s").glob("*.png")} == {"two_people_face1_a+0.png", "two_people_face1_a+1.png",
                                                                 "two_people_face1_sweep.png"}
    side = json.loads((tmp_path / "s" / "two_people_face1_a+1.json").read_text())
    assert side["match"]["similarity"] >= 0.92
    from click.testing import CliRunner

    from counterface.cli import cli

    for args, needle, code in [
        (["--face", "match"], "needs a reference", 2),
        (["--face", "match", "--reference", ref, "--match-threshold", "1.5"], "outside [-1, 1]", 2),
        (["--face", "match", "--reference", photos / "coffee-no-face.jpg"], "shows no face", 2),
        (["--face", "match", "--reference", ref, "--matcher", "nosuch"], "nosuch", 2),
        # a threshold the person cannot reach: target_not_found rather than a guess
        (["--face", "match", "--reference", ref, "--match-threshold", "0.9999"], "target_not_found", 3),
    ]:
        bad = CliRunner().invoke(cli, ["edit", str(group), *TINY, *map(str, args), "-o", str(tmp_path / "bad")])
        assert bad.exit_code == code, (args, bad.output)
        assert len(bad.stderr.strip().splitlines()) == 1 and needle in bad.stderr, (args, bad.stderr)
        assert not (tmp_path / "bad").exists()


# -- references -----------------------------------------------------------------------------------------------
def test_reference_folders_and_the_mean_embedding(photos, tmp_path):
    d = tmp_path / "refs"
    (d / "hopper").mkdir(parents=True)
    (d / "hopper" / "a.jpg").write_bytes((photos / "hopper.jpg").read_bytes())
    altered(photos / "hopper.jpg", d / "hopper" / "b.jpg")
    (d / "collins.png").write_bytes((photos / "astronaut_rgba.png").read_bytes())
    assert matching.references_for(d, "hopper") == [d / "hopper" / "a.jpg", d / "hopper" / "b.jpg"]
    assert matching.references_for(d, "collins") == [d / "collins.png"]
    for bad in ("nobody", "", "../refs", None):
        with pytest.raises(ReferencePhotoError):
            matching.references_for(d, bad)
    with pytest.raises(ReferencePhotoError, match="not found"):
        matching.reference_paths(tmp_path / "missing.jpg")

    pipe = Pipeline.from_preset("tiny", face="match")
    both = matching.reference(pipe, matching.references_for(d, "hopper"))
    one = [matching.reference(pipe, [p]).embedding for p in matching.references_for(d, "hopper")]
    mean = (one[0] + one[1]) / np.linalg.norm(one[0] + one[1])
    np.testing.assert_allclose(both.embedding, mean, atol=1e-12)
    assert abs(np.linalg.norm(both.embedding) - 1) < 1e-12
    assert matching.reference(pipe, matching.references_for(d, "hopper")) is both  # cached
    # a batch row: --references + --reference-column, else its 'reference' column (from the manifest's folder)
    row = matching.item_reference(pipe, {"reference": "hopper/a.jpg"}, base=d)
    np.testing.assert_allclose(row.embedding, one[0], atol=1e-12)
    pipe.edit.update(references=str(d), reference_column="person")
    assert matching.item_reference(pipe, {"person": "hopper", "reference": "collins.png"}) is both
    with pytest.raises(ReferencePhotoError, match="no 'person' value"):
        matching.item_reference(pipe, {"reference": "hopper/a.jpg"}, base=d)


def test_select_faces_match_needs_a_selector():
    from types import SimpleNamespace

    small, large = SimpleNamespace(face_width=50.0), SimpleNamespace(face_width=90.0)
    with pytest.raises(ConfigError, match="reference"):
        select_faces([large, small], "match")  # type: ignore[list-item]
    assert select_faces([large, small], "match", match=lambda faces: faces[-1]) == [small]  # type: ignore[list-item]
    # --min-face first: a face too small is never offered to the matcher
    assert select_faces([large, small], "match", min_face=60, match=lambda faces: faces[-1]) == [large]  # type: ignore


# -- batch ----------------------------------------------------------------------------------------------------
def test_batch_matches_per_row_and_records_failures(photos, tmp_path):
    """Per-row references (--references DIR --reference-column), a manifest 'reference' column,
    target_not_found and bad_reference failures, the similarity in the row, identity_independent
    measured, and evaluate's flags."""
    import csv

    import pyarrow.parquet as pq

    refs = tmp_path / "refs"
    refs.mkdir()
    altered(photos / "hopper.jpg", refs / "hopper.jpg")
    (refs / "collins.jpg").write_bytes((photos / "astronaut.jpg").read_bytes())
    manifest = tmp_path / "m.csv"
    manifest.write_text("path,id,person\n"
                        f"{photos / 'two_people.jpg'},group-hopper,hopper\n"
                        f"{photos / 'two_people.jpg'},group-collins,collins\n"
                        f"{photos / 'hopper.jpg'},hopper-as-collins,collins\n"
                        f"{photos / 'hopper.jpg'},nobody,nobody\n")
    out = tmp_path / "out"
    r = run_cli("batch", manifest, "-o", out, *TINY, "--face", "match", "--lpips", "none", "--references", refs,
                "--reference-column", "person")
    assert r.returncode == 0, r.stderr
    rows = {row["key"]: row for row in csv.DictReader(open(out / "results.csv"))}
    assert set(rows) == {"group-hopper", "group-collins"}
    faces, _ = faces_of(photos / "two_people.jpg")
    assert rows["group-hopper"]["face"] != rows["group-collins"]["face"]
    assert rows["group-collins"]["face"] == "0" and rows["group-hopper"]["face"] == "1"
    for row in rows.values():
        assert float(row["match.similarity"]) >= float(row["match.threshold"]) == 0.92
        assert row["match.recogniser"] == "dlib"
        for c in ("identity_independent", "identity_independent_z0", "identity_independent_z1z0", "identity_z1z0"):
            assert -1.0 <= float(row[c]) <= 1.0
    fails = {f["key"]: f for f in map(json.loads, (out / "failures.jsonl").read_text().splitlines())}
    assert fails["hopper-as-collins"]["reason"] == "target_not_found"
    assert fails["nobody"]["reason"] == "bad_reference" and "nobody" in fails["nobody"]["message"]
    table = pq.read_table(out / "results.parquet")
    assert str(table.schema.field("match.similarity").type) == "double"
    assert str(table.schema.field("face").type) == "int64"

    ev = run_cli("evaluate", out, "--lpips", "none", "--identity-independent-threshold", "0.999", "--json")
    assert ev.returncode == 0, ev.stderr
    summary = json.loads((out / "summary.json").read_text())
    flags = summary["flags"]
    assert flags["thresholds"] == {"identity": 0.5, "identity_independent": 0.999}
    expected = {k for k, row in rows.items()
                if any(float(row[f"identity_independent{s}"]) < 0.999 for s in ("", "_z0", "_z1z0"))
                or any(float(row[f"identity{s}"]) < 0.5 for s in ("", "_z0", "_z1z0"))}
    assert {p["key"] for p in flags["pairs"]} == expected and expected  # the tiny edits are not the same face


def test_batch_without_any_reference_stops_before_the_first_photo(photos, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path\n{photos / 'hopper.jpg'}\n")
    r = run_cli("batch", manifest, "-o", tmp_path / "out", *TINY, "--face", "match", "--no-metrics")
    assert r.returncode == 2 and "needs a reference" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "results.jsonl").exists()


def test_a_matcher_crash_is_one_failure_row_and_the_batch_goes_on(tmp_path, monkeypatch):
    """An unexpected error while matching one photo is recorded (reason error, stage match); the next
    photo is still processed."""
    from counterface import batch, config
    from tests.helpers import fake_components, synthetic_photos

    files = synthetic_photos(tmp_path / "in", 2, size=(60, 80), prefix="photo")
    calls = []

    def flaky(pipe, meta, base=None):
        calls.append(meta["person"])
        if meta["person"] == "bad":
            raise RuntimeError("matcher blew up")
        raise TargetNotFoundError("target_not_found: nobody here")

    monkeypatch.setattr(matching, "item_reference", flaky)
    (tmp_path / "m.csv").write_text(f"path,person\n{files[0]},bad\n{files[1]},good\n")
    with fake_components():
        pipe = Pipeline(config.resolve(preset="fake", edit={"face": "match"}))
        summary = batch.Runner(pipe, tmp_path / "out").run(batch.read_manifest(tmp_path / "m.csv"))
    assert calls == ["bad", "good"] and summary.failed == 2
    fails = {f["person"]: f for f in batch.load_rows(tmp_path / "out", "failures")}
    assert (fails["bad"]["reason"], fails["bad"]["stage"]) == ("error", "match")
    assert "matcher blew up" in fails["bad"]["message"]
    assert fails["good"]["reason"] == "target_not_found"
