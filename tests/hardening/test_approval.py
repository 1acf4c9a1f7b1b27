"""Finding 11 (issue 9): only ``True`` approves a run_python call."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alloy_nb.errors import ToolError
from alloy_nb.tools.notebook import RunPython


def _run(verdict: Any, ns: dict[str, Any]) -> Any:
    ctx = {"namespace": ns, "approve": lambda name, code: verdict}
    return asyncio.run(RunPython().execute({"code": "ran = True"}, ctx))


@pytest.mark.parametrize("verdict", ["no", "", "yes", "True", 0, 1, None, [], [True], object(),
                                     1.0, "deny"])
def test_finding11_only_true_approves_run_python(verdict: Any) -> None:
    ns: dict[str, Any] = {}
    with pytest.raises(ToolError, match="Denied"):
        _run(verdict, ns)
    assert "ran" not in ns


def test_finding11_true_and_async_true_approve() -> None:
    ns: dict[str, Any] = {}
    _run(True, ns)
    assert ns["ran"] is True

    async def yes(name: str, code: str) -> bool:
        return True

    async def maybe(name: str, code: str) -> str:
        return "no"

    ns2: dict[str, Any] = {}
    asyncio.run(RunPython().execute({"code": "ran = 1"}, {"namespace": ns2, "approve": yes}))
    assert ns2["ran"] == 1
    with pytest.raises(ToolError, match="Denied"):
        asyncio.run(RunPython().execute({"code": "ran = 2"}, {"namespace": ns2, "approve": maybe}))
    assert ns2["ran"] == 1
