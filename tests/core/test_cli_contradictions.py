"""Options that cannot go together are refused in one line with exit 2, before anything is loaded,
through the CLI on --preset tiny; one meaning per flag (--alpha per direction, --alphas a sweep);
and docs/cli.md lists every refused pair from the one table in code."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from counterface.cli import cli
from counterface.contradictions import CONTRADICTIONS

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def photo(tmp_path_factory):
    from PIL import Image

    folder = tmp_path_factory.mktemp("photo")
    p = folder / "p.png"
    Image.fromarray(np.full((32, 32, 3), 120, np.uint8)).save(p)
    return p


def _refused(args, tmp_path) -> str:
    out = tmp_path / "out"
    r = CliRunner().invoke(cli, [*map(str, args), "-o", str(out)])
    lines = [ln for ln in r.output.strip().splitlines() if ln.strip()]
    assert r.exit_code == 2, (args, r.exit_code, r.output)
    assert len(lines) == 1 and lines[0].startswith("error:"), r.output
    assert "Traceback" not in r.output and "internal error" not in r.output
    assert not out.exists() or not any(out.iterdir())  # nothing written
    return lines[0]


CASES = [
    # (command + options, words the one line must contain)
    (["batch", "{p}", "--pi1", "on", "--pi0", "off", "--alphas", "0,1,2"], ["--alphas", "ignore alpha"]),
    (["sweep", "{p}", "--pi1", "on", "--alphas", "0,1"], ["--alphas", "ignore alpha"]),
    (["pairs", "{p}", "--pi1", "on", "--alpha", "auto", "--target-score", "0.5"], ["--alpha auto", "never be applied"]),
    (["batch", "{p}", "--pi1", "on", "--alpha", "auto", "--target-score", "0.5"], ["--alpha auto", "never be applied"]),
    (["pairs", "{p}", "--pi1", "on", "--pi0", "off", "--alpha", "2"], ["--alpha", "never applied"]),
    (["pairs", "{p}", "--pi1", "on", "--distance", "1", "--distance", "2"], ["2 --distance values for 1 direction"]),
    (["batch", "{p}", "--pi0", "off", "--distance", "1", "--distance", "2", "--distance", "3"], ["3 --distance"]),
    (["edit", "{p}", "--reference", "{p}"], ["--reference without --face match"]),
    (["batch", "{p}", "--reference", "{p}"], ["--reference without --face match"]),
    (["batch", "{p}", "--references", "{d}", "--reference-column", "who"], ["--references without --face match"]),
    (["pairs", "{p}", "--match-threshold", "0.5"], ["--match-threshold without --face match"]),
    (["pairs", "{p}", "--pi1", "original"], ["--pi1 original", "photo itself"]),
    (["batch", "{p}", "--pi1", "original"], ["--pi1 original"]),
    (["pairs", "{p}", "--pi1", "negate", "--pi0", "negate"], ["same operator"]),
    (["pairs", "{p}", "--target-score", "0.5"], ["--target-score without --alpha auto"]),
    (["batch", "{p}", "--alpha", "1", "--alphas", "0,1"], ["--alpha and --alphas"]),
    (["pairs", "{p}", "--keep", "vector"], ["--keep vector", "also an edited direction"]),
]


@pytest.mark.parametrize("args,words", CASES, ids=[" ".join(c[0][:1] + c[0][2:]) for c in CASES])
def test_contradictory_options_are_refused_in_one_line(args, words, photo, tmp_path):
    line = _refused([a.format(p=photo, d=photo.parent) for a in args] + ["--preset", "tiny"], tmp_path)
    for w in words:
        assert w in line, line


@pytest.mark.parametrize("args,hint", [
    (["batch", "{p}", "--alpha=0,1,2"], "use --alphas 0,1,2"),
    (["batch", "{p}", "--alpha", "0", "--alpha", "1"], "use --alphas 0,1"),
    (["pairs", "{p}", "--alpha", "0,1"], "use --alphas 0,1"),
    (["edit", "{p}", "--alpha", "1", "--alpha", "2", "--alpha", "3"], "use --alphas 1,2,3"),
])
def test_the_old_sweep_spelling_says_what_to_type(args, hint, photo, tmp_path):
    line = _refused([a.format(p=photo) for a in args] + ["--preset", "tiny"], tmp_path)
    assert hint in line and "--alpha takes one value per direction" in line


def test_the_same_options_without_the_contradiction_are_accepted(photo, tmp_path):
    """The checks refuse the pairs, not the options: each alone passes validation."""
    from counterface.settings import EditSettings

    for kw in [dict(components={"pi1": "on", "pi0": "off"}),
               dict(alphas="0,1,2"),
               dict(components={"pi1": "on"}, distance=[1.0]),
               dict(edit={"face": "match", "reference": [str(photo)]}),
               dict(alpha=["auto"], target_score=0.5),
               dict(alpha=["1", "2"], components={"direction": ["smile", "age"]})]:
        kw.setdefault("components", {})
        EditSettings.resolve(preset="tiny", **kw)


def test_docs_list_every_refused_pair():
    text = (ROOT / "docs" / "cli.md").read_text()
    assert "## Options that cannot go together" in text
    for c in CONTRADICTIONS:
        assert c.options in text and c.why in text, c.options
