"""`counterface polarization` knows its pairs: a tiny-preset batch with a learned 64-d boundary and
--pi1 on --pi0 off as PAIRS, the operators recorded, malformed rows reported, mixed operators
refused, inputs never overwritten; the authors' outputs (OVP, party slant) and context covariates."""

from __future__ import annotations

import csv
import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from counterface.cli import cli

PHOTOS = Path(__file__).resolve().parents[1] / "data" / "photos"
OUTLETS = ("AP", "Fox", "NYT", "Reuters")
TITLES = ("senate vote on the budget bill", "budget talks stall in the senate", "campaign rally draws a crowd",
          "rally speech on the campaign trail", "court ruling on immigration policy", "immigration court case")


def invoke(*args):
    return CliRunner().invoke(cli, [str(a) for a in args])


def one_line_error(res, match=""):
    assert res.exit_code == 2, res.output
    lines = [ln for ln in res.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error:"), res.stderr
    assert match in lines[0], lines[0]


def _write_csv(path: Path, rows: list[dict]) -> Path:
    with open(path, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    return path


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A tiny-preset batch of three photos (manifest ids p0..p2), learned 64-d boundary, on against off."""
    tmp = tmp_path_factory.mktemp("pol_batch")
    rng = np.random.default_rng(1)
    normal = rng.standard_normal(64)
    normal /= np.linalg.norm(normal)
    x = rng.standard_normal((400, 64)).astype(np.float32)
    np.savez(tmp / "planted.npz", latents=x, labels=(x @ normal + 0.2 > 0).astype(int))
    r = invoke("directions", "learn", tmp / "planted.npz", "--label", "labels", "--attribute", "smile",
               "-o", tmp / "b.safetensors")
    assert r.exit_code == 0, r.output
    photos = ["astronaut.jpg", "hopper.jpg", "astronaut_small.jpg"]
    for name in photos:
        shutil.copy(PHOTOS / name, tmp / name)
    _write_csv(tmp / "manifest.csv", [{"id": f"p{i}", "path": n} for i, n in enumerate(photos)])
    r = invoke("batch", tmp / "manifest.csv", "-o", tmp / "out", "--preset", "tiny", "--direction",
               tmp / "b.safetensors", "--pi1", "on", "--pi0", "off", "--no-metrics",
               "--set", "tuner.latent_steps=0", "--set", "tuner.tune_steps=0")
    assert r.exit_code == 0, r.output
    return {"tmp": tmp, "out": tmp / "out", "photos": [tmp / n for n in photos], "boundary": tmp / "b.safetensors"}


def articles(batch, path: Path, per_photo: int = 12) -> Path:
    """Several articles per photo (the pair's id), across outlets, two politicians of two parties."""
    rows = []
    for i, photo in enumerate(batch["photos"]):
        for j in range(per_photo):
            k = len(rows)
            rows.append({"id": f"p{i}", "path": str(photo), "outlet": OUTLETS[(i + j) % len(OUTLETS)],
                         "politician": ("Ann", "Bob")[j % 2], "party": ("D", "R")[j % 2],
                         "date": f"2020-{1 + k % 3:02d}-{1 + k % 27:02d}", "title": TITLES[k % len(TITLES)]})
    return _write_csv(path, rows)


FAST = ["--embedder", "pixels", "--set", "embedder.size=4", "--bootstrap", "4", "--permutations", "4", "--no-plot", "--min-articles", "2"]


def test_batch_folder_as_pairs_records_the_operators_and_writes_ovp(batch, tmp_path):
    arts = articles(batch, tmp_path / "articles.csv")
    pol = tmp_path / "POL"
    r = invoke("polarization", arts, "--pairs", batch["out"], "--embedder", "pixels", "-o", pol,
               "--bootstrap", 4, "--permutations", 4)
    assert r.exit_code == 0, r.output
    rec = json.loads((pol / "polarization.json").read_text())
    assert rec["pi1"] == "on" and rec["pi0"] == "off"
    sha = hashlib.sha256(batch["boundary"].read_bytes()).hexdigest()
    assert rec["pairs"]["direction_sha256"] == sha and rec["pairs"]["attribute"] == "smile"
    assert rec["pairs"]["alpha"] == 1.0 and rec["pairs"]["source"] == "batch"
    assert "not T on against T off" not in r.output
    ovp = _csv(pol / "ovp.csv")
    # the pinned columns first, then the flag column every interval table has (empty: a readable interval)
    assert list(ovp[0]) == ["politician", "ovp", "ci_low", "ci_high", "n", "flag"]
    assert [row["politician"] for row in ovp] == ["Ann", "Bob"]
    assert all(int(row["n"]) == 18 for row in ovp)


def test_date_and_title_columns_are_recorded(batch, tmp_path):
    arts = articles(batch, tmp_path / "articles.csv")
    pol = tmp_path / "POL"
    r = invoke("polarization", arts, "--pairs", batch["out"], "--embedder", "pixels", "-o", pol,
               "--date-column", "date", "--title-column", "title", "--bootstrap", 4, "--permutations", 4)
    assert r.exit_code == 0, r.output
    rec = json.loads((pol / "polarization.json").read_text())
    assert rec["settings"]["date_column"] == "date" and rec["settings"]["title_column"] == "title"
    assert rec["context"]["date_column"] == "date" and rec["context"]["title_column"] == "title"
    assert (pol / "ovp.csv").is_file()


def test_malformed_rows_are_reported_with_line_numbers_and_counted(batch, tmp_path):
    folder = tmp_path / "copy"
    shutil.copytree(batch["out"], folder)
    lines = (folder / "results.jsonl").read_text().splitlines()
    bad = json.loads(lines[0])
    bad["face"] = "zero"
    lines += ["{not json", json.dumps({"key": None, "z1": "a.png", "z0": "b.png"}), json.dumps(bad)]
    (folder / "results.jsonl").write_text("\n".join(lines) + "\n")
    arts = articles(batch, tmp_path / "a.csv", per_photo=8)
    r = invoke("polarization", arts, "--pairs", folder, "-o", tmp_path / "o", *FAST)
    assert r.exit_code == 0, r.output
    assert "3 of 6 pair rows are malformed" in r.stderr and "results.jsonl:4: not valid JSON" in r.stderr
    assert "results.jsonl:5: missing key" in r.stderr
    rec = json.loads((tmp_path / "o" / "polarization.json").read_text())
    assert rec["counts"]["pair_rows_malformed"] == 3 and rec["counts"]["used"] == 24


def test_mixed_operators_are_refused_and_a_table_without_them_is_unknown(batch, tmp_path):
    rows = [json.loads(x) for x in (batch["out"] / "results.jsonl").read_text().splitlines()]
    table = [{"key": r["key"], "z1": str(batch["out"] / r["z1"]), "z0": str(batch["out"] / r["z0"])} for r in rows]
    arts = articles(batch, tmp_path / "a.csv", per_photo=8)
    _write_csv(tmp_path / "pairs.csv", table)
    r = invoke("polarization", arts, "--pairs", tmp_path / "pairs.csv", "-o", tmp_path / "o1", *FAST)
    assert r.exit_code == 0, r.output
    assert "operators that made the pairs are unknown" in r.stderr
    assert json.loads((tmp_path / "o1" / "polarization.json").read_text())["pairs"]["known"] is False
    mixed = [dict(t, pi1=op, pi0="reconstruction") for t, op in zip(table, ("shift", "on", "shift"))]
    _write_csv(tmp_path / "mixed.csv", mixed)
    one_line_error(invoke("polarization", arts, "--pairs", tmp_path / "mixed.csv", "-o", tmp_path / "o2", *FAST),
                   match="different pi1")
    shift = [dict(t, pi1="shift", pi0="reconstruction", alpha="1.5") for t in table]
    _write_csv(tmp_path / "shift.csv", shift)
    r = invoke("polarization", arts, "--pairs", tmp_path / "shift.csv", "-o", tmp_path / "o3", *FAST)
    assert r.exit_code == 0, r.output
    assert sum("not T on against T off" in ln for ln in r.stderr.splitlines()) == 1
    rec = json.loads((tmp_path / "o3" / "polarization.json").read_text())
    assert (rec["pi1"], rec["pi0"], rec["pairs"]["alpha"]) == ("shift", "reconstruction", 1.5)


def test_alpha_with_a_pairs_table_is_applied_or_refused(batch, tmp_path):
    rows = [json.loads(x) for x in (batch["out"] / "results.jsonl").read_text().splitlines()]
    table = [{"key": r["key"], "z1": str(batch["out"] / r["z1"]), "z0": str(batch["out"] / r["z0"])} for r in rows]
    arts = articles(batch, tmp_path / "a.csv", per_photo=8)
    _write_csv(tmp_path / "pairs.csv", table)
    one_line_error(invoke("polarization", arts, "--pairs", tmp_path / "pairs.csv", "--alpha", "2", "-o",
                          tmp_path / "o", *FAST), match="no alpha column")
    _write_csv(tmp_path / "alphas.csv", [dict(t, alpha="1") for t in table])
    one_line_error(invoke("polarization", arts, "--pairs", tmp_path / "alphas.csv", "--alpha", "2", "-o",
                          tmp_path / "o", *FAST), match="no pair at --alpha 2")
    r = invoke("polarization", arts, "--pairs", tmp_path / "alphas.csv", "--alpha", "1", "-o", tmp_path / "o", *FAST)
    assert r.exit_code == 0, r.output


def test_no_output_replaces_an_input(batch, tmp_path):
    study = tmp_path / "study"
    study.mkdir()
    arts = articles(batch, study / "articles.csv", per_photo=8)
    rows = [json.loads(x) for x in (batch["out"] / "results.jsonl").read_text().splitlines()]
    _write_csv(study / "pairs.csv", [{"key": r["key"], "z1": str(batch["out"] / r["z1"]),
                                      "z0": str(batch["out"] / r["z0"])} for r in rows])
    before = {p.name: p.read_bytes() for p in study.iterdir()}
    one_line_error(invoke("polarization", study / "articles.csv", "--pairs", study / "pairs.csv", "-o", study, *FAST),
                   match="refusing to overwrite an input")
    out2 = tmp_path / "out2"
    out2.mkdir()
    (out2 / "rho.csv").symlink_to(study / "pairs.csv")  # a link to an input is caught too
    one_line_error(invoke("polarization", arts, "--pairs", study / "pairs.csv", "-o", out2, *FAST),
                   match="refusing to overwrite an input")
    assert {p.name: p.read_bytes() for p in study.iterdir()} == before


# -- features that see the edit, the manipulation check, the right person ---------------------------------------
def test_face_crops_are_embedded_and_the_visibility_is_recorded(batch, tmp_path):
    arts = articles(batch, tmp_path / "a.csv", per_photo=8)
    runs = {}
    for crop in ("photo", "face"):
        r = invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / crop, "--crop", crop,
                   "--scorer", "none", *FAST)
        assert r.exit_code == 0, r.output
        runs[crop] = json.loads((tmp_path / crop / "polarization.json").read_text())
        assert f"edit visibility (pixels, {'face crops' if crop == 'face' else 'whole images'})" in r.output
    assert runs["face"]["settings"]["crop"] == "face"
    vis = runs["face"]["edit_visibility"]
    assert vis["ratio"] > 0 and vis["visible"] is True
    assert vis["ratio"] != pytest.approx(runs["photo"]["edit_visibility"]["ratio"])


def test_visibility_flags_an_edit_the_features_cannot_see():
    from counterface.polarization import visibility

    rng = np.random.default_rng(0)
    e = rng.normal(size=(50, 8))
    rec = visibility.measure(e, e + 1e-4, e)
    assert rec["visible"] is False and visibility.warning(rec, "photo") is not None
    rec = visibility.measure(e, e + 1.0, e)
    assert rec["visible"] is True and rec["ratio"] == pytest.approx(np.median(np.linalg.norm(1 / e.std(0))) / np.sqrt(8))


class _Brightness:
    """A stand-in scorer: mean brightness (the synthetic study's mark is a bright square)."""

    attribute = "mark"

    def score(self, images):
        return np.array([float(np.mean(im)) for im in images])


def test_manipulation_check_reports_the_difference_and_warns_when_nothing_moved(monkeypatch, tmp_path):
    import counterface
    from counterface.polarization.synthetic import make_study

    real = counterface.create
    monkeypatch.setattr(counterface, "create", lambda kind, name, **kw: _Brightness() if kind == "scorer"
                        else real(kind, name, **kw))
    st = make_study(tmp_path / "s", articles=40, size=12, seed=2)
    r = invoke("polarization", st["articles"], "--pairs", st["pairs"], "-o", tmp_path / "o", "--scorer", "bright",
               *FAST)
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "o" / "polarization.json").read_text())["manipulation_check"]
    assert rec["share_z1_higher"] == 1.0 and rec["ci_low"] > 0 and rec["moved"] is True
    assert "manipulation check (bright): s(Z1) - s(Z0) =" in r.output and "did not move" not in r.stderr
    swapped = [dict(p, z1=p["z0"]) for p in _csv(st["pairs"])]  # Z1 = Z0: the attribute cannot move
    _write_csv(Path(st["pairs"]).parent / "same.csv", swapped)
    r = invoke("polarization", st["articles"], "--pairs", Path(st["pairs"]).parent / "same.csv", "-o",
               tmp_path / "o2", "--scorer", "bright", *FAST)
    assert r.exit_code == 0, r.output
    assert "the attribute did not move" in r.stderr
    assert json.loads((tmp_path / "o2" / "polarization.json").read_text())["manipulation_check"]["moved"] is False


