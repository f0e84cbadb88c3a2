"""The pti tuner on small networks: losses fall, only the chosen tensors change, reproducible."""

from __future__ import annotations

import pytest
import torch

import counterface
from counterface import ConfigError, WeightsError, testing
from counterface_pti import selection
from counterface_pti.tuner import PTITuner

FAST = dict(latent_steps=12, tune_steps=12, lpips_pretrained=False, lpips_net="alex", resolution=None,
            tune_min_resolution=16, lpips_threshold=0.0, latent_lr=0.03, tune_lr=3e-3)


@pytest.fixture(scope="module")
def gen():
    return testing.FakeGenerator(resolution=32)


@pytest.fixture(scope="module")
def target(gen):
    # a reachable target: the generator's own image for another latent, plus a little texture
    w = gen.w_avg[None, None].repeat(1, gen.num_ws, 1) + 0.8 * torch.randn(1, 1, gen.w_dim,
                                                                               generator=torch.Generator().manual_seed(5))
    with torch.no_grad():
        img = gen.synthesize(w)
    return (img + 0.05 * torch.randn(img.shape, generator=torch.Generator().manual_seed(6))).clamp(-1, 1)


def w0(gen):
    return gen.w_avg[None].repeat(gen.num_ws, 1).clone()


def mouth(gen):
    m = torch.zeros(1, 1, gen.resolution, gen.resolution)
    m[..., 20:28, 10:22] = 1
    return m


def snapshot(gen):
    return {n: (p.detach().clone(), p.requires_grad) for n, p in gen.module.named_parameters()}


def test_losses_decrease_and_generator_restored(gen, target):
    before = snapshot(gen)
    pivot = PTITuner(**FAST).tune(gen, w0(gen), target, region_mask=mouth(gen), identity=testing.FakeIdentityEncoder())
    m = pivot.meta
    assert m["losses"]["refine"]["loss"] < m["losses_start"]["refine"]["loss"]
    assert m["losses"]["tune"]["loss"] < m["losses_start"]["tune"]["loss"]
    assert set(m["losses"]["tune"]) == {"loss", "pixel", "lpips", "region", "id"}
    assert m["steps"] == {"refine": 12, "tune": 12}
    # the generator is exactly as it was (values and requires_grad flags)
    after = snapshot(gen)
    assert all(torch.equal(before[n][0], after[n][0]) and before[n][1] == after[n][1] for n in before)
    # the pivot holds exactly the selected tensors, and they did change
    chosen = PTITuner(**FAST).selected(gen)
    assert sorted(pivot.tensors) == sorted(chosen) == sorted(m["tuned_parameters"])
    assert any(not torch.equal(pivot.tensors[n], before[n][0]) for n in chosen)
    assert pivot.w.shape == (gen.num_ws, gen.w_dim) and pivot.w.dtype == torch.float32
    assert m["tuned_numel"] < m["generator_numel"]


def test_parameters_outside_selection_unchanged_while_tuning(gen, target):
    """Snapshot the live module during the last step: untouched tensors are bit-identical."""
    seen = {}
    before = snapshot(gen)
    chosen = set(PTITuner(**FAST).selected(gen))

    def progress(info):
        if info["stage"] == "tune":
            seen.update({n: p.detach().clone() for n, p in gen.module.named_parameters()})

    PTITuner(**FAST).tune(gen, w0(gen), target, progress=progress)
    assert seen
    assert all(torch.equal(seen[n], before[n][0]) for n in before if n not in chosen)
    assert any(not torch.equal(seen[n], before[n][0]) for n in chosen)


def test_tuned_pivot_reconstructs_better(gen, target):
    pivot = PTITuner(**FAST).tune(gen, w0(gen), target)
    with torch.no_grad():
        plain = (gen.synthesize(w0(gen)[None]) - target).abs().mean()
        with gen.load_tensors(pivot.tensors):
            tuned = (gen.synthesize(pivot.w[None]) - target).abs().mean()
    assert tuned < plain


def test_reproducible(gen, target):
    a = PTITuner(**FAST, seed=1).tune(gen, w0(gen), target)
    b = PTITuner(**FAST, seed=1).tune(gen, w0(gen), target)
    assert torch.equal(a.w, b.w)
    assert all(torch.equal(a.tensors[n], b.tensors[n]) for n in a.tensors)
    assert a.meta["losses"] == b.meta["losses"]


def test_start_w_optimises_one_vector(gen, target):
    pivot = PTITuner(**{**FAST, "tune_steps": 0}, start="w").tune(gen, w0(gen) + 5.0, target)
    assert torch.equal(pivot.w, pivot.w[:1].expand_as(pivot.w))  # one W broadcast to every row
    assert pivot.meta["losses"]["refine"]["loss"] < pivot.meta["losses_start"]["refine"]["loss"]


def test_early_stop_at_lpips_threshold(gen, target):
    pivot = PTITuner(**{**FAST, "lpips_threshold": 10.0}).tune(gen, w0(gen), target)
    assert pivot.meta["early_stop"] is True and pivot.meta["steps"]["tune"] == 0


def test_working_resolution(gen, target):
    seen = []
    PTITuner(**{**FAST, "resolution": 16, "latent_steps": 1, "tune_steps": 1}).tune(
        gen, w0(gen), target, progress=lambda info: seen.append(info["stage"]))
    pivot = PTITuner(**{**FAST, "resolution": 16, "latent_steps": 1, "tune_steps": 1}).tune(gen, w0(gen), target)
    assert pivot.meta["working_resolution"] == 16
    assert seen == ["refine", "tune"]


