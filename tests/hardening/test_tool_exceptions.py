"""Finding 1 (issue 9): any exception a tool raises becomes an error tool_result; the loop,
its private thread and the history survive."""

from __future__ import annotations

import asyncio
from typing import Any

import alloy_nb as alloy
from alloy_nb import _sync
from alloy_nb.providers.scripted import Scripted
from alloy_nb.tools.base import Tool
from alloy_nb.tools.notebook import RunPython


class _AsyncInterrupt(Tool):
    name = "boom"
    description = "raises KeyboardInterrupt from async code"

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        raise KeyboardInterrupt("from the tool")


class _OddBase(BaseException):
    pass


class _AsyncOdd(Tool):
    name = "odd"
    description = "raises a BaseException subclass"

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        raise _OddBase("odd")


class _SelfCancel(Tool):
    name = "selfcancel"
    description = "raises CancelledError without being cancelled"

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        raise asyncio.CancelledError()


def _results(result: Any) -> list[Any]:
    return [b for m in result.messages for b in m.content if b.type == "tool_result"]


def test_finding1_async_tool_keyboardinterrupt_is_an_error_result() -> None:
    provider = Scripted([Scripted.tool_calls(("boom", {})), "after the crash"])
    result = alloy.run("go", provider=provider, tools=[_AsyncInterrupt])
    assert result.status == "completed" and result.text == "after the crash"
    (block,) = _results(result)
    assert block.is_error and "KeyboardInterrupt" in block.content
    assert _sync._thread is not None and _sync._thread.is_alive()
    # the loop thread still serves later runs
    assert alloy.run("again", provider=Scripted(["fine"])).text == "fine"


def test_finding1_other_base_exceptions_and_self_cancel_are_error_results() -> None:
    provider = Scripted([
        Scripted.tool_calls(("odd", {}), ("selfcancel", {})), "done",
    ])
    result = alloy.run("go", provider=provider, tools=[_AsyncOdd, _SelfCancel])
    assert result.status == "completed"
    odd, cancel = _results(result)
    assert odd.is_error and "_OddBase" in odd.content
    assert cancel.is_error and "CancelledError" in cancel.content


def test_finding1_run_python_keyboardinterrupt_and_systemexit_are_error_results() -> None:
    ns: dict[str, Any] = {}
    provider = Scripted([
        Scripted.tool_calls(("run_python", {"code": "raise KeyboardInterrupt('x')"})),
        Scripted.tool_calls(("run_python", {"code": "import sys; sys.exit(4)"})),
        Scripted.tool_calls(("run_python", {"code": "y = 2"})),
        "ok",
    ])
    result = alloy.run("go", provider=provider, tools=[RunPython],
                       context={"namespace": ns, "allow_run_python": True})
    assert result.status == "completed"
    first, second, third = _results(result)
    assert first.is_error and "KeyboardInterrupt" in first.content
    assert second.is_error and "SystemExit" in second.content
    assert not third.is_error and ns["y"] == 2
    assert _sync._thread is not None and _sync._thread.is_alive()


def test_finding1_cancelling_a_run_still_cancels_a_slow_tool() -> None:
    class Slow(Tool):
        name = "slow"
        description = "sleeps"

        async def execute(self, input: dict[str, Any], context: Any) -> str:
            await asyncio.sleep(30)
            return "never"

    async def main() -> Any:
        provider = Scripted([Scripted.tool_calls(("slow", {})), "x"])
        task = asyncio.ensure_future(alloy.arun("go", provider=provider, tools=[Slow]))
        await asyncio.sleep(0.3)
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            return "cancelled"
        return "not cancelled"

    assert asyncio.run(asyncio.wait_for(main(), 10)) == "cancelled"
