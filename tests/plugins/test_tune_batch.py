"""Batched tuning (--tune-batch): per-sample generator copies, per-face losses, each face's pivot
equal to tuning it alone; --precision refused on the CPU."""

from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from counterface import ConfigError
from counterface.cli import cli
from counterface.imageio import read_image
from counterface.pipeline import Pipeline, configure_backends
from counterface_nets import stylegan2

STEPS = {"latent_steps": 3, "tune_steps": 3}


def tiny_net():
    return stylegan2.random_generator(seed=0, size=32, style_dim=32, n_mlp=2, channel_multiplier=1, max_channels=16)


def test_batched_path_with_per_sample_parameters_equals_each_sample_alone():
    g = tiny_net()
    ws = torch.randn(3, g.num_ws, g.style_dim, generator=torch.Generator().manual_seed(1))
    params = dict(g.named_parameters())
    rng = torch.Generator().manual_seed(2)
    names = [n for n in params if not n.startswith("style.")]  # every synthesis tensor, all layouts
    stacked = {n: torch.stack([params[n].detach() + 0.1 * torch.randn(params[n].shape, generator=rng)
                               for _ in range(3)]) for n in names}
    with torch.no_grad():
        out = torch.func.functional_call(g, stylegan2.per_sample(g, stacked), (ws,), {"impl": "batched"})
        shared = g.synthesize(ws, impl="batched")
        assert torch.allclose(shared, g.synthesize(ws, impl="reference"), atol=1e-5)
        for i in range(3):
            alone = torch.func.functional_call(g, {n: v[i] for n, v in stacked.items()}, (ws[i:i + 1],))
            assert torch.allclose(out[i:i + 1], alone, atol=1e-5), i
            assert not torch.allclose(out[i:i + 1], shared[i:i + 1], atol=1e-3)  # the copies do matter
    with pytest.raises(ValueError, match="per-sample copies"):
        stylegan2.per_sample(g, {"convs.0.conv.weight": params["convs.0.conv.weight"].detach()})


def test_per_face_loss_vectors_equal_the_one_face_formulas():
    pipe = Pipeline.from_preset("tiny", device="cpu")
    tuner, ident = pipe.component("tuner"), pipe.component("identity")
    from counterface import perceptual

    lp = perceptual.build("alex", False, 0, "cpu")
    rng = torch.Generator().manual_seed(3)
    img, target = torch.rand(3, 3, 64, 64, generator=rng) * 2 - 1, torch.rand(3, 3, 64, 64, generator=rng) * 2 - 1
    mask = (torch.rand(3, 1, 64, 64, generator=rng) > 0.5).float()
    emb = torch.cat([ident.embed(target[i:i + 1]) for i in range(3)])
    with torch.no_grad():
        total, rec = tuner._face_losses(img, lp, target, mask, True, ident, emb, False, per_face=True)
        for i in range(3):
            t1, r1 = tuner._face_losses(img[i:i + 1], lp, target[i:i + 1], mask[i:i + 1], True, ident, emb[i:i + 1],
                                        False)
            assert abs(float(total[i]) - float(t1)) < 1e-5
            assert set(rec) == set(r1) == {"pixel", "lpips", "region", "id"}
            assert all(abs(float(rec[k][i]) - float(r1[k])) < 1e-5 for k in rec)


@pytest.fixture(scope="module")
def faces(photos):
    pipe = Pipeline.from_preset("tiny", device="cpu")
    out = []
    for name in ("astronaut.jpg", "astronaut_gray.jpg", "astronaut_tall.jpg"):
        out.append(pipe.faces(read_image(photos / name))[0])
    return out


def _pipe(**tuner):
    pipe = Pipeline.from_preset("tiny", device="cpu")
    pipe.config["tuner"].update(STEPS, **tuner)
    return pipe


