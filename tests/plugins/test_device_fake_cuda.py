"""Device propagation on a simulated CUDA device (no GPU needed).

PyTorch's ``FakeTensorMode`` runs shape/device propagation only: a tensor can be "on cuda:0" on a
CPU-only machine, and any op mixing cuda and cpu tensors raises ``FakeTensorDeviceMismatchError``,
exactly where a real GPU run would crash with "Expected all tensors to be on the same device".
Each test moves a component's network to fake cuda and runs its forward contract with the inputs
the pipeline really passes (CPU tensors built from numpy, CPU pivot tensors, CPU direction vectors).

Not covered here (fake tensors have no values): anything calling ``.item()`` or ``backward`` (the
tuner's loops); those paths move every input to ``target.device`` explicitly (see
``test_tuner_moves_every_input_to_the_generator_device`` in test_pti.py).
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

import counterface
from counterface.convert import to_tensor

from torch._subclasses import fake_tensor  # noqa: E402  (torch is pinned: it is there)
CUDA = torch.device("cuda", 0)
pytestmark = pytest.mark.filterwarnings("ignore:Accessing the data pointer of FakeTensor")


@pytest.fixture
def mode():
    return fake_tensor.FakeTensorMode(allow_non_fake_inputs=True)


def to_fake_cuda(module: torch.nn.Module, mode) -> torch.nn.Module:
    """Replace every parameter and buffer of ``module`` by a fake tensor on cuda:0 (in place)."""
    for mod in module.modules():
        for k, p in list(mod._parameters.items()):
            if p is not None:
                with mode:
                    f = mode.from_tensor(p.detach()).to(CUDA)
                mod._parameters[k] = torch.nn.Parameter(f, requires_grad=p.requires_grad)
        for k, b in list(mod._buffers.items()):
            if b is not None:
                with mode:
                    mod._buffers[k] = mode.from_tensor(b).to(CUDA)
    return module


def tiny_generator(mode):
    """The ``stylegan2`` component for device ``cuda`` with its (CPU-built) network on fake cuda."""
    from counterface_nets import stylegan2

    g = counterface.create("generator", "stylegan2", weights=None, size=16, style_dim=16, n_mlp=1,
                           channel_multiplier=1, max_channels=8, seed=0, device="cuda")
    module = stylegan2.random_generator(seed=0, size=16, style_dim=16, n_mlp=1, channel_multiplier=1, max_channels=8)
    g._module = to_fake_cuda(module, mode)
    return g


def test_fake_cuda_detects_a_mixed_device_op(mode):
    """The harness itself: a cpu tensor meeting a fake cuda one raises."""
    lin = to_fake_cuda(torch.nn.Linear(3, 3), mode)
    with mode, pytest.raises(Exception, match="device"):
        lin(torch.ones(1, 3))


def test_stylegan2_synthesize_mapping_w_avg_on_cuda(mode):
    g = tiny_generator(mode)
    with mode:
        ws = torch.zeros(1, g.num_ws, g.w_dim)  # a CPU latent, as pivots are stored
        with torch.no_grad():
            img = g.synthesize(ws)
        assert img.device == CUDA and img.shape == (1, 3, 16, 16)
        assert g.mapping(torch.zeros(2, g.w_dim)).device == CUDA
        assert g.w_avg.device == CUDA  # z drawn from a CPU torch.Generator, then moved


def test_load_tensors_applies_cpu_pivot_tensors_to_a_cuda_generator(mode):
    g = tiny_generator(mode)
    name, p = next(iter(g.module.named_parameters()))
    with mode:
        with g.load_tensors({name: torch.zeros(tuple(p.shape))}):
            assert dict(g.module.named_parameters())[name].device == CUDA


def test_pipeline_synthesize_and_render_with_a_cpu_pivot(mode, monkeypatch):
    from counterface import ranges
    from counterface.pipeline import Pipeline
    from counterface.types import Pivot

    # the edit's range check reads values (one host sync per edit, by design), which fake tensors do
    # not have: its own tests are in test_ranges.py; here only the devices are under test
    monkeypatch.setattr(ranges, "check_latent", lambda w, what="": w)

    pipe = Pipeline.from_preset("tiny")
    g = tiny_generator(mode)
    pipe._components["generator"] = g
    pipe.config["direction"] = {"name": "vector", "dim": g.w_dim, "seed": 0, "layers": "1-2"}
    name, p = next(iter(g.module.named_parameters()))
    # the direction's vector and boundary are file data read on the CPU (their checks look at values,
    # which fake tensors do not have): built before the device propagation under test
    assert pipe.component("direction").boundary.normal.device.type == "cpu"
    with mode:
        pivot = Pivot(w=torch.zeros(g.num_ws, g.w_dim), tensors={name: torch.zeros(tuple(p.shape))})
        w = pipe.edit_latent(pivot.w, 1.5)  # CPU pivot latent, CPU direction vector
        assert w.device.type == "cpu"
        with torch.no_grad(), g.load_tensors(pivot.tensors):
            out = g.synthesize(w[None])
        assert out.device == CUDA


def test_direction_follows_the_latent_device(mode):
    d = counterface.create("direction", "vector", dim=8, seed=0, layers="0-1")
    with mode:
        w = torch.zeros(1, 4, 8, device=CUDA)
        assert d.apply(w, 2.0).device == CUDA


def test_e4e_inverts_cpu_faces_on_cuda_and_returns_cpu(mode):
    g = tiny_generator(mode)
    inv = counterface.create("inverter", "e4e", weights=None, input_size=32, seed=0, device="cuda")
    from counterface_nets import e4e

    torch.manual_seed(0)
    model = e4e.Encoder4Editing(style_count=g.num_ws, w_dim=g.w_dim, input_size=32, width=0.25,
                                units=(1, 1, 1, 1)).eval().requires_grad_(False)
    inv._model, inv._key = to_fake_cuda(model, mode), (g.num_ws, g.w_dim)
    crop = np.zeros((16, 16, 3), np.uint8)
    with mode:
        w = inv.invert(to_tensor(crop), g)  # the pipeline passes a CPU tensor from numpy
        assert w.device.type == "cpu" and w.shape == (1, g.num_ws, g.w_dim)


def test_arcface_embeds_cpu_and_cuda_faces_on_its_device(mode):
    ident = counterface.create("identity", "arcface", weights=None, seed=0, device="cuda", embedding_size=16)
    from counterface_nets import irse

    model = irse.Backbone(input_size=112, width=0.25, embedding_size=16, units=(1, 1, 1, 1))
    ident._model = to_fake_cuda(model.eval().requires_grad_(False), mode)
    with mode:
        assert ident.embed(torch.zeros(2, 3, 32, 32)).device == CUDA
        assert ident.embed(torch.zeros(2, 3, 32, 32, device=CUDA)).device == CUDA
