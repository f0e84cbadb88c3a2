"""counterface.writer: threaded output writes, atomic, ordered, errors propagated, bounded."""

from __future__ import annotations

import json
import random
import threading
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from counterface.errors import OutputError
from counterface.imageio import read_image
from counterface.writer import Skipped, Writer


def test_images_and_json_land_whole(tmp_path):
    img = (np.arange(32 * 32 * 3) % 251).astype(np.uint8).reshape(32, 32, 3)
    with Writer(threads=3) as w:
        futs = [w.image(tmp_path / f"p{i}.png", img, out_dir=tmp_path) for i in range(6)]
        w.json(tmp_path / "s.json", {"a": 1, "x": float("nan")}, out_dir=tmp_path)
    assert all(f.done() for f in futs)
    for i in range(6):
        assert np.array_equal(read_image(tmp_path / f"p{i}.png"), img)
    assert json.loads((tmp_path / "s.json").read_text()) == {"a": 1, "x": None}
    assert not list(tmp_path.glob(".*.tmp"))  # no temporary files left behind


@settings(max_examples=15, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 2), st.integers(0, 3)), min_size=1, max_size=25))
def test_writes_to_one_path_land_in_submission_order(tmp_path_factory, ops):
    folder = tmp_path_factory.mktemp("order")
    rng = random.Random(len(ops))

    def slow_write(path, text, delay):
        time.sleep(delay)
        path.write_text(text)

    last = {}
    with Writer(threads=4) as w:
        for n, (target, jitter) in enumerate(ops):
            path = folder / f"f{target}.txt"
            w.submit(slow_write, path, str(n), 0.001 * jitter * rng.random(), path=path)
            last[path] = str(n)
    assert {p: p.read_text() for p in last} == last


def test_then_runs_after_the_writes_before_it_in_order(tmp_path):
    seen = []
    with Writer(threads=4) as w:
        for i in range(5):
            path = tmp_path / f"{i}.txt"
            w.submit(lambda p=path, d=0.02 * (5 - i): (time.sleep(d), p.write_text("x")), path=path)
            w.then(lambda i=i: seen.append((i, sorted(q.name for q in tmp_path.iterdir()))))
    assert [s[0] for s in seen] == list(range(5))
    for i, names in seen:  # when row i was committed, its file and every earlier one existed
        assert {f"{j}.txt" for j in range(i + 1)} <= set(names)


def test_errors_propagate_and_the_rest_still_runs(tmp_path):
    committed = []
    w = Writer(threads=2)

    def boom():
        raise OSError("disk full")

    w.submit(boom)
    w.then(committed.append, "row0")  # its group failed: skipped
    w.submit((tmp_path / "ok.txt").write_text, "fine")
    w.then(committed.append, "row1")
    with pytest.raises(OSError, match="disk full"):
        w.flush()
    assert committed == ["row1"] and (tmp_path / "ok.txt").read_text() == "fine"
    assert [type(e) for _, e in w.errors] == [OSError]  # the skipped commit is not an error of its own
    w.flush()  # raised once
    w.close()
    with pytest.raises(RuntimeError, match="closed"):
        w.submit(print)


def test_submit_never_raises_an_earlier_error_close_does(tmp_path):
    w = Writer(threads=1)
    fut = w.submit(lambda: 1 / 0)
    assert isinstance(fut.exception(), ZeroDivisionError)  # the task's own Future holds it
    w.submit(print)  # a later submission is not blamed for it
    with pytest.raises(ZeroDivisionError):
        w.close()


def test_the_output_checks_still_apply(tmp_path):
    src = tmp_path / "in.png"
    img = np.zeros((8, 8, 3), np.uint8)
    src.write_bytes(b"not really")
    with pytest.raises(OutputError, match="input"):
        with Writer() as w:
            w.image(src, img, out_dir=tmp_path, inputs=[src])
    assert src.read_bytes() == b"not really"


def test_pending_writes_are_bounded():
    gate = threading.Event()
    w = Writer(threads=1, max_pending=2)
    w.submit(gate.wait)
    w.submit(gate.wait)
    done = threading.Event()
    t = threading.Thread(target=lambda: (w.submit(print), done.set()))
    t.start()
    assert not done.wait(0.2)  # the third submit waits for room
    gate.set()
    assert done.wait(5)
    t.join()
    w.close()


def test_leaving_with_an_exception_keeps_it(tmp_path):
    with pytest.raises(KeyError):
        with Writer() as w:
            w.submit(lambda: 1 / 0)
            raise KeyError("original")


def test_skipped_is_a_runtime_error():
    assert issubclass(Skipped, RuntimeError)