def _assert_same_pivot(a, b, atol=1e-4):
    assert torch.allclose(a.w, b.w, atol=atol)
    assert sorted(a.tensors) == sorted(b.tensors)
    for k in a.tensors:
        assert torch.allclose(a.tensors[k], b.tensors[k], atol=atol), k


def test_tune_many_equals_tuning_each_face_alone(faces):
    pipe = _pipe()
    w0 = [pipe.invert(f) for f in faces]
    many = pipe.tune_many(faces, w0)
    alone = [pipe.tune(f, w) for f, w in zip(faces, w0)]
    assert len(many) == 3
    for m, a in zip(many, alone):
        _assert_same_pivot(m, a)
        assert m.meta["steps"] == a.meta["steps"] == {"refine": 3, "tune": 3}
        assert m.meta["tune_batch"] == 3 and m.meta["tuned_parameters"] == a.meta["tuned_parameters"]
        assert m.generator == a.generator
    # each face really has its own tensors
    k = many[0].meta["tuned_parameters"][0]
    assert not torch.allclose(many[0].tensors[k], many[1].tensors[k])
    # the generator is left as it was
    fresh = Pipeline.from_preset("tiny", device="cpu").generator.module.state_dict()
    assert all(torch.equal(v, fresh[n]) for n, v in pipe.generator.module.state_dict().items())


def test_the_gpu_batched_path_on_the_cpu_gives_the_same_pairs(faces, photos, monkeypatch):
    """What CUDA runs (every face through each network at once, grouped convolutions), forced on the
    CPU: the pivots render the same images as tuning each face alone, within 2 grey levels."""
    import counterface_pti.batched as batched_mod
    from counterface_stylegan2.generator import StyleGAN2Generator

    pipe = _pipe()
    w0 = [pipe.invert(f) for f in faces]
    alone = [pipe.tune(f, w) for f, w in zip(faces, w0)]
    calls = []
    real = stylegan2.Generator._synthesize_batched
    monkeypatch.setattr(stylegan2.Generator, "_synthesize_batched", lambda self, ws, **kw: calls.append(len(ws)) or real(self, ws, **kw))
    monkeypatch.setattr(batched_mod, "BATCHED_DEVICES", ("cuda", "cpu"))
    monkeypatch.setattr(StyleGAN2Generator, "batched_devices", ("cuda", "cpu"))
    many = pipe.tune_many(faces, w0)
    assert calls and set(calls) == {3}  # every step ran the three faces at once
    names = ("astronaut.jpg", "astronaut_gray.jpg", "astronaut_tall.jpg")
    for name, face, m, a in zip(names, faces, many, alone):
        image = read_image(photos / name)
        assert m.meta["steps"] == a.meta["steps"]
        assert abs(m.meta["losses"]["tune"]["loss"] - a.meta["losses"]["tune"]["loss"]) < 1e-3
        for role in ("pi1", "pi0"):
            x = getattr(pipe, role)(image, face, m).image.astype(int)
            y = getattr(pipe, role)(image, face, a).image.astype(int)
            assert np.abs(x - y).max() <= 2, (name, role)


def test_early_stop_is_per_face(faces):
    pipe = _pipe()
    w0 = [pipe.invert(f) for f in faces]
    starts = [p.meta["losses_start"]["tune"]["lpips"] for p in pipe.tune_many(faces, w0)]
    threshold = (min(starts) + max(starts)) / 2  # some faces stop at once, the others tune on
    pipe = _pipe(lpips_threshold=threshold)
    many = pipe.tune_many(faces, w0)
    alone = [pipe.tune(f, w) for f, w in zip(faces, w0)]
    tuned = [m.meta["steps"]["tune"] for m in many]
    assert min(tuned) == 0 and max(tuned) > 0  # one face stopped at once while another went on
    for m, a in zip(many, alone):
        assert (m.meta["early_stop"], m.meta["steps"]) == (a.meta["early_stop"], a.meta["steps"])
        _assert_same_pivot(m, a)


