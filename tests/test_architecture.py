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