def test_without_a_known_attribute_the_check_says_why(batch, tmp_path):
    rows = [json.loads(x) for x in (batch["out"] / "results.jsonl").read_text().splitlines()]
    _write_csv(tmp_path / "pairs.csv", [{"key": r["key"], "z1": str(batch["out"] / r["z1"]),
                                         "z0": str(batch["out"] / r["z0"])} for r in rows])
    arts = articles(batch, tmp_path / "a.csv", per_photo=8)
    r = invoke("polarization", arts, "--pairs", tmp_path / "pairs.csv", "-o", tmp_path / "o", *FAST)
    assert r.exit_code == 0, r.output
    assert "no manipulation check: the pairs' attribute is unknown" in r.stderr


def test_identity_check_leaves_out_another_person(batch, tmp_path):
    arts = articles(batch, tmp_path / "a.csv", per_photo=8)
    rows = _csv(arts)
    for row in rows:
        row["reference"] = str(PHOTOS / "astronaut_240p.jpg")
    _write_csv(arts, rows)
    r = invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / "o", "--scorer", "none", *FAST)
    assert r.exit_code == 0, r.output
    assert "identity: 8 articles show another person than their politician and are left out (e.g. 'p1'" in r.stderr
    rec = json.loads((tmp_path / "o" / "polarization.json").read_text())
    assert rec["identity"]["other_person"] == 8 and rec["identity"]["kept"] == 16 and rec["counts"]["used"] == 16
    refs = tmp_path / "refs"
    refs.mkdir()
    shutil.copy(PHOTOS / "astronaut_240p.jpg", refs / "Ann.jpg")
    (refs / "Bob").mkdir()
    shutil.copy(PHOTOS / "hopper.jpg", refs / "Bob" / "one.jpg")
    r = invoke("polarization", articles(batch, tmp_path / "b.csv", per_photo=8), "--pairs", batch["out"], "-o",
               tmp_path / "o2", "--references", refs, "--scorer", "none", *FAST)
    assert r.exit_code == 0, r.output
    rec = json.loads((tmp_path / "o2" / "polarization.json").read_text())["identity"]
    assert (rec["kept"], rec["other_person"]) == (12, 12)  # Ann on the astronaut photos, Bob on hopper's


