"""The fast CUDA path against the exact one (skipped without CUDA; benchmarks/gpu_check.sh runs it):
graph replay of the tuning steps == the eager steps, the fused up-sampling convolution and the plain
modulated convolution == the exact kernels, the default settings within the stated drift."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from counterface import config as config_mod
from counterface import testing
from counterface.imageio import read_image
from counterface.pipeline import Pipeline
from counterface_nets import stylegan2

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")]

STEPS = {"latent_steps": 12, "tune_steps": 12}


@pytest.fixture(autouse=True)
def fakes():
    from counterface import registry

    testing.install()
    yield
    testing.uninstall()
    registry.reset()


def tiny(precision="auto", deterministic="auto", **tuner):
    cfg = config_mod.resolve(preset="tiny", edit={"device": "cuda", "precision": precision,
                                                  "deterministic": deterministic})
    cfg["aligner"] = {"name": "fake", "size": 64}
    cfg["tuner"].update(STEPS, **tuner)
    return Pipeline.from_config(cfg)


@pytest.fixture(scope="module")
def images(photos):
    base = read_image(photos / "astronaut.jpg")
    return [np.ascontiguousarray(np.roll(base, 9 * i, axis=1)) for i in range(3)]


def assert_same_pivots(graphed, eager, precision):
    """Pivots tuned through graph replay equal the eager loop's: steps, latents and tuned tensors."""
    tol = dict(rtol=2e-3, atol=2e-4) if precision == "fp32" else dict(rtol=2e-2, atol=2e-3)
    for g, e in zip(graphed, eager):
        assert g.meta["steps"] == e.meta["steps"]
        torch.testing.assert_close(g.w, e.w, **tol)
        for n in e.tensors:
            torch.testing.assert_close(g.tensors[n], e.tensors[n], **tol)


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_graph_replay_equals_eager_steps(images, precision):
    """Same settings (not deterministic), graphs on vs off: same steps, same pivots within float
    rounding, for several faces through one captured step per stage."""
    out = {}
    for mode in ("on", "off"):
        pipe = tiny(precision, False, graphs=mode, lpips_threshold=0.0)
        faces = [pipe.faces(img)[0] for img in images]
        out[mode] = [pipe.pivot(f)[0] for f in faces]
        tuner = pipe.component("tuner")
        if mode == "on":
            assert out[mode][0].meta["graphs"] == {"refine": "graph", "tune": "graph"}, out[mode][0].meta["graphs"]
            assert len(tuner._graph_cache) == 2  # captured once, replayed for every face
    assert_same_pivots(out["on"], out["off"], precision)


@pytest.mark.parametrize("precision", ["fp32", "tf32"])
def test_batched_graph_replay_equals_eager_batched_steps(images, precision):
    """tune_many (--tune-batch) through the captured B-face steps against its eager loop on CUDA."""
    out = {}
    for mode in ("on", "off"):
        pipe = tiny(precision, False, graphs=mode, lpips_threshold=0.0)
        faces = [pipe.faces(img)[0] for img in images]
        out[mode] = pipe.tune_many(faces, [pipe.invert(f) for f in faces])
        if mode == "on":
            assert out[mode][0].meta["graphs"] == {"refine": "graph", "tune": "graph"}, out[mode][0].meta["graphs"]
    assert_same_pivots(out["on"], out["off"], precision)


def test_graph_early_stop_gives_the_eager_step_count(images):
    probe = tiny("fp32", False, graphs="off", lpips_threshold=0.0)
    face = probe.faces(images[0])[0]
    m = probe.pivot(face)[0].meta
    threshold = (m["losses_start"]["tune"]["lpips"] + m["losses"]["tune"]["lpips"]) / 2
    res = {}
    for mode in ("on", "off"):
        pipe = tiny("fp32", False, graphs=mode, lpips_threshold=threshold, graph_check_every=5)
        res[mode] = pipe.pivot(pipe.faces(images[0])[0])[0].meta
    assert res["off"]["early_stop"] and res["on"]["early_stop"]
    assert abs(res["on"]["steps"]["tune"] - res["off"]["steps"]["tune"]) <= 1  # the same step, up to rounding


