"""Result tables are read strictly (issue 21): a corrupted results.jsonl line, a row with `key: null`
or `face: "zero"` is reported (line number, why) and left out by the review page, `evaluate`,
`figures` and polarization, and their counts say so; manifests stay strict (one error line)."""

from __future__ import annotations

import json
import warnings

import pytest
from click.testing import CliRunner
from hypothesis import given
from hypothesis import strategies as st

from counterface import batch, rows
from counterface.cli import cli
from counterface.errors import ConfigError
from tests.helpers import synthetic_photos

FAKE = ["--preset", "fake"]


def run(args, code=0):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == code, (r.output, r.exception)
    assert "Traceback" not in r.output and "internal error" not in r.output, r.output
    return r


GOOD = {"key": "k", "sha256": "s", "job": "j", "face": 0, "alpha": 1.0, "z1": "a.png", "z0": "b.png"}


@pytest.mark.parametrize("change, why", [
    ({"key": None}, "key is null"), ({"key": ""}, "key is"), ({"face": "zero"}, 'face is "zero"'),
    ({"face": -1}, "face is -1"), ({"face": True}, "face is true"), ({"alpha": None}, "alpha is null"),
    ({"alpha": "1"}, 'alpha is "1"'), ({"alpha": float("nan")}, "alpha is nan"), ({"job": 3}, "job is 3"),
    ({"faces": 0}, "faces is 0"), ({"z1": None}, "z1 is null"),
])
def test_result_row_validator(change, why):
    assert rows.result_row_problem(GOOD) is None
    problem = rows.result_row_problem({**GOOD, **change})
    assert problem is not None and why in problem, problem


def test_jsonl_rows_is_strict_for_manifests_and_reports_for_tables():
    text = '{"key": "a", "face": 0, "alpha": 1}\n{"key": nul\n[1]\n\n{"key": null, "face": 0, "alpha": 1}\n'
    with pytest.raises(ConfigError, match=r"m.jsonl:2: invalid JSON"):
        list(rows.jsonl_rows(text, "m.jsonl"))
    bad: list = []
    got = list(rows.jsonl_rows(text, "r.jsonl", validate=rows.result_row_problem, on_bad=bad.append))
    assert [n for n, _ in got] == [1]
    assert [(b.line, b.why.split(" (")[0].split(",")[0]) for b in bad] == [
        (2, "invalid JSON"), (3, "not a JSON object"), (5, "key is null")]
    assert str(bad[0]).startswith("r.jsonl:2: malformed row left out")


@given(st.lists(st.one_of(st.dictionaries(st.sampled_from(["key", "face", "alpha", "job", "z1"]),
                                          st.one_of(st.none(), st.integers(-2, 2), st.text(max_size=3),
                                                    st.floats(allow_nan=True), st.booleans())),
                          st.text(max_size=20)), max_size=12))
def test_every_line_is_either_a_valid_row_or_reported(lines):
    text = "\n".join(json.dumps(x) if isinstance(x, dict) else x.replace("\n", " ") for x in lines)
    bad: list = []
    got = list(rows.jsonl_rows(text, "t", validate=rows.result_row_problem, on_bad=bad.append))
    nonblank = [n for n, line in enumerate(text.split("\n"), 1) if line.strip()]
    assert sorted([n for n, _ in got] + [b.line for b in bad]) == nonblank
    for _, row in got:
        assert isinstance(row["key"], str) and row["key"] and isinstance(row["face"], int) and row["face"] >= 0


def test_outside_the_cli_a_malformed_row_is_a_warning(tmp_path):
    p = tmp_path / "results.jsonl"
    p.write_text(json.dumps(GOOD) + "\n" + json.dumps({**GOOD, "key": None}) + "\n")
    with pytest.warns(rows.MalformedRowWarning, match="results.jsonl:2"):
        assert batch.read_jsonl(p) == [GOOD]


