"""The data in ``counterface_nets.known_weights``: valid specs whose pinned facts match the real files."""

from __future__ import annotations

import hashlib

import pytest

from counterface import weights
from counterface_nets import known_weights as kw


def test_specs_are_keyed_by_name_and_have_sources_and_licences():
    assert set(kw.SPECS) >= {"e4e_ffhq_encode.pt", "model_ir_se50.pth", "smile.pt", "age.pt", "pose.pt",
                             "2DFAN4-11f355bf06.pth.tar", "s3fd-619a316812.pth", "alexnet-owt-7be5be79.pth",
                             "vgg16-397923af.pth"}
    for name, s in kw.SPECS.items():
        assert isinstance(s, weights.WeightsSpec) and s.name == name
        assert s.licence and s.licence != "unknown"
        assert s.urls or s.managed_by, name  # every file can be obtained somehow
    assert "non-commercial" in kw.SPECS["e4e_ffhq_encode.pt"].licence
    assert "commercial" in kw.SPECS["shape_predictor_68_face_landmarks.dat"].licence


def test_every_plugin_assignment_names_a_known_spec():
    for plugin, names in kw.BY_PLUGIN.items():
        assert plugin.startswith("counterface_")
        assert set(names) <= set(kw.SPECS), plugin


def test_google_drive_ids_are_the_published_ones():
    e4e = kw.SPECS["e4e_ffhq_encode.pt"]
    assert e4e.urls[0] == "gdrive://1cUv_reLE6k3604or78EranS7XzuVMWeO"
    assert any(u.startswith("https://huggingface.co/") for u in e4e.urls)
    assert not e4e.sha256_verified  # a single third-party source


def test_torch_hub_file_names_carry_the_trusted_prefix():
    for name in ("alexnet-owt-7be5be79.pth", "vgg16-397923af.pth"):
        s = kw.SPECS[name]
        assert s.managed_by == "torchvision" and name.split("-")[-1].startswith(s.sha256_prefix)
        assert s.sha256.startswith(s.sha256_prefix)


@pytest.mark.parametrize("name", ["smile.pt", "age.pt", "pose.pt", "ffhq_pca.pt"])
def test_direction_facts_match_the_published_files(shared, name):
    s = kw.SPECS[name]
    data = (shared / "directions" / name).read_bytes()
    assert s.sha256_verified and s.size == len(data) and s.sha256 == hashlib.sha256(data).hexdigest()
    assert "encoder4editing/99ea50578695d2e8a1cf7259d8ee89b23eea942b/editings/" in s.urls[0]
    assert s.urls[0].endswith("/" + name)


def test_managed_targets(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("COUNTERFACE_HOME", str(tmp_path / "home"))
    assert weights.target(kw.SPECS["s3fd-619a316812.pth"]) == tmp_path / "torch/hub/checkpoints/s3fd-619a316812.pth"
    assert weights.target(kw.SPECS["e4e_ffhq_encode.pt"]) == tmp_path / "home/weights/e4e_ffhq_encode.pt"


def test_import_of_a_direction_file_is_verified(shared, tmp_path, monkeypatch):
    monkeypatch.setenv("COUNTERFACE_HOME", str(tmp_path / "home"))
    weights.reset()
    try:
        if "smile.pt" not in weights.specs():
            weights.register_spec(kw.SPECS["smile.pt"])
        st = weights.import_file("smile.pt", shared / "directions" / "smile.pt")
        assert st.state == weights.VERIFIED
        assert weights.fetch("smile.pt", download=False) == tmp_path / "home/weights/smile.pt"
    finally:
        weights.reset()
