"""counterface.perceptual: the lpips package's network, bit for bit, without importing it."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from counterface import perceptual

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning:torchvision")


def _images(seed=1, size=48):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(2, 3, size, size, generator=g) * 2 - 1, torch.rand(2, 3, size, size, generator=g) * 2 - 1


@pytest.mark.parametrize("net", ["alex", "vgg"])
def test_same_distances_and_gradients_as_the_lpips_package(net):
    import lpips

    ours = perceptual.build(net, pretrained=False, seed=3)
    theirs = lpips.LPIPS(net=net, pnet_rand=True, verbose=False).eval()
    missing, unexpected = theirs.load_state_dict(ours.state_dict(), strict=False)
    assert not unexpected and all(k.startswith("lins.") for k in missing)  # lins.K aliases linK
    heads = torch.load(perceptual.head_file(net), map_location="cpu", weights_only=True)
    assert all(torch.equal(ours.state_dict()[k], v) for k, v in heads.items())  # calibrated heads loaded
    x, y = _images()
    x.requires_grad_(True)
    d_ours, d_theirs = ours(x, y), theirs(x, y)
    assert d_ours.shape == d_theirs.shape == (2, 1, 1, 1)
    assert torch.equal(d_ours, d_theirs)
    g_ours = torch.autograd.grad(d_ours.sum(), x)[0]
    g_theirs = torch.autograd.grad(d_theirs.sum(), x)[0]
    assert torch.equal(g_ours, g_theirs)
    with torch.no_grad():
        assert float(ours(x, x).abs().max()) == 0.0


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


def test_importing_and_building_does_not_import_torchvision():
    code = ("import sys, torch; from counterface import perceptual; m = perceptual.build('alex', False, 0); "
            "m(torch.zeros(1, 3, 32, 32), torch.zeros(1, 3, 32, 32)); "
            "print('torchvision' in sys.modules, 'lpips' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.split() == ["False", "False"]


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