@pytest.fixture
def corrupted(fakes, tmp_path):
    """A finished batch of two photos, then three malformed lines appended to results.jsonl."""
    synthetic_photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    run(["batch", tmp_path / "in", "-o", out, *FAKE, "--no-metrics"])
    good = batch.read_jsonl(out / "results.jsonl")
    assert len(good) == 2
    with open(out / "results.jsonl", "a") as f:
        f.write(json.dumps({**good[0], "key": None}) + "\n")  # line 3
        f.write(json.dumps({**good[1], "face": "zero"}) + "\n")  # line 4
        f.write(json.dumps(good[0])[:40] + "\n")  # line 5: cut by a crash
    return out


def _reported(r, path):
    err = r.stderr
    for line, why in ((3, "key is null"), (4, 'face is "zero"'), (5, "invalid JSON")):
        assert f"{path}:{line}: malformed row left out ({why}" in err, err
        assert err.count(f"{path}:{line}:") == 1, err  # once, however often the table is read
    assert "3 malformed row(s) left out" in err, err


def test_evaluate_reports_and_leaves_out_malformed_rows(corrupted):
    r = run(["evaluate", corrupted, "--lpips", "none", "--identity-independent", "none", "--json"])
    _reported(r, corrupted / "results.jsonl")
    summary = json.loads(r.stdout)
    assert sum(g["rows"] for g in summary["groups"]) == 2
    assert all(g.get("alpha") == 1.0 and g.get("job") is not None for g in summary["groups"]
               if "job" in g) and all(g.get("alpha") == 1.0 for g in summary["groups"])
    table = (corrupted / "results.csv").read_text().splitlines()
    assert len(table) == 3  # header + the two valid rows


def test_report_reports_and_leaves_out_malformed_rows(corrupted):
    r = run(["report", corrupted, "--no-figures"])
    _reported(r, corrupted / "results.jsonl")
    page = (corrupted / "report" / "rows.js").read_text()
    data = json.loads(page[page.index("{"):page.rindex("}") + 1])
    assert len(data["rows"]) == 2


def test_figures_report_malformed_rows(corrupted):
    pytest.importorskip("matplotlib")
    r = run(["figures", corrupted])
    _reported(r, corrupted / "results.jsonl")


def test_polarization_pairs_from_a_run_report_malformed_rows(corrupted):
    """polarization reads a batch folder with its own strict reader (polarization/pairs.py)."""
    from counterface.polarization import pairs

    found = pairs.read(corrupted)
    assert len(found.pairs) == 2
    assert sorted(int(m.split(":")[1]) for m in found.malformed) == [3, 4, 5], found.malformed


def test_the_resume_index_ignores_malformed_rows(corrupted, tmp_path):
    """A rerun neither crashes on `faces: "x"` nor counts a malformed row as done."""
    with open(corrupted / "results.jsonl", "a") as f:
        f.write(json.dumps({"key": "zzz", "sha256": "s", "job": "j", "face": 0, "alpha": 1.0, "faces": "x"}) + "\n")
    r = run(["batch", corrupted.parent / "in", "-o", corrupted, *FAKE, "--no-metrics"])
    assert "2 already done" in r.stdout and "faces is" in r.stderr


def test_a_line_of_invalid_utf8_is_reported_with_its_number(tmp_path):
    p = tmp_path / "results.jsonl"
    p.write_bytes(json.dumps(GOOD).encode() + b"\n\xff\xfe{}\n" + json.dumps(GOOD).encode() + b"\r\n")
    with rows.reporting() as report:
        assert batch.read_jsonl(p) == [GOOD, GOOD]
    assert [(b.line, b.why) for b in report.rows.values()] == [(2, "not UTF-8 text")]


def test_an_alpha_per_direction_is_a_valid_row():
    assert rows.result_row_problem({**GOOD, "alpha": [1.0, -0.5]}) is None
    assert rows.result_row_problem({**GOOD, "alpha": "1,-0.5"}) is None
    assert rows.result_row_problem({**GOOD, "alpha": "1,x"}) is not None
    assert rows.result_row_problem({**GOOD, "alpha": "nan"}) is not None
    assert rows.result_row_problem({**GOOD, "alpha": []}) is not None
    assert rows.result_row_problem({**GOOD, "alpha": [1.0, None]}) is not None
