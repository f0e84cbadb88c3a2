"""The review page of `counterface report` in a real headless Chromium (Debian's `chromium`, which .ci/run
installs when missing), driven by playwright through the page's own controls: a synthetic batch of
10,000 rows loads within a measured bound, sorts, filters, and the keyboard review exports a CSV that is an
exclusion list; a real tiny-preset batch renders one row per pair without console errors."""

from __future__ import annotations

import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

from counterface import batch, report
from counterface.batch.exclusions import read_exclusions
from counterface.cli import cli

#: the page must be usable within this many seconds with 10,000 rows (measured: well under 1 s on the
#: 2-core CI machine; the bound leaves room for a loaded machine)
LOAD_BOUND_S = 8.0
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
        "--disable-component-update", "--no-first-run"]


def chromium_path() -> str:
    """COUNTERFACE_CHROMIUM, or Debian's chromium on the PATH (playwright's own download is not used)."""
    exe = os.environ.get("COUNTERFACE_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("these tests need Chromium: apt-get install -y chromium (or set COUNTERFACE_CHROMIUM)")
    return exe


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=chromium_path(), args=ARGS)
        try:
            yield b
        finally:
            b.close()


class Page:
    """A fresh browser context (empty localStorage) on one report, recording every console error,
    uncaught exception and failed request."""

    def __init__(self, browser, index: Path):
        self.context = browser.new_context(viewport={"width": 1300, "height": 900}, accept_downloads=True)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.page.on("console", lambda m: self.errors.append(f"console {m.type}: {m.text}") if m.type == "error" else None)
        self.page.on("pageerror", lambda e: self.errors.append(f"page error: {e}"))
        self.page.on("requestfailed", lambda r: self.errors.append(f"request failed: {r.url}"))
        self.url = index.resolve().as_uri()

    def load(self) -> float:
        t = time.perf_counter()
        self.page.goto(self.url)
        self.page.wait_for_selector("body[data-ready='1']", timeout=60_000)
        return time.perf_counter() - t

    def shown(self) -> int:
        return int(self.page.get_attribute("#count", "data-shown"))

    def first_key(self) -> str:
        return self.page.get_attribute(".row[data-pos='0']", "data-key")

    def close(self):
        self.context.close()


# -- a synthetic batch of 10,000 rows ------------------------------------------------------------------
def synthetic_batch(out: Path, n: int = 10_000) -> list[dict]:
    """results.jsonl with ``n`` rows over three shared photo/pair/sidecar triples (no pipeline run)."""
    rng = np.random.default_rng(7)
    (out / "pairs").mkdir(parents=True)
    variants = []
    for v in range(3):
        photo = (np.random.default_rng(v).random((48, 40, 3)) * 255).astype(np.uint8)
        z1 = photo.copy()
        z1[28:36, 14:26] = 255 - z1[28:36, 14:26]  # the "mouth" changed
        Image.fromarray(photo).save(out / f"photo{v}.png")
        Image.fromarray(z1).save(out / "pairs" / f"v{v}_z1.png")
        Image.fromarray(photo).save(out / "pairs" / f"v{v}_z0.png")
        side = {"face": {"landmarks": [[12.0, 14.0], [28.0, 14.0], [20.0, 24.0], [14.0, 32.0], [26.0, 32.0]]},
                "batch": {"meta": {"politician": "", "outlet": ""}}}
        for role in ("z1", "z0"):
            (out / "pairs" / f"v{v}_{role}.json").write_text(json.dumps(side))
        variants.append(v)
    rows = []
    for i in range(n):
        v = i % 3
        lost = rng.random() < 0.03
        s1, s0 = float(rng.normal(0.4, 0.1)), float(rng.normal(0.2, 0.1))
        rows.append({
            "key": f"news/{i:05d}.jpg", "path": str(out / f"photo{v}.png"), "sha256": f"{i:064x}", "job": "j1",
            "face": 0, "alpha": 1.0, "z1": f"pairs/v{v}_z1.png", "z0": f"pairs/v{v}_z0.png",
            "z1_sidecar": f"pairs/v{v}_z1.json", "z0_sidecar": f"pairs/v{v}_z0.json",
            "politician": f"P{i % 7}", "outlet": ["NYT", "WaPo", "Fox"][i % 3],
            "identity": round(float(rng.uniform(0.3, 1.0)), 6), "psnr_outside": round(float(rng.uniform(15, 45)), 4),
            "unchanged_outside_blend": 0.99 if rng.random() < 0.05 else 1.0,
            "score_z": 0.2, "score_z1": None if lost else s1, "score_z0": s0, "score_delta": None if lost else s1 - s0,
            "scorer": "smile",
        })
    (out / "results.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    fails = [{"key": "news/broken.jpg", "reason": "unreadable", "message": "truncated"},
             {"key": "news/crowd.jpg", "reason": "no_face", "message": "no face found"}]
    (out / "failures.jsonl").write_text("".join(json.dumps(f) + "\n" for f in fails))
    return rows