def _batch(args, tmp_path, name):
    r = CliRunner().invoke(cli, ["batch", *args, "-o", str(tmp_path / name)], catch_exceptions=False)
    assert r.exit_code == 0, r.output
    rows = [json.loads(line) for line in (tmp_path / name / "results.jsonl").read_text().splitlines()]
    return {(r["key"], r["face"], r["alpha"]): r for r in rows}


def test_cli_tune_batch_4_gives_the_pairs_of_tune_batch_1(photos, tmp_path, monkeypatch):
    monkeypatch.setenv("COUNTERFACE_PROGRESS", "0")
    src = tmp_path / "in"
    src.mkdir()
    for name in ("astronaut.jpg", "astronaut_gray.jpg", "astronaut_tall.jpg", "astronaut_240p.jpg",
                 "astronaut_exif_rotated.jpg"):
        shutil.copy(photos / name, src / name)
    common = [str(src), "--preset", "tiny", "--no-metrics", "--set", "tuner.latent_steps=4",
              "--set", "tuner.tune_steps=4"]
    one = _batch([*common, "--tune-batch", "1"], tmp_path, "out1")
    four = _batch([*common, "--tune-batch", "4"], tmp_path, "out4")
    assert len(one) == len(four) == 5 and set(one) == set(four)
    for key, row in one.items():
        assert four[key]["job"] == row["job"]  # the batch size is not part of what a pair is
        for role in ("z1", "z0"):
            a = read_image(tmp_path / "out1" / row[role]).astype(int)
            b = read_image(tmp_path / "out4" / four[key][role]).astype(int)
            assert np.abs(a - b).max() <= 2, (key, role)
    sizes = sorted(json.loads((tmp_path / "out4" / r["z1_sidecar"]).read_text())["pivot"]["meta"]["tune_batch"]
                   for r in four.values())
    assert sizes == [1, 4, 4, 4, 4]  # four photos tuned together, then the last one
    assert all("tune_batch" not in json.loads((tmp_path / "out1" / r["z1_sidecar"]).read_text())["pivot"]["meta"]
               for r in one.values())


def test_tune_batch_must_be_positive(tmp_path):
    r = CliRunner().invoke(cli, ["batch", str(tmp_path), "--preset", "tiny", "-o", str(tmp_path / "o"),
                                 "--tune-batch", "0"])
    assert r.exit_code == 2 and "--tune-batch" in r.output


@pytest.mark.parametrize("precision", ["bf16", "tf32"])
def test_cuda_precisions_are_refused_on_the_cpu(precision, photos, tmp_path):
    with pytest.raises(ConfigError, match="needs CUDA"):
        Pipeline.from_preset("tiny", device="cpu", precision=precision)
    r = CliRunner().invoke(cli, ["edit", str(photos / "astronaut.jpg"), "--preset", "tiny", "--precision", precision,
                                 "--set", 'edit.device="cpu"', "-o", str(tmp_path)])
    assert r.exit_code == 2
    assert r.output.strip().splitlines() == [f"error: --precision {precision} needs CUDA, but this run uses cpu; "
                                             "use fp32 on the CPU"]
    assert not list(tmp_path.iterdir())


def test_precision_in_the_sidecar_and_backend_flags(photos, tmp_path, monkeypatch):
    r = CliRunner().invoke(cli, ["edit", str(photos / "astronaut.jpg"), "--preset", "tiny", "--precision", "fp32",
                                 "-o", str(tmp_path)])
    assert r.exit_code == 0, r.output
    side = json.loads(next(tmp_path.glob("*.json")).read_text())
    assert side["edit"]["precision"] == "fp32"
    saved = (torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32)
    try:
        assert configure_backends("cuda", "tf32")["matmul_allow_tf32"] is True
        assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
        assert configure_backends("cuda", "bf16")["cudnn_allow_tf32"] is False
        assert not torch.backends.cudnn.allow_tf32
    finally:
        torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.allow_tf32 = saved
