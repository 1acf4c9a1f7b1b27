"""Notebook tools on a plain dict namespace: listing, inspection caps, opt-in run_python."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alloy_nb.errors import ToolError
from alloy_nb.tools import Tool, ToolResult
from alloy_nb.tools.notebook import (
    MAX_CHARS,
    InspectVariable,
    ListVariables,
    RunPython,
    notebook_tools,
)


@pytest.fixture
def ns() -> dict[str, Any]:
    df = pd.DataFrame(
        {
            "price": [1.5, None, 3.0, 4.0],
            "name": ["a", "b", None, "d"],
            "qty": [1, 2, 3, 4],
        }
    )
    return {
        "df": df,
        "arr": np.arange(12, dtype=float).reshape(3, 4),
        "items": [1, "two", 3.0],
        "config": {"lr": 0.1, "layers": [1, 2]},
        "big": "x" * 100_000,
        "n": 42,
        "np": np,
        "_private": 1,
        "In": ["", "x = 1"],
        "Out": {},
        "exit": object(),
        "get_ipython": lambda: None,
        "helper": len,
        "Model": type("Model", (), {}),
    }


def _inspect(ns: dict[str, Any], name: str) -> str:
    return InspectVariable().execute({"name": name}, {"namespace": ns})


def _run(code: str, **context: Any) -> ToolResult:
    return asyncio.run(RunPython().execute({"code": code}, context))


def test_list_variables(ns: dict[str, Any]) -> None:
    out = ListVariables().execute({}, {"namespace": ns})
    lines = out.splitlines()
    names = [line.split(":")[0] for line in lines]
    assert names == ["df", "arr", "items", "config", "big", "n"]
    assert "df: pandas.DataFrame — 4 rows × 3 columns" in lines
    assert "arr: numpy.ndarray — shape (3, 4), dtype float64" in lines
    assert "items: list — len 3" in lines
    assert "n: int — 42" in lines
    assert len(out) < 1000  # the 100 000-char string is summarised, not dumped


def test_list_variables_with_functions(ns: dict[str, Any]) -> None:
    out = ListVariables().execute({"include_functions": True}, {"namespace": ns})
    assert "helper:" in out and "Model:" in out
    assert "get_ipython" not in out and "np:" not in out


def test_list_variables_is_capped() -> None:
    many = {f"v{i}": i for i in range(500)}
    out = ListVariables().execute({}, {"namespace": many})
    assert out.endswith("... and 300 more")
    assert len(out) <= MAX_CHARS + 100


def test_list_variables_empty() -> None:
    assert "No user variables" in ListVariables().execute({}, {"namespace": {"_x": 1}})


def test_namespace_required() -> None:
    with pytest.raises(ToolError, match=r"context\['namespace'\]"):
        ListVariables().execute({}, {})


def test_inspect_dataframe(ns: dict[str, Any]) -> None:
    out = _inspect(ns, "df")
    assert "type: pandas.DataFrame" in out
    assert "shape: 4 rows × 3 columns" in out
    assert "price: float64" in out
    assert "missing values per column:" in out
    assert "price: 1 (25.0%)" in out and "name: 1 (25.0%)" in out and "qty: 0 (0.0%)" in out
    assert "head(5):" in out and "describe():" in out
    assert "mean" in out and "2.833333" in out


def test_inspect_large_dataframe_is_capped() -> None:
    wide = pd.DataFrame(np.arange(200 * 300).reshape(200, 300))
    out = _inspect({"wide": wide}, "wide")
    assert len(out) <= MAX_CHARS + 100
    assert "shape: 200 rows × 300 columns" in out


def test_inspect_empty_dataframe() -> None:
    out = _inspect({"e": pd.DataFrame()}, "e")
    assert "shape: 0 rows × 0 columns" in out


def test_inspect_series() -> None:
    out = _inspect({"s": pd.Series([1.0, None, 3.0], name="s")}, "s")
    assert "length: 3" in out and "missing values: 1" in out and "describe():" in out


def test_inspect_numpy_array(ns: dict[str, Any]) -> None:
    out = _inspect(ns, "arr")
    assert "shape: (3, 4)" in out and "dtype: float64" in out
    assert "min: 0.0  max: 11.0  mean: 5.5" in out


def test_inspect_numpy_all_nan_and_huge() -> None:
    out = _inspect({"a": np.full(5, np.nan)}, "a")
    assert "NaN count: 5" in out
    out = _inspect({"a": np.zeros((1000, 1000))}, "a")
    assert len(out) < 2000 and "..." in out


def test_inspect_list_and_dict(ns: dict[str, Any]) -> None:
    out = _inspect(ns, "items")
    assert "len: 3" in out and "int ×1" in out and "'two'" in out
    out = _inspect(ns, "config")
    assert "len: 2" in out and "'lr': float" in out and "'layers': list — len 2" in out


def test_inspect_long_list_preview() -> None:
    out = _inspect({"xs": list(range(10_000))}, "xs")
    assert "len: 10000" in out and "... and 9990 more" in out


def test_inspect_big_string_is_capped(ns: dict[str, Any]) -> None:
    out = _inspect(ns, "big")
    assert "len: 100000 chars" in out
    assert len(out) <= MAX_CHARS + 100
    assert "... [truncated " in out and "chars] ..." in out


def test_inspect_attribute_and_missing_name(ns: dict[str, Any]) -> None:
    assert "type: pandas.Index" in _inspect(ns, "df.columns")
    with pytest.raises(ToolError, match=r"No variable named 'dff'.*Did you mean: df"):
        _inspect(ns, "dff")
    with pytest.raises(ToolError, match="not a plain attribute"):
        _inspect(ns, "df.__class__")


def test_inspect_object_with_broken_repr() -> None:
    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("nope")

    out = _inspect({"b": Broken()}, "b")
    assert "repr: <Broken instance at" in out


def test_importing_needs_neither_ipython_nor_pandas() -> None:
    code = (
        "import sys, alloy_nb.tools.notebook as m; "
        "m.InspectVariable().execute({'name': 'x'}, {'namespace': {'x': [1, 2]}}); "
        "bad = {'IPython', 'pandas', 'numpy'} & set(sys.modules); assert not bad, bad"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_notebook_tools_default_excludes_run_python() -> None:
    names = [t.name for t in notebook_tools()]
    assert names == ["list_variables", "inspect_variable"]
    with_run = notebook_tools(run_python=True)
    assert [t.name for t in with_run][-1] == "run_python"
    assert all(isinstance(t, Tool) for t in with_run)


def test_run_python_refused_by_default() -> None:
    ns: dict[str, Any] = {}
    with pytest.raises(ToolError, match=r"run_python is disabled.*allow_run_python"):
        _run("x = 1", namespace=ns)
    assert "x" not in ns


def test_run_python_allowed() -> None:
    ns: dict[str, Any] = {"a": 2}
    result = _run("b = a * 10\nprint('hello')\nb + 1", namespace=ns, allow_run_python=True)
    assert not result.is_error
    assert result.content == "hello\nOut: 21"
    assert ns["b"] == 20


def test_run_python_no_value_and_no_output() -> None:
    assert _run("x = 1", namespace={}, allow_run_python=True).content == "(no output)"
    assert _run("None", namespace={}, allow_run_python=True).content == "(no output)"


def test_run_python_dataframe_value(ns: dict[str, Any]) -> None:
    result = _run("df.head(2)", namespace=ns, allow_run_python=True)
    assert result.content.startswith("Out: ") and "price" in result.content


def test_run_python_error_returns_traceback_tail() -> None:
    ns: dict[str, Any] = {}
    result = _run(
        "print('before')\ndef f():\n    return 1 / 0\nf()", namespace=ns, allow_run_python=True
    )
    assert result.is_error
    assert result.content.startswith("before\n")
    assert "ZeroDivisionError: division by zero" in result.content
    assert "return 1 / 0" in result.content  # the user's source line is shown
    assert "notebook.py" not in result.content  # our own frames are dropped


def test_run_python_syntax_error_and_exit() -> None:
    result = _run("def (:", namespace={}, allow_run_python=True)
    assert result.is_error and "SyntaxError" in result.content
    result = _run("raise SystemExit(3)", namespace={}, allow_run_python=True)
    assert result.is_error and "SystemExit" in result.content


def test_run_python_stderr_captured_and_stdout_restored() -> None:
    before = sys.stdout
    result = _run("import sys\nsys.stderr.write('warn\\n')", namespace={}, allow_run_python=True)
    assert result.content.startswith("warn\n")
    assert sys.stdout is before


def test_run_python_top_level_await() -> None:
    ns: dict[str, Any] = {}
    code = "import asyncio\nawait asyncio.sleep(0)\nvalue = 5\nvalue"
    assert _run(code, namespace=ns, allow_run_python=True).content == "Out: 5"


def test_run_python_capture_does_not_swallow_other_tasks(capsys: pytest.CaptureFixture) -> None:
    async def scenario() -> ToolResult:
        async def chatter() -> None:
            await asyncio.sleep(0)
            print("from another task")

        other = asyncio.create_task(chatter())
        result = await RunPython().execute(
            {"code": "import asyncio\nprint('mine')\nawait asyncio.sleep(0.05)"},
            {"namespace": {}, "allow_run_python": True},
        )
        await other
        return result

    result = asyncio.run(scenario())
    assert result.content == "mine\n"
    assert "from another task" in capsys.readouterr().out


def test_run_python_approve_callback() -> None:
    calls: list[tuple[str, str]] = []

    def deny(tool_name: str, code: str) -> bool:
        calls.append((tool_name, code))
        return False

    ns: dict[str, Any] = {}
    with pytest.raises(ToolError, match=r"^Denied by user$"):
        _run("x = 1", namespace=ns, approve=deny, allow_run_python=True)
    assert calls == [("run_python", "x = 1")]
    assert "x" not in ns

    async def allow(tool_name: str, code: str) -> bool:
        await asyncio.sleep(0)
        return True

    assert _run("x = 1\nx", namespace=ns, approve=allow).content == "Out: 1"
    assert ns["x"] == 1


def test_run_python_approver_failure_does_not_run() -> None:
    def broken(tool_name: str, code: str) -> bool:
        raise RuntimeError("widget gone")

    ns: dict[str, Any] = {}
    with pytest.raises(ToolError, match="Approval failed"):
        _run("x = 1", namespace=ns, approve=broken)
    assert ns == {}


def test_run_python_needs_a_dict_namespace() -> None:
    from types import MappingProxyType

    with pytest.raises(ToolError, match="dict namespace"):
        _run("1", namespace=MappingProxyType({}), allow_run_python=True)


def test_run_python_output_is_capped() -> None:
    result = _run("print('y' * 50_000)", namespace={}, allow_run_python=True)
    assert len(result.content) <= MAX_CHARS + 100
    assert "[truncated" in result.content
