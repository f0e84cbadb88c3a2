"""CUDA numerics are set deliberately when a pipeline is built for a CUDA device."""

from __future__ import annotations

import pytest
import torch

from counterface import device, pipeline

FLAGS = (
    (torch.backends.cuda.matmul, "allow_tf32"),
    (torch.backends.cudnn, "allow_tf32"),
    (torch.backends.cudnn, "deterministic"),
    (torch.backends.cudnn, "benchmark"),
)


@pytest.fixture
def restore_flags():
    saved = [getattr(o, a) for o, a in FLAGS]
    yield
    for (o, a), v in zip(FLAGS, saved):
        setattr(o, a, v)


def test_cuda_device_gets_float32_and_deterministic_cudnn(restore_flags):
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.backends.cudnn.allow_tf32 = True  # PyTorch's default
    torch.backends.cudnn.deterministic = False
    torch.backends.cudnn.benchmark = True
    flags = device.configure_backends("cuda:0")
    assert flags and [getattr(o, a) for o, a in FLAGS] == [False, False, True, False]


def test_cpu_device_leaves_the_flags_alone(restore_flags):
    torch.backends.cudnn.benchmark = True
    torch.backends.cudnn.allow_tf32 = True
    assert device.configure_backends("cpu") == {}
    pipe = pipeline.Pipeline.from_preset("tiny", device="cpu")
    assert pipe.device == "cpu"
    assert torch.backends.cudnn.benchmark is True and torch.backends.cudnn.allow_tf32 is True


def test_pipeline_configures_its_device(restore_flags, monkeypatch):
    seen = []
    monkeypatch.setattr(pipeline, "resolve_device", lambda spec: "cuda")
    monkeypatch.setattr(pipeline, "configure_backends", lambda *a: seen.append(a))
    pipe = pipeline.Pipeline.from_preset("tiny")
    assert seen == [("cuda", "tf32", False)]  # the CUDA default: the fastest measured setting
    assert pipe.edit["precision"] == "tf32" and pipe.edit["deterministic"] is False  # what the sidecar records
    pipeline.Pipeline.from_preset("tiny", precision="fp32", deterministic=True)
    assert seen[-1] == ("cuda", "fp32", True)  # the exact path


def test_cpu_default_is_exact_fp32(restore_flags):
    pipe = pipeline.Pipeline.from_preset("tiny", device="cpu")
    assert (pipe.precision, pipe.deterministic) == ("fp32", True)
    assert pipe.edit["precision"] == "fp32" and pipe.edit["deterministic"] is True
    from counterface import device

    assert device.numerics() == {"device": "cpu", "precision": "fp32", "deterministic": True, "exact": True}


@pytest.mark.parametrize("value,expected", [("auto", True), (None, True), (True, True), ("false", False),
                                            ("0", False), (False, False), ("yes", True)])
def test_deterministic_values(value, expected):
    from counterface import device

    assert device.resolve_deterministic("cpu", value) is expected
    assert device.resolve_deterministic("cuda:0", "auto") is False


def test_bad_deterministic_is_one_line_config_error():
    from counterface import ConfigError, device

    with pytest.raises(ConfigError, match="deterministic"):
        device.resolve_deterministic("cpu", "maybe")


def test_configure_backends_autotunes_when_not_deterministic(restore_flags):
    flags = device.configure_backends("cuda", "tf32", False)
    assert flags == {"matmul_allow_tf32": True, "cudnn_allow_tf32": True, "cudnn_deterministic": False,
                     "cudnn_benchmark": True}
    assert device.numerics()["exact"] is False
    device.configure_backends("cuda", "fp32", True)
    assert device.numerics()["exact"] is True


def test_timer_waits_for_cuda_work_only_when_cuda_is_in_use(monkeypatch):
    from counterface.provenance import Timer

    calls = []
    monkeypatch.setattr(torch.cuda, "synchronize", lambda *a: calls.append("sync"))
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)  # as in a CPU-only process
    t = Timer()
    with t("cpu"):
        pass
    assert calls == [] and "cpu" in t.seconds  # CUDA never initialised: no waiting
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: True)
    with t("gpu"):
        calls.append("work")
    assert calls == ["sync", "work", "sync"]


def test_edit_device_reaches_every_component_that_takes_one():
    from counterface import config as config_mod

    cfg = config_mod.resolve(preset="tiny", edit={"device": "cpu"})
    cfg["aligner"] = {"name": "fan"}  # takes a device (default auto); built lazily, nothing loaded here
    pipe = pipeline.Pipeline(cfg)
    for kind in ("aligner", "inverter", "identity", "tuner"):
        assert pipe.component(kind).describe()["device"] == "cpu", kind
    assert pipe.component("generator").device == "cpu"
    given = pipeline.Pipeline({**cfg, "aligner": {"name": "fan", "device": "cuda:1"}})
    assert given.component("aligner").device == "cuda:1"  # an explicit component device wins
