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
             "--set", "embedder.size=8", "--splits", 1, "--bootstrap", 30, "--permutations", 19, "--seed", 3)
    assert r.exit_code == 0, r.output
    assert "held out" in r.output and "accuracy" in r.output and "log-loss" in r.output
    rows = {row["politician"]: row for row in _csv(out / "rho.csv")}
    assert list(_csv(out / "rho.csv")[0])[:8] == RHO_COLUMNS
    planted, null = rows["planted"], rows["null"]
    assert (planted["outlet_1"], planted["outlet_2"]) == study["outlets"]
    # planted rho is -3 (marked images go to the second outlet): the sign, a CI excluding 0 and the truth
    assert float(planted["rho"]) < 0 and float(planted["ci_high"]) < 0
    assert float(planted["ci_low"]) <= -3 <= float(planted["ci_high"])
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
    # every article's d averages to the politician's rho before the bias correction (one split: the
    # median of one mean); rho is that minus the bootstrap's bias estimate, which the record describes
    d = [float(a["d"]) for a in arts if a["politician"] == "planted"]
    assert np.mean(d) == pytest.approx(float(planted["rho_uncorrected"]), abs=1e-9)
    assert float(planted["rho"]) != float(planted["rho_uncorrected"]) and "bias estimate" in rec["ci"]["estimate"]
    assert float(slant[0]["slant_uncorrected"]) == 0


def test_same_seed_same_numbers_and_embeddings_cached(study, tmp_path):
    args = [study["articles"], "--pairs", study["pairs"], "--embedder", "pixels", "--set", "embedder.size=4",
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
    r = _run(tmp_path / "articles.csv", "--scores", tmp_path / "scores.csv", "-o", out, "--min-articles", 1, "--bootstrap", 20,
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
              "--reference-outlet", "B", "--bootstrap", 0, "--permutations", 0, "--no-plot", "--min-articles", 1)
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
             "--bootstrap", 5, "--permutations", 5, "--by-politician", "--splits", 1)
    assert r.exit_code == 0, r.output
    err = r.stderr if hasattr(r, "stderr") else r.output
    assert "6 of 241 articles have no pair" in err
    assert "politician 'ghost' has no pairs" in err
    rec = json.loads((tmp_path / "out" / "polarization.json").read_text())
    assert rec["counts"]["used"] == 235 and rec["settings"]["cluster"] == "day"
    assert rec["covariate_columns"] == ["section=news", "section=opinion"]
    assert rec["components"]["outlet_model"]["params"]["by_politician"] is True
    rows = _csv(tmp_path / "out" / "rho.csv")
    assert [row["politician"] for row in rows] == ["null", "planted", "party=X", "party=Y"]
    # group rows: the pooled rho with its own interval and placebo p, and the contrast in its own columns
    groups = [row for row in rows if row["politician"].startswith("party=")]
    assert all(g["ci_low"] and g["p_placebo"] and g["contrast"] and g["contrast_ci_low"] and g["p_contrast"]
               for g in groups)
    assert all(row["contrast"] == "" for row in rows[:2])
    # one politician per party: party X's contrast is planted minus null
    assert float(groups[0]["contrast"]) == pytest.approx(float(rows[1]["rho"]) - float(rows[0]["rho"]), abs=1e-9)
    assert float(groups[0]["rho"]) == pytest.approx(float(rows[1]["rho"]), abs=1e-9)
    # group slant rows and OVP rows have the flag column of rho.csv, printed the same way
    assert "flag" in _csv(tmp_path / "out" / "group_slant.csv")[0] and "flag" in _csv(tmp_path / "out" / "ovp.csv")[0]
    _assert_printed_flags(r.output, tmp_path / "out", expect=set())


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
             "--permutations", 3, "--no-plot", "--min-articles", 1)
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


