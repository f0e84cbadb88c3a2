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
