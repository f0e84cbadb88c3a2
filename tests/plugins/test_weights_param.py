"""One meaning of the ``weights`` parameter across the network plugins (counterface_nets.checkpoints)."""

from __future__ import annotations


import pytest

import counterface
from counterface import ConfigError, WeightsError
from counterface_nets import checkpoints

PLUGINS = [("generator", "stylegan2", {"size": 16, "style_dim": 16, "n_mlp": 1, "max_channels": 8}),
           ("inverter", "e4e", {"input_size": 32}),
           ("identity", "arcface", {})]


@pytest.mark.parametrize("value", [None, "", "none", "None", "NONE", "random", "Random", " none "])
def test_no_file_values(value):
    assert checkpoints.weights_arg(value) is None


def test_names_and_paths_are_kept(tmp_path):
    assert checkpoints.weights_arg("e4e_ffhq_encode.pt") == "e4e_ffhq_encode.pt"
    assert checkpoints.weights_arg(tmp_path / "x.pt") == str(tmp_path / "x.pt")
    assert checkpoints.weights_arg("nonesuch.pt") == "nonesuch.pt"


@pytest.mark.parametrize("kind,name,params", PLUGINS)
@pytest.mark.parametrize("value", [None, "none", "random", "Random"])
def test_every_network_plugin_reads_no_file_alike(kind, name, params, value):
    comp = counterface.create(kind, name, weights=value, **params)
    assert comp.weights is None and comp.describe()["weights"] is None


def test_resolve_weights_paths_and_unknown_names(tmp_path):
    f = tmp_path / "w.pt"
    f.write_bytes(b"x")
    assert checkpoints.resolve_weights(f) == f
    with pytest.raises(WeightsError, match="not found"):
        checkpoints.resolve_weights(tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match="neither an existing file nor a known weights file"):
        checkpoints.resolve_weights("no-such-weights.pt")


@pytest.mark.parametrize("name", ["e4e", "arcface"])
def test_body_arguments_checked_alike(name):
    kind = "inverter" if name == "e4e" else "identity"
    with pytest.raises(ConfigError, match=f"{name} units"):
        counterface.create(kind, name, weights=None, units=[1, 1, 1])
    with pytest.raises(ConfigError, match=f"{name} width"):
        counterface.create(kind, name, weights=None, width=0)
    assert checkpoints.body_arch(True, None, None) == {"width": 0.25, "units": (1, 1, 1, 1)}
    assert checkpoints.body_arch(False, None, None) == {"width": 1.0}
    assert checkpoints.body_arch(False, [2, 2, 2, 2], 0.5) == {"width": 0.5, "units": (2, 2, 2, 2)}