# -- a second, independent planted generator ----------------------------------------------------------
def planted(folder: Path, politicians: dict, outlets=("Gazette", "Herald"), size=20, seed=0) -> dict:
    """Exact shares of marked images: politician -> (articles, marked share in outlet 1, in outlet 2),
    half of the articles in each outlet. The mark: a dark blue band over the bottom-right corner.
    True rho(outlet 1, outlet 2) = log[s1 (1 - s2) / (s2 (1 - s1))]."""
    from counterface.imageio import write_image

    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    arts, pairs, truth = [], [], {}
    for name, (n, s1, s2) in politicians.items():
        truth[name] = math.log(s1 * (1 - s2) / (s2 * (1 - s1)))
        for j in range(n):
            outlet = outlets[j % 2]
            k = j // 2  # the k-th article of this outlet: exactly round(share * n / 2) of them are marked
            share = s1 if outlet == outlets[0] else s2
            marked = k < round(share * n / 2)
            freq = rng.uniform(0.2, 0.8, 3)
            base = 128 + 70 * np.sin(freq[None, None, :] * (xx[..., None] + 2 * yy[..., None]) + rng.uniform(0, 6, 3))
            base = np.clip(base + rng.normal(0, 10, base.shape), 0, 255).astype(np.uint8)
            z1 = base.copy()
            z1[xx + yy > 1.5 * size] = (20, 40, 160)
            key = f"{name}-{j}"
            write_image(folder / f"{key}_pub.png", z1 if marked else base)
            write_image(folder / f"{key}_1.png", z1)
            write_image(folder / f"{key}_0.png", base)
            arts.append({"id": key, "path": f"{key}_pub.png", "politician": name, "outlet": outlet})
            pairs.append({"key": key, "z1": f"{key}_1.png", "z0": f"{key}_0.png"})
    for fname, table in (("articles.csv", arts), ("pairs.csv", pairs)):
        with open(folder / fname, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=list(table[0]))
            w.writeheader()
            w.writerows(table)
    return {"articles": folder / "articles.csv", "pairs": folder / "pairs.csv", "rho": truth}


def test_independent_generator_intervals_contain_the_truth(tmp_path):
    """The pinned check, small: planted politicians with more and fewer articles, and one without an
    effect; their intervals contain the closed-form truth (a different image, mark and outlets)."""
    info = planted(tmp_path, {"ann": (80, 0.8, 0.2), "bea": (240, 0.75, 0.25), "cal": (80, 0.5, 0.5)})
    out = tmp_path / "out"
    r = _run(info["articles"], "--pairs", info["pairs"], "--embedder", "pixels", "--set", "embedder.size=4",
             "-o", out, "--bootstrap", 30, "--permutations", 19, "--splits", 1, "--no-plot")
    assert r.exit_code == 0, r.output
    rows = {row["politician"]: row for row in _csv(out / "rho.csv")}
    for name, truth in info["rho"].items():
        row = rows[name]
        assert (row["outlet_1"], row["outlet_2"]) == ("Gazette", "Herald")
        assert float(row["ci_low"]) <= truth <= float(row["ci_high"]), (name, truth, row)
    assert float(rows["bea"]["ci_low"]) > 0 and float(rows["bea"]["p_placebo"]) == pytest.approx(1 / 20)


def _assert_printed_flags(output: str, out: Path, expect: set) -> None:
    """Every printed rho, slant, OVP and group-slant line ends with ``FLAG: <why>`` exactly when its CSV
    row's ``flag`` is not empty (the same words); ``expect``: the kinds of line at least one of which
    must be flagged."""
    printed = {line.split(" = ")[0]: line for line in output.splitlines() if " = " in line}
    flagged = set()
    for kind, fname, label in (("rho", "rho.csv", lambda r: f"rho[{r['politician']}: {r['outlet_1']} vs {r['outlet_2']}]"),
                               ("slant", "slant.csv", lambda r: f"slant[{r['outlet']} vs {r['reference']}]"),
                               ("OVP", "ovp.csv", lambda r: f"OVP[{r['politician']}]"),
                               ("group slant", "group_slant.csv",
                                lambda r: f"group slant[{r['group']} at {r['outlet']} vs {r['reference']}]")):
        if not (out / fname).is_file():
            continue
        for row in _csv(out / fname):
            if label(row) not in printed:  # the reference outlet's own rows are not printed
                assert row.get("outlet") == row.get("reference"), (fname, row)
                continue
            line = printed[label(row)]
            if row["flag"]:
                assert line.endswith(f" FLAG: {row['flag']}"), (line, row)
                flagged.add(kind)
            else:
                assert "FLAG" not in line, (line, row)
    assert expect <= flagged, (expect, flagged, output)


