"""Claims: two `batch` processes on one folder split the work; a killed worker's claims are recovered
and no pair is lost; the claim protocol itself (stale leases, dead pids, breaking, the done index)."""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
from collections import Counter

import pytest

from counterface import batch
from counterface.batch.claims import Claims, DoneIndex, claim_id
from tests.helpers import write_manifest

TINY = ["--preset", "tiny", "--set", "tuner.latent_steps=2", "--set", "tuner.tune_steps=2", "--no-metrics"]
PHOTOS = ["astronaut_small.jpg", "astronaut_16bit.png", "astronaut_rgba.png", "two_people.jpg", "astronaut_gray.jpg"]


def start(args, **env):
    return subprocess.Popen([sys.executable, "-m", "counterface", *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "COUNTERFACE_PROGRESS": "0", **env})


def raw_rows(out):
    return [json.loads(x) for x in (out / "results.jsonl").read_text().splitlines() if x.strip()]


def test_two_processes_on_one_folder_split_the_photos(photos, tmp_path):
    files = [photos / n for n in PHOTOS]
    manifest = write_manifest(tmp_path / "m.csv", files)
    out = tmp_path / "out"
    args = ["batch", str(manifest), "-o", str(out), *TINY]
    procs = [start(args), start(args)]
    outputs = [p.communicate(timeout=1200) for p in procs]
    for p, (stdout, stderr) in zip(procs, outputs):
        assert p.returncode == 0, stderr
    rows = raw_rows(out)
    per = Counter((r["key"], r["face"], r["alpha"]) for r in rows)
    assert per and max(per.values()) == 1, "a row was written twice"
    assert {r["key"] for r in rows} == {str(f) for f in files}
    done = [int(re.search(r"(\d+) done \(", o).group(1)) for o, _ in outputs]
    assert sum(done) == len(files), outputs
    assert not list((out / "claims").glob("*.claim"))  # every claim released
    again = start(args)
    stdout, stderr = again.communicate(timeout=600)
    assert again.returncode == 0 and f"0 done (0 rows), 0 failed, {len(files)} already done" in stdout, stderr


def test_a_killed_worker_loses_no_pair(photos, tmp_path):
    # six one-face photos (copies under distinct names, so distinct keys): the kill lands after the first
    # row with several photos still to go, even when the machine is busy and this poll loop is starved
    src = (photos / "astronaut_small.jpg").read_bytes()
    files = []
    for i in range(6):
        (tmp_path / f"photo{i}.jpg").write_bytes(src)
        files.append(tmp_path / f"photo{i}.jpg")
    manifest = write_manifest(tmp_path / "m.csv", files)
    out = tmp_path / "out"
    args = ["batch", str(manifest), "-o", str(out), *TINY]
    proc = start(args)
    deadline = time.monotonic() + 900
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / "results.jsonl").exists() and (out / "results.jsonl").read_text().count("\n") >= 1:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGSTOP)  # freeze it at once; then kill
    assert proc.poll() is None, f"finished before it could be killed: {proc.communicate()}"
    proc.send_signal(signal.SIGKILL)
    proc.communicate(timeout=60)

    before = len({r["key"] for r in raw_rows(out)})
    assert 1 <= before < len(files)
    # the killed process's claim (a dead pid on this host) is taken over at once, not after the lease
    res = start(args, COUNTERFACE_CLAIM_LEASE="3600")
    stdout, stderr = res.communicate(timeout=900)
    assert res.returncode == 0, stderr
    assert f"{len(files) - before} done" in stdout and f"{before} already done" in stdout
    rows = raw_rows(out)
    assert len(rows) == len({(r["key"], r["face"], r["alpha"]) for r in rows})
    assert {r["key"] for r in rows} == {str(f) for f in files}
    assert all((out / r["z1"]).is_file() and (out / r["z0"]).is_file() for r in rows)
    assert not list((out / "claims").glob("*.claim"))


# -- the protocol ------------------------------------------------------------------------------------------
def test_a_live_claim_is_refused_and_released(tmp_path):
    a, b = Claims(tmp_path, lease=60), Claims(tmp_path, lease=60)
    b.pid = a.pid + 1 if a.pid + 1 != os.getpid() else a.pid + 2  # another process ...
    b.host = "elsewhere"  # ... on another machine, whose pid cannot be checked
    cid = claim_id("job", "key", "sha")
    assert a.acquire(cid)
    assert not b.acquire(cid)
    record = json.loads(a.path(cid).read_text())
    assert record["host"] == a.host and record["pid"] == os.getpid() and record["token"]
    a.release(cid)
    assert not a.path(cid).exists()
    assert b.acquire(cid) and not a.acquire(cid)
    b.release_all()
    assert not list(tmp_path.iterdir())  # no temporary file left


def test_a_claim_without_heartbeat_goes_stale(tmp_path):
    a = Claims(tmp_path, lease=60)
    a.host = "elsewhere"
    cid = claim_id("x")
    assert a._create(a.path(cid), "tok")
    b = Claims(tmp_path, lease=60)
    assert not b.acquire(cid)
    old = time.time() - 120
    os.utime(a.path(cid), (old, old))
    assert b.acquire(cid)
    assert json.loads(b.path(cid).read_text())["pid"] == os.getpid()


