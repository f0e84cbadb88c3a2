"""The fan aligner, offline: stand-in FAN weights in the file face-alignment loads, so its real
loading and prediction path runs; and the one-line failure when the weights are missing."""

from __future__ import annotations

import urllib.error

import numpy as np
import pytest

import counterface
from counterface import geometry as g

import dlib  # noqa: E402,F401  (face_alignment is a dependency, dlib in the test extra:
import face_alignment  # noqa: E402  a missing install must fail, not skip)


def _offline(monkeypatch):
    """Make torch.hub downloads fail as they do without a network (also when one exists)."""
    import torch.hub

    def no_network(*a, **k):
        raise urllib.error.URLError("offline (test)")

    monkeypatch.setattr(torch.hub, "urlopen", no_network)


@pytest.fixture(scope="module")
def standin_state_dict():
    import torch
    from face_alignment.models import FAN

    torch.manual_seed(0)
    net = FAN(4)
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.fixture
def torch_home(tmp_path, monkeypatch):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    _offline(monkeypatch)
    return tmp_path / "torch"


def _write_fan(torch_home, state_dict):
    import torch

    from counterface_align.fan_aligner import FAN_FILE

    folder = torch_home / "hub" / "checkpoints"
    folder.mkdir(parents=True, exist_ok=True)
    torch.save(state_dict, folder / FAN_FILE)  # the file format face-alignment loads (weights_only)
    return folder / FAN_FILE


@pytest.mark.slow
def test_fan_runs_offline_with_standin_weights(torch_home, standin_state_dict, photos):
    _write_fan(torch_home, standin_state_dict)
    image = counterface.read_image(photos / "two_people.jpg")
    aligner = counterface.create("aligner", "fan", detector="dlib", size=128, device="cpu")
    fa = aligner.model()
    assert isinstance(fa, face_alignment.FaceAlignment)
    # the package loaded exactly our stand-in tensors
    loaded = fa.face_alignment_net.state_dict()
    some = sorted(standin_state_dict)[::50]
    for k in some:
        assert np.array_equal(loaded[k].numpy(), standin_state_dict[k].numpy()), k
    boxes = aligner.detect(image)
    assert len(boxes) == 2
    lms = aligner.landmarks(image, boxes)
    assert len(lms) == 2
    for lm, box in zip(lms, boxes):
        assert lm.shape == (68, 2) and np.all(np.isfinite(lm))
        # FAN predicts inside the region it cropped around the box (random weights: anywhere in it)
        w = box[2] - box[0]
        assert np.all(lm[:, 0] > box[0] - w) and np.all(lm[:, 0] < box[2] + w)
    faces = aligner.align(image)
    assert faces  # with this seed the random landmarks are spread enough to make crops
    for f in faces:  # whatever random landmarks make usable crops, they are real FFHQ crops
        assert f.crop.shape == (128, 128, 3)
        np.testing.assert_allclose(f.matrix, g.ffhq_matrix(f.landmarks, 128))
        assert any(np.allclose(f.landmarks, lm) for lm in lms)
    # RGBA input reaches FAN as RGB
    rgba = np.dstack([image, np.full(image.shape[:2], 255, np.uint8)])
    assert len(aligner.align(rgba)) == len(faces)


def test_missing_fan_weights_is_one_clear_line(torch_home):
    aligner = counterface.create("aligner", "fan", detector="dlib", device="cpu")
    with pytest.raises(counterface.WeightsError) as err:
        aligner.align(np.zeros((32, 32, 3), np.uint8))
    msg = str(err.value)
    assert "\n" not in msg
    assert "2DFAN4-11f355bf06.pth.tar" in msg and str(torch_home / "hub" / "checkpoints") in msg
    assert "--aligner dlib" in msg


def test_missing_detector_weights_are_named(torch_home, standin_state_dict):
    _write_fan(torch_home, standin_state_dict)
    aligner = counterface.create("aligner", "fan", detector="sfd", device="cpu")
    with pytest.raises(counterface.WeightsError, match="s3fd-619a316812.pth") as err:
        aligner.align(np.zeros((32, 32, 3), np.uint8))
    assert "2DFAN4" not in str(err.value)  # that one is present


def test_wrong_file_is_a_weights_error(torch_home):
    import torch

    _write_fan(torch_home, {"conv1.weight": torch.zeros(3)})
    aligner = counterface.create("aligner", "fan", detector="dlib", device="cpu")
    with pytest.raises(counterface.WeightsError, match="does not fit"):
        aligner.model()


def test_cli_reports_missing_fan_weights_with_exit_4(torch_home, photos, tmp_path):
    from click.testing import CliRunner

    from counterface.cli import cli

    res = CliRunner().invoke(cli, ["align", str(photos / "astronaut_small.jpg"), "-o", str(tmp_path / "o"),
                                   "--aligner", "fan", "--set", "aligner.detector=dlib"])
    assert res.exit_code == 4
    assert "2DFAN4-11f355bf06.pth.tar" in res.output and "Traceback" not in res.output


def test_unknown_detector_is_a_config_error(torch_home, standin_state_dict):
    with pytest.raises(counterface.ConfigError):
        counterface.create("aligner", "fan", detector="no such")
    _write_fan(torch_home, standin_state_dict)
    with pytest.raises(counterface.ConfigError, match="unknown face-alignment detector"):
        counterface.create("aligner", "fan", detector="nosuch", device="cpu").model()