def test_parameter_patterns(gen, target):
    t = PTITuner(**{**FAST, "tune_min_resolution": None, "tune_params": "to_rgbs.*", "latent_steps": 0,
                    "tune_steps": 2})
    assert all(n.startswith("to_rgbs.") for n in t.selected(gen))
    assert sorted(t.tune(gen, w0(gen), target).tensors) == sorted(t.selected(gen))
    everything = PTITuner(tune_params=["*"], tune_min_resolution=None).selected(gen)
    assert len(everything) == len(list(gen.module.parameters()))


def test_parameter_resolution_names():
    assert selection.parameter_resolution("conv1.conv.weight") == 4
    assert selection.parameter_resolution("input.input") == 4
    assert selection.parameter_resolution("convs.0.conv.weight") == 8
    assert selection.parameter_resolution("convs.3.noise.weight") == 16
    assert selection.parameter_resolution("convs.15.conv.weight") == 1024
    assert selection.parameter_resolution("to_rgbs.7.bias") == 1024
    assert selection.parameter_resolution("style.3.weight") is None


def test_empty_selection_is_an_error(gen):
    with pytest.raises(ConfigError, match="matches none"):
        PTITuner(tune_min_resolution=4096).selected(gen)


@pytest.mark.parametrize("bad", [dict(start="z"), dict(tune_pixel="l3"), dict(lpips_net="squeezy"),
                                 dict(tune_steps=-1), dict(resolution=8)])
def test_bad_parameters(bad):
    with pytest.raises(ConfigError):
        counterface.create("tuner", "pti", **bad)


def test_missing_lpips_backbone_offline(gen, target, tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("COUNTERFACE_OFFLINE", "1")
    with pytest.raises(WeightsError, match="alexnet-owt-7be5be79.pth"):
        PTITuner(**{**FAST, "lpips_pretrained": True, "seed": 99}).tune(gen, w0(gen), target)


def test_pretrained_backbone_loaded_from_cache(tmp_path, monkeypatch):
    """A torchvision-format AlexNet file in the hub cache is what LPIPS's trunk gets."""
    import torchvision

    from counterface import perceptual  # the one LPIPS module, shared by the tuner and the metrics

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("COUNTERFACE_OFFLINE", "1")
    sd = torchvision.models.alexnet().state_dict()
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    torch.save(sd, hub / "alexnet-owt-7be5be79.pth")
    monkeypatch.setattr("counterface.weights._check_local", lambda spec, p: None)  # not the real bytes
    lp = perceptual.build("alex", True, seed=12345)
    assert torch.equal(lp.net.state_dict()["slice5.10.weight"], sd["features.10.weight"])


class OtherDevice(torch.Tensor):
    """Stands for a tensor on another device than the generator's: reading its metadata, detaching
    and moving it (``.to``, which returns a plain tensor) work; any computation with it raises, as a
    real cuda/cpu mix would ("Expected all tensors to be on the same device")."""

    _META = {"dim", "size", "numel", "__get__", "__len__", "__repr__", "__format__", "detach"}

    @classmethod
    def __torch_function__(cls, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        name = getattr(func, "__name__", "")
        if func in (torch.Tensor.to, torch.Tensor.cpu):
            with torch._C.DisableTorchFunctionSubclass():
                return func(*args, **kwargs).as_subclass(torch.Tensor)  # a plain tensor, now "here"
        if name in cls._META:
            return super().__torch_function__(func, types, args, kwargs)
        raise RuntimeError(f"{name or func} used a tensor from another device without moving it first")


def elsewhere(t: torch.Tensor) -> OtherDevice:
    return t.clone().as_subclass(OtherDevice)


def test_the_other_device_harness_catches_an_unmoved_input(gen):
    x = elsewhere(torch.ones(2, 3))
    assert x.shape == (2, 3) and x.dim() == 2
    with pytest.raises(RuntimeError, match="another device"):
        x + 1
    moved = x.detach().to("cpu", torch.float32)
    assert type(moved) is torch.Tensor and torch.equal(moved + 1, torch.full((2, 3), 2.0))


def test_tuner_moves_every_input_to_the_generator_device(gen, target):
    """The tuner's loops (which call ``.item()`` and ``backward``, out of reach of fake tensors) get
    the latent, the target photo and the region mask from the pipeline on the CPU while the generator
    may live on a GPU: each must go through ``.to(generator device)`` before any computation."""
    tuner = PTITuner(**{**FAST, "latent_steps": 2, "tune_steps": 2})
    pivot = tuner.tune(gen, elsewhere(w0(gen)), elsewhere(target), region_mask=elsewhere(mouth(gen)),
                       identity=testing.FakeIdentityEncoder())
    assert pivot.meta["steps"] == {"refine": 2, "tune": 2}
    assert type(pivot.w) is torch.Tensor and pivot.w.device.type == "cpu"
    assert all(t.device.type == "cpu" for t in pivot.tensors.values())
    reference = tuner.tune(gen, w0(gen), target, region_mask=mouth(gen), identity=testing.FakeIdentityEncoder())
    assert torch.equal(pivot.w, reference.w)  # moving changed nothing but the device
    if hasattr(tuner, "tune_many"):  # the batched path moves its inputs too
        pivots = tuner.tune_many(gen, [elsewhere(w0(gen))], [elsewhere(target)], region_masks=[elsewhere(mouth(gen))],
                                 identity=testing.FakeIdentityEncoder())
        assert len(pivots) == 1 and pivots[0].w.device.type == "cpu"
