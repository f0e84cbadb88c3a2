"""Pivots are verified on reuse (issue 21): a stored pivot holding NaN, or one stored under another
face's key, is never reused: the face is tuned again and the row says why (``pivot_rejected``).
`--pivot FILE` gets the same checks (finite tensors, this photo's sha256)."""

from __future__ import annotations

import shutil

import pytest
import torch
from click.testing import CliRunner

from counterface import batch
from counterface.cli import cli
from counterface.imageio import write_bytes
from counterface.pivot import load_pivot, recorded_sha256, to_bytes, verify_pivot
from counterface.types import Pivot
from tests.helpers import synthetic_photos

FAKE = ["--preset", "fake", "--no-metrics"]


def invoke(args, code=0):
    r = CliRunner().invoke(cli, [str(a) for a in args])
    assert r.exit_code == code, (r.output, r.exception)
    assert "Traceback" not in r.output and "internal error" not in r.output
    return r


def rows(out, alpha):
    return sorted((r for r in batch.read_jsonl(out / "results.jsonl") if r["alpha"] == alpha), key=lambda r: r["key"])


def _poison(path, where: str):
    p = load_pivot(path)
    if where == "w":
        p.w[0, 0] = float("nan")
    else:
        name = sorted(p.tensors)[0]
        t = p.tensors[name].clone()
        t.view(-1)[0] = float("inf")
        p.tensors[name] = t
    write_bytes(path, to_bytes(p))


@pytest.mark.parametrize("where", ["w", "tensor"])
def test_a_nan_stored_pivot_is_never_reused(fakes, tmp_path, where):
    synthetic_photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    invoke(["batch", tmp_path / "in", "-o", out, *FAKE, "--alpha", "1"])
    (path,) = list((out / "pivots").rglob("*.safetensors"))
    _poison(path, where)
    invoke(["batch", tmp_path / "in", "-o", out, *FAKE, "--alpha", "2"])
    (row,) = rows(out, 2.0)
    assert row["pivot"] == "tuned" and "NaN or infinite" in row["pivot_rejected"]
    again = load_pivot(path)  # tuned again and overwritten: finite, and reused from now on
    assert verify_pivot(again) is None
    invoke(["batch", tmp_path / "in", "-o", out, *FAKE, "--alpha", "3"])
    (row,) = rows(out, 3.0)
    assert row["pivot"] == "reused" and "pivot_rejected" not in row


def test_a_pivot_stored_under_another_key_is_never_reused(fakes, tmp_path):
    synthetic_photos(tmp_path / "in", 2)
    out = tmp_path / "out"
    invoke(["batch", tmp_path / "in", "-o", out, *FAKE, "--alpha", "1"])
    a, b = sorted((out / "pivots").rglob("*.safetensors"))
    shutil.copyfile(a, b)  # b's place now holds a's pivot (another face's)
    invoke(["batch", tmp_path / "in", "-o", out, *FAKE, "--alpha", "2"])
    states = {r["pivot"]: r for r in rows(out, 2.0)}
    assert set(states) == {"reused", "tuned"}
    assert "another face" in states["tuned"]["pivot_rejected"]
    assert load_pivot(b).meta["store"]["key"] == b.name[: -len(".safetensors")]  # rewritten with its own key


def test_a_stored_pivot_from_another_photo_is_never_reused(fakes, tmp_path):
    """The key matches, but the recorded photo sha256 does not (a forged or stale file)."""
    synthetic_photos(tmp_path / "in", 1)
    out = tmp_path / "out"
    invoke(["batch", tmp_path / "in", "-o", out, *FAKE, "--alpha", "1"])
    (path,) = list((out / "pivots").rglob("*.safetensors"))
    p = load_pivot(path)
    assert recorded_sha256(p) == rows(out, 1.0)[0]["sha256"]
    p.meta["store"]["sha256"] = "0" * 64
    write_bytes(path, to_bytes(p))
    invoke(["batch", tmp_path / "in", "-o", out, *FAKE, "--alpha", "2"])
    (row,) = rows(out, 2.0)
    assert row["pivot"] == "tuned" and "another photo" in row["pivot_rejected"]


def _pivot(**meta):
    return Pivot(w=torch.zeros(4, 8), tensors={"a": torch.ones(3)}, generator={}, meta=meta)


def test_verify_pivot_reasons():
    good = _pivot(store={"key": "k" * 32, "sha256": "s" * 64})
    assert verify_pivot(good, key="k" * 32, photo_sha256="s" * 64) is None
    assert "another face" in verify_pivot(good, key="j" * 32)
    assert "another photo" in verify_pivot(good, photo_sha256="t" * 64)
    assert "records no key" in verify_pivot(_pivot(), key="k" * 32)
    assert "no photo sha256" in verify_pivot(_pivot(), photo_sha256="s" * 64)
    nan = _pivot()
    nan.tensors["a"][1] = float("nan")
    assert "'a'" in verify_pivot(nan)
    assert "latent" in verify_pivot(Pivot(w=torch.zeros(4, 8, dtype=torch.int64), tensors={}, generator={}, meta={}))


@pytest.fixture
def saved_pivot(fakes, tmp_path):
    (photo,) = synthetic_photos(tmp_path / "in", 1)
    target = tmp_path / "p.safetensors"
    invoke(["edit", photo, "--preset", "fake", "--save-pivot", target, "-o", tmp_path / "o0"])
    return photo, target


def test_pivot_file_with_nan_is_refused_in_one_line(saved_pivot, tmp_path):
    photo, target = saved_pivot
    invoke(["edit", photo, "--preset", "fake", "--pivot", target, "-o", tmp_path / "o1"])  # fine as saved
    _poison(target, "w")
    r = invoke(["edit", photo, "--preset", "fake", "--pivot", target, "-o", tmp_path / "o2"], code=2)
    assert r.output.strip().splitlines() == [f"error: --pivot {target} cannot be reused: its latent w holds NaN "
                                             "or infinite values"]
    assert not list((tmp_path / "o2").glob("*.png")) if (tmp_path / "o2").exists() else True


def test_pivot_file_from_another_photo_is_refused(saved_pivot, tmp_path):
    photo, target = saved_pivot
    (other,) = synthetic_photos(tmp_path / "other", 1, prefix="q", size=(64, 80))
    r = invoke(["pairs", other, "--preset", "fake", "--pivot", target, "-o", tmp_path / "o3"], code=2)
    assert "another photo" in r.output and len(r.output.strip().splitlines()) == 1


def test_pivots_given_a_run_folder_is_refused_with_a_hint(fakes, tmp_path):
    synthetic_photos(tmp_path / "in", 1)
    run_dir = tmp_path / "run"
    invoke(["batch", tmp_path / "in", "-o", run_dir, *FAKE])
    before = sorted(p for p in run_dir.rglob("*"))
    r = invoke(["batch", tmp_path / "in", "-o", tmp_path / "run2", *FAKE, "--pivots", run_dir], code=2)
    assert r.output.strip().splitlines() == [f"error: --pivots {run_dir} is a batch output folder (it holds "
                                             f"results.jsonl), not a pivot store; did you mean {run_dir / 'pivots'}?"]
    assert sorted(p for p in run_dir.rglob("*")) == before  # no new store inside the old run
    invoke(["batch", tmp_path / "in", "-o", tmp_path / "run2", *FAKE, "--pivots", run_dir / "pivots"])
    assert {r["pivot"] for r in batch.read_jsonl(tmp_path / "run2" / "results.jsonl")} == {"reused"}
