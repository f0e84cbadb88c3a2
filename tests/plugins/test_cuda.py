"""The pipeline on a real CUDA device (skipped without one): end to end on the tiny networks, batched
tuning against sequential tuning on the GPU's batched path, tf32 and bf16 runs.

Alignment is the fake aligner of :mod:`counterface.testing` (dlib's model is not needed for what is
tested here: everything after alignment). Run with ``pytest -m cuda`` (benchmarks/gpu_check.sh).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from counterface import config as config_mod
from counterface import testing
from counterface.imageio import read_image
from counterface.pipeline import Pipeline

pytestmark = [pytest.mark.cuda,
              pytest.mark.skipif(not torch.cuda.is_available(), reason="CUDA not available")]

STEPS = {"latent_steps": 4, "tune_steps": 4}
DEVICE = "cuda"


@pytest.fixture(autouse=True)
def fakes():
    from counterface import registry

    testing.install()
    yield
    testing.uninstall()
    registry.reset()


def tiny(device=None, precision="fp32", deterministic=True, **tuner):
    cfg = config_mod.resolve(preset="tiny", edit={"device": device or DEVICE, "precision": precision,
                                                  "deterministic": deterministic})
    cfg["aligner"] = {"name": "fake", "size": 64}
    cfg["tuner"].update(STEPS, **tuner)
    return Pipeline.from_config(cfg)


@pytest.fixture(scope="module")
def images(photos):
    base = read_image(photos / "astronaut.jpg")
    return [np.ascontiguousarray(np.roll(base, 7 * i, axis=1)[:, ::(-1 if i % 2 else 1)]) for i in range(4)]


def render(pipe, image, face, pivot, alpha=1.0):
    return pipe.pi1(image, face, pivot, alpha).image.astype(int), pipe.pi0(image, face, pivot, alpha).image.astype(int)


def test_pipeline_end_to_end_on_cuda(images):
    pipe = tiny()
    assert pipe.device == "cuda" and next(pipe.generator.module.parameters()).is_cuda
    image = images[0]
    face = pipe.faces(image)[0]
    pivot, seconds = pipe.pivot(face)
    assert pivot.w.device.type == "cpu" and all(t.device.type == "cpu" for t in pivot.tensors.values())
    assert pivot.meta["losses"]["tune"]["loss"] < pivot.meta["losses_start"]["tune"]["loss"]
    z1, z0 = render(pipe, image, face, pivot)
    assert z1.shape == z0.shape == image.shape and not np.array_equal(z1, z0)
    mask = pipe.mask(image, face)
    assert np.array_equal(z1[mask == 0], image[mask == 0])  # outside the blend: the photo's own pixels
    side = pipe.sidecar(face=face, pivot=pivot, role="z1", alpha=1.0)
    assert side["edit"]["precision"] == "fp32" and side["environment"]["cuda"]
    assert side["environment"]["cuda_tf32"] == {"matmul": False, "cudnn": False}
    # the same seed gives the same pair on the same machine (float rounding at most)
    again = tiny()
    pivot2, _ = again.pivot(again.faces(image)[0])
    z1b, _ = render(again, image, face, pivot2)
    assert np.abs(z1 - z1b).max() <= 1
    # and CUDA agrees with the CPU to within the tuning's float drift
    cpu = tiny(device="cpu")
    pivot_cpu, _ = cpu.pivot(cpu.faces(image)[0])
    z1c, _ = render(cpu, image, face, pivot_cpu)
    assert np.abs(z1 - z1c).mean() < 1.0


def test_batched_synthesis_equals_the_fast_path_on_cuda():
    pipe = tiny()
    g = pipe.generator
    ws = torch.randn(4, g.num_ws, g.w_dim, generator=torch.Generator().manual_seed(0)).to(DEVICE)
    names = pipe.component("tuner").selected(g)
    params = dict(g.module.named_parameters())
    tensors = {n: torch.stack([params[n].detach() * (1 + 0.05 * i) for i in range(4)]) for n in names}
    with torch.no_grad():
        batched = g.synthesize_tuned(ws, tensors)
        for i in range(4):
            with g.load_tensors({n: t[i] for n, t in tensors.items()}):
                alone = g.synthesize(ws[i:i + 1])
            assert torch.allclose(batched[i:i + 1], alone, atol=1e-4), i


def test_tune_batch_on_cuda_equals_sequential(images):
    pipe = tiny()
    faces = [pipe.faces(img)[0] for img in images]
    w0 = [pipe.invert(f) for f in faces]
    many = pipe.tune_many(faces, w0)
    alone = [pipe.tune(f, w) for f, w in zip(faces, w0)]
    for img, face, m, a in zip(images, faces, many, alone):
        assert m.meta["tune_batch"] == 4 and m.meta["steps"] == a.meta["steps"]
        assert abs(m.meta["losses"]["tune"]["loss"] - a.meta["losses"]["tune"]["loss"]) < 1e-3
        for x, y in zip(render(pipe, img, face, m), render(pipe, img, face, a)):
            assert np.abs(x - y).max() <= 2  # the pinned check: within 2 grey levels


@pytest.mark.parametrize("precision", ["tf32", "bf16"])
def test_tf32_and_bf16_run_and_stay_near_fp32(precision, images):
    image = images[1]
    ref = tiny()
    face = ref.faces(image)[0]
    z1_ref, _ = render(ref, image, face, ref.pivot(face)[0])
    pipe = tiny(precision=precision)
    assert pipe.component("tuner").precision == precision
    if precision == "tf32":
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    pivot, _ = pipe.pivot(face)
    assert all(torch.isfinite(t).all() for t in pivot.tensors.values()) and torch.isfinite(pivot.w).all()
    z1, _ = render(pipe, image, face, pivot)
    assert np.abs(z1 - z1_ref).mean() < 4.0  # measured drift: docs/performance.md
    side = pipe.sidecar(face=face, pivot=pivot)
    assert side["edit"]["precision"] == precision
    assert side["components"]["tuner"]["params"]["precision"] == precision
    tiny()  # back to fp32 flags for whatever runs next
    assert not torch.backends.cuda.matmul.allow_tf32
