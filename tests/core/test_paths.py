"""counterface.paths: an output that is an input (by path, link or hard link) is refused."""

import os

import pytest

from counterface.errors import OutputError
from counterface.paths import check_outputs, same_file


def test_same_path_link_and_hard_link_are_the_same_file(tmp_path):
    a = tmp_path / "a.csv"
    a.write_text("x")
    (tmp_path / "link.csv").symlink_to(a)
    os.link(a, tmp_path / "hard.csv")
    assert same_file(a, tmp_path / "sub" / ".." / "a.csv")
    assert same_file(a, tmp_path / "link.csv")
    assert same_file(a, tmp_path / "hard.csv")
    assert not same_file(a, tmp_path / "b.csv")


def test_check_outputs_refuses_an_input_and_allows_its_folder(tmp_path):
    a = tmp_path / "articles.csv"
    a.write_text("x")
    check_outputs([tmp_path / "rho.csv", None], [a, None])  # the input's folder is fine
    with pytest.raises(OutputError, match="refusing to overwrite an input file"):
        check_outputs([tmp_path / "." / "articles.csv"], [a])
    assert a.read_text() == "x"


def test_check_folder_outputs_patterns_links_and_hard_links(tmp_path):
    import os

    from counterface.errors import OutputError
    from counterface.paths import check_folder_outputs

    out = tmp_path / "out"
    out.mkdir()
    (out / "results.csv").write_text("path\n")
    (out / "results.shard-1-of-2.jsonl").write_text("")
    elsewhere = tmp_path / "m.csv"
    elsewhere.write_text("path\n")
    names = ("results*.jsonl", "results.csv")
    check_folder_outputs(out, names, [elsewhere, out / "other.csv"])  # other files in OUT are fine
    for bad in (out / "results.csv", out / "results.shard-1-of-2.jsonl", out / "results.jsonl"):
        with pytest.raises(OutputError):
            check_folder_outputs(out, names, [elsewhere, bad])
    link = tmp_path / "link.csv"
    link.symlink_to(out / "results.csv")
    hard = tmp_path / "hard.csv"
    os.link(out / "results.csv", hard)
    for bad in (link, hard):
        with pytest.raises(OutputError) as ei:
            check_folder_outputs(out, names, [bad])
        assert str(bad) in str(ei.value)
