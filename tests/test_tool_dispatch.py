"""The tool-dispatch hook: a caller says where tool calls run; None leaves the default."""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from alloy_nb.providers.scripted import Scripted
from alloy_nb.session import Session
from alloy_nb.tool_dispatch import ToolInvocation, current_tool_dispatcher, dispatching_tools
from alloy_nb.tools import tool

RAN_ON: dict[str, str] = {}


@tool
def where_a() -> str:
    """Name the thread this runs on."""
    RAN_ON["where_a"] = threading.current_thread().name
    return "ok"


@tool
def where_b() -> str:
    """Name the thread this runs on."""
    RAN_ON["where_b"] = threading.current_thread().name
    return "ok"


def _script() -> Scripted:
    return Scripted([Scripted.tool_calls(("where_a", {}), ("where_b", {})), "done"])


def test_a_dispatcher_routes_the_tools_it_takes_and_declines_the_rest() -> None:
    seen: list[str] = []

    def dispatch(t: Any, call: ToolInvocation) -> Any:
        seen.append(t.name)
        if t.name != "where_a":
            return None  # the executor's default: its thread pool

        async def inline() -> Any:
            return call()  # on the loop's own thread

        return inline()

    async def main() -> str:
        session = Session(provider=_script(), tools=[where_a, where_b])
        with dispatching_tools(dispatch):
            await session.achat("where?")
        return threading.current_thread().name

    RAN_ON.clear()
    loop_thread = asyncio.run(main())
    outputs = dict(RAN_ON)
    assert sorted(seen) == ["where_a", "where_b"]
    assert outputs["where_a"] == loop_thread  # dispatched: ran inline
    assert outputs["where_b"] != loop_thread  # declined: a pooled thread


def test_the_hook_covers_only_its_own_block() -> None:
    assert current_tool_dispatcher() is None
    with dispatching_tools(lambda t, call: None):
        assert current_tool_dispatcher() is not None
    assert current_tool_dispatcher() is None
    RAN_ON.clear()

    async def main() -> str:
        await Session(provider=_script(), tools=[where_a, where_b]).achat("where?")
        return threading.current_thread().name

    loop_thread = asyncio.run(main())
    assert set(RAN_ON) == {"where_a", "where_b"}
    assert loop_thread not in RAN_ON.values()  # no hook: both on pooled threads
