"""The full-size (1024) SmileGAN-PTI code path end to end on CPU, for a few optimisation steps.

Real-format checkpoints rebuilt from the conformance manifests (``det_e4e_file``: the e4e encoder and
the FFHQ 1024 decoder in one file, as the released ``e4e_ffhq_encode.pt``; ``det_arcface_file``), the
real published smile direction, dlib alignment, a random LPIPS trunk (torchvision's ImageNet file
cannot be downloaded here). The networks' weights are deterministic, not trained, so the images are
not faces: this proves the plumbing at 1024, not the quality.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from click.testing import CliRunner

from counterface.cli import cli
from counterface.imageio import read_image

pytestmark = pytest.mark.slow


def test_edit_1024_end_to_end(det_e4e_file, det_arcface_file, shared, photos, tmp_path):
    photo_path = photos / "astronaut_240p.jpg"
    args = [
        "pairs", str(photo_path), "--preset", "smilegan-pti", "--aligner", "dlib", "--alpha", "1.5",
        "--set", f"inverter.weights={json.dumps(str(det_e4e_file))}",
        "--set", f"generator.weights={json.dumps(str(det_e4e_file))}",
        "--set", f"identity.weights={json.dumps(str(det_arcface_file))}",
        "--set", f"direction.weights={json.dumps(str(shared / 'directions' / 'smile.pt'))}",
        "--set", "tuner.latent_steps=1", "--set", "tuner.tune_steps=1", "--set", "tuner.lpips_pretrained=false",
        "--set", "tuner.lpips_threshold=0.0",
        "--save-pivot", str(tmp_path / "p.safetensors"), "-o", str(tmp_path),
    ]
    r = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert r.exit_code == 0, r.output
    photo = read_image(photo_path)
    z1, z0 = read_image(tmp_path / "astronaut_240p_face0_z1.png"), read_image(tmp_path / "astronaut_240p_face0_z0.png")
    assert z1.shape == z0.shape == photo.shape
    side = json.loads((tmp_path / "astronaut_240p_face0_z1.json").read_text())
    assert side["face"]["size"] == 1024
    assert side["components"]["generator"]["params"]["family"] == "stylegan2-ffhq-1024"
    assert side["components"]["direction"]["params"]["default_layers"] == [4, 5, 6]
    meta = side["pivot"]["meta"]
    assert meta["working_resolution"] == 256 and meta["steps"] == {"refine": 1, "tune": 1}
    # the default selection tunes the 64..1024 px synthesis blocks only: a small part of the network
    assert all(n.startswith(("convs.", "to_rgbs.")) for n in meta["tuned_parameters"])
    assert "convs.6.conv.weight" in meta["tuned_parameters"] and "convs.5.conv.weight" not in meta["tuned_parameters"]
    assert meta["tuned_numel"] < 0.35 * meta["generator_numel"]
    # the smile edit changes the face; pixels outside the face region are the photo's own
    assert not np.array_equal(z1, z0)
    from counterface.pipeline import Pipeline

    pipe = Pipeline.from_preset("smilegan-pti")
    pipe.config["aligner"] = {"name": "dlib"}
    face = pipe.component("aligner").align(photo, size=1024)[0]
    mask = pipe.mask(photo, face)
    assert np.array_equal(z1[mask == 0], photo[mask == 0]) and np.array_equal(z0[mask == 0], photo[mask == 0])
