"""The weights manager: registry, download (resume, hash checks, fallback), cache, hook, import.

Downloads go to a local HTTP server on 127.0.0.1 (``_weights_server``); the real network is never used.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import pytest

import counterface
from counterface import plugins, weights
from counterface.errors import PluginError, WeightsError

from ._weights_server import FileServer, closed_port, isolate

DATA = bytes(range(256)) * 40 + b"tail"  # 10 244 bytes
SHA = hashlib.sha256(DATA).hexdigest()
OTHER = b"x" * len(DATA)


@pytest.fixture(autouse=True)
def _fresh(tmp_path, monkeypatch):
    """An empty cache per test, no network beyond 127.0.0.1, code-registered specs forgotten."""
    isolate(tmp_path, monkeypatch)
    weights.reset()
    yield
    weights.reset()


@pytest.fixture
def server():
    srv = FileServer({"/good.bin": DATA, "/bad.bin": OTHER}).start()
    yield srv
    srv.stop()


def spec(name="tiny.bin", urls=(), **kw):
    kw.setdefault("size", len(DATA))
    kw.setdefault("sha256", SHA)
    kw.setdefault("sha256_verified", True)
    s = weights.WeightsSpec(name=name, description="a test file", urls=tuple(urls), licence="CC0", **kw)
    weights.register_spec(s)
    return s


def leftovers(name="tiny.bin") -> list[str]:
    d = weights.weights_dir()
    return sorted(p.name for p in d.iterdir()) if d.is_dir() else []


# -- registry ------------------------------------------------------------------------------------


def test_identical_registration_is_fine_and_conflicts_raise():
    s = spec()
    weights.register_spec(s)  # identical: no error
    assert weights.specs()["tiny.bin"] == s
    with pytest.raises(PluginError, match="tiny.bin"):
        weights.register_spec(weights.WeightsSpec("tiny.bin", "something else"))


@pytest.mark.parametrize("kw, msg", [
    ({"name": "a/b.pt"}, "plain file name"),
    ({"name": ""}, "plain file name"),
    ({"urls": ("ftp://host/x",)}, "unsupported source"),
    ({"urls": ("gdrive://",)}, "unsupported source"),
    ({"sha256": "abc"}, "64 hex"),
    ({"size": 0}, "positive"),
    ({"sha256": SHA, "sha256_prefix": "ffff0000"}, "prefix"),
])
def test_spec_validation(kw, msg):
    args = {"name": "x.pt", "description": "d", **kw}
    with pytest.raises(PluginError, match=msg):
        weights.WeightsSpec(**args)


def test_unknown_name_suggests_close_match():
    spec()
    with pytest.raises(WeightsError, match="did you mean 'tiny.bin'"):
        weights.fetch("tiny.bn")


class _SpecPlugin:
    def __init__(self, *specs):
        self.specs = specs

    @counterface.hookimpl
    def register_weights(self, register):
        for s in self.specs:
            register(s)


def test_plugin_hook_registers_and_conflicts_are_reported():
    a = weights.WeightsSpec("hooked.pt", "from a plugin", licence="MIT")
    b = weights.WeightsSpec("hooked.pt", "a different file", licence="MIT")
    n1 = plugins.register_plugin(_SpecPlugin(a, a), name="wtest-a")  # a duplicate of itself is fine
    try:
        assert weights.specs()["hooked.pt"] == a
        n2 = plugins.register_plugin(_SpecPlugin(b), name="wtest-b")
        try:
            assert weights.specs()["hooked.pt"] == a  # first come wins
            assert any(f.name == "wtest-b" and "conflicts" in f.error for f in plugins.failures())
            with pytest.raises(PluginError):
                weights.register_spec(b)
        finally:
            plugins.unregister_plugin(n2)
    finally:
        plugins.unregister_plugin(n1)
    assert "hooked.pt" not in weights.specs()


# -- paths ---------------------------------------------------------------------------------------


def test_cache_dir_follows_counterface_home(tmp_path, monkeypatch):
    assert weights.cache_dir() == tmp_path / "home"
    monkeypatch.delenv("COUNTERFACE_HOME")
    import platformdirs

    assert weights.cache_dir() == Path(platformdirs.user_cache_dir("counterface"))


def test_managed_files_live_in_torch_hub(tmp_path):
    s = spec("net-1234abcd.pth", managed_by="torchvision")
    assert weights.target(s) == tmp_path / "torch" / "hub" / "checkpoints" / "net-1234abcd.pth"
    assert weights.target(spec()) == tmp_path / "home" / "weights" / "tiny.bin"


# -- downloads -----------------------------------------------------------------------------------


def test_download_checks_hash_and_reuses_cache(server):
    spec(urls=[server.url("/good.bin")])
    p = weights.fetch("tiny.bin")
    assert p == weights.target("tiny.bin") and p.read_bytes() == DATA
    assert server.requests_for("/good.bin") == [None]
    assert weights.fetch("tiny.bin") == p  # cache reuse: no second request
    assert len(server.log) == 1
    assert leftovers() == ["tiny.bin"]
    assert weights.verify("tiny.bin").state == weights.VERIFIED


def test_interrupted_download_resumes_with_range(server):
    server.truncate["/good.bin"] = 3000
    spec(urls=[server.url("/good.bin")])
    p = weights.fetch("tiny.bin")
    assert p.read_bytes() == DATA
    assert server.requests_for("/good.bin") == [None, "bytes=3000-"]
    assert leftovers() == ["tiny.bin"]


def test_partial_is_kept_and_resumed_by_the_next_call(server, monkeypatch):
    monkeypatch.setattr(weights.transport, "RETRIES", 0)
    server.truncate["/good.bin"] = 4000
    spec(urls=[server.url("/good.bin")])
    with pytest.raises(WeightsError, match="run again to resume"):
        weights.fetch("tiny.bin")
    part = weights.weights_dir() / "tiny.bin.part"
    assert part.stat().st_size == 4000 and not weights.target("tiny.bin").exists()
    assert weights.fetch("tiny.bin").read_bytes() == DATA
    assert server.requests_for("/good.bin") == [None, "bytes=4000-"]
    assert leftovers() == ["tiny.bin"]


def test_complete_partial_gets_416_and_is_accepted(server):
    spec(urls=[server.url("/good.bin")])
    d = weights.weights_dir()
    d.mkdir(parents=True)
    (d / "tiny.bin.part").write_bytes(DATA)
    (d / "tiny.bin.part.json").write_text(json.dumps({"url": server.url("/good.bin")}))
    assert weights.fetch("tiny.bin").read_bytes() == DATA
    assert server.requests_for("/good.bin") == [f"bytes={len(DATA)}-"]


def test_server_without_ranges_restarts_from_zero(server):
    server.ranges = False
    spec(urls=[server.url("/good.bin")])
    d = weights.weights_dir()
    d.mkdir(parents=True)
    (d / "tiny.bin.part").write_bytes(DATA[:500])
    (d / "tiny.bin.part.json").write_text(json.dumps({"url": server.url("/good.bin")}))
    assert weights.fetch("tiny.bin").read_bytes() == DATA


def test_partial_from_another_source_is_not_resumed(server):
    spec(urls=[server.url("/good.bin")])
    d = weights.weights_dir()
    d.mkdir(parents=True)
    (d / "tiny.bin.part").write_bytes(OTHER[:500])
    (d / "tiny.bin.part.json").write_text(json.dumps({"url": "http://elsewhere/x"}))
    assert weights.fetch("tiny.bin").read_bytes() == DATA
    assert server.requests_for("/good.bin") == [None]


def test_hash_mismatch_fails_and_leaves_nothing(server):
    spec(urls=[server.url("/bad.bin")])
    with pytest.raises(WeightsError) as err:
        weights.fetch("tiny.bin")
    msg = str(err.value)
    assert "tiny.bin" in msg and "sha256" in msg and hashlib.sha256(OTHER).hexdigest() in msg
    assert leftovers() == []


def test_size_mismatch_fails(server):
    server.files["/short.bin"] = DATA[:-1]
    spec(urls=[server.url("/short.bin")], sha256=None)
    with pytest.raises(WeightsError, match="size 10243 bytes, expected 10244"):
        weights.fetch("tiny.bin")
    assert leftovers() == []


def test_falls_back_through_sources(server):
    urls = [f"http://127.0.0.1:{closed_port()}/x", server.url("/missing"), server.url("/bad.bin"),
            server.url("/good.bin")]
    spec(urls=urls)
    assert weights.fetch("tiny.bin").read_bytes() == DATA
    assert [p for p, _ in server.log] == ["/missing", "/bad.bin", "/good.bin"]
    assert leftovers() == ["tiny.bin"]


def test_unverified_hash_that_differs_only_warns(server, capsys):
    spec(urls=[server.url("/bad.bin")], size=None, sha256_verified=False)
    p = weights.fetch("tiny.bin")
    assert p.read_bytes() == OTHER
    err = capsys.readouterr().err
    assert hashlib.sha256(OTHER).hexdigest() in err and "unverified" in err
    assert weights.verify("tiny.bin").state == weights.DIFFERS


def test_unknown_hash_prints_the_real_one(server, capsys):
    spec(urls=[server.url("/good.bin")], size=None, sha256=None)
    weights.fetch("tiny.bin")
    assert SHA in capsys.readouterr().err
    st = weights.verify("tiny.bin")
    assert st.state == weights.PRESENT and st.sha256 == SHA


def test_web_page_instead_of_file_is_rejected(server):
    server.files["/quota"] = b"<!DOCTYPE html><html><body>Quota exceeded</body></html>"
    spec(urls=[server.url("/quota")], size=None, sha256=None)
    with pytest.raises(WeightsError, match="web page"):
        weights.fetch("tiny.bin")
    assert leftovers() == []


def test_trusted_prefix_is_enforced_even_with_unverified_hash(server):
    sha_other = hashlib.sha256(OTHER).hexdigest()
    spec(urls=[server.url("/bad.bin")], size=None, sha256=SHA, sha256_verified=False, sha256_prefix=SHA[:8])
    with pytest.raises(WeightsError, match=f"starting with {SHA[:8]}"):
        weights.fetch("tiny.bin")
    assert sha_other[:8] != SHA[:8]


def test_google_drive_sources_go_through_gdown(server, monkeypatch):
    import gdown  # a dependency: missing must fail, not skip
    calls = []

    def fake_download(id=None, output=None, quiet=False, resume=False, **kw):
        calls.append(id)
        if id == "QUOTA":
            raise RuntimeError("Too many users have viewed or downloaded this file recently")
        Path(output).write_bytes(DATA)
        return output

    monkeypatch.setattr(gdown, "download", fake_download)
    spec(urls=["gdrive://QUOTA", "gdrive://GOOD", server.url("/good.bin")])
    assert weights.fetch("tiny.bin").read_bytes() == DATA
    assert calls == ["QUOTA", "GOOD"] and server.log == []
    assert leftovers() == ["tiny.bin"]


# -- offline -------------------------------------------------------------------------------------


def _assert_actionable(msg: str, s: weights.WeightsSpec, source: str):
    assert "\n" not in msg
    assert s.name in msg and s.description in msg and source in msg
    assert str(weights.target(s)) in msg
    assert f"counterface weights import {s.name} FILE" in msg


def test_offline_fails_without_any_request(server, monkeypatch):
    monkeypatch.setenv("COUNTERFACE_OFFLINE", "1")
    s = spec(urls=["gdrive://abc123", server.url("/good.bin")])
    with pytest.raises(WeightsError) as err:
        weights.fetch("tiny.bin")
    _assert_actionable(str(err.value), s, server.url("/good.bin"))
    assert "https://drive.google.com/uc?id=abc123" in str(err.value)
    assert "COUNTERFACE_OFFLINE" in str(err.value)
    assert server.log == [] and err.value.exit_code == 4


def test_unreachable_source_fails_fast_with_the_same_advice():
    url = f"http://127.0.0.1:{closed_port()}/tiny.bin"
    s = spec(urls=[url])
    t0 = time.monotonic()
    with pytest.raises(WeightsError) as err:
        weights.fetch("tiny.bin")
    assert time.monotonic() - t0 < 5
    _assert_actionable(str(err.value), s, url)
    assert leftovers() == []


def test_fetch_without_download_does_not_touch_the_network(server):
    spec(urls=[server.url("/good.bin")])
    with pytest.raises(WeightsError, match="not in the cache"):
        weights.fetch("tiny.bin", download=False)
    assert server.log == []


# -- locate_weights hook -------------------------------------------------------------------------


class _Locator:
    def __init__(self, mapping):
        self.mapping = mapping

    @counterface.hookimpl
    def locate_weights(self, name):
        return self.mapping.get(name)


@pytest.fixture
def locator():
    names = []

    def install(mapping):
        names.append(plugins.register_plugin(_Locator(mapping), name=f"wtest-locator-{len(names)}"))

    yield install
    for n in names:
        plugins.unregister_plugin(n)


def test_locate_weights_hook_wins_over_cache_and_sources(server, locator, tmp_path):
    mirror = tmp_path / "lab" / "tiny.bin"
    mirror.parent.mkdir()
    mirror.write_bytes(DATA)
    spec(urls=[server.url("/good.bin")])
    locator({"tiny.bin": str(mirror)})
    assert weights.fetch("tiny.bin") == mirror
    assert weights.path("tiny.bin") == mirror
    assert server.log == [] and leftovers() == []


def test_located_file_with_wrong_hash_is_refused(locator, tmp_path):
    bad = tmp_path / "bad.bin"
    bad.write_bytes(OTHER)
    spec()
    locator({"tiny.bin": bad})
    with pytest.raises(WeightsError, match="locate_weights"):
        weights.fetch("tiny.bin")


def test_located_path_that_does_not_exist_is_reported(locator, tmp_path, monkeypatch):
    monkeypatch.setenv("COUNTERFACE_OFFLINE", "1")
    spec(urls=["https://example.invalid/tiny.bin"])
    locator({"tiny.bin": tmp_path / "nowhere.bin"})
    with pytest.raises(WeightsError, match="nowhere.bin, which does not exist"):
        weights.fetch("tiny.bin")


def test_core_default_locator_returns_none():
    assert weights.located("anything.pt") is None


# -- resolve ------------------------------------------------------------------------------------


def test_resolve_paths_and_names(tmp_path, server):
    f = tmp_path / "mine.pt"
    f.write_bytes(b"123")
    assert weights.resolve(f) == f and weights.resolve(str(f)) == f
    spec(urls=[server.url("/good.bin")])
    assert weights.resolve("tiny.bin").read_bytes() == DATA
    with pytest.raises(WeightsError, match="not found"):
        weights.resolve(tmp_path / "missing.pt")
    with pytest.raises(WeightsError, match="neither an existing file nor a known"):
        weights.resolve("nothing.pt")


# -- import and verify -----------------------------------------------------------------------------


def test_import_good_file(tmp_path):
    spec()
    src = tmp_path / "dl" / "tiny.bin"
    src.parent.mkdir()
    src.write_bytes(DATA)
    mtime = src.stat().st_mtime_ns
    st = weights.import_file("tiny.bin", src)
    assert st.state == weights.VERIFIED and st.sha256 == SHA
    assert weights.target("tiny.bin").read_bytes() == DATA
    assert src.read_bytes() == DATA and src.stat().st_mtime_ns == mtime  # input untouched
    assert weights.fetch("tiny.bin", download=False) == weights.target("tiny.bin")


def test_import_bad_file_is_refused_and_leaves_nothing(tmp_path):
    spec()
    src = tmp_path / "bad.bin"
    src.write_bytes(OTHER)
    with pytest.raises(WeightsError, match="nothing was imported"):
        weights.import_file("tiny.bin", src)
    assert leftovers() == []


def test_import_unknown_hash_reports_the_real_one(tmp_path):
    spec(sha256=None, size=None)
    src = tmp_path / "x.bin"
    src.write_bytes(OTHER)
    st = weights.import_file("tiny.bin", src)
    assert st.state == weights.PRESENT and st.sha256 == hashlib.sha256(OTHER).hexdigest()
    assert st.sha256 in st.message


def test_import_missing_source(tmp_path):
    spec()
    with pytest.raises(WeightsError, match="is not a file"):
        weights.import_file("tiny.bin", tmp_path / "nope")


def test_import_into_managed_folder(tmp_path):
    import torch

    s = spec("net-1234abcd.pth", sha256=None, size=None, managed_by="face-alignment")
    src = tmp_path / "net.pth"
    torch.save({"w": torch.zeros(2)}, src)
    st = weights.import_file(s.name, src)
    assert st.path == tmp_path / "torch" / "hub" / "checkpoints" / s.name
    assert st.path.read_bytes() == src.read_bytes()


def test_import_refuses_what_cannot_be_a_checkpoint(tmp_path, photos):
    import pickle

    import torch

    spec("model.pt", sha256=None, size=None)
    for bad, why in [(photos / "astronaut_small.jpg", "not a PyTorch checkpoint"),
                     (tmp_path / "page.pt", "web page"), (tmp_path / "empty.pt", "not a PyTorch checkpoint")]:
        if bad.parent == tmp_path:
            bad.write_bytes(b"<!DOCTYPE html><html>quota</html>" if "page" in bad.name else b"")
        with pytest.raises(WeightsError, match=why):
            weights.import_file("model.pt", bad)
        assert not weights.target("model.pt").exists()
    legacy = tmp_path / "legacy.pt"  # torch < 1.6 wrote a bare pickle stream
    legacy.write_bytes(pickle.dumps({"w": 1}, protocol=2))
    assert weights.import_file("model.pt", legacy).path.is_file()
    modern = tmp_path / "modern.pt"
    torch.save({"w": torch.ones(1)}, modern)
    assert weights.import_file("model.pt", modern).path.read_bytes() == modern.read_bytes()


def test_verify_memoises_hashes_and_notices_changes(tmp_path, monkeypatch):
    spec()
    src = tmp_path / "t.bin"
    src.write_bytes(DATA)
    weights.import_file("tiny.bin", src)
    t = weights.target("tiny.bin")

    class NoHashing:
        @staticmethod
        def sha256():
            raise AssertionError("re-hashed a file whose hash is memoised")

    monkeypatch.setattr(weights.registry, "hashlib", NoHashing)
    assert weights.verify("tiny.bin").state == weights.VERIFIED
    assert weights.status("tiny.bin").state == weights.VERIFIED
    monkeypatch.setattr(weights.registry, "hashlib", hashlib)
    t.write_bytes(OTHER)  # same size, new content and mtime
    os.utime(t, ns=(t.stat().st_atime_ns, t.stat().st_mtime_ns + 10**9))
    assert weights.status("tiny.bin").state == weights.PRESENT  # not hashed yet
    st = weights.verify("tiny.bin")
    assert st.state == weights.MISMATCH and not st.ok
    with pytest.raises(WeightsError, match="corrupt or not the expected file"):
        weights.fetch("tiny.bin")


def test_status_of_missing_file():
    spec()
    st = weights.status("tiny.bin")
    assert st.state == weights.MISSING and not st.ok and str(weights.target("tiny.bin")) in st.message


def test_judge_states():
    s = weights.WeightsSpec("a", "d", size=3, sha256=SHA, sha256_verified=True)
    assert weights.judge(s, 4, SHA)[0] == weights.MISMATCH
    assert weights.judge(s, 3, None)[0] == weights.PRESENT
    assert weights.judge(s, 3, SHA)[0] == weights.VERIFIED
    assert weights.judge(s, 3, "0" * 64)[0] == weights.MISMATCH
    u = weights.WeightsSpec("a", "d", sha256=SHA)
    assert weights.judge(u, 3, "0" * 64)[0] == weights.DIFFERS
    p = weights.WeightsSpec("a", "d", sha256_prefix=SHA[:8])
    assert weights.judge(p, 3, SHA)[0] == weights.VERIFIED
    assert weights.judge(p, 3, "0" * 64)[0] == weights.MISMATCH
    assert weights.judge(weights.WeightsSpec("a", "d"), 3, SHA)[0] == weights.PRESENT


def test_wrong_size_is_a_mismatch_without_hashing(monkeypatch):
    spec()
    t = weights.target("tiny.bin")
    t.parent.mkdir(parents=True)
    t.write_bytes(DATA[:100])

    class NoHashing:
        @staticmethod
        def sha256():
            raise AssertionError("hashed a file whose size is already wrong")

    monkeypatch.setattr(weights.registry, "hashlib", NoHashing)
    st = weights.verify("tiny.bin")
    assert st.state == weights.MISMATCH and "size 100 bytes" in st.message


def test_concurrent_fetches_download_once(server):
    import threading

    spec(urls=[server.url("/good.bin")])
    results, errors = [], []

    def work():
        try:
            results.append(weights.fetch("tiny.bin"))
        except Exception as exc:  # noqa: BLE001
            errors.append(exc)

    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and len(results) == 3 and len(set(results)) == 1
    assert results[0].read_bytes() == DATA and len(server.requests_for("/good.bin")) == 1
