"""The batch's writer wiring: pairs encoded on a thread pool, the same bytes as a direct write, and a
row recorded only once its files are on disk (a photo whose files fail gets a failure, not a row)."""

from __future__ import annotations

import threading

import pytest

from counterface import batch, config, imageio
from counterface.pipeline import Pipeline
from tests.helpers import pair_digests, synthetic_photos





def runner(cfg, out, use_writer):
    r = batch.Runner(Pipeline(cfg), out)
    r.use_writer = use_writer
    return r


def test_a_lossless_batch_uses_the_writer_and_a_lossy_one_does_not(fake_cfg, tmp_path):
    assert runner(fake_cfg, tmp_path / "a", True).use_writer is True
    assert batch.Runner(Pipeline(fake_cfg), tmp_path / "b", image_format="jpg").use_writer is False


def test_the_writer_writes_the_same_pairs_as_a_direct_write(fake_cfg, tmp_path):
    items = batch.read_manifest(synthetic_photos(tmp_path / "in", 3, prefix="photo")[0].parent)
    with_w, without = tmp_path / "w", tmp_path / "d"
    s1 = runner(fake_cfg, with_w, True).run(items)
    s2 = runner(fake_cfg, without, False).run(items)
    assert (s1.done, s1.faces) == (s2.done, s2.faces) == (3, 3)
    assert pair_digests(with_w) == pair_digests(without) and len(pair_digests(with_w)) == 6
    rows_w = sorted(batch.load_rows(with_w), key=lambda r: r["key"])
    rows_d = sorted(batch.load_rows(without), key=lambda r: r["key"])
    assert [(r["key"], r["z1"], r["z0"]) for r in rows_w] == [(r["key"], r["z1"], r["z0"]) for r in rows_d]


def test_a_row_never_precedes_its_files_and_a_failed_write_is_a_failure(fake_cfg, tmp_path, monkeypatch):
    items = batch.read_manifest(synthetic_photos(tmp_path / "in", 3, prefix="photo")[0].parent)
    out = tmp_path / "out"
    real = imageio.write_image
    seen = []

    r = runner(fake_cfg, out, True)
    appended = r.results.append

    def checking_append(rows):
        for row in rows:  # every file a row names exists when the row is appended
            for role in ("z1", "z0", "z1_sidecar", "z0_sidecar"):
                assert (out / row[role]).is_file(), row[role]
            seen.append(row["key"])
        return appended(rows)

    monkeypatch.setattr(r.results, "append", checking_append)
    # photo1's images fail to write: the writer encodes through imageio.write_image
    photo1 = {batch.output_stem(it.key, imageio.file_sha256(it.path), r.job) for it in items if it.key == "photo1.png"}

    def writer_image(path, image, **kw):
        if any(s in str(path) for s in photo1):
            raise OSError("disk on fire")
        threading.Event().wait(0.05)
        return real(path, image, **kw)

    monkeypatch.setattr(imageio, "write_image", writer_image)
    summary = r.run(items)
    assert sorted(seen) == ["photo0.png", "photo2.png"]
    assert (summary.done, summary.failed) == (2, 1)
    fails = batch.read_jsonl(out / "failures.jsonl")
    assert [(f["key"], f["reason"], f["stage"]) for f in fails] == [("photo1.png", "error", "write")]
    assert "disk on fire" in fails[0]["message"]
    assert {row["key"] for row in batch.load_rows(out)} == {"photo0.png", "photo2.png"}
    # a rerun retries the failed photo (reason 'error') and writes it this time
    monkeypatch.setattr(imageio, "write_image", real)
    summary2 = runner(fake_cfg, out, True).run(items)
    assert (summary2.done, summary2.skipped) == (1, 2)
    assert {row["key"] for row in batch.load_rows(out)} == {f"photo{i}.png" for i in range(3)}


@pytest.mark.slow
def test_tiny_pairs_are_byte_identical_with_and_without_the_writer(photos, tmp_path):
    cfg = config.resolve(preset="tiny", sets=["tuner.latent_steps=2", "tuner.tune_steps=2"])
    items = [batch.Item("a.jpg", photos / "astronaut_small.jpg")]
    pipe = Pipeline(cfg)
    runs = {}
    for use in (True, False):
        r = batch.Runner(pipe, tmp_path / str(use), pivots=False)
        r.use_writer = use
        assert r.run(items).faces >= 1
        runs[use] = pair_digests(tmp_path / str(use))
    assert runs[True] == runs[False] and runs[True]
