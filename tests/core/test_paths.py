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
