"""Middleware results and their interpretation (spec §2.5, conformance J135–J141)."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

import alloy_nb as alloy
from alloy_nb.errors import ConfigError
from alloy_nb.middleware import (
    HOOKS,
    Block,
    Halt,
    Middleware,
    MiddlewareReturnError,
    run_before_tool_call,
    run_hook,
)
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState
from alloy_nb.tools.base import Tool

CALL = {"type": "tool_use", "id": "t1", "name": "bash", "input": {"command": "ls"}}


class Recorder(Middleware):
    def __init__(self) -> None:
        self.seen: list[tuple[str, Any]] = []

    def call(self, hook: str, state: AgentState) -> AgentState:
        self.seen.append((hook, state.context.get("current_tool_call")))
        return state


class BlockBash(Middleware):
    def call(self, hook: str, state: AgentState) -> Any:
        if hook == "before_tool_call" and state.context["current_tool_call"]["name"] == "bash":
            return Block("bash tool is disabled by policy")
        return state


class HaltWith(Middleware):
    def __init__(self, reason: str) -> None:
        self.reason = reason

    def call(self, hook: str, state: AgentState) -> Halt:
        return Halt(self.reason)


def hook(mw: list[Any], name: str, state: AgentState | None = None) -> Any:
    return asyncio.run(run_hook(mw, name, state or AgentState()))


def before(mw: list[Any], call: dict[str, Any] = CALL) -> Any:
    return asyncio.run(run_before_tool_call(mw, AgentState(), call))


def test_hook_names() -> None:
    assert set(HOOKS) == {
        "before_completion", "after_completion", "after_tool_request", "before_tool_call",
        "after_tool_execution", "on_error", "session_start", "session_end", "after_compaction"}


def test_j135_before_tool_call_passes_and_sees_the_call() -> None:
    rec = Recorder()
    assert before([rec]) is None
    assert rec.seen == [("before_tool_call", CALL)]


def test_j136_block_bash_only() -> None:
    assert before([BlockBash()]) == Block("bash tool is disabled by policy")
    assert before([BlockBash()], {**CALL, "name": "read"}) is None
    assert before([]) is None


def test_before_tool_call_does_not_thread_state_and_first_block_wins() -> None:
    state = AgentState(context={"k": 1})

    class Replace(Middleware):
        def call(self, hook: str, s: AgentState) -> AgentState:
            return AgentState(context={"replaced": True})

    rec = Recorder()
    out = asyncio.run(run_before_tool_call([Replace(), rec, BlockBash(), Recorder()], state, CALL))
    assert out == Block("bash tool is disabled by policy")
    assert rec.seen == [("before_tool_call", CALL)]  # got the original (injected) state
    assert "current_tool_call" not in state.context  # injected into a copy only


def test_j137_session_hooks_run() -> None:
    rec = Recorder()
    state = AgentState()
    assert hook([rec], "session_start", state) is state
    assert hook([rec], "session_end", state) is state
    assert [h for h, _ in rec.seen] == ["session_start", "session_end"]


def test_j138_first_halt_stops_the_chain() -> None:
    rec = Recorder()
    assert hook([HaltWith("spend cap"), rec], "before_completion") == Halt("spend cap")
    assert rec.seen == []
    state = AgentState()
    assert hook([Recorder()], "before_completion", state) is state
    assert hook([Recorder(), HaltWith("limit")], "before_completion") == Halt("limit")


def test_state_is_threaded_between_middleware() -> None:
    class Replace(Middleware):
        def call(self, hook: str, state: AgentState) -> AgentState:
            return AgentState(context={"by": "replace"})

    class Check(Middleware):
        def call(self, hook: str, state: AgentState) -> AgentState:
            assert state.context == {"by": "replace"}
            return state

    assert hook([Replace(), Check()], "after_completion").context == {"by": "replace"}


def test_j139_block_outside_before_tool_call_names_the_fix() -> None:
    class Wrong(Middleware):
        def call(self, hook: str, state: AgentState) -> Block:
            return Block("nope")

    with pytest.raises(ConfigError) as info:
        hook([Wrong()], "before_completion")
    message = str(info.value)
    for part in ("Wrong", "Block('nope')", "'before_completion'", "before_tool_call",
                 "Halt('nope')"):
        assert part in message


@pytest.mark.parametrize(("value", "hint"), [(None, "forget `return state`"), ("ok", "str")])
def test_other_return_values_raise_type_error_naming_the_fix(value: Any, hint: str) -> None:
    class Bad(Middleware):
        def call(self, hook: str, state: AgentState) -> Any:
            return value

    with pytest.raises(MiddlewareReturnError, match="Halt\\(reason\\)") as info:
        hook([Bad()], "after_completion")
    assert isinstance(info.value, TypeError) and isinstance(info.value, ConfigError)
    assert hint in str(info.value)
    with pytest.raises(TypeError):
        before([Bad()])


def test_j140_halt_from_before_tool_call() -> None:
    assert before([HaltWith("blocked")]) == Halt("blocked")


def test_async_middleware_plain_functions_and_method_dispatch() -> None:
    class Async(Middleware):
        async def call(self, hook: str, state: AgentState) -> AgentState:
            await asyncio.sleep(0)
            state.context["async"] = True
            return state

    def plain(hook: str, state: AgentState) -> AgentState:
        state.context["plain"] = hook
        return state

    class Methods(Middleware):
        def after_completion(self, state: AgentState) -> Halt:
            return Halt("from method")

    state = hook([Async(), plain], "before_completion")
    assert state.context == {"async": True, "plain": "before_completion"}
    assert hook([Methods()], "after_completion") == Halt("from method")
    assert hook([Methods()], "before_completion").status == "idle"  # no method: passes
    assert repr(Methods()) == "Methods()"


def test_run_hook_refuses_before_tool_call() -> None:
    with pytest.raises(ValueError, match="run_before_tool_call"):
        hook([], "before_tool_call")


class Bash(Tool):
    name = "bash"
    description = "Shell"

    def execute(self, input: dict[str, Any], context: Any) -> str:
        raise AssertionError("must not run")


def test_j141_blocked_bash_end_to_end() -> None:
    provider = Scripted([Scripted.tool_calls(("bash", {"command": "rm -rf /"})), "I won't."])
    result = alloy.run("clean up", provider=provider, tools=[Bash], middleware=[BlockBash()])
    assert result.status == "completed"
    [block] = result.messages[2].tool_result_blocks
    assert block.is_error and block.content == "Blocked: bash tool is disabled by policy"
    assert result.tool_calls[0].error == block.content
