"""Every way the loop ends (issue 11: helpers stop it by raising a private _Stop): the
status and error land on the state, ``done`` is the single last event, and ``run_loop``
returns normally (the private stop never escapes)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.errors import AuthenticationError
from alloy_nb.events import Event
from alloy_nb.messages import user
from alloy_nb.middleware import Halt, Middleware
from alloy_nb.output import OUTPUT_ERROR_PREFIX
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState
from alloy_nb.tools.base import Tool
from alloy_nb.usage import Usage


class Echo(Tool):
    name = "echo"
    description = "Echo"

    def execute(self, input: dict[str, Any], context: Any) -> str:
        return "echoed"


class HaltAt(Middleware):
    def __init__(self, hook: str) -> None:
        self.hook = hook

    def call(self, hook: str, state: AgentState) -> Any:
        return Halt(f"at {hook}") if hook == self.hook else state


def tool_reply() -> Any:
    return Scripted.tool_calls(("echo", {}))


CASES: list[tuple[str, list[Any], dict[str, Any], str, str | None]] = [
    ("answer", ["hi"], {}, "completed", None),
    ("max_turns", [tool_reply(), tool_reply(), "never"], {"max_turns": 2}, "max_turns", None),
    ("halt before the call", ["never"], {"middleware": [HaltAt("before_completion")]},
     "halted", "Halted by middleware: at before_completion"),
    ("halt after tools", [tool_reply(), "never"],
     {"middleware": [HaltAt("after_tool_execution")]},
     "halted", "Halted by middleware: at after_tool_execution"),
    ("halt after the answer", ["hi"], {"middleware": [HaltAt("after_completion")]},
     "halted", "Halted by middleware: at after_completion"),
    ("provider error", [Scripted.error(AuthenticationError("bad key", status_code=401))], {},
     "error", "bad key"),
    ("until_tool asks again, then max_turns", ["no", "still no"],
     {"until_tool": "echo", "max_turns": 2}, "max_turns", None),
    ("output_type never answered", ["a", "b", "c", "d", "e"], {"output_type": int,
                                                               "max_turns": 5},
     "error", OUTPUT_ERROR_PREFIX),
]


@pytest.mark.parametrize(("why", "replies", "options", "status", "error"), CASES,
                         ids=[c[0] for c in CASES])
def test_each_way_the_loop_ends(why: str, replies: list[Any], options: dict[str, Any],
                                status: str, error: str | None) -> None:
    config = AgentConfig.from_options(provider=Scripted(replies), tools=[Echo],
                                      retry_backoff_ms=1, **options)
    state = AgentState(messages=[user("go")])
    events: list[Event] = []
    asyncio.run(run_loop(config, state, new_emitter(config, state, listeners=[events.append])))
    assert state.status == status
    if error is not None:
        assert state.error is not None and error in state.error
    elif status != "error":
        assert state.error is None
    assert [e.event for e in events].count("done") == 1 and events[-1].event == "done"
    assert events[-1].payload["status"] == status


def test_budget_stop_happens_before_the_next_call() -> None:
    replies = [Scripted.tool_calls(("echo", {}), usage=Usage(input_tokens=2_000_000)), "never"]
    provider = Scripted(replies, model="claude-sonnet-4-6")
    config = AgentConfig.from_options(provider=provider, tools=[Echo], max_budget_cents=500)
    state = AgentState(messages=[user("go")])
    asyncio.run(run_loop(config, state, new_emitter(config, state)))
    assert (state.status, state.turn) == ("budget_exceeded", 1)
    assert state.error is not None and state.error.startswith("Budget exceeded")
