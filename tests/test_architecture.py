"""The layering rules of docs/architecture.md, checked on the source (import statements)."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "alloy_nb"
JUPYTER_PACKAGES = {"IPython", "ipywidgets", "traitlets", "ipykernel", "comm"}


def _imports(path: Path) -> list[tuple[str, bool]]:
    """(module, at_top_level) for every import in a file."""
    tree = ast.parse(path.read_text(encoding="utf-8"))
    top = {id(n) for n in tree.body}
    found: list[tuple[str, bool]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(a.name, id(node) in top) for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, id(node) in top))
    return found


def _modules(under: str = "") -> list[Path]:
    return sorted((PKG / under).rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(PKG.parent).as_posix()


def test_core_never_imports_jupyter_packages() -> None:
    # the sanctioned exception: load/unload_ipython_extension import inside their bodies
    offenders = []
    for path in _modules():
        if "jupyter" in path.relative_to(PKG).parts or path.name == "nest.py":
            continue
        for name, top in _imports(path):
            if name.split(".")[0] in JUPYTER_PACKAGES:
                offenders.append(f"{_rel(path)} imports {name}")
            if name.startswith("alloy_nb.jupyter") and top:
                offenders.append(f"{_rel(path)} imports {name} at top level")
    assert offenders == []


def test_testing_package_is_an_independent_reading_of_the_protocols() -> None:
    # helpers.py (the reference's Alloy.Testing helpers) drives the real loop by design,
    # importing it only inside its functions; the fake server and fixtures stay independent
    offenders = [
        f"{_rel(p)} imports {name}"
        for p in _modules("testing")
        for name, top in _imports(p)
        if name.startswith("alloy_nb") and not name.startswith("alloy_nb.testing")
        and (p.name != "helpers.py" or top)
    ]
    assert offenders == []


def test_providers_and_tools_do_not_import_each_other() -> None:
    offenders = [
        f"{_rel(p)} imports {name}"
        for sub, other in (("providers", "alloy_nb.tools"), ("tools", "alloy_nb.providers"))
        for p in _modules(sub)
        for name, _ in _imports(p)
        if name.startswith(other)
    ]
    assert offenders == []


def test_concrete_providers_do_not_import_each_other() -> None:
    concrete = {"anthropic", "openai", "openai_compat", "scripted", "demo"}
    offenders = [
        f"{p.stem} imports {name}"
        for p in _modules("providers")
        if p.stem in concrete
        for name, _ in _imports(p)
        if name.startswith("alloy_nb.providers.") and name.rsplit(".", 1)[-1] in concrete - {p.stem}
    ]
    assert offenders == []


def test_jupyter_layer_uses_the_public_core_not_the_loop() -> None:
    offenders = [
        f"{_rel(p)} imports {name}"
        for p in _modules("jupyter")
        for name, _ in _imports(p)
        if name.startswith("alloy_nb.agent")
    ]
    assert offenders == []


@pytest.mark.parametrize("module", ["alloy_nb", "alloy_nb.session", "alloy_nb.providers"])
def test_importing_the_core_loads_no_jupyter_package(module: str) -> None:
    code = (
        f"import sys, {module}; "
        f"bad = sorted(m for m in {sorted(JUPYTER_PACKAGES)!r} if m in sys.modules); "
        "print(','.join(bad))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout.strip()
    assert out == ""


# ---- no import circle ----------------------------------------------------------------------


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(PKG.parent).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_type_checking(node: ast.If) -> bool:
    test = node.test
    return (isinstance(test, ast.Name) and test.id == "TYPE_CHECKING") or (
        isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING")


def _module_level_imports(body: list[ast.stmt]) -> list[ast.Import | ast.ImportFrom]:
    """Imports that run when the module is imported: not inside functions or classes, not
    under ``if TYPE_CHECKING``; ``try``/``with``/other ``if`` blocks count."""
    found: list[ast.Import | ast.ImportFrom] = []
    for node in body:
        if isinstance(node, ast.Import | ast.ImportFrom):
            found.append(node)
        elif isinstance(node, ast.If):
            if not _is_type_checking(node):
                found += _module_level_imports(node.body) + _module_level_imports(node.orelse)
        elif isinstance(node, ast.Try):
            for part in (node.body, node.orelse, node.finalbody, *(h.body for h in node.handlers)):
                found += _module_level_imports(part)
        elif isinstance(node, ast.With):
            found += _module_level_imports(node.body)
    return found


def _import_graph() -> dict[str, set[str]]:
    """alloy_nb module -> the alloy_nb modules it imports at module level. ``from pkg import
    name`` points at ``pkg.name`` when that is a module, else at ``pkg``; a parent package's
    ``__init__`` running first is Python's doing, not an edge."""
    paths = {_module_name(p): p for p in _modules()}
    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        edges: set[str] = set()
        for node in _module_level_imports(ast.parse(path.read_text(encoding="utf-8")).body):
            if isinstance(node, ast.Import):
                edges |= {a.name for a in node.names if a.name in paths}
                continue
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parts = parts[: len(parts) - (node.level - 1)]
                base = ".".join([*parts, *([node.module] if node.module else [])])
            for alias in node.names:
                target = f"{base}.{alias.name}"
                edges.add(target if target in paths else base)
        graph[name] = {e for e in edges if e in paths and e != name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in sorted(graph.get(v, ())):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_cycle_finder_finds_a_circle() -> None:
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


def test_import_graph_sees_the_real_imports() -> None:
    graph = _import_graph()
    assert "alloy_nb.session._queue" in graph["alloy_nb.session._session"]
    assert "alloy_nb.session._store" in graph["alloy_nb.session._session"]  # from pkg import mod
    assert "alloy_nb._sync" in graph["alloy_nb.session._queue"]
    assert "alloy_nb.agent.turn" in graph["alloy_nb.agent"]


def test_no_import_circle_in_alloy_nb() -> None:
    graph = _import_graph()
    cycles = [
        f"{' <-> '.join(c)}: " + "; ".join(f"{m} -> {sorted(graph[m] & set(c))}" for m in c)
        for c in _cycles(graph)
    ]
    assert cycles == []
