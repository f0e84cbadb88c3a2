"""ArcFace IR-SE50: the real-format file loads through the public loader and matches the goldens.

The checkpoint is rebuilt from ``tests/data/conformance/arcface_ir_se50.json`` (detweights) in the
real ``model_ir_se50.pth`` layout (a bare state dict); goldens and tolerances are those of the
conformance README.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import counterface
import counterface_nets
from counterface.errors import WeightsError
from tests import conformance as cf
from counterface_nets import irse

ATOL_EMB = 1e-5
ATOL_FEAT = 2e-4


@pytest.fixture(scope="module")
def goldens(conformance_dir):
    return cf.load_goldens(conformance_dir)


@pytest.fixture(scope="module")
def manifest(conformance_dir):
    return json.loads((conformance_dir / "arcface_ir_se50.json").read_text())


@pytest.fixture(scope="module")
def arcface(det_arcface_file):
    return counterface_nets.load_arcface(det_arcface_file)


def _t(goldens, name):
    return torch.from_numpy(np.asarray(goldens[name], dtype=np.float32))


def test_parameter_names_shapes_and_order_equal_the_manifest(manifest):
    own = irse.Backbone().state_dict()
    assert list(own) == list(manifest["state_dict"])
    for k, spec in manifest["state_dict"].items():
        assert list(own[k].shape) == spec["shape"], k


def test_loader_returns_eval_module_on_cpu(arcface):
    assert isinstance(arcface, irse.Backbone)
    assert not arcface.training
    assert next(arcface.parameters()).device.type == "cpu"


@pytest.mark.parametrize("grad", [False, True], ids=["inference-path", "autograd-path"])
def test_embeddings_match_goldens(arcface, goldens, grad):
    x = _t(goldens, "arc_x")
    with torch.set_grad_enabled(grad):
        emb = arcface(x)
        pre = arcface.forward_prenorm(x)
    torch.testing.assert_close(pre.detach(), _t(goldens, "arc_feat_prenorm"), atol=ATOL_FEAT, rtol=0)
    torch.testing.assert_close(emb.detach(), _t(goldens, "arc_emb"), atol=ATOL_EMB, rtol=0)
    cos = (emb.detach() * _t(goldens, "arc_emb")).sum(1)
    assert cos.min().item() >= 1 - 1e-6
    torch.testing.assert_close(emb.detach().norm(dim=1), torch.ones(2), atol=1e-6, rtol=0)


def test_float64_run_matches_float64_goldens(arcface, goldens):
    model = irse.Backbone()
    model.load_state_dict(arcface.state_dict())
    model = model.double().eval()
    x = torch.from_numpy(np.asarray(goldens["arc_x"], dtype=np.float64))
    with torch.no_grad():
        emb = model(x)
    ref = torch.from_numpy(np.asarray(goldens["arc_emb_f64"]))
    assert (emb - ref).abs().max().item() < 1e-8


def test_identity_plugin_reproduces_the_e4e_id_loss_features(det_arcface_file, goldens):
    ident = counterface.create("identity", "arcface", weights=str(det_arcface_file))
    x = _t(goldens, "e4e_x")  # (2, 3, 256, 256): the crop + pool path of IDLoss.extract_feats
    with torch.no_grad():
        emb = ident.embed(x)
    torch.testing.assert_close(emb, _t(goldens, "arc_idloss_emb"), atol=ATOL_EMB, rtol=0)


def test_identity_plugin_at_1024_equals_face_pool_then_256(det_arcface_file, goldens):
    """A 1024 face is box-averaged to 256 first, exactly like pSp's face_pool."""
    ident = counterface.create("identity", "arcface", weights=str(det_arcface_file))
    x = _t(goldens, "e4e_x")[:1]
    big = x.repeat_interleave(4, dim=2).repeat_interleave(4, dim=3)
    with torch.no_grad():
        torch.testing.assert_close(ident.embed(big), ident.embed(x), atol=1e-6, rtol=0)