def test_options_that_cannot_act_are_refused(batch, tmp_path):
    arts = articles(batch, tmp_path / "a.csv", per_photo=4)
    with open(tmp_path / "s.csv", "w") as f:
        f.write("key,outlet,p_z1,p_z0\n" + "".join(f"p{i},{o},0.5,0.5\n" for i in range(3) for o in OUTLETS))
    for extra, match in ((["--crop", "face"], "--crop face"), (["--references", tmp_path], "--references"),
                         (["--date-column", "date"], "--date-column"), (["--scorer", "smile"], "--scorer")):
        one_line_error(invoke("polarization", arts, "--scores", tmp_path / "s.csv", "-o", tmp_path / "o", *extra),
                       match=match)
    one_line_error(invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / "o", "--topics", "3",
                          *FAST), match="--topics")
    one_line_error(invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / "o", "--matcher", "dlib",
                          *FAST), match="--matcher")
    one_line_error(invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / "o", "--reference-column",
                          "politician", *FAST), match="--reference-column")


def test_one_key_with_pairs_of_two_operator_settings_is_refused(batch, tmp_path):
    folder = tmp_path / "two_jobs"
    shutil.copytree(batch["out"], folder)
    row = json.loads((folder / "results.jsonl").read_text().splitlines()[0])
    row.update(job="other", pi1="shift", pi0="reconstruction")
    with open(folder / "results.jsonl", "a") as f:
        f.write(json.dumps(row) + "\n")
    one_line_error(invoke("polarization", articles(batch, tmp_path / "a.csv", per_photo=4), "--pairs", folder, "-o",
                          tmp_path / "o", *FAST), match="made by different operators")


