"""Session-scoped real-format checkpoint files rebuilt from the conformance manifests.

Each fixture writes the deterministic checkpoint once per test session (``tests.conformance`` from
the manifests in ``tests/data/conformance``) in exactly the layout of the released file, so the
public loaders are exercised on the real key names, shapes and containers.
"""

from __future__ import annotations

import pytest


def _build(conformance_dir, manifest: str, *, bare: bool = False):
    from tests import conformance as dw

    m = dw.load_manifest(conformance_dir / manifest)
    c = dw.load_constants(conformance_dir / "constants.npz")
    return dw.det_state_dict(m, c) if bare else dw.det_checkpoint(m, c)


@pytest.fixture(scope="session")
def det_stylegan2_file(conformance_dir, tmp_path_factory):
    """``stylegan2-ffhq-config-f.pt`` layout: ``{'g_ema': sd, 'latent_avg': (512,)}``."""
    import torch

    path = tmp_path_factory.mktemp("detweights") / "stylegan2-ffhq-config-f.det.pt"
    torch.save(_build(conformance_dir, "stylegan2_ffhq_1024.json"), path)
    return path


@pytest.fixture(scope="session")
def det_e4e_file(conformance_dir, tmp_path_factory):
    """``e4e_ffhq_encode.pt`` layout: ``{'state_dict', 'opts', 'latent_avg' (18, 512)}`` (about 1.2 GB)."""
    import torch

    path = tmp_path_factory.mktemp("detweights") / "e4e_ffhq_encode.det.pt"
    torch.save(_build(conformance_dir, "e4e_ffhq_encode.json"), path)
    return path


@pytest.fixture(scope="session")
def det_arcface_file(conformance_dir, tmp_path_factory):
    """``model_ir_se50.pth`` layout: a bare state dict."""
    import torch

    path = tmp_path_factory.mktemp("detweights") / "model_ir_se50.det.pth"
    torch.save(_build(conformance_dir, "arcface_ir_se50.json", bare=True), path)
    return path