def test_file_without_num_batches_tracked_loads(tmp_path, det_arcface_file, goldens, arcface):
    sd = torch.load(det_arcface_file, weights_only=True)
    stripped = {k: v for k, v in sd.items() if not k.endswith("num_batches_tracked")}
    assert len(sd) - len(stripped) == 54
    p = tmp_path / "model_ir_se50_torch04.pth"
    torch.save(stripped, p)
    model = counterface_nets.load_arcface(p)
    x = _t(goldens, "arc_x")
    with torch.no_grad():
        assert torch.equal(model(x), arcface(x))


# -- wrong files -------------------------------------------------------------------------------
def _tiny_sd():
    torch.manual_seed(0)
    return irse.Backbone(units=(1, 1, 1, 1), width=0.25).state_dict()


TINY = {"units": (1, 1, 1, 1), "width": 0.25}


def _save(tmp_path, obj, name="model_ir_se50.pth"):
    p = tmp_path / name
    torch.save(obj, p)
    return p


def test_tiny_file_round_trips(tmp_path):
    sd = _tiny_sd()
    m = counterface_nets.load_arcface(_save(tmp_path, sd), **TINY)
    for k, v in m.state_dict().items():
        assert torch.equal(v, sd[k]), k


@pytest.mark.parametrize(
    "mutate, words",
    [
        (lambda sd: {k: v for k, v in sd.items() if k != "body.2.res_layer.1.weight"}, ["missing", "body.2.res_layer.1.weight"]),
        (lambda sd: {**sd, "body.9.res_layer.1.weight": torch.zeros(1)}, ["unexpected", "body.9.res_layer.1.weight"]),
        (lambda sd: {**sd, "output_layer.3.weight": torch.zeros(3, 3)}, ["shape", "output_layer.3.weight"]),
        (lambda sd: {"state_dict": sd}, ["bare", "state_dict"]),
        (lambda sd: {"g_ema": sd, "latent_avg": torch.zeros(512)}, ["g_ema"]),
        (lambda sd: [1, 2, 3], ["dict", "list"]),
    ],
    ids=["missing", "extra", "shape", "e4e-like", "stylegan-like", "not-a-dict"],
)
def test_wrong_state_dict_is_one_clear_error(tmp_path, mutate, words):
    p = _save(tmp_path, mutate(dict(_tiny_sd())))
    with pytest.raises(WeightsError) as ei:
        counterface_nets.load_arcface(p, **TINY)
    msg = str(ei.value)
    assert str(p) in msg and "\n" not in msg
    for w in words:
        assert w in msg


def test_real_architecture_rejects_a_tiny_file_naming_keys(tmp_path):
    p = _save(tmp_path, _tiny_sd())
    with pytest.raises(WeightsError) as ei:
        counterface_nets.load_arcface(p)
    assert str(p) in str(ei.value) and "body." in str(ei.value)


def test_truncated_and_random_files_are_clear_errors(tmp_path):
    good = _save(tmp_path, _tiny_sd(), "good.pth").read_bytes()
    trunc = tmp_path / "trunc.pth"
    trunc.write_bytes(good[: len(good) // 2])
    noise = tmp_path / "noise.pth"
    noise.write_bytes(np.random.default_rng(0).bytes(4096))
    for p in (trunc, noise, tmp_path / "absent.pth"):
        with pytest.raises(WeightsError) as ei:
            counterface_nets.load_arcface(p, **TINY)
        assert str(p) in str(ei.value)


def test_code_carrying_pickle_is_refused(tmp_path):
    import pickle

    marker = tmp_path / "executed"

    class Evil:
        def __reduce__(self):  # unpickling would create `marker`
            return (open, (str(marker), "w"))

    p = tmp_path / "evil.pth"
    p.write_bytes(pickle.dumps({"a": Evil()}, protocol=2))
    with pytest.raises(WeightsError):
        counterface_nets.load_arcface(p, **TINY)
    assert not marker.exists()
