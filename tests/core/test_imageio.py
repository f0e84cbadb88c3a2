"""Image reading (modes, EXIF orientation, bad files) and atomic, safe writing."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings, strategies as st
from PIL import Image

from counterface import imageio
from counterface.errors import ImageError, OutputError
from tests.helpers import png_header

small_rgb = st.tuples(st.integers(1, 24), st.integers(1, 24), st.integers(0, 2**32 - 1)).map(
    lambda t: np.random.default_rng(t[2]).integers(0, 256, size=(t[0], t[1], 3), dtype=np.uint8)
)


def _save(tmp_path, img: Image.Image, name: str, **kw) -> str:
    p = tmp_path / name
    img.save(p, **kw)
    return str(p)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arr=small_rgb)
def test_rgb_png_roundtrips_exactly(tmp_path, arr):
    p = _save(tmp_path, Image.fromarray(arr), "x.png")
    out = imageio.read_image(p)
    assert out.dtype == np.uint8 and out.shape == arr.shape
    assert np.array_equal(out, arr)


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arr=small_rgb)
def test_gray_becomes_three_equal_channels(tmp_path, arr):
    gray = arr[:, :, 0]
    out = imageio.read_image(_save(tmp_path, Image.fromarray(gray, "L"), "g.png"))
    assert out.shape == gray.shape + (3,)
    assert all(np.array_equal(out[:, :, c], gray) for c in range(3))


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arr=small_rgb)
def test_sixteen_bit_gray_keeps_the_high_byte(tmp_path, arr):
    hi = arr[:, :, 0].astype(np.uint16)
    val = (hi << 8) | arr[:, :, 1].astype(np.uint16)
    img = Image.fromarray(val.astype(np.uint16))
    out = imageio.read_image(_save(tmp_path, img, "g16.png"))
    assert np.array_equal(out[:, :, 0], hi.astype(np.uint8))


@settings(max_examples=30, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arr=small_rgb, alpha=st.integers(0, 255))
def test_rgba_is_composited_over_white(tmp_path, arr, alpha):
    rgba = np.dstack([arr, np.full(arr.shape[:2], alpha, np.uint8)])
    out = imageio.read_image(_save(tmp_path, Image.fromarray(rgba, "RGBA"), "a.png")).astype(int)
    expect = (arr.astype(int) * alpha + 255 * (255 - alpha)) / 255.0
    assert np.abs(out - expect).max() <= 1.0


# EXIF orientation -> the numpy operation that displays the stored pixels upright
ORIENT = {
    1: lambda a: a,
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1, :],
    5: lambda a: np.transpose(a, (1, 0, 2)),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: np.transpose(a, (1, 0, 2))[::-1, ::-1],
    8: lambda a: np.rot90(a, 1),
}


@settings(max_examples=40, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(arr=small_rgb, orientation=st.integers(1, 8))
def test_exif_orientation_is_applied(tmp_path, arr, orientation):
    img = Image.fromarray(arr)
    exif = Image.Exif()
    exif[0x0112] = orientation
    p = _save(tmp_path, img, "o.png", exif=exif.tobytes())
    out = imageio.read_image(p)
    assert np.array_equal(out, np.ascontiguousarray(ORIENT[orientation](arr)))


def test_cmyk_jpeg_becomes_rgb(tmp_path):
    arr = np.zeros((16, 16, 4), np.uint8)
    arr[..., 3] = 0  # no black: white paper
    p = _save(tmp_path, Image.fromarray(arr, "CMYK"), "c.jpg")
    out = imageio.read_image(p)
    assert out.shape == (16, 16, 3) and out.min() > 240


def test_real_odd_mode_photos(photos):
    ref = imageio.read_image(photos / "astronaut.jpg")
    for name in ("astronaut_gray.jpg", "astronaut_cmyk.jpg", "astronaut_exif_rotated.jpg", "astronaut_16bit.png",
                 "astronaut_rgba.png", "hopper_rgba.png"):
        out = imageio.read_image(photos / name)
        assert out.dtype == np.uint8 and out.ndim == 3 and out.shape[2] == 3, name
    rot = imageio.read_image(photos / "astronaut_exif_rotated.jpg")
    assert rot.shape == ref.shape  # upright once EXIF is honoured


@pytest.mark.parametrize("name,data,match", [
    ("bomb.png", png_header(30000, 30000, idat=True), "exceeds the limit"),
    ("text.jpg", b"this is not an image\n" * 10, "not a recognised image"),
    ("empty.jpg", b"", "empty file"),
])
def test_bad_files_raise_one_line(tmp_path, name, data, match):
    p = tmp_path / name
    p.write_bytes(data)
    with pytest.raises(ImageError, match=match) as e:
        imageio.read_image(p)
    assert "\n" not in str(e.value) and name in str(e.value)


def test_truncated_jpeg(tmp_path):
    buf = io.BytesIO()
    Image.fromarray(np.random.default_rng(0).integers(0, 255, (64, 64, 3), dtype=np.uint8)).save(buf, "JPEG")
    p = tmp_path / "trunc.jpg"
    p.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 3])
    with pytest.raises(ImageError, match="corrupt or truncated"):
        imageio.read_image(p)


def test_missing_file_and_directory(tmp_path):
    with pytest.raises(ImageError, match="no such file"):
        imageio.read_image(tmp_path / "nope.jpg")
    with pytest.raises(ImageError, match="directory"):
        imageio.read_image(tmp_path)


def test_atomic_write_and_safety(tmp_path):
    arr = np.random.default_rng(1).integers(0, 255, (8, 9, 3), dtype=np.uint8)
    out = tmp_path / "out"
    p = imageio.write_image("a/b.png", arr, out_dir=out)
    assert p == (out / "a" / "b.png").resolve()
    assert np.array_equal(imageio.read_image(p), arr)
    assert not [x for x in p.parent.iterdir() if x.name.endswith(".tmp")]
    with pytest.raises(OutputError, match="outside the output folder"):
        imageio.write_image("../escape.png", arr, out_dir=out)
    src = out / "input.png"
    with pytest.raises(OutputError, match="overwrite an input"):
        imageio.write_image("input.png", arr, out_dir=out, inputs=[src])
    with pytest.raises(OutputError, match="unsupported output format"):
        imageio.write_image("x.gif", arr, out_dir=out)
    j = imageio.write_json("meta.json", {"a": np.float32(1.5), "b": np.arange(3)}, out_dir=out)
    assert j.read_text().strip().startswith("{") and '"a": 1.5' in j.read_text()


def test_failed_write_leaves_nothing(tmp_path, monkeypatch):
    arr = np.zeros((4, 4, 3), np.uint8)
    target = tmp_path / "keep.png"
    imageio.write_image(target, arr)
    before = target.read_bytes()

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(imageio.os, "fsync", boom)
    with pytest.raises(OSError):
        imageio.write_image(target, arr + 1)
    assert target.read_bytes() == before
    assert [x.name for x in tmp_path.iterdir()] == ["keep.png"]