@pytest.fixture(scope="module")
def big(tmp_path_factory):
    out = tmp_path_factory.mktemp("big")
    rows = synthetic_batch(out)
    t = time.perf_counter()
    r = CliRunner().invoke(cli, ["report", str(out), "--no-figures"])
    assert r.exit_code == 0, r.output
    print(f"report of {len(rows)} rows written in {time.perf_counter() - t:.2f} s")
    assert "10000 pairs, 12 thumbnails made" in r.output  # Z, Z1, Z0 and heat map of 3 shared pairs
    return out, rows


def test_ten_thousand_rows_load_fast_and_only_the_visible_window_is_rendered(browser, big):
    out, rows = big
    pg = Page(browser, out / "report" / "index.html")
    elapsed = pg.load()
    print(f"10,000 rows: page ready in {elapsed:.2f} s (script {pg.page.get_attribute('body', 'data-load-ms')} ms)")
    assert elapsed < LOAD_BOUND_S
    assert pg.shown() == len(rows) == 10_000
    rendered = pg.page.locator(".row").count()
    assert 0 < rendered < 40  # virtualised: the visible window only
    assert pg.page.locator(".row[data-pos='0'] img").count() == 4
    assert pg.page.inner_text("#failures-title") == "2 photo(s) failed in the batch"
    assert "news/crowd.jpg: no_face (no face found)" in pg.page.text_content("#failures")  # folded: text, not shown
    # scrolling to the end renders the last rows
    pg.page.eval_on_selector("#viewport", "v => v.scrollTop = v.scrollHeight")
    pg.page.wait_for_selector(f".row[data-pos='{len(rows) - 1}']")
    assert pg.page.get_attribute(f".row[data-pos='{len(rows) - 1}']", "data-key") == rows[-1]["key"]
    pg.page.wait_for_timeout(200)  # thumbnails of the new window load
    assert pg.errors == []
    pg.close()


def test_sorting_and_filtering_by_metric_and_manifest_column(browser, big):
    out, rows = big
    pg = Page(browser, out / "report" / "index.html")
    pg.load()
    p = pg.page
    p.select_option("#sort-column", "identity")
    assert pg.first_key() == min(rows, key=lambda r: r["identity"])["key"]
    p.keyboard.press("j")  # the list takes the keys again after a control was used
    assert p.get_attribute(".row.selected", "data-key") == sorted(rows, key=lambda r: r["identity"])[1]["key"]
    p.click("#sort-dir")
    assert pg.first_key() == max(rows, key=lambda r: r["identity"])["key"]
    p.select_option("#sort-column", "score_delta")  # empty values last in both directions
    assert pg.first_key() == max((r for r in rows if r["score_delta"] is not None), key=lambda r: r["score_delta"])["key"]
    p.select_option("#sort-column", "politician")  # descending, ties in batch order
    assert pg.first_key() == next(r for r in rows if r["politician"] == "P6")["key"]

    p.select_option("#filter-column", "politician")
    p.select_option("#filter-op", "=")
    p.fill("#filter-value", "P3")
    p.click("#filter-add")
    assert pg.shown() == sum(r["politician"] == "P3" for r in rows)
    p.select_option("#filter-column", "identity")
    p.select_option("#filter-op", "<")
    p.fill("#filter-value", "0.5")
    p.click("#filter-add")
    expected = [r for r in rows if r["politician"] == "P3" and r["identity"] < 0.5]
    assert 0 < pg.shown() == len(expected)
    keys = {k for k in p.eval_on_selector_all(".row", "els => els.map(e => e.dataset.key)")}
    assert keys <= {r["key"] for r in expected}
    p.click(".chip >> nth=0 >> .filter-remove")  # drop the politician filter
    assert pg.shown() == sum(r["identity"] < 0.5 for r in rows)
    p.click(".chip >> .filter-remove")
    assert pg.shown() == len(rows)
    p.check("#outliers-only")
    outliers = [r for r in rows if report.outlier_flags(r)]
    assert 0 < pg.shown() == len(outliers) < len(rows)
    assert p.locator(".row.outlier").count() == p.locator(".row").count()
    p.uncheck("#outliers-only")
    p.select_option("#filter-column", "key")
    p.select_option("#filter-op", "contains")
    p.fill("#filter-value", "/0000")
    p.click("#filter-add")  # a small view is rendered whole
    few = [r["key"] for r in rows if "/0000" in r["key"]]
    assert pg.shown() == len(few) == 10 and p.locator(".row").count() == 10
    p.click(".chip >> .filter-remove")
    p.select_option("#filter-column", "identity")
    p.select_option("#filter-op", ">")
    p.fill("#filter-value", "not a number")
    p.click("#filter-add")  # refused with a message, no filter added
    assert "is not a number" in p.inner_text("#count") and p.locator(".chip").count() == 0
    assert pg.errors == []
    pg.close()


