"""`counterface weights ...` through the CLI (CliRunner), with a local HTTP server as the only source."""

from __future__ import annotations

import hashlib
import json

import pytest
from click.testing import CliRunner

from counterface import weights
from counterface.cli import cli

from ._weights_server import FileServer, closed_port, isolate

DATA = b"weights!" * 500
SHA = hashlib.sha256(DATA).hexdigest()


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    isolate(tmp_path, monkeypatch)
    monkeypatch.setattr(weights.registry, "_hook_specs", dict)  # only the specs each test registers
    weights.reset()
    yield
    weights.reset()


@pytest.fixture
def server():
    srv = FileServer({"/a.bin": DATA, "/b.bin": b"B" * 100}).start()
    yield srv
    srv.stop()


@pytest.fixture
def two(server):
    a = weights.WeightsSpec("cli-a.bin", "test file A", urls=(server.url("/a.bin"),), size=len(DATA), sha256=SHA,
                            sha256_verified=True, licence="Licence-A (non-commercial)")
    b = weights.WeightsSpec("cli-b.bin", "test file B", urls=(f"http://127.0.0.1:{closed_port()}/b.bin",),
                            licence="Licence-B")
    weights.register_spec(a)
    weights.register_spec(b)
    return a, b


def run(*args, **env):
    return CliRunner().invoke(cli, ["weights", *args], env=env or None)


def test_list_shows_state_licence_and_path(two):
    a, b = two
    res = run("list")
    assert res.exit_code == 0, res.output
    line_a = next(ln for ln in res.stdout.splitlines() if ln.startswith("cli-a.bin"))
    assert "missing" in line_a and "Licence-A (non-commercial)" in line_a and str(weights.target(a)) in line_a
    res = run("download", "cli-a.bin")
    assert res.exit_code == 0 and str(weights.target(a)) in res.stdout
    line_a = next(ln for ln in run("list").stdout.splitlines() if ln.startswith("cli-a.bin"))
    assert "verified" in line_a


def test_list_json(two):
    res = run("list", "--json")
    assert res.exit_code == 0
    files = {f["name"]: f for f in json.loads(res.stdout)["files"]}
    assert files["cli-a.bin"]["state"] == "missing"
    assert files["cli-a.bin"]["licence"] == "Licence-A (non-commercial)"
    assert files["cli-a.bin"]["expected_sha256"] == SHA and files["cli-a.bin"]["sha256_verified"] is True
    assert files["cli-b.bin"]["sources"][0].endswith("/b.bin")


def test_download_then_path(two, server):
    a, _ = two
    res = run("path", "cli-a.bin")
    assert res.exit_code == 4 and res.stdout == ""
    assert str(weights.target(a)) in res.stderr and "counterface weights import cli-a.bin FILE" in res.stderr
    assert run("download", "cli-a.bin").exit_code == 0
    res = run("path", "cli-a.bin")
    assert res.exit_code == 0 and res.stdout.strip() == str(weights.target(a))
    assert weights.target(a).read_bytes() == DATA
    assert len(server.log) == 1


def test_download_failure_is_one_line_exit_4(two):
    _, b = two
    res = run("download", "cli-b.bin")
    assert res.exit_code == 4
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: ") and "cli-b.bin" in lines[0]
    assert str(weights.target(b)) in lines[0] and "Traceback" not in res.output


def test_offline_download_names_file_source_and_path(two, server):
    a, _ = two
    res = run("download", "cli-a.bin", COUNTERFACE_OFFLINE="1")
    assert res.exit_code == 4
    assert server.url("/a.bin") in res.stderr and str(weights.target(a)) in res.stderr
    assert server.log == []


def test_download_all_reports_failures_and_continues(two):
    a, _ = two
    res = run("download", "all")
    assert res.exit_code == 4
    assert weights.target(a).is_file()  # A downloaded although B failed
    assert "cli-b.bin" in res.stderr and "1 file(s) could not be downloaded" in res.stderr


def test_unknown_name_exit_4(two):
    res = run("download", "cli-c.bin")
    assert res.exit_code == 4 and "unknown weights file" in res.stderr


def test_import_and_verify(two, tmp_path):
    a, b = two
    good = tmp_path / "good.bin"
    good.write_bytes(DATA)
    res = run("import", "cli-a.bin", str(good))
    assert res.exit_code == 0 and f"sha256 {SHA} (verified)" in res.stdout
    res = run("verify")
    assert res.exit_code == 0 and "cli-a.bin: verified" in res.stdout and "cli-b.bin" not in res.stdout
    # named but missing -> non-zero
    assert run("verify", "cli-b.bin").exit_code == 4
    # unknown hash: the real one is printed
    other = tmp_path / "b.bin"
    other.write_bytes(b"hello")
    res = run("import", "cli-b.bin", str(other))
    assert res.exit_code == 0 and hashlib.sha256(b"hello").hexdigest() in res.stdout
    assert "no published hash" in res.stderr


def test_import_bad_hash_exit_4(two, tmp_path):
    a, _ = two
    bad = tmp_path / "bad.bin"
    bad.write_bytes(b"x" * len(DATA))
    res = run("import", "cli-a.bin", str(bad))
    assert res.exit_code == 4 and "nothing was imported" in res.stderr
    assert not weights.target(a).exists()


def test_verify_detects_corruption(two, tmp_path):
    a, _ = two
    t = weights.target(a)
    t.parent.mkdir(parents=True)
    t.write_bytes(b"y" * len(DATA))
    res = run("verify")
    assert res.exit_code == 4 and "cli-a.bin: hash-mismatch" in res.stdout
    assert "failed verification: cli-a.bin" in res.stderr
    res = run("verify", "--json", "cli-a.bin")
    assert json.loads(res.stdout)[0]["state"] == "hash-mismatch"
    # --force replaces the bad copy
    res = run("download", "--force", "cli-a.bin")
    assert res.exit_code == 0 and t.read_bytes() == DATA
    assert run("verify", "cli-a.bin").exit_code == 0


def test_weights_subcommands_are_not_top_level():
    names = cli.list_commands(None)
    assert "weights" in names and "list" not in names and "verify" not in names
