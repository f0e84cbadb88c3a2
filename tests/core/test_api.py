"""The notebook API: counterface.pairs / counterface.sweep return arrays and display in Jupyter."""

from __future__ import annotations

import base64
import json
import re

import numpy as np
import pytest

import counterface
from counterface import read_image

PNG = b"\x89PNG\r\n\x1a\n"
FAST = ["tuner.latent_steps=2", "tuner.tune_steps=2"]


def _noise(h=60, w=80, seed=0):
    return (np.random.default_rng(seed).random((h, w, 3)) * 255).astype(np.uint8)


def test_pairs_of_a_photo_on_the_tiny_preset(photos, tmp_path):
    """The issue's check: uint8 arrays of the photo's shape, and content to display."""
    path = photos / "astronaut_small.jpg"
    r = counterface.pairs(str(path), preset="tiny", sets=FAST)
    shape = read_image(path).shape
    assert r.z1.dtype == np.uint8 and r.z0.dtype == np.uint8
    assert r.z1.shape == shape and r.z0.shape == shape and r.photo.shape == shape
    assert not np.array_equal(r.z1, r.z0)  # the edit did something
    html = r._repr_html_()
    imgs = re.findall(r'src="data:image/png;base64,([^"]+)"', html)
    assert len(imgs) == 3 and all(base64.b64decode(x).startswith(PNG) for x in imgs)
    assert "Z1 = pi_1(Z)" in html and "Z0 = pi_0(Z)" in html
    assert r._repr_png_().startswith(PNG)
    assert r.sidecars["z1"]["role"] == "z1" and r.sidecars["z0"]["role"] == "z0"
    assert r.sidecars["z1"]["preset"] == "tiny" and r.sidecars["z1"]["input"]["path"] == str(path)
    assert r.alpha == 1.0
    written = r.save(tmp_path / "out", stem="astro")
    assert [p.name for p in written] == ["astro_z1.png", "astro_z0.png"]
    assert np.array_equal(read_image(written[0]), r.z1)  # PNG: the pixels exactly
    assert json.loads((tmp_path / "out" / "astro_z1.json").read_text())["output"] == "astro_z1.png"


def test_pairs_and_sweep_are_reproducible_and_take_arrays(fakes):
    photo = _noise()
    a = counterface.pairs(photo, preset="fake", alpha=2.0)
    b = counterface.pairs(photo.copy(), preset="fake", alpha=2.0)
    assert np.array_equal(a.z1, b.z1) and np.array_equal(a.z0, b.z0)
    assert a.sidecars["z1"]["input"]["sha256"] == b.sidecars["z1"]["input"]["sha256"]
    assert a.alpha == 2.0
    s = counterface.sweep(photo, alphas=[-1, 0, 2], preset="fake")
    assert s.alphas == [-1.0, 0.0, 2.0] and len(s.images) == 3 and len(s.sidecars) == 3
    assert all(im.shape == photo.shape and im.dtype == np.uint8 for im in s.images)
    assert np.array_equal(s.images[2], a.z1)  # the shift at alpha 2 is pi_1 at alpha 2
    assert [x["alpha"] for x in s.sidecars] == [-1.0, 0.0, 2.0]
    assert s._repr_png_().startswith(PNG) and s._repr_html_().count("data:image/png;base64,") == 3
    assert s.strip.ndim == 3 and s.strip.dtype == np.uint8


def test_bad_settings_and_photos_are_one_clear_error(fakes):
    with pytest.raises(counterface.ConfigError, match="unknown setting 'alhpa'"):
        counterface.pairs(_noise(), preset="fake", alhpa=1.0)
    with pytest.raises(counterface.ConfigError, match="uint8"):
        counterface.pairs(np.zeros((10, 10), np.float32), preset="fake")
    with pytest.raises(counterface.ConfigError, match="alphas"):
        counterface.sweep(_noise(), alphas=[float("nan")], preset="fake")