def test_degenerate_cases_flagged_or_refused(tmp_path):
    info = planted(tmp_path, {"ann": (40, 0.8, 0.2), "bea": (40, 0.5, 0.5)}, size=12)
    arts = _csv(info["articles"])
    # a one-article politician and one seen by a single outlet: no rho, a warning and a count
    extra = [{"id": "solo", "path": arts[0]["path"], "politician": "solo", "outlet": "Gazette"}]
    extra += [{"id": f"one{i}", "path": arts[i]["path"], "politician": "mono", "outlet": "Herald"} for i in range(12)]
    with open(tmp_path / "more.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(arts[0]))
        w.writeheader()
        w.writerows(arts + extra)
    pairs = _csv(info["pairs"]) + [{"key": e["id"], "z1": "ann-0_1.png", "z0": "ann-0_0.png"} for e in extra]
    with open(tmp_path / "morepairs.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=["key", "z1", "z0"])
        w.writeheader()
        w.writerows(pairs)
    base = ["--pairs", tmp_path / "morepairs.csv", "--embedder", "pixels", "--set", "embedder.size=4", "--splits", 1,
            "--no-plot"]
    r = _run(tmp_path / "more.csv", *base, "-o", tmp_path / "o1", "--bootstrap", 4, "--permutations", 0)
    assert r.exit_code == 0, r.output
    assert "2 politicians get no rho" in r.output and "'solo'" in r.output and "one outlet only" in r.output
    assert "duplicates: 13 articles reuse" in r.output  # solo and mono reuse ann's and bea's image files
    assert {row["politician"] for row in _csv(tmp_path / "o1" / "rho.csv")} == {"ann", "bea"}
    rec = json.loads((tmp_path / "o1" / "polarization.json").read_text())
    assert rec["counts"]["politicians_without_rho"] == 2 and set(rec["no_rho"]) == {"solo", "mono"}
    assert "solo" not in {a["key"] for a in _csv(tmp_path / "o1" / "articles.csv")}
    # two clusters: replicates that cannot be cross-fitted are lost; the interval is flagged
    with open(tmp_path / "two.csv", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(arts[0]) + ["day"])
        w.writeheader()
        w.writerows([dict(a, day=str((i // 2) % 2)) for i, a in enumerate(arts)])
    r = _run(tmp_path / "two.csv", "--pairs", info["pairs"], "--embedder", "pixels", "--set", "embedder.size=4",
             "--splits", 1, "--no-plot", "--cluster", "day", "-o", tmp_path / "o2", "--bootstrap", 12,
             "--permutations", 0)
    assert r.exit_code == 0, r.output
    rows = _csv(tmp_path / "o2" / "rho.csv")
    assert all("replicates" in row["flag"] or "zero-width" in row["flag"] for row in rows)
    assert "FLAG:" in r.output
    _assert_printed_flags(r.output, tmp_path / "o2", expect={"slant", "OVP"})
    assert "no OVP" in _csv(tmp_path / "o2" / "ovp.csv")[0]["flag"]  # two clusters cannot make three parts
    # --folds larger than the data: one line, exit 2
    r = _run(info["articles"], "--pairs", info["pairs"], "--embedder", "pixels", "--set", "embedder.size=4",
             "--folds", 500, "-o", tmp_path / "o3")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and r.output.startswith("error: --folds 500")
    # --scores covering one outlet only: the documented stop, exit 2
    with open(tmp_path / "s.csv", "w") as f:
        f.write("key,outlet,p_z1,p_z0\n" + "".join(f"{a['id']},Gazette,0.5,0.4\n" for a in arts))
    r = _run(info["articles"], "--scores", tmp_path / "s.csv", "-o", tmp_path / "o4")
    assert r.exit_code == 2 and r.output.count("\n") == 1 and "rho compares at least two" in r.output


def test_scores_p_value_is_marked_conditional_on_g(tmp_path):
    info = planted(tmp_path, {"ann": (20, 0.8, 0.2)}, size=8)
    arts = _csv(info["articles"])
    with open(tmp_path / "s.csv", "w") as f:
        f.write("key,outlet,p_z1,p_z0\n" + "".join(f"{a['id']},Gazette,0.6,0.4\n{a['id']},Herald,0.4,0.6\n"
                                                   for a in arts))
    r = _run(info["articles"], "--scores", tmp_path / "s.csv", "-o", tmp_path / "o", "--bootstrap", 5,
             "--permutations", 9, "--no-plot")
    assert r.exit_code == 0, r.output
    assert "conditional on g" in r.output
    row = _csv(tmp_path / "o" / "rho.csv")[0]
    assert row["p_conditional_on_g"] == "true"
    assert json.loads((tmp_path / "o" / "polarization.json").read_text())["placebo"]["conditional_on_g"] is True


def test_scores_with_folds_and_replicates(tmp_path):
    """Per-replicate scores (the researcher's refits) carry g's noise into the interval; a fold column
    says the scores are out of fold; neither warns that the p-value is conditional on g."""
    info = planted(tmp_path, {"ann": (40, 0.8, 0.2)}, size=8)
    arts = _csv(info["articles"])
    rng = np.random.default_rng(3)
    lines = ["key,outlet,p_z1,p_z0,fold,replicate"]
    for i, a in enumerate(arts):
        lines += [f"{a['id']},Gazette,0.6,0.4,{i % 2},", f"{a['id']},Herald,0.4,0.6,{i % 2},"]
        for r in range(1, 6):
            q = float(np.clip(0.6 + rng.normal(0, 0.1), 0.05, 0.95))
            lines += [f"{a['id']},Gazette,{q},{1 - q},,{r}", f"{a['id']},Herald,{1 - q},{q},,{r}"]
    (tmp_path / "s.csv").write_text("\n".join(lines) + "\n")
    args = [info["articles"], "--scores", tmp_path / "s.csv", "--bootstrap", 20, "--permutations", 9, "--no-plot"]
    r = _run(*args, "-o", tmp_path / "o")
    assert r.exit_code == 0, r.output
    assert "5 refitted replicates" in r.output and "without a replicate column" not in r.output
    rec = json.loads((tmp_path / "o" / "polarization.json").read_text())
    assert rec["ci"]["refits_outlet_model"] is True and rec["counts"]["score_replicates"] == 5
    assert {a["fold"] for a in _csv(tmp_path / "o" / "articles.csv")} == {"0", "1"}
    with_reps = _csv(tmp_path / "o" / "rho.csv")[0]
    # the same main scores without the replicates: the article-only interval is narrower (here: zero width)
    (tmp_path / "main.csv").write_text("\n".join(l for l in lines if not l.split(",")[-1].isdigit()) + "\n")
    r = _run(info["articles"], "--scores", tmp_path / "main.csv", "--bootstrap", 20, "--permutations", 9,
             "--no-plot", "-o", tmp_path / "o2")
    assert r.exit_code == 0, r.output
    assert "without a replicate column" in r.output
    alone = _csv(tmp_path / "o2" / "rho.csv")[0]
    assert float(with_reps["rho"]) == pytest.approx(float(alone["rho"]))
    assert float(with_reps["ci_high"]) - float(with_reps["ci_low"]) > float(alone["ci_high"]) - float(alone["ci_low"])
    assert "zero-width" in alone["flag"]


def test_no_bias_correction_reports_the_estimate_itself(study, tmp_path):
    """--no-bias-correction (for ablations and for reproducing uncorrected numbers): rho and slant are the
    estimates (rho = rho_uncorrected), the record says so, and the interval keeps its width."""
    args = [study["articles"], "--pairs", study["pairs"], "--embedder", "pixels", "--set", "embedder.size=8",
            "--splits", 1, "--bootstrap", 12, "--permutations", 0, "--seed", 3, "--no-plot"]
    on = _run(*args, "-o", tmp_path / "on")
    off = _run(*args, "--no-bias-correction", "-o", tmp_path / "off")
    assert on.exit_code == 0 and off.exit_code == 0, (on.output, off.output)
    rows_on = {r["politician"]: r for r in _csv(tmp_path / "on" / "rho.csv")}
    rows_off = {r["politician"]: r for r in _csv(tmp_path / "off" / "rho.csv")}
    for p, r in rows_off.items():
        assert float(r["rho"]) == float(r["rho_uncorrected"]) == pytest.approx(float(rows_on[p]["rho_uncorrected"]))
        width = float(r["ci_high"]) - float(r["ci_low"])
        assert width == pytest.approx(float(rows_on[p]["ci_high"]) - float(rows_on[p]["ci_low"]))
    assert float(rows_on["planted"]["rho"]) != float(rows_on["planted"]["rho_uncorrected"])
    rec_on = json.loads((tmp_path / "on" / "polarization.json").read_text())
    rec_off = json.loads((tmp_path / "off" / "polarization.json").read_text())
    assert rec_on["settings"]["bias_correction"] is True and rec_off["settings"]["bias_correction"] is False
    assert "bias estimate" in rec_on["ci"]["estimate"] and "bias estimate" not in rec_off["ci"]["estimate"]
    for r in _csv(tmp_path / "off" / "slant.csv"):
        assert float(r["slant"]) == float(r["slant_uncorrected"])