def test_fused_and_plain_kernels_equal_exact_on_cuda():
    gen = stylegan2.random_generator(seed=0, device="cuda", size=64, style_dim=64, n_mlp=2,
                                     channel_multiplier=1, max_channels=64)
    ws = torch.randn(4, gen.num_ws, gen.style_dim, device="cuda")
    with torch.no_grad():
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = False
        gen.set_kernels("exact")
        ref = gen.synthesize(ws, impl="batched")
        gen.set_kernels("auto")
        assert gen.convs[0].conv.fused_up(ws)
        for impl in ("fast", "batched", "grouped"):
            torch.testing.assert_close(gen.synthesize(ws, impl=impl), ref, rtol=1e-4, atol=5e-5)


def test_exact_path_is_repeatable_bit_for_bit(images):
    pipe = tiny("fp32", True)
    tuner = pipe.component("tuner")
    face = pipe.faces(images[0])[0]
    a = pipe.pivot(face)[0]
    assert a.meta["graphs"]["tune"].startswith("eager")
    assert {m.kernels for m in pipe.generator.module.modules() if isinstance(m, stylegan2.ModulatedConv2d)} == {"exact"}
    b = tiny("fp32", True).pivot(face)[0]
    assert torch.equal(a.w, b.w) and all(torch.equal(a.tensors[n], b.tensors[n]) for n in a.tensors)
    assert tuner.graphs == "auto"


def test_default_settings_stay_near_exact(images):
    exact = tiny("fp32", True)
    face = exact.faces(images[1])[0]
    z_exact = exact.pi1(images[1], face, exact.pivot(face)[0]).image.astype(int)
    fast = tiny()
    assert (fast.precision, fast.deterministic) == ("tf32", False)
    z_fast = fast.pi1(images[1], face, fast.pivot(face)[0]).image.astype(int)
    assert np.abs(z_fast - z_exact).mean() < 4.0  # the stated drift: docs/performance.md


def test_device_blend_on_cuda_stays_within_the_cpu_tolerance():
    """The gaussian blender's paste-back with a CUDA crop (``on_device`` auto) against OpenCV: pixels
    outside the mask bit for bit the photo's, inside within the tolerance the CPU test states."""
    import counterface
    from tests.plugins.test_blend import make_face, smooth_image
    from tests.plugins.test_blend_device import TOLERANCE

    for seed, (scale, angle, size) in enumerate([(30.0, 0.0, 64), (40.0, 0.3, 256), (80.0, -1.1, 128)]):
        image = smooth_image(150, 190, seed)
        face = make_face(image, scale, angle, (95.0, 70.0), size)
        crop = smooth_image(size, size, seed + 1)
        blender = counterface.create("blender", "gaussian")
        gpu = blender.blend(image, torch.as_tensor(crop, device="cuda"), face)
        cpu = counterface.create("blender", "gaussian", on_device="never").blend(image, crop, face)
        m = blender.mask(image.shape[:2], face)
        np.testing.assert_array_equal(gpu[m == 0], image[m == 0])
        assert np.abs(gpu.astype(int) - cpu.astype(int)).max() <= TOLERANCE


def test_reedits_together_on_cuda_match_one_at_a_time(images):
    """counterface.reedit's batched synthesis (plain modulated convolutions, crops blended on the
    GPU) against rendering one output at a time on the same CUDA pipeline."""
    from counterface import flow, reedit

    pipe = tiny("fp32", False)
    photo = flow.read_photo(images[2])
    face = pipe.faces(photo.image)[0]
    pivot = pipe.pivot(face)[0]
    alphas = [-1.0, 1.0]
    one = flow.render_face(pipe, photo, face, pivot, roles=("pi1", "pi0"), alphas=alphas)
    together = reedit.render_reused(pipe, photo, face, pivot, roles=("pi1", "pi0"), alphas=alphas)
    assert reedit.batched(pipe)
    for a, b in zip(one, together):
        for role in ("z1", "z0"):
            assert np.abs(a.results[role].crop.astype(int) - b.results[role].crop.astype(int)).max() <= 2
            assert np.abs(a.results[role].image.astype(int) - b.results[role].image.astype(int)).max() <= 3
