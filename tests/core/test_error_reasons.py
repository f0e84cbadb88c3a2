"""Error lines quote a library's message as whole words, never cut mid-sentence (issue 21)."""

from __future__ import annotations

import collections

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st

from counterface import boundary
from counterface.errors import WeightsError, reason


@given(st.text(min_size=0, max_size=400))
def test_reason_is_one_line_short_and_never_cuts_a_word(text):
    out = reason(ValueError(text), limit=80)
    assert "\n" not in out and len(out) <= 80
    words = " ".join(text.split())
    if len(words) <= 80:
        assert out == (words or "ValueError")
    else:
        body = out[:-3] if out.endswith("...") else out
        assert words.startswith(body)
        nxt = words[len(body):len(body) + 1]
        assert nxt in ("", " ") or body.endswith((".", ";")) or " " not in words[:80], out


def test_reason_drops_terminal_escapes():
    assert reason(RuntimeError("\x1b[1mbold\x1b[0m text")) == "bold text"


def test_a_pickled_object_direction_file_gives_a_whole_sentence(tmp_path):
    """The probe: `--direction file.pt` holding Python objects was cut off mid-sentence ("do tho")."""
    p = tmp_path / "obj.pt"
    torch.save({"x": collections.OrderedDict(), "y": np.float64(1.0), "z": np.arange(3)}, p)
    with pytest.raises(WeightsError) as ei:
        boundary.load_vector(p)
    msg = str(ei.value)
    assert str(p) in msg and "\x1b" not in msg
    assert msg.endswith("(refused, nothing was run))"), msg


def test_an_npy_direction_or_npz_of_random_or_pickled_data_gives_a_whole_sentence(tmp_path):
    """The second probe: `--direction FILE.npy` ended "... using the `allow_pickle=` keywo)"."""
    from counterface import labelled
    from counterface.errors import ConfigError
    from counterface_directions.directions import load_vector

    deep = tmp_path / ("long-folder-name-" * 4) / "x"
    deep.mkdir(parents=True)
    for data in (np.random.default_rng(0).bytes(300), None):
        npy, npz = deep / "d.npy", deep / "l.npz"
        if data is None:
            np.save(npy, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        else:
            npy.write_bytes(data)
            npz.write_bytes(data)
        with pytest.raises(WeightsError) as ei:
            load_vector(npy)
        msg = str(ei.value)
        assert msg.endswith(")") and "keywo)" not in msg and str(npy) in msg, msg
        assert msg.endswith("nothing was run))") or msg.endswith("...)") or len(msg) < 300, msg
        if data is not None:
            with pytest.raises(ConfigError) as ei:
                labelled.read_npz(npz)
            assert str(npz) in str(ei.value)