def test_same_seed_same_ovp_and_group_slant(batch, tmp_path):
    arts = articles(batch, tmp_path / "a.csv", per_photo=8)
    outs = []
    for name in ("one", "two"):
        r = invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / name, "--group", "party",
                   "--title-column", "title", "--date-column", "date", "--scorer", "none", *FAST)
        assert r.exit_code == 0, r.output
        outs.append([(tmp_path / name / f).read_bytes() for f in ("ovp.csv", "group_slant.csv", "rho.csv")])
    assert outs[0] == outs[1]
    gs = _csv(tmp_path / "one" / "group_slant.csv")
    assert {r["group"] for r in gs} == {"party=D", "party=R"} and len(gs) == 2 * len(OUTLETS)
    for row in gs:
        if row["outlet"] != row["reference"] and row["p_placebo"]:
            assert 0 < float(row["p_placebo"]) <= 1


def test_face_crops_of_a_pairs_table_need_an_aligner(batch, tmp_path):
    rows = [json.loads(x) for x in (batch["out"] / "results.jsonl").read_text().splitlines()]
    _write_csv(tmp_path / "pairs.csv", [{"key": r["key"], "z1": str(batch["out"] / r["z1"]),
                                         "z0": str(batch["out"] / r["z0"])} for r in rows])
    arts = articles(batch, tmp_path / "a.csv", per_photo=4)
    one_line_error(invoke("polarization", arts, "--pairs", tmp_path / "pairs.csv", "-o", tmp_path / "o",
                          "--crop", "face", *FAST), match="--aligner NAME")
    r = invoke("polarization", arts, "--pairs", tmp_path / "pairs.csv", "-o", tmp_path / "o", "--crop", "face",
               "--aligner", "dlib", *FAST)
    assert r.exit_code == 0, r.output
    assert "(aligned face crops)" in r.output


