"""``before_tool_call`` may edit a call (reference 0.10 ``{:edit, call}``; spec §10).

The 0.10 items have no number in the 0.7.4 conformance list, so these tests carry the
version (``v010``) instead; J139 (a hook-only result from the wrong hook) is extended to
EditCall.
"""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest

import alloy_nb
from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.errors import ConfigError
from alloy_nb.events import Event
from alloy_nb.messages import ToolUseBlock, user
from alloy_nb.middleware import Block, EditCall, Middleware
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState
from alloy_nb.tools.base import Tool


class Echo(Tool):
    name = "echo"
    description = "Echo the text back"
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "properties": {"text": {"type": "string"}}}

    def execute(self, input: dict[str, Any], context: Any) -> str:
        return f"Echo: {input.get('text', '')}"


class Shout(Middleware):
    """Upper-cases every echo call's text."""

    def before_tool_call(self, state: AgentState) -> Any:
        call = state.context["current_tool_call"]
        if call["name"] == "echo":
            return EditCall({**call["input"], "text": call["input"]["text"].upper()})
        return state


def _run(replies: list[Any], middleware: list[Any], events: list[Event]) -> AgentState:
    config = AgentConfig.from_options(provider=Scripted(replies), tools=[Echo],
                                      middleware=middleware)
    state = AgentState(messages=[user("go")])
    emitter = new_emitter(config, state, listeners=[events.append])
    asyncio.run(run_loop(config, state, emitter))
    return state


def test_conformance_v010_edit_call_is_exported_from_the_package() -> None:
    assert alloy_nb.EditCall is EditCall
    assert "EditCall" in alloy_nb.__all__


def test_conformance_v010_edit_call_runs_the_new_input_with_same_id_and_name() -> None:
    events: list[Event] = []
    replies = [Scripted.tool_calls(("echo", {"text": "hello"}, "call_1")), "done"]
    state = _run(replies, [Shout()], events)
    assert state.status == "completed"
    (meta,) = state.tool_calls
    assert (meta.id, meta.name, meta.input) == ("call_1", "echo", {"text": "HELLO"})
    result_block = state.messages[2].content[0]
    assert result_block.tool_use_id == "call_1" and result_block.content == "Echo: HELLO"
    start = next(e for e in events if e.event == "tool_start")
    end = next(e for e in events if e.event == "tool_end")
    assert start.payload["input"] == end.payload["input"] == {"text": "HELLO"}
    assert end.payload["id"] == "call_1" and end.payload["name"] == "echo"
    # the model's own message is left as it wrote it
    (call,) = [b for b in state.messages[1].content if isinstance(b, ToolUseBlock)]
    assert call.input == {"text": "hello"}


def test_conformance_v010_edit_call_later_middleware_sees_and_can_block_the_edit() -> None:
    seen: list[dict[str, Any]] = []

    class Look(Middleware):
        def before_tool_call(self, state: AgentState) -> Any:
            seen.append(dict(state.context["current_tool_call"]["input"]))
            if state.context["current_tool_call"]["input"]["text"] == "SECRET":
                return Block("no secrets")
            return state

    events: list[Event] = []
    replies = [Scripted.tool_calls(("echo", {"text": "secret"}), ("echo", {"text": "ok"})),
               "done"]
    state = _run(replies, [Shout(), Look()], events)
    assert seen == [{"text": "SECRET"}, {"text": "OK"}]
    first, second = state.tool_calls
    assert first.error == "Blocked: no secrets" and second.input == {"text": "OK"}
    assert state.messages[2].content[1].content == "Echo: OK"


def test_conformance_v010_edit_call_only_from_before_tool_call_j139() -> None:
    class Wrong(Middleware):
        def before_completion(self, state: AgentState) -> Any:
            return EditCall({"text": "x"})

    with pytest.raises(ConfigError, match=r"EditCall.*only valid for the 'before_tool_call'"):
        _run(["done"], [Wrong()], [])


def test_conformance_v010_edit_call_needs_a_dict() -> None:
    with pytest.raises(ConfigError, match="dict"):
        EditCall("rm -rf /")  # type: ignore[arg-type]
