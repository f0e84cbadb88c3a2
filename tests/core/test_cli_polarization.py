"""`counterface polarization` end to end: the planted synthetic study, the --scores route by hand,
batch folders as PAIRS, and bad input."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from counterface.cli import cli
from counterface.polarization.synthetic import make_study

RHO_COLUMNS = ["politician", "outlet_1", "outlet_2", "rho", "ci_low", "ci_high", "n", "p_placebo"]


def _run(*args):
    return CliRunner().invoke(cli, ["polarization", *map(str, args)], catch_exceptions=False)


def _csv(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return make_study(tmp_path_factory.mktemp("study"), articles=240, effect=3.0, size=24, seed=1)


def test_planted_study_recovers_the_sign_and_the_null(study, tmp_path):
    out = tmp_path / "out"
    r = _run(study["articles"], "--pairs", study["pairs"], "-o", out, "--embedder", "pixels",
             "--bootstrap", 30, "--permutations", 19, "--seed", 3)
    assert r.exit_code == 0, r.output
    assert "held out" in r.output and "accuracy" in r.output and "log-loss" in r.output
    rows = {row["politician"]: row for row in _csv(out / "rho.csv")}
    assert list(_csv(out / "rho.csv")[0]) == RHO_COLUMNS
    planted, null = rows["planted"], rows["null"]
    assert (planted["outlet_1"], planted["outlet_2"]) == study["outlets"]
    # planted rho is -3 (marked images go to the second outlet): the sign, and a CI excluding 0
    assert float(planted["rho"]) < 0 and float(planted["ci_high"]) < 0
    assert float(planted["ci_low"]) <= float(planted["rho"]) <= float(planted["ci_high"])
    # the politician without an effect: a CI that covers 0
    assert float(null["ci_low"]) < 0 < float(null["ci_high"])
    assert float(planted["p_placebo"]) == pytest.approx(1 / 20)  # beyond every permutation
    assert int(planted["n"]) == int(null["n"]) == 120
    rec = json.loads((out / "polarization.json").read_text())
    h = rec["outlet_model_heldout"]
    assert h["accuracy"] > h["chance_accuracy"] and h["log_loss"] < h["uniform_log_loss"]
    assert rec["settings"]["seed"] == 3 and rec["ci"]["refits_outlet_model"] is True
    assert rec["versions"]["scikit-learn"] and rec["components"]["embedder"]["name"] == "pixels"
    slant = _csv(out / "slant.csv")
    assert [s["outlet"] for s in slant] == list(study["outlets"]) and float(slant[0]["slant"]) == 0
    arts = _csv(out / "articles.csv")
    assert len(arts) == 240 and {a["fold"] for a in arts} == {"0", "1"}
    assert (out / "forest.png").stat().st_size > 1000
    # every article's d averages to the politician's rho
    d = [float(a["d"]) for a in arts if a["politician"] == "planted"]
    assert np.mean(d) == pytest.approx(float(planted["rho"]), abs=1e-9)


def test_same_seed_same_numbers_and_embeddings_cached(study, tmp_path):
    args = [study["articles"], "--pairs", study["pairs"], "--embedder", "pixels", "--set", "embedder.size=8",
            "--bootstrap", 4, "--permutations", 3]
    a = _run(*args, "-o", tmp_path / "a")
    b = _run(*args, "-o", tmp_path / "a")
    assert a.exit_code == b.exit_code == 0, a.output + b.output
    assert "(0 from the cache)" in a.output and "(480 from the cache)" in b.output
    c = _run(*args, "-o", tmp_path / "c")
    assert c.exit_code == 0, c.output
    assert (tmp_path / "a" / "rho.csv").read_bytes() == (tmp_path / "c" / "rho.csv").read_bytes()


def test_scores_route_equals_the_formula_by_hand(tmp_path):
    rng = np.random.default_rng(7)
    outlets = ["A", "B", "C"]
    arts, scores, probs = [], [], {}
    for i in range(12):
        key = f"k{i}"
        pol = ["ann", "bob"][i % 2]
        arts.append({"id": key, "path": f"{key}.png", "politician": pol, "outlet": outlets[i % 3]})
        p1, p0 = rng.dirichlet(np.ones(3)), rng.dirichlet(np.ones(3))
        probs[key] = (pol, dict(zip(outlets, p1)), dict(zip(outlets, p0)))
        for o in outlets:
            scores.append({"key": key, "outlet": o, "p_z1": repr(float(probs[key][1][o])),
                           "p_z0": repr(float(probs[key][2][o]))})
    for name, table in (("articles.csv", arts), ("scores.csv", scores)):
        with open(tmp_path / name, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0]))
            w.writeheader()
            w.writerows(table)
    out = tmp_path / "out"
    r = _run(tmp_path / "articles.csv", "--scores", tmp_path / "scores.csv", "-o", out, "--bootstrap", 20,
             "--permutations", 20)
    assert r.exit_code == 0, r.output

    def by_hand(pol, y1, y2):
        ds = [math.log(p1[y1] / p1[y2]) - math.log(p0[y1] / p0[y2]) for pp, p1, p0 in probs.values() if pp == pol]
        return sum(ds) / len(ds)

    rows = _csv(out / "rho.csv")
    assert len(rows) == 2 * 3  # every outlet pair, both politicians
    for row in rows:
        assert float(row["rho"]) == pytest.approx(by_hand(row["politician"], row["outlet_1"], row["outlet_2"]),
                                                  abs=1e-6)
    slant = {s["outlet"]: float(s["slant"]) for s in _csv(out / "slant.csv")}
    for y in outlets:
        ds = [math.log(p1[y] / p1["A"]) - math.log(p0[y] / p0["A"]) for _, p1, p0 in probs.values()]
        assert slant[y] == pytest.approx(sum(ds) / len(ds), abs=1e-6)
    r2 = _run(tmp_path / "articles.csv", "--scores", tmp_path / "scores.csv", "-o", tmp_path / "o2",
              "--reference-outlet", "B", "--bootstrap", 0, "--permutations", 0, "--no-plot")
    assert r2.exit_code == 0, r2.output
    rows = _csv(tmp_path / "o2" / "rho.csv")
    assert {(r["outlet_1"], r["outlet_2"]) for r in rows} == {("A", "B"), ("C", "B")}
    for row in rows:
        assert float(row["rho"]) == pytest.approx(by_hand(row["politician"], row["outlet_1"], "B"), abs=1e-6)


def test_batch_folder_as_pairs_with_clusters_groups_and_covariates(study, tmp_path):
    base = Path(study["articles"]).parent
    batch = tmp_path / "batch"
    batch.mkdir()
    rows = list(_csv(study["pairs"]))
    with open(batch / "results.jsonl", "w") as f:
        for r in rows[:-5]:  # five articles without a pair
            for face in (1, 0):
                f.write(json.dumps({"key": r["key"], "face": face, "alpha": 1.5,
                                    "z1": str(base / r["z1"]), "z0": str(base / r["z0"])}) + "\n")
    arts = _csv(study["articles"])
    for i, a in enumerate(arts):
        a["path"] = str(base / a["path"])
        a["day"] = str(i // 6)
        a["party"] = {"planted": "X", "null": "Y"}[a["politician"]]
    arts.append({"id": "lonely", "path": str(base / arts[0]["path"]), "politician": "ghost", "outlet": "left",
                 "section": "news", "day": "99", "party": "Y"})
    with open(tmp_path / "arts.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(arts[0]))
        w.writeheader()
        w.writerows(arts)
    r = _run(tmp_path / "arts.csv", "--pairs", batch, "-o", tmp_path / "out", "--embedder", "pixels",
             "--set", "embedder.size=8", "--cluster", "day", "--group", "party", "--covariates", "section",
             "--bootstrap", 5, "--permutations", 5, "--by-politician")
    assert r.exit_code == 0, r.output
    err = r.stderr if hasattr(r, "stderr") else r.output
    assert "6 of 241 articles have no pair" in err
    assert "politician 'ghost' has no pairs" in err
    rec = json.loads((tmp_path / "out" / "polarization.json").read_text())
    assert rec["counts"]["used"] == 235 and rec["settings"]["cluster"] == "day"
    assert rec["covariate_columns"] == ["section=news", "section=opinion"]
    assert rec["components"]["outlet_model"]["params"]["by_politician"] is True
    politicians = [row["politician"] for row in _csv(tmp_path / "out" / "rho.csv")]
    assert politicians == ["null", "planted", "party=X", "party=Y"]


def test_bad_input_one_line_each(tmp_path, study):
    r = _run(study["articles"], "-o", tmp_path / "o")
    assert r.exit_code == 2 and "give --pairs" in r.output and "Traceback" not in r.output
    # scores: an outlet the articles lack, a zero probability
    arts = _csv(study["articles"])
    k1 = next(a["id"] for a in arts if a["outlet"] == "left")
    k2 = next(a["id"] for a in arts if a["outlet"] == "right")
    with open(tmp_path / "s.csv", "w") as f:
        f.write(f"key,outlet,p_z1,p_z0\n{k1},left,0.5,0.5\n{k1},right,0.5,0.5\n{k1},elsewhere,0.1,0.2\n"
                f"{k2},left,0.4,0.3\n{k2},right,0.6,0.7\n")
    r = _run(study["articles"], "--scores", tmp_path / "s.csv", "-o", tmp_path / "o", "--bootstrap", 3,
             "--permutations", 3, "--no-plot")
    assert r.exit_code == 0, r.output
    assert "238 of 240 articles have no scores" in r.output
    assert "outlets the articles do not ('elsewhere')" in r.output
    assert "has only" in r.output  # each outlet has fewer than 5 scored articles
    with open(tmp_path / "bad.csv", "w") as f:
        f.write(f"key,outlet,p_z1,p_z0\n{k1},left,0,0.5\n")
    r = _run(study["articles"], "--scores", tmp_path / "bad.csv", "-o", tmp_path / "o2")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "(0, 1]" in r.output
    r = _run(study["articles"], "--pairs", study["pairs"], "-o", tmp_path / "o3", "--embedder", "pixels",
             "--reference-outlet", "nowhere")
    assert r.exit_code == 2 and "nowhere" in r.output
    # a missing and an unreadable Z1: those articles are left out, the run goes on
    base = Path(study["pairs"]).parent
    pairs = _csv(study["pairs"])
    for p in pairs:
        p["z1"], p["z0"] = str(base / p["z1"]), str(base / p["z0"])
    (tmp_path / "broken.png").write_bytes(b"not a png")
    pairs[0]["z1"] = str(tmp_path / "broken.png")
    pairs[1]["z1"] = str(tmp_path / "absent.png")
    with open(tmp_path / "pairs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["key", "z1", "z0"])
        w.writeheader()
        w.writerows(pairs)
    r = _run(study["articles"], "--pairs", tmp_path / "pairs.csv", "-o", tmp_path / "o4", "--embedder", "pixels",
             "--set", "embedder.size=4", "--bootstrap", 2, "--permutations", 2, "--no-plot")
    assert r.exit_code == 0, r.output
    assert "1 articles have a missing image" in r.output and "1 articles have an unreadable image" in r.output
    assert json.loads((tmp_path / "o4" / "polarization.json").read_text())["counts"]["used"] == 238
