"""counterface.perceptual: the lpips package's network, built offline, trunk through the weights manager."""

from __future__ import annotations

import pytest
import torch

from counterface import perceptual

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:torchvision")


def _images(seed=1, size=48):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=g) * 2 - 1, torch.rand(2, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_network_is_the_packages_with_its_calibrated_heads(net):
    import importlib.util
    from pathlib import Path

    import lpips

    ours = perceptual.build(net, pretrained=False, seed=3)
    assert isinstance(ours, lpips.LPIPS)
    heads_file = Path(importlib.util.find_spec("lpips").submodule_search_locations[0]) / "weights" / "v0.1" / f"{net}.pth"
    heads = torch.load(heads_file, map_location="cpu", weights_only=True)
    sd = ours.state_dict()
    assert heads and all(torch.equal(sd[k], v) for k, v in heads.items())  # calibrated heads loaded
    x, y = _images()
    with torch.no_grad():
        assert float(ours(x, x).abs().max()) == 0.0
        assert float(ours(x, y).min()) > 0.0


def _fake_torchvision_file(tmp_path, model, bump=0.5):
    """A torchvision-layout trunk file (``features.N.*``) with values unlike the random trunk."""
    sd = {}
    for key, v in model.net.state_dict().items():
        _, idx, param = key.split(".", 2)
        sd[f"features.{idx}.{param}"] = v + bump
    path = tmp_path / "trunk.pth"
    torch.save(sd, path)
    return path, sd


def test_backbone_tensors_land_in_the_right_slices(tmp_path):
    model = perceptual.build("alex", pretrained=False, seed=4)
    fresh = type(model)(net="alex", pretrained=True, pnet_rand=True, verbose=False)
    path, sd = _fake_torchvision_file(tmp_path, model)
    perceptual.load_backbone(fresh, path)
    for key, v in fresh.net.state_dict().items():
        _, idx, param = key.split(".", 2)
        assert torch.equal(v, sd[f"features.{idx}.{param}"]), key


def test_wrong_backbone_file_is_a_weights_error(tmp_path):
    from counterface.errors import WeightsError

    model = perceptual.build("alex", pretrained=False, seed=4)
    bad = tmp_path / "vgg_as_alex.pth"
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, bad)
    with pytest.raises(WeightsError, match="not the expected torchvision backbone"):
        perceptual.load_backbone(model, bad)
    junk = tmp_path / "junk.pth"
    junk.write_bytes(b"not a checkpoint")
    with pytest.raises(WeightsError, match="not a readable"):
        perceptual.load_backbone(model, junk)


def test_random_alex_trunk_is_the_draw_lpips_makes():
    """pretrained=False gives lpips.LPIPS(pnet_rand=True)'s AlexNet after manual_seed(seed)."""
    import lpips

    torch.manual_seed(11)
    theirs = lpips.LPIPS(net="alex", pnet_rand=True, verbose=False)
    ours = perceptual.build("alex", pretrained=False, seed=11)
    for k, v in theirs.net.state_dict().items():
        assert torch.equal(ours.net.state_dict()[k], v), k


def test_build_leaves_the_global_random_state_alone_and_caches():
    torch.manual_seed(5)
    before = torch.rand(3)
    torch.manual_seed(5)
    a = perceptual.build("alex", pretrained=False, seed=123)
    assert torch.equal(torch.rand(3), before)
    assert perceptual.build("alex", pretrained=False, seed=123) is a
    assert not any(p.requires_grad for p in a.parameters()) and not a.training


def test_unknown_net_and_small_inputs():
    from counterface.errors import ConfigError

    with pytest.raises(ConfigError):
        perceptual.build("resnet", pretrained=False)
    m = perceptual.build("alex", pretrained=False, seed=0)
    a, b = _images(size=16)  # below AlexNet's minimum side: upsampled first
    assert float(perceptual.distance(m, a, b)) > 0


def test_metric_and_tuner_share_one_network():
    from counterface import metrics

    assert metrics.lpips_model("random") is perceptual.build("vgg", pretrained=False, seed=0)
    torch.manual_seed(2)
    before = torch.rand(2)
    torch.manual_seed(2)
    metrics.lpips_model("random")  # no longer reseeds the global generator
    assert torch.equal(torch.rand(2), before)


def test_metric_backbone_missing_offline_is_one_weights_error(tmp_path, monkeypatch):
    from counterface import metrics
    from counterface.errors import WeightsError

    monkeypatch.setenv("TORCH_HOME", str(tmp_path))
    monkeypatch.setenv("COUNTERFACE_OFFLINE", "1")
    perceptual._cache.clear()
    with pytest.raises(WeightsError, match="alexnet-owt-7be5be79.pth"):
        metrics.lpips_model("alex")