def test_a_dead_process_on_this_host_loses_its_claim_at_once(tmp_path):
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    cid = claim_id("y")
    (tmp_path / f"{cid}.claim").write_text(json.dumps({"host": socket.gethostname(), "pid": pid, "token": "t"}))
    c = Claims(tmp_path, lease=3600)
    assert c.acquire(cid)


def test_a_sweep_removes_dead_claims_and_keeps_live_ones(tmp_path):
    """A photo finished just before its process died keeps a claim nobody acquires again: the sweep at
    the end of a run removes it (and claims past their lease), never a live process's claim."""
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    host = socket.gethostname()
    (tmp_path / f"{claim_id('dead')}.claim").write_text(json.dumps({"host": host, "pid": int(dead.stdout), "token": "t"}))
    expired = tmp_path / f"{claim_id('expired')}.claim"
    expired.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "u"}))
    old = time.time() - 7200
    os.utime(expired, (old, old))
    live = tmp_path / f"{claim_id('live')}.claim"  # another machine's process within its lease
    live.write_text(json.dumps({"host": "elsewhere", "pid": 1, "token": "v"}))
    alive_here = tmp_path / f"{claim_id('alive')}.claim"  # a live process on this host
    alive_here.write_text(json.dumps({"host": host, "pid": os.getppid(), "token": "w"}))
    mine = Claims(tmp_path, lease=3600)
    assert mine.acquire(claim_id("mine"))
    assert mine.sweep() == 2
    assert sorted(p.name for p in tmp_path.glob("*.claim")) == sorted(
        [live.name, alive_here.name, f"{claim_id('mine')}.claim"])
    mine.release_all()
    assert not list(tmp_path.glob("*.break"))


def test_the_heartbeat_keeps_a_claim_fresh(tmp_path):
    a = Claims(tmp_path, lease=0.4)
    cid = claim_id("z")
    assert a.acquire(cid)
    old = time.time() - 100
    os.utime(a.path(cid), (old, old))
    time.sleep(0.3)  # a beat every lease / 4
    assert time.time() - a.path(cid).stat().st_mtime < 0.4
    other = Claims(tmp_path, lease=0.4)
    other.host = "elsewhere-too"
    a.host = "elsewhere"  # so that `other` cannot check the pid
    assert not other.acquire(cid)
    a.release_all()


def test_breaking_checks_the_claim_is_still_the_stale_one(tmp_path):
    a = Claims(tmp_path, lease=60)
    cid = claim_id("w")
    assert a.acquire(cid)
    stale_record = {"host": "elsewhere", "pid": 1, "token": "old"}
    a._break(a.path(cid), stale_record)  # a breaker that read an older claim: the live one stays
    assert a.path(cid).exists()
    a.release_all()


def test_the_done_index_reads_only_new_whole_lines(tmp_path):
    idx = DoneIndex(tmp_path, n_alphas=2, final=("no_face",))
    row = {"key": "k", "sha256": "s", "job": "j", "face": 0, "faces": 1}
    batch.Appender(tmp_path / "results.jsonl").append([{**row, "alpha": 1.0}])
    assert not idx.refresh().done(("k", "s", "j"))  # one of two alphas
    with open(tmp_path / "results.jsonl", "a") as f:
        f.write(json.dumps({**row, "alpha": 2.0})[:10])  # a line being written
    assert not idx.refresh().done(("k", "s", "j"))
    batch.Appender(tmp_path / "results.jsonl").append([{**row, "alpha": 2.0}])
    assert idx.refresh().done(("k", "s", "j"))
    batch.Appender(tmp_path / "failures.shard-1-of-2.jsonl").append(
        [{"key": "f", "sha256": "s", "job": "j", "reason": "no_face"}, {"key": "e", "sha256": "s", "job": "j", "reason": "error"}])
    assert idx.refresh().done(("f", "s", "j")) and not idx.done(("e", "s", "j"))
    retry = DoneIndex(tmp_path, n_alphas=2, final=("no_face",), retry_failures=True).refresh()
    assert not retry.done(("f", "s", "j"))  # --retry-failures: old failures are retried ...
    batch.Appender(tmp_path / "failures.jsonl").append([{"key": "g", "sha256": "s", "job": "j", "reason": "no_face"}])
    assert retry.refresh().done(("g", "s", "j"))  # ... not those of a concurrent process


@pytest.mark.parametrize("n", [2, 4])
def test_threads_racing_for_claims_each_win_once(tmp_path, n):
    import threading

    ids = [claim_id(i) for i in range(20)]
    won: list[list[str]] = [[] for _ in range(n)]
    claims = [Claims(tmp_path, lease=60) for _ in range(n)]

    def grab(i):
        for cid in ids:
            if claims[i].acquire(cid):
                won[i].append(cid)

    threads = [threading.Thread(target=grab, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(c for w in won for c in w) == sorted(ids)
    for c in claims:
        c.release_all()
