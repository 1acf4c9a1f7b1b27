"""Result (conformance B12–B18) and building it from a state."""

from __future__ import annotations

from alloy_nb.messages import assistant, user
from alloy_nb.result import Result, ToolCall
from alloy_nb.state import AgentState
from alloy_nb.usage import Usage


def test_b12_defaults() -> None:
    r = Result()
    assert (r.text, r.messages, r.usage, r.tool_calls) == (None, [], Usage(), [])
    assert (r.status, r.turns, r.error, r.request_id) == ("completed", 0, None, None)


def test_b13_all_fields() -> None:
    call = ToolCall(id="1", name="echo", input={"a": 1}, duration_ms=3)
    r = Result(text="t", messages=[user("u")], usage=Usage(input_tokens=1), tool_calls=[call],
               status="error", turns=2, error="boom", request_id="req")
    assert (r.text, r.status, r.turns, r.error, r.request_id) == ("t", "error", 2, "boom", "req")
    assert r.tool_calls == [call] and r.usage.input_tokens == 1 and not r.ok


def test_b14_key_access() -> None:
    r = Result(text="hi", turns=3)
    assert (r["text"], r["turns"], r["error"]) == ("hi", 3, None)
    assert r["usage"].input_tokens == 0 and r["messages"] == []


def test_b15_b16_copy_with_changes() -> None:
    r = Result(text="hi", turns=10)
    popped = r.model_copy(update={"text": None})
    assert (r.text, popped.text, popped.turns) == ("hi", None, 10)
    bumped = r.model_copy(update={"turns": r.turns + 1})
    assert (r.turns, bumped.turns) == (10, 11)


def test_b17_from_state() -> None:
    call = ToolCall(id="1", name="echo")
    state = AgentState(messages=[user("hello"), assistant("hi there")], turn=1,
                       usage=Usage(input_tokens=10, output_tokens=5), tool_calls=[call],
                       status="completed", model="m")
    r = state.to_result()
    assert (r.text, r.status, r.turns, r.error, r.request_id) == (
        "hi there", "completed", 1, None, None)
    assert r.tool_calls == [call] and r.usage == state.usage and len(r.messages) == 2
    assert state.to_result(request_id="req-1").request_id == "req-1"
    r.messages.append(user("later"))
    assert len(state.messages) == 2  # the result owns its own list


def test_b18_extra_keys_and_dumps() -> None:
    r = Result(text="x", cancelled_phase="queued")  # type: ignore[call-arg]
    assert r["cancelled_phase"] == "queued"
    assert r.model_copy(update={"request_id": "r"}).model_dump()["request_id"] == "r"


def test_text_is_empty_string_not_none_after_tool_use() -> None:
    """§0.1: the newest assistant message's text even when empty."""
    from alloy_nb.messages import ToolUseBlock

    state = AgentState(messages=[user("go"), assistant("earlier"),
                                 assistant([ToolUseBlock(id="1", name="x")])])
    assert state.to_result().text == ""
    assert AgentState(messages=[user("only")]).to_result().text is None


def test_unfinished_states_map_to_result_statuses() -> None:
    assert AgentState(status="idle").to_result().status == "completed"
    from alloy_nb.messages import ToolUseBlock

    dangling = [user("go"), assistant([ToolUseBlock(id="1", name="x")])]
    running = AgentState(status="running", messages=dangling).to_result()
    assert (running.status, running.error) == ("cancelled", "cancelled")
    assert running.messages[-1].tool_result_blocks[0].tool_use_id == "1"  # repaired copy
    assert "AgentState(status='idle'" in repr(AgentState())
