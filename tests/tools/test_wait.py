"""A person's approval time is not the tool's time (``alloy_nb.tools._wait``)."""

from __future__ import annotations

import asyncio

import alloy_nb as alloy
from alloy_nb.providers.scripted import Scripted
from alloy_nb.tools.notebook import RunPython


def _run(approve, **options):
    script = Scripted([Scripted.tool_calls(("run_python", {"code": "x = 1"})), "done"])
    events = []
    result = alloy.run("go", provider=script, tools=[RunPython()], on_event=events.append,
                       context={"namespace": {}, "approve": approve}, **options)
    [end] = [e for e in events if e.event == "tool_end"]
    return result.tool_calls[0], end.payload


def test_duration_excludes_the_wait_for_approval_and_reports_it_apart() -> None:
    async def slow_person(tool_name, code):
        await asyncio.sleep(0.4)
        return True

    call, payload = _run(slow_person)
    assert call.error is None
    assert call.wait_ms >= 380 and payload["wait_ms"] == call.wait_ms
    assert call.duration_ms < 300 and payload["duration_ms"] == call.duration_ms


def test_tool_timeout_does_not_run_out_while_a_person_decides() -> None:
    async def slow_person(tool_name, code):
        await asyncio.sleep(0.5)
        return True

    call, _ = _run(slow_person, tool_timeout_ms=200)
    assert call.error is None, call.error  # 0.5 s of waiting, far less of the tool's own


def test_without_a_person_nothing_changes() -> None:
    call, payload = _run(lambda tool_name, code: True)
    assert call.wait_ms == 0 and "wait_ms" not in payload  # the event shape is unchanged


def test_a_slow_tool_still_times_out() -> None:
    class Slow(RunPython):
        async def execute(self, input, context):
            await asyncio.sleep(1)
            return "late"

    script = Scripted([Scripted.tool_calls(("run_python", {"code": "x"})), "done"])
    result = alloy.run("go", provider=script, tools=[Slow()], tool_timeout_ms=150,
                       context={"namespace": {}, "approve": lambda *_: True})
    assert "timeout after 150 ms" in (result.tool_calls[0].error or "")
