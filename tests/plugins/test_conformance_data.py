"""The repository's test data: the project's deterministic weights reproduce the manifests'
fingerprints bit for bit, the lean goldens are what their README says, and every file is documented."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests import conformance as cf


@pytest.mark.parametrize("manifest", ["arcface_ir_se50.json", "stylegan2_ffhq_1024.json"])
def test_deterministic_weights_match_the_manifest_fingerprints(conformance_dir, manifest):
    m = cf.load_manifest(conformance_dir / manifest)
    consts = cf.load_constants(conformance_dir / "constants.npz")
    sd = cf.det_state_dict(m, consts)
    assert list(sd) == list(m["state_dict"])
    assert cf.fingerprint(sd) == m["det_fingerprint_sha256"]
    if "det_extra_fingerprint_sha256" in m:
        assert cf.fingerprint(cf.det_extra(m, consts)) == m["det_extra_fingerprint_sha256"]


def test_fingerprint_sees_shape_and_value_changes():
    import torch

    base = {"a": torch.zeros(()), "b": torch.ones(2, 3)}
    fp = cf.fingerprint(base)
    assert fp != cf.fingerprint({"a": torch.zeros(1), "b": torch.ones(2, 3)})  # 0-d is not 1-d
    assert fp != cf.fingerprint({"a": torch.zeros(()), "b": torch.ones(3, 2)})
    b = torch.ones(2, 3)
    b[1, 2] = float(np.nextafter(np.float32(1), np.float32(2)))  # one ulp above 1
    assert fp != cf.fingerprint({"a": torch.zeros(()), "b": b})


def test_lean_goldens_are_as_documented(conformance_dir):
    g = cf.load_goldens(conformance_dir)  # regenerates the inputs and checks their sha256
    meta = json.loads((conformance_dir / "goldens_meta.json").read_text())
    for name in ("sg_img_wplus", "sg_img_z", "e4e_img"):
        w = g[name + "_windows"]
        assert w.shape == (2, len(cf.WINDOWS), 3, cf.WINDOW, cf.WINDOW) and w.dtype == np.float16
    for name, err in meta["pool256_quantisation"]["max_abs_error"].items():
        assert g[name].shape == (2, 3, 256, 256) and g[name].dtype == np.float32
        assert err <= 2.0 ** -(cf.POOL_STEP_BITS + 1) < 2e-4 / 3  # well inside the 2e-4 tolerance
    assert g["e4e_x"].shape == (2, 3, 256, 256) and -0.95 <= g["e4e_x"].min() and g["e4e_x"].max() <= 0.95


def test_every_data_file_is_in_the_readme(shared):
    readme = (shared / "README.md").read_text()
    files = [p for sub in ("photos", "directions", "conformance") for p in (shared / sub).iterdir()]
    assert len(files) > 20
    missing = [p.name for p in files if f"`{p.name}`" not in readme and f"| {p.name} |" not in readme
               and p.name not in readme]
    assert missing == []
    for licence in ("public domain", "CC0", "MIT"):
        assert licence in readme
