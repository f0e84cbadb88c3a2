"""Figure 3 checked in the correctness review: units on the axes, a note for an empty panel, one line
per image and configuration (each test failed before its fix)."""

from __future__ import annotations

import json

import pytest

from counterface import figures


def _rows(out, rows):
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))


def _draw(monkeypatch, out):
    pytest.importorskip("matplotlib")
    drawn = {}
    monkeypatch.setattr(figures, "_save", lambda fig, target: drawn.setdefault("fig", fig))
    figures.figure3(out, out / "figure3.png")
    return drawn["fig"]


def _row(key, alpha, job="j", sha="s", **metrics):
    return {"key": key, "sha256": sha, "job": job, "face": 0, "alpha": alpha, **metrics}


def test_one_image_with_every_score_missing_gets_units_and_a_note(monkeypatch, tmp_path):
    _rows(tmp_path, [_row("a", a, identity=1 - abs(a) / 10, score_z1=None, scorer="smile") for a in (-1.0, 0.0, 1.0)])
    fig = _draw(monkeypatch, tmp_path)
    score, ident = fig.axes[:2]
    assert "smile's scale" in score.get_ylabel() and "cosine" in ident.get_ylabel()
    assert "(smile)" in score.get_title()
    assert all(ax.get_xlabel() for ax in (score, ident))
    notes = " ".join(t.get_text() for t in score.texts)
    assert "no attribute score" in notes.lower()
    assert len(ident.lines) >= 2  # the face's line and the median (alpha = 0 included)
    assert 0.0 in set(ident.lines[-1].get_xdata())


def test_each_line_is_one_image_of_one_configuration(monkeypatch, tmp_path):
    """Rows of another configuration (a rerun into the same folder) or of a replaced photo must not
    be spliced into one face's line nor counted as faces of their own."""
    rows = [_row("a", a, identity=0.9, score_z1=1.0, scorer='smile') for a in (0.0, 1.0)]
    rows += [_row("a", 1.0, sha="old", identity=0.1, score_z1=9.0, scorer='smile')]  # the photo before it was replaced
    rows = rows[2:] + rows[:2]  # the replaced version came first
    rows += [_row("b", a, job="other", identity=0.5, score_z1=5.0, scorer='smile') for a in (0.0, 1.0)]
    _rows(tmp_path, rows)
    (tmp_path / "batch.json").write_text(json.dumps({"job": "j"}))
    fig = _draw(monkeypatch, tmp_path)
    ident = fig.axes[1]
    ys = sorted({float(y) for line in ident.lines for y in line.get_ydata()})
    assert ys == [0.9]


def test_an_attribute_without_a_scorer_gets_no_score_panel_and_several_get_one_each(monkeypatch, tmp_path):
    _rows(tmp_path / "none", [_row("a", a, identity=0.9) for a in (0.0, 1.0)])
    assert [ax.get_title() for ax in _draw(monkeypatch, tmp_path / "none").axes] == ["identity similarity to Z"]
    rows = [_row("a", a, identity=0.9, smile_score_z1=a, smile_scorer="smile", glasses_score_z1=-a,
                 glasses_scorer="g") for a in (0.0, 1.0)]
    _rows(tmp_path / "two", rows)
    titles = [ax.get_title() for ax in _draw(monkeypatch, tmp_path / "two").axes]
    assert titles == ["smile score of pi_1 (smile)", "glasses score of pi_1 (g)", "identity similarity to Z"]