def test_keyboard_review_is_exported_as_an_exclusion_list(browser, big, tmp_path):
    out, rows = big
    pg = Page(browser, out / "report" / "index.html")
    pg.load()
    p = pg.page
    for key in ("j", "r", "a", "r", "u", "k"):  # row 1 rejected, row 2 accepted, row 3 rejected then undone
        p.keyboard.press(key)
    assert p.get_attribute(".row.selected", "data-pos") == "2"
    assert "2 decided" in p.inner_text("#decided")
    with p.expect_download() as info:
        p.click("#export")
    target = tmp_path / "review.csv"
    info.value.save_as(target)
    lines = list(csv.DictReader(target.open()))
    assert [(x["key"], x["decision"]) for x in lines] == [(rows[1]["key"], "reject"), (rows[2]["key"], "accept")]
    assert lines[0]["face"] == "0" and float(lines[0]["alpha"]) == 1.0 and lines[0]["sha256"] == rows[1]["sha256"]
    ex = read_exclusions(target)
    assert [i for i, r in enumerate(rows) if ex.rejects(r)] == [1]
    # decisions stay in the browser (localStorage) across reloads, and filter the list
    pg.load()
    assert "2 decided" in p.inner_text("#decided")
    p.select_option("#decision-filter", "reject")
    assert pg.shown() == 1 and pg.first_key() == rows[1]["key"]
    assert pg.errors == []
    pg.close()


# -- the check: a real tiny batch ------------------------------------------------------------------
def test_report_of_a_tiny_batch_renders_one_row_per_pair_without_console_errors(browser, photos, tmp_path):
    manifest = tmp_path / "m.csv"
    manifest.write_text(f"path,politician\n{photos / 'astronaut_small.jpg'},Obama\n")
    out = tmp_path / "out"
    run = lambda *a: subprocess.run([sys.executable, "-m", "counterface", *a], capture_output=True, text=True,
                                    timeout=900, env={**os.environ, "COUNTERFACE_PROGRESS": "0"})
    r = run("batch", str(manifest), "-o", str(out), "--preset", "tiny", "--set", "tuner.latent_steps=2",
            "--set", "tuner.tune_steps=2", "--lpips", "random", "--alphas=0,1")
    assert r.returncode == 0, r.stderr
    r = run("report", str(out))
    assert r.returncode == 0, r.stderr
    index = out / "report" / "index.html"
    assert index.is_file()
    rows = batch.merged_rows(out)
    assert len(rows) == 2
    pg = Page(browser, index)
    pg.load()
    p = pg.page
    assert pg.shown() == len(rows) and p.locator(".row").count() == len(rows)
    assert sorted(p.eval_on_selector_all(".row", "els => els.map(e => e.dataset.key)")) == sorted(r["key"] for r in rows)
    p.wait_for_load_state("load")
    sizes = p.eval_on_selector_all(".row img", "els => els.map(e => e.complete && e.naturalWidth)")
    assert len(sizes) == 4 * len(rows) and all(sizes)  # Z, Z1, Z0 and the heat map of every pair
    figs = p.eval_on_selector_all("#figures img", "els => els.map(e => e.getAttribute('src'))")
    assert figs == ["figures/figure2.png", "figures/figure3.png"]
    p.keyboard.press("r")
    with p.expect_download() as info:
        p.click("#export")
    info.value.save_as(tmp_path / "review.csv")
    assert pg.errors == []
    pg.close()
    r = run("evaluate", str(out), "--lpips", "random", "--exclude", str(tmp_path / "review.csv"))
    assert r.returncode == 0, r.stderr
    assert "1 row(s) excluded by" in r.stdout
