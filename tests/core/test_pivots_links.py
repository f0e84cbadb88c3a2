"""`counterface pivots list|prune` never follow links out of the store (issue 21): a symlinked folder
or file is skipped and reported, and nothing outside the store is ever removed."""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from counterface.batch import pivots as pv
from counterface.cli import cli

SUFFIX = pv.SUFFIX


def _tree(folder: Path) -> dict[str, str]:
    """sha256 of every file below ``folder`` (links not followed)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file() and not p.is_symlink()}


def _store(tmp_path: Path) -> tuple[Path, Path, list[Path]]:
    """A store with two real pivots, a symlinked config folder, a symlinked XX folder and symlinked
    files, all pointing at ``outside/`` (which holds .safetensors files of its own)."""
    store, outside = tmp_path / "store", tmp_path / "outside"
    real = store / "aaaa" / "ab"
    real.mkdir(parents=True)
    own = []
    for k in ("ab01", "ab02"):
        p = real / f"{k}{SUFFIX}"
        p.write_bytes(os.urandom(64))
        own.append(p)
    (outside / "xy").mkdir(parents=True)
    for k in ("victim1", "victim2"):
        (outside / f"{k}{SUFFIX}").write_bytes(os.urandom(128))
        (outside / "xy" / f"{k}{SUFFIX}").write_bytes(os.urandom(128))
    (outside / "config.json").write_text(json.dumps({"secret": 1}))
    (store / "linkcfg").symlink_to(outside, target_is_directory=True)  # config folder -> outside
    (store / "aaaa" / "xy").symlink_to(outside / "xy", target_is_directory=True)  # XX folder -> outside
    (real / f"victim1{SUFFIX}").symlink_to(outside / f"victim1{SUFFIX}")  # file -> outside
    (real / f"ab99{SUFFIX}").symlink_to(outside / f"victim2{SUFFIX}")
    return store, outside, own


def test_scan_skips_and_reports_every_link(tmp_path):
    store, _, own = _store(tmp_path)
    skipped: list[Path] = []
    entries = list(pv.scan(store, skipped))
    assert sorted(e.path for e in entries) == sorted(own)
    assert sorted(p.name for p in skipped) == sorted(["linkcfg", "xy", f"victim1{SUFFIX}", f"ab99{SUFFIX}"])


@pytest.mark.parametrize("how", [["--older-than", "0s"], ["--max-size", "0"], ["--config", "linkcfg"],
                                 ["--key", "victim1"], ["--key", "victim2"], ["--config", "aaaa"]])
def test_prune_removes_nothing_outside_the_store(tmp_path, how):
    store, outside, own = _store(tmp_path)
    before = _tree(outside)
    old = time.time() - 86400
    for p in own:
        os.utime(p, (old, old))
    r = CliRunner().invoke(cli, ["pivots", "prune", str(store), *how])
    assert r.exit_code == 0, r.output
    assert _tree(outside) == before  # nothing outside removed or changed
    assert all(p.is_symlink() for p in (store / "linkcfg", store / "aaaa" / "xy"))  # links left alone
    assert "skipped link" in r.output and "never followed" in r.output
    if how[0] in ("--older-than", "--max-size") or how == ["--config", "aaaa"]:
        assert not any(p.exists() for p in own)  # the store's own pivots are pruned
        assert "removed 2 pivot(s)" in r.output


def test_list_does_not_follow_links(tmp_path):
    store, _, _ = _store(tmp_path)
    r = CliRunner().invoke(cli, ["pivots", "list", str(store), "--json"])
    assert r.exit_code == 0, r.output
    info = json.loads(r.stdout)
    assert info["count"] == 2 and set(info["configs"]) == {"aaaa"}
    assert len(info["skipped_links"]) == 4
    assert "skipped link" in r.stderr


def test_remove_inside_refuses_a_folder_swapped_for_a_link(tmp_path):
    """The removal itself walks down with O_NOFOLLOW: a folder replaced by a link after the scan
    does not redirect it outside."""
    store, outside, own = _store(tmp_path)
    (entry,) = [e for e in pv.scan(store) if e.key == "ab01"]
    folder = store / "aaaa"
    folder.rename(tmp_path / "moved")
    (outside / "ab").mkdir()
    victim = outside / "ab" / f"ab01{SUFFIX}"
    victim.write_bytes(b"keep me")
    folder.symlink_to(outside, target_is_directory=True)
    assert pv.remove_inside(store, entry.path) is False
    assert victim.read_bytes() == b"keep me"


def test_a_linked_pivots_folder_in_a_run_is_refused(tmp_path):
    store, _, _ = _store(tmp_path)
    run = tmp_path / "run"
    run.mkdir()
    (run / "pivots").symlink_to(store, target_is_directory=True)
    r = CliRunner().invoke(cli, ["pivots", "prune", str(run), "--older-than", "0s"])
    assert r.exit_code == 2 and "is a link" in r.output
    assert len(r.output.strip().splitlines()) == 1
