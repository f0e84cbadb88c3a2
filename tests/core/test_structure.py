"""Code structure: no import cycle among core modules, core never imports a plugin, no Python file in
core/ or plugins/ over 600 lines. Imports are read with ``ast`` (function-local ones included: a
cycle hidden inside a function is still a cycle)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
CORE = ROOT / "core"
MAX_LINES = 600


def core_modules() -> dict[str, tuple[Path, bool]]:
    """dotted name -> (file, is a package ``__init__``) for every module of ``counterface``."""
    out = {}
    for path in sorted((CORE / "counterface").rglob("*.py")):
        parts = list(path.relative_to(CORE).with_suffix("").parts)
        is_pkg = parts[-1] == "__init__"
        out[".".join(parts[:-1] if is_pkg else parts)] = (path, is_pkg)
    return out


def imported(name: str, path: Path, is_pkg: bool, modules=None) -> set[str]:
    """Every absolute module name ``path`` imports, relative imports resolved. ``from X import y``
    imports the module ``X.y`` when that is a module (a name of ``modules``), else ``X``."""
    modules = core_modules() if modules is None else modules
    here = name.split(".") if is_pkg else name.split(".")[:-1]
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = here[: len(here) - node.level + 1] if node.level else []
            mod = ".".join(base + ([node.module] if node.module else []))
            for a in node.names:
                sub = f"{mod}.{a.name}"
                found.add(sub if sub in modules else mod)
    return found


def import_graph() -> dict[str, set[str]]:
    mods = core_modules()
    return {n: {m for m in imported(n, p, pkg, mods) if m in mods and m != n} for n, (p, pkg) in mods.items()}


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan, iterative)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for root in sorted(graph):
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            v, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[v] = min(low[v], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[v])
            if low[v] == index[v]:
                comp = []
                while True:
                    w = stack.pop()
                    on_stack.discard(w)
                    comp.append(w)
                    if w == v:
                        break
                if len(comp) > 1:
                    found.append(sorted(comp))
    return found


def test_the_cycle_finder_finds_a_cycle():
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert cycles({"a": {"b"}, "b": set()}) == []


def test_the_import_reader_resolves_relative_imports(tmp_path):
    p = tmp_path / "m.py"
    p.write_text("from . import registry\nfrom .errors import X\ndef f():\n    from ..y import z\n")
    got = imported("counterface.cli.m", p, False, {"counterface.cli.registry": None})
    assert got == {"counterface.cli.registry", "counterface.cli.errors", "counterface.y"}


def test_no_import_cycle_among_core_modules():
    graph = import_graph()
    assert graph["counterface.registry"] >= {"counterface.plugins"}  # the graph is really read
    assert cycles(graph) == []


def test_plugins_module_does_not_import_the_registries():
    graph = import_graph()
    assert not graph["counterface.plugins"] & {"counterface.registry", "counterface.weights"}


def test_core_never_imports_a_plugin():
    plugin_packages = {p.name for p in (ROOT / "plugins").iterdir() if (p / "__init__.py").is_file()}
    assert "counterface_nets" in plugin_packages
    offenders = []
    for name, (path, is_pkg) in core_modules().items():
        for mod in imported(name, path, is_pkg):
            if mod.split(".")[0] in plugin_packages:
                offenders.append(f"{path.relative_to(ROOT)} imports {mod}")
    assert offenders == []


def test_no_python_file_over_600_lines():
    long = {str(p.relative_to(ROOT)): n for folder in ("core", "plugins") for p in (ROOT / folder).rglob("*.py")
            if (n := len(p.read_text(encoding="utf-8").splitlines())) > MAX_LINES}
    assert long == {}, f"split these (over {MAX_LINES} lines): {long}"
