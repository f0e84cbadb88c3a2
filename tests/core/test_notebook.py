"""examples/quickstart.ipynb runs, offline, on the tiny preset: every cell, in a fresh kernel."""

from __future__ import annotations

import os
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOK = ROOT / "examples" / "quickstart.ipynb"


def test_quickstart_notebook_runs_offline_on_the_tiny_preset(tmp_path, monkeypatch):
    import nbclient  # the `test` extra installs nbclient, nbformat and ipykernel
    import nbformat

    nb = nbformat.read(NOTEBOOK, as_version=4)
    setup = nb.cells[1].source
    assert 'PRESET = "tiny"' in setup, "the notebook must default to the offline preset"
    # the kernel imports this checkout, as the test process does
    paths = [str(ROOT / "core"), str(ROOT / "plugins"), *filter(None, os.environ.get("PYTHONPATH", "").split(os.pathsep))]
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(dict.fromkeys(paths)))
    monkeypatch.setenv("COUNTERFACE_PROGRESS", "0")
    client = nbclient.NotebookClient(nb, timeout=600, kernel_name="python3", allow_errors=False,
                                     resources={"metadata": {"path": str(tmp_path)}})
    start = time.monotonic()
    try:
        client.execute()
    except nbclient.exceptions.CellExecutionError as exc:
        pytest.fail(f"a notebook cell failed:\n{str(exc)[-3000:]}")
    seconds = time.monotonic() - start
    outputs = {i: c.get("outputs", []) for i, c in enumerate(nb.cells) if c.cell_type == "code"}
    shown = [o for outs in outputs.values() for o in outs if o.get("output_type") == "execute_result"]
    html = [o["data"]["text/html"] for o in shown if "text/html" in o.get("data", {})]
    assert len(html) >= 2 and all("data:image/png;base64," in h for h in html)  # the pair and the sweep, inline
    assert (tmp_path / "runs" / "demo" / "results.csv").is_file()
    assert (tmp_path / "runs" / "demo" / "report" / "index.html").is_file()
    assert (tmp_path / "polar" / "rho.csv").is_file()
    print(f"notebook executed in {seconds:.1f} s with {sys.executable}")
