"""Packaging: dependency ranges (no exact torch pin), the constraints file, and CI running exactly the
README's install and test commands."""

from __future__ import annotations

import re
import shlex
import sys
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parents[2]


def _requirements() -> list[str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    reqs = list(project["dependencies"])
    for extra in project.get("optional-dependencies", {}).values():
        reqs += extra
    return reqs


def _name(req: str) -> str:
    return re.split(r"[<>=!~;\[ ]", req, maxsplit=1)[0].strip().lower().replace("_", "-")


def test_no_dependency_is_pinned_exactly():
    reqs = _requirements()
    assert any(_name(r) == "torch" for r in reqs) and any(_name(r) == "torchvision" for r in reqs)
    for r in reqs:
        spec = r.split(";")[0]
        assert "==" not in spec and "===" not in spec, f"exact pin in pyproject.toml: {r}"


def test_torch_has_a_lower_bound():
    for r in _requirements():
        if _name(r) in ("torch", "torchvision"):
            assert ">=" in r, r


def test_constraints_pin_every_declared_dependency_to_one_version():
    pins = {}
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line:
            name, _, version = line.partition("==")
            assert version, f"constraints.txt line is not NAME==VERSION: {line}"
            pins[_name(name)] = version
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    unpinned = {_name(r) for r in _requirements() if "python_version" not in r} - set(pins)
    assert not unpinned, f"declared but not in constraints.txt: {sorted(unpinned)}"


def _readme_quick_start() -> list[str]:
    text = (ROOT / "README.md").read_text()
    section = text.split("## Install and test", 1)[1]
    block = section.split("```bash", 1)[1].split("```", 1)[0]
    return [ln.strip() for ln in block.strip().splitlines() if ln.strip()]


def test_ci_runs_exactly_the_readme_commands():
    readme = _readme_quick_start()
    assert readme[0].startswith("python3 -m pip install") and "-c constraints.txt" in readme[0]
    ci = [ln.strip() for ln in (ROOT / ".ci" / "run").read_text().splitlines()
          if ln.strip() and not ln.startswith("#") and not ln.startswith(("set ", "cd "))]
    assert [shlex.split(c) for c in ci] == [shlex.split(c) for c in readme]
