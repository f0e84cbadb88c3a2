"""Re-edits from stored pivots rendered together (counterface.reedit): on the CPU the same files as
one output at a time, every row 'reused', and the device blend forced gives the same pairs within
its tolerance."""

from __future__ import annotations


import pytest

from counterface import batch
from counterface.pipeline import Pipeline
from counterface.settings import EditSettings
from tests.helpers import pair_digests, synthetic_photos





def test_reused_pivots_render_together_and_match_one_at_a_time(fake_cfg, tmp_path, monkeypatch):
    from counterface import reedit

    items = batch.read_manifest(synthetic_photos(tmp_path / "in", 2, prefix="photo")[0].parent)
    first = tmp_path / "first"
    batch.Runner(Pipeline(fake_cfg), first).run(items)  # tunes and stores the pivots
    pipe = Pipeline(EditSettings.from_config(fake_cfg, alphas=[-1.0, 0.5, 2.0]))
    calls = []
    real = reedit.render_reused
    monkeypatch.setattr(reedit, "render_reused", lambda *a, **k: calls.append(k["alphas"]) or real(*a, **k))
    outs = {}
    for together in (True, False):
        r = batch.Runner(pipe, tmp_path / str(together), pivots=first / "pivots")
        r.batch_reedits = together
        summary = r.run(items)
        assert summary.faces == 6
        rows = batch.load_rows(tmp_path / str(together))
        assert {row["pivot"] for row in rows} == {"reused"}
        outs[together] = (pair_digests(tmp_path / str(together)), sorted((row["key"], row["alpha"], row["z1"]) for row in rows))
    assert calls == [[-1.0, 0.5, 2.0]] * 2  # once per face, every alpha
    assert outs[True] == outs[False] and len(outs[True][0]) == 12
    side = (tmp_path / "True" / rows[0]["z1_sidecar"]).read_text()
    assert '"synthesize"' in side and '"blend"' in side


def test_render_reused_refuses_auto(fake_cfg):
    from counterface import reedit

    with pytest.raises(ValueError):
        reedit.render_reused(None, None, None, None, roles=("pi1",), alphas=["auto"])


@pytest.mark.slow
def test_tiny_reused_pivot_renders_the_same_and_the_device_blend_stays_within_tolerance(photos):
    import numpy as np

    from counterface import flow, reedit

    settings = EditSettings.resolve(preset="tiny", sets=["tuner.latent_steps=2", "tuner.tune_steps=2"])
    pipe = Pipeline(settings)
    pipe.prepare()
    face_result = flow.process_photo(photos / "astronaut_small.jpg", pipeline=pipe, alphas=[1.0])[0]
    photo, face, pivot = face_result.photo, face_result.face, face_result.pivot
    alphas = [-1.0, 1.0]
    one = flow.render_face(pipe, photo, face, pivot, roles=("pi1", "pi0"), alphas=alphas)
    together = reedit.render_reused(pipe, photo, face, pivot, roles=("pi1", "pi0"), alphas=alphas)
    for a, b in zip(one, together):
        for role in ("z1", "z0"):
            np.testing.assert_array_equal(a.results[role].image, b.results[role].image)
            np.testing.assert_array_equal(a.results[role].crop, b.results[role].crop)
    blender = pipe.component("blender")
    blender.on_device = "always"  # the torch paste-back, as on CUDA
    forced = reedit.render_reused(pipe, photo, face, pivot, roles=("pi1",), alphas=[1.0])
    ref = one[1].results["z1"].image.astype(int)
    diff = np.abs(forced[0].results["z1"].image.astype(int) - ref)
    assert diff.max() <= 2
    changed = np.any(diff > 0, axis=2)
    mask = blender.mask(photo.image.shape[:2], face)
    assert not changed[mask == 0].any()