def test_an_untitled_article_is_kept_and_a_bad_date_is_named(batch, tmp_path):
    arts = articles(batch, tmp_path / "a.csv", per_photo=8)
    rows = _csv(arts)
    rows[0]["title"] = ""
    _write_csv(arts, rows)
    r = invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / "o", "--title-column", "title",
               "--scorer", "none", *FAST)
    assert r.exit_code == 0, r.output
    rows[1]["date"] = "yesterday"
    _write_csv(arts, rows)
    one_line_error(invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / "o2", "--date-column",
                          "date", *FAST), match="'yesterday' is not an ISO date")
    one_line_error(invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / "o3", "--date-column",
                          "published", *FAST), match="no column 'published'")


def test_articles_with_only_an_id_take_the_batch_photo(batch, tmp_path):
    """ARTICLES with an `id` (the batch manifest's) and no path column: each article's photo is the one
    its pair was made from; an id the batch does not know is one error line."""
    src = _csv(articles(batch, tmp_path / "full.csv", per_photo=4))
    rows = [{k: v for k, v in row.items() if k != "path"} for row in src]
    arts = _write_csv(tmp_path / "ids.csv", rows)
    r = invoke("polarization", arts, "--pairs", batch["out"], "-o", tmp_path / "o", "--scorer", "none", *FAST)
    assert r.exit_code == 0, r.output
    table = _csv(tmp_path / "o" / "articles.csv")
    assert {r["key"] for r in table} == {r["id"] for r in rows}
    rec = json.loads((tmp_path / "o" / "polarization.json").read_text())
    assert rec["pi1"] == "on" and rec["pi0"] == "off"
    bad = _write_csv(tmp_path / "bad.csv", [{**rows[0], "id": "nobody"}, *rows[1:]])
    one_line_error(invoke("polarization", bad, "--pairs", batch["out"], "-o", tmp_path / "o2", *FAST),
                   match="(or an id of a batch folder given as --pairs)")
