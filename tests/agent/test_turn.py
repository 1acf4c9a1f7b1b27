"""The loop (spec §2, conformance C and parts of A/Q): statuses, hooks, events, tools,
streaming, until_tool, cancellation and compaction wiring."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import pytest

from alloy_nb import model_metadata
from alloy_nb.agent import CONTINUATION_PROMPT, AgentConfig, new_emitter, run_loop
from alloy_nb.agent import turn as turn_module
from alloy_nb.compaction import CompactionOutcome
from alloy_nb.errors import ConfigError, ProviderError
from alloy_nb.events import Event
from alloy_nb.messages import Message, ToolResultBlock, ToolUseBlock, user
from alloy_nb.middleware import Block, Halt, Middleware
from alloy_nb.providers.base import Completion, Provider, ProviderRequest
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState
from alloy_nb.tools.base import Tool
from alloy_nb.usage import Usage


class Echo(Tool):
    name = "echo"
    description = "Echo the text back"
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "properties": {"text": {"type": "string"}}}

    def execute(self, input: dict[str, Any], context: Any) -> str:
        return input.get("text", "")


class Submit(Tool):
    name = "submit"
    description = "Submit the answer"
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "properties": {"answer": {"type": "string"}}}

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        return "submitted"


class SlowTool(Tool):
    name = "slow"
    description = "Sleeps"

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        await asyncio.sleep(input.get("seconds", 30))
        return "woke up"


class Recorder(Middleware):
    def __init__(self) -> None:
        self.hooks: list[str] = []
        self.statuses: list[str] = []

    def call(self, hook: str, state: AgentState) -> AgentState:
        self.hooks.append(hook)
        self.statuses.append(state.status)
        return state


def loop(
    replies: list[Any] | Scripted, prompt: str = "hi", *, streaming: bool = False,
    on_chunk: Any = None, events: list[Event] | None = None, **options: Any,
) -> AgentState:
    """Run the loop to completion and return the final state."""
    provider = replies if isinstance(replies, Scripted) else Scripted(replies)
    options.setdefault("tools", [Echo])
    options.setdefault("retry_backoff_ms", 1)
    config = AgentConfig.from_options(provider=provider, **options)
    state = AgentState(messages=[user(prompt)])
    emitter = new_emitter(config, state, listeners=[events.append] if events is not None else [])
    asyncio.run(run_loop(config, state, emitter, streaming=streaming, on_chunk=on_chunk))
    return state


def test_c19_text_reply_completes() -> None:
    state = loop(["Hello!"])
    assert (state.status, state.turn, len(state.messages)) == ("completed", 1, 2)
    assert state.messages[-1].role == "assistant"
    assert state.messages[-1].text == "Hello!"
    assert state.error is None


def test_c20_c21_tool_round_records_metadata() -> None:
    state = loop([Scripted.tool_calls(("echo", {"text": "world"}, "tool_1")), "Done"])
    assert (state.status, state.turn, len(state.messages)) == ("completed", 2, 4)
    result = state.messages[2].content[0]
    assert isinstance(result, ToolResultBlock)
    assert (result.tool_use_id, result.content, result.is_error) == ("tool_1", "world", False)
    [call] = state.tool_calls
    assert (call.id, call.name, call.input, call.error) == ("tool_1", "echo", {"text": "world"},
                                                            None)
    assert isinstance(call.duration_ms, int) and call.duration_ms >= 0
    assert isinstance(call.correlation_id, str)
    assert call.end_event_seq > call.start_event_seq


def test_c22_two_calls_one_result_message_in_call_order() -> None:
    state = loop([Scripted.tool_calls(("echo", {"text": "a"}, "t1"), ("echo", {"text": "b"}, "t2")),
                  "Done"])
    assert state.turn == 2
    msg = state.messages[2]
    assert msg.role == "user"
    pairs = [(b.tool_use_id, b.content) for b in msg.tool_result_blocks]
    assert pairs == [("t1", "a"), ("t2", "b")]


def test_a4_two_tool_turns_then_text() -> None:
    state = loop([Scripted.tool_calls(("echo", {"text": "1"})),
                  Scripted.tool_calls(("echo", {"text": "2"})), "Final"])
    assert (state.status, state.turn, state.last_assistant_text) == ("completed", 3, "Final")


def test_c23_c24_tool_envelopes_streaming() -> None:
    events: list[Event] = []
    config_ctx = {"correlation_id": "req-42"}
    loop([Scripted.tool_calls(("echo", {"text": "x"}, "t1")), "ok"], streaming=True,
         events=events, context=config_ctx)
    start = next(e for e in events if e.event == "tool_start")
    end = next(e for e in events if e.event == "tool_end")
    assert start.v == 1 and isinstance(start.seq, int) and isinstance(start.ts_ms, int)
    assert start.payload == {"id": "t1", "name": "echo", "input": {"text": "x"}}
    assert start.correlation_id == end.correlation_id == "req-42"  # C24
    assert {k: end.payload[k] for k in ("id", "name", "input", "error")} == {
        "id": "t1", "name": "echo", "input": {"text": "x"}, "error": None}
    assert isinstance(end.payload["duration_ms"], int) and end.payload["duration_ms"] >= 0
    assert end.payload["start_event_seq"] == start.seq
    assert end.seq > start.seq


def test_c25_a8_endless_tool_use_stops_at_max_turns() -> None:
    replies = [Scripted.tool_calls(("echo", {"text": "again"})) for _ in range(30)]
    state = loop(replies, max_turns=3)
    assert (state.status, state.turn) == ("max_turns", 3)
    assert len(state.messages) == 1 + 2 * 3  # §2.9
    assert state.last_assistant_text == ""  # §0.1: empty, not None
    assert state.error is None


def test_max_turns_zero_never_calls_the_provider() -> None:
    provider = Scripted(["never"])
    state = loop(provider, max_turns=0)
    assert (state.status, state.turn, provider.calls) == ("max_turns", 0, [])


def test_c26_non_retryable_error_ends_with_status_error() -> None:
    events: list[Event] = []
    state = loop([Scripted.error("API rate limited")], events=events)
    assert (state.status, state.error) == ("error", "API rate limited")
    err = next(e for e in events if e.event == "error")
    assert err.payload["error"] == "API rate limited"
    assert events[-1].event == "done" and events[-1].payload["status"] == "error"


def test_script_exhausted_is_a_clear_error() -> None:
    state = loop([])
    assert state.status == "error"
    assert state.error == "Scripted provider has no more replies (used 0 of 0)"


def test_c27_a9_a11_hooks_fire_with_running_status() -> None:
    rec = Recorder()
    loop(["hi"], middleware=[rec])
    assert rec.hooks == ["before_completion", "after_completion"]
    assert rec.statuses[0] == "running"  # A11
    rec2 = Recorder()
    loop([Scripted.tool_calls(("echo", {"text": "x"})), "done"], middleware=[rec2])
    assert rec2.hooks == ["before_completion", "after_tool_request", "before_tool_call",
                          "after_tool_execution", "before_completion", "after_completion"]


def test_c41_before_completion_halt_skips_provider() -> None:
    class Cap(Middleware):
        def before_completion(self, state: AgentState) -> Halt:
            return Halt("spend cap reached")

    provider = Scripted(["unused"])
    state = loop(provider, middleware=[Cap()])
    assert state.status == "halted"
    assert state.error == "Halted by middleware: spend cap reached"
    assert provider.calls == []


def test_c42_c43_on_error_halt_is_distinguishable() -> None:
    class OnError(Middleware):
        def on_error(self, state: AgentState) -> Halt:
            assert state.status == "error"
            return Halt("giving up politely")

    state = loop([Scripted.error("boom")], middleware=[OnError()])
    assert state.status == "halted" and state.status != "error"
    assert "giving up politely" in (state.error or "")


def test_c44_pass_through_middleware_completes() -> None:
    state = loop(["hi"], middleware=[Middleware()])
    assert state.status == "completed"


def test_c45_before_tool_call_halt_leaves_valid_history() -> None:
    class Policy(Middleware):
        def before_tool_call(self, state: AgentState) -> Halt:
            return Halt("tool call blocked by policy")

    events: list[Event] = []
    provider = Scripted([Scripted.tool_calls(("echo", {"text": "x"})), "unused"])
    state = loop(provider, middleware=[Policy()], events=events)
    assert state.status == "halted" and "tool call blocked by policy" in state.error
    assert provider.replies_left == 1
    assert not [e for e in events if e.event.startswith("tool_")]  # no tool events (§0.13)
    # repaired: the dangling tool_use got an error result, so the history can continue
    assert state.messages[-1].tool_result_blocks[0].is_error


def test_c46_after_tool_execution_halt() -> None:
    class Policy(Middleware):
        def after_tool_execution(self, state: AgentState) -> Halt:
            return Halt("tool policy says stop")

    provider = Scripted([Scripted.tool_calls(("echo", {"text": "x"})), "unused"])
    state = loop(provider, middleware=[Policy()])
    assert state.status == "halted" and "tool policy" in state.error
    assert provider.replies_left == 1
    assert state.messages[-1].tool_result_blocks[0].content == "x"


def test_after_completion_halt_keeps_the_reply() -> None:
    class Stop(Middleware):
        def after_completion(self, state: AgentState) -> Halt:
            return Halt("review")

    state = loop(["final"], middleware=[Stop()])
    assert state.status == "halted" and state.last_assistant_text == "final"


def test_block_outside_before_tool_call_raises_config_error_with_valid_state() -> None:
    class Wrong(Middleware):
        def before_completion(self, state: AgentState) -> Block:
            return Block("nope")

    with pytest.raises(ConfigError, match="before_tool_call"):
        loop(["hi"], middleware=[Wrong()])


def test_middleware_may_change_state_and_replace_it() -> None:
    class AddNote(Middleware):
        def before_completion(self, state: AgentState) -> AgentState:
            state.context["seen"] = True
            return AgentState(messages=[*state.messages], context=dict(state.context),
                              turn=state.turn, status=state.status, config=state.config)

    state = loop(["ok"], middleware=[AddNote()])
    assert state.status == "completed" and state.context["seen"] is True


def test_c54_q191_streaming_deltas_and_on_chunk() -> None:
    events: list[Event] = []
    chunks: list[str] = []
    state = loop(Scripted(["Hi"], chunk_size=1), streaming=True, on_chunk=chunks.append,
                 events=events)
    deltas = [e for e in events if e.event == "text_delta"]
    assert [d.payload for d in deltas] == ["H", "i"] == chunks
    assert deltas[0].correlation_id == deltas[1].correlation_id
    assert deltas[1].seq > deltas[0].seq
    assert all(d.turn == 1 for d in deltas)
    assert state.status == "completed"


def test_c55_streaming_without_listeners() -> None:
    assert loop(["Hello"], streaming=True).status == "completed"


def test_q192_streamed_and_plain_runs_match() -> None:
    def script() -> list[Any]:
        return [Scripted.tool_calls(("echo", {"text": "x"}, "t1")), "The end."]

    plain = loop(script())
    streamed = loop(script(), streaming=True)
    for attr in ("status", "turn", "messages", "usage"):
        assert getattr(plain, attr) == getattr(streamed, attr)


def test_streaming_falls_back_to_complete_when_unsupported() -> None:
    class Plain(Provider):
        name = "plain"
        model = "plain-1"

        async def complete(self, request: ProviderRequest) -> Completion:
            return Completion(stop_reason="end_turn", message=Message(role="assistant",
                              content="whole reply"), usage=Usage(input_tokens=1))

    events: list[Event] = []
    chunks: list[str] = []
    config = AgentConfig.from_options(provider=Plain())
    state = AgentState(messages=[user("hi")])
    asyncio.run(run_loop(config, state, new_emitter(config, listeners=[events.append]),
                         streaming=True, on_chunk=chunks.append))
    assert state.status == "completed" and state.last_assistant_text == "whole reply"
    assert chunks == [] and not [e for e in events if e.event == "text_delta"]


def test_thinking_deltas_are_events() -> None:
    events: list[Event] = []
    loop([Scripted.reply("answer", thinking="hmm")], streaming=True, events=events)
    assert [e.payload for e in events if e.event == "thinking_delta"] == ["hmm"]


def test_events_lifecycle_seq_and_turns() -> None:
    events: list[Event] = []
    loop([Scripted.tool_calls(("echo", {"text": "x"})), "done"], streaming=True, events=events)
    names = [e.event for e in events]
    assert names[0] == "turn_start" and names[-1] == "done"
    for required in ("turn_start", "turn_end", "usage", "tool_start", "tool_end", "text_delta"):
        assert required in names
    seqs = [e.seq for e in events]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    assert len({e.correlation_id for e in events}) == 1
    by_turn = {(e.event, e.turn) for e in events}
    assert {("turn_start", 1), ("tool_start", 1), ("turn_start", 2), ("text_delta", 2),
            ("turn_end", 2), ("done", 2)} <= by_turn
    usage = [e for e in events if e.event == "usage"][-1]
    assert usage.payload["total"]["input_tokens"] == 20


def test_a10_c52_usage_accumulates() -> None:
    state = loop([Scripted.tool_calls(("echo", {"text": "x"})), "done"])
    assert (state.usage.input_tokens, state.usage.output_tokens) == (20, 10)


def test_usage_is_priced_from_model_metadata() -> None:
    price = model_metadata.lookup("claude-sonnet-4-6").input_price
    state = loop(Scripted(["hi"], model="claude-sonnet-4-6", usage=(1_000_000, 0)))
    assert state.usage.priced and state.usage.estimated_cost_cents == pytest.approx(price * 100)
    assert state.model == "claude-sonnet-4-6"


def test_budget_exceeded_is_checked_at_turn_start() -> None:
    replies = [Scripted.tool_calls(("echo", {"text": "x"}), usage=(1_000_000, 0))] * 5
    state = loop(Scripted(replies, model="claude-sonnet-4-6"), max_budget_cents=500)
    # turn 1 costs 300 cents, turn 2 brings 600 > 500, so turn 3 never starts
    assert (state.status, state.turn) == ("budget_exceeded", 2)
    assert "Budget exceeded" in state.error


def test_budget_with_an_unpriced_model_is_a_config_error_and_an_unpriced_reply_warns_once(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with pytest.raises(ConfigError, match=r"model_metadata_overrides=\{'scripted'"):
        loop(["done"], max_budget_cents=1)  # model "scripted": no price
    # the configured model is priced, but the replies name another, unpriced one
    replies = [Scripted.reply(tool_calls=[("echo", {"text": "x"})], usage=(1_000_000, 0),
                              model="acme-unpriced")] * 3
    with caplog.at_level("WARNING", logger="alloy_nb"):
        state = loop(Scripted([*replies, "done"], model="claude-sonnet-4-6"),
                     max_budget_cents=1)
    warnings = [r for r in caplog.records if "max_budget_cents" in r.getMessage()]
    assert len(warnings) == 1 and "'acme-unpriced'" in warnings[0].getMessage()
    caplog.clear()
    with caplog.at_level("WARNING", logger="alloy_nb"):
        loop(["done"])  # no budget: nothing to warn about
        loop(Scripted(["done"], model="claude-sonnet-4-6"), max_budget_cents=1)  # priced
    assert not [r for r in caplog.records if "max_budget_cents" in r.getMessage()]
    assert state.turn == 4


def test_until_tool_continues_until_called() -> None:
    provider = Scripted(["I think I'm done", Scripted.tool_calls(("submit", {"answer": "42"})),
                         "Submitted."])
    state = loop(provider, tools=[Echo, Submit], until_tool="submit")
    assert (state.status, state.turn) == ("completed", 3)
    prompt = state.messages[2]
    assert prompt.role == "user" and "call the `submit` tool" in prompt.text
    assert prompt.text == CONTINUATION_PROMPT.format(tool="submit")
    assert provider.replies_left == 0


def test_until_tool_is_bounded_by_max_turns() -> None:
    state = loop(["no", "still no", "nope", "never"], tools=[Submit], until_tool="submit",
                 max_turns=3)
    assert (state.status, state.turn) == ("max_turns", 3)


def test_provider_bug_becomes_status_error() -> None:
    class Buggy(Provider):
        name = "buggy"

        async def complete(self, request: ProviderRequest) -> Completion:
            raise KeyError("choices")

    config = AgentConfig.from_options(provider=Buggy())
    state = AgentState(messages=[user("hi")])
    asyncio.run(run_loop(config, state, new_emitter(config)))
    assert state.status == "error"
    assert "KeyError" in state.error and "bug in the provider" in state.error


def test_cancel_mid_stream_keeps_usage_and_valid_history() -> None:
    provider = Scripted([Scripted.tool_calls(("echo", {"text": "x"})),
                         "a long streamed answer " * 50], chunk_size=2, chunk_delay=0.01)
    config = AgentConfig.from_options(provider=provider, tools=[Echo])
    state = AgentState(messages=[user("hi")])
    events: list[Event] = []

    async def main() -> float:
        got_delta = asyncio.Event()

        def listen(ev: Event) -> None:
            events.append(ev)
            if ev.event == "text_delta":
                got_delta.set()

        task = asyncio.create_task(run_loop(config, state, new_emitter(config, listeners=[listen]),
                                            streaming=True))
        await got_delta.wait()
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    assert asyncio.run(main()) < 0.5
    assert (state.status, state.error) == ("cancelled", "cancelled")
    assert state.usage.input_tokens == 10  # the finished first turn is kept
    assert events[-1].event == "done" and events[-1].payload["status"] == "cancelled"
    # what the user already saw is kept, marked, so the next turn knows it was cut short
    shown = "".join(e.payload for e in events if e.event == "text_delta")
    assert shown and state.messages[-1].role == "assistant"
    assert state.messages[-1].text == shown + "\n\n" + turn_module.INTERRUPTED_MARK
    assert state.to_result().text.startswith(shown)
    # a follow-up run continues from the repaired history
    state2 = AgentState(messages=[*state.messages, user("go on")])
    cfg2 = AgentConfig.from_options(provider=Scripted(["continued"]), tools=[Echo])
    asyncio.run(run_loop(cfg2, state2, new_emitter(cfg2)))
    assert state2.status == "completed" and state2.last_assistant_text == "continued"


def test_cancel_mid_tool_stops_promptly_and_repairs_history() -> None:
    provider = Scripted([Scripted.tool_calls(("slow", {"seconds": 30}, "t1"))])
    config = AgentConfig.from_options(provider=provider, tools=[SlowTool])
    state = AgentState(messages=[user("hi")])

    async def main() -> float:
        started = asyncio.Event()
        emitter = new_emitter(config, listeners=[
            lambda ev: started.set() if ev.event == "tool_start" else None])
        task = asyncio.create_task(run_loop(config, state, emitter))
        await started.wait()
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    assert asyncio.run(main()) < 0.5
    assert state.status == "cancelled" and state.usage.output_tokens == 5
    last = state.messages[-1]
    assert last.role == "user" and last.tool_result_blocks[0].tool_use_id == "t1"
    assert last.tool_result_blocks[0].is_error
    cfg2 = AgentConfig.from_options(provider=Scripted(["recovered"]), tools=[SlowTool])
    state2 = AgentState(messages=[*state.messages, user("never mind")])
    asyncio.run(run_loop(cfg2, state2, new_emitter(cfg2)))
    assert state2.status == "completed"
    assert [m.role for m in state2.messages] == ["user", "assistant", "user", "user", "assistant"]


def test_compaction_event_callback_hook_and_usage(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[Any] = []

    async def fake_compact(messages: list[Message], **kw: Any) -> CompactionOutcome | None:
        if len(messages) < 3:
            return None
        calls.append(kw)
        return CompactionOutcome(messages=[user("[Conversation summary]\nearlier")],
                                 before_tokens=900, after_tokens=100, method="summary",
                                 removed_messages=3, usage=Usage(input_tokens=7))

    monkeypatch.setattr(turn_module, "maybe_compact", fake_compact)
    seen: list[Any] = []

    def boom(outcome: Any) -> None:
        seen.append(outcome)
        raise RuntimeError("callback bug")  # logged, never fatal

    rec = Recorder()
    events: list[Event] = []
    state = loop([Scripted.tool_calls(("echo", {"text": "x"})), "after"], events=events,
                 middleware=[rec], compaction={"on_compaction": boom}, max_tokens=1234)
    assert state.status == "completed"
    ev = next(e for e in events if e.event == "compaction")
    assert ev.payload == {"before_tokens": 900, "after_tokens": 100, "method": "summary",
                          "removed_messages": 3}
    assert len(seen) == 1 and calls[0]["max_tokens"] == 1234
    assert "after_compaction" in rec.hooks
    assert state.usage.input_tokens == 27
    assert state.messages[0].text.startswith("[Conversation summary]")


def test_compaction_failure_is_a_run_error(monkeypatch: pytest.MonkeyPatch) -> None:
    async def failing(messages: list[Message], **kw: Any) -> None:
        raise ProviderError("summary failed")

    monkeypatch.setattr(turn_module, "maybe_compact", failing)
    state = loop(["unused"])
    assert (state.status, state.error) == ("error", "summary failed")


def test_tool_use_stop_without_calls_ends_the_turn() -> None:
    odd = Completion(stop_reason="tool_use", message=Message(role="assistant", content="hm"))
    assert loop([odd]).status == "completed"


def test_history_with_dangling_tool_use_stays_valid_after_error() -> None:
    state = loop([Scripted.tool_calls(("echo", {"text": "x"})), Scripted.error("down")])
    assert state.status == "error"
    assert [m.role for m in state.messages] == ["user", "assistant", "user"]
    assert isinstance(state.messages[1].content[0], ToolUseBlock)


def test_a_tool_call_cut_off_by_max_tokens_is_never_run() -> None:
    ran: list[Any] = []

    class Make(Tool):
        name = "make_file"
        input_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}

        def execute(self, input: dict[str, Any], context: Any) -> str:
            ran.append(input)
            return "made"

    cut = Completion(
        stop_reason="end_turn", raw_stop_reason="max_tokens",
        message=Message(role="assistant", content=[
            {"type": "text", "text": "Creating it"},
            {"type": "tool_use", "id": "t1", "name": "make_file", "input": {}},
        ]),
    )
    state = loop([cut], tools=[Make])
    assert ran == []
    assert state.status == "completed" and state.turn == 1
    result = state.messages[-1].tool_result_blocks[0]
    assert result.tool_use_id == "t1" and result.is_error and "max_tokens" in result.content


def test_compaction_usage_is_priced_like_any_turn(monkeypatch: pytest.MonkeyPatch) -> None:
    async def fake_compact(messages: list[Message], **kw: Any) -> CompactionOutcome | None:
        if len(messages) != 1:
            return None
        return CompactionOutcome(messages=list(messages), before_tokens=9, after_tokens=9,
                                 method="summary", usage=Usage(input_tokens=1_000_000))

    monkeypatch.setattr(turn_module, "maybe_compact", fake_compact)
    info = model_metadata.lookup("claude-sonnet-4-6")
    assert info is not None and info.input_price
    state = loop(Scripted(["ok"], model="claude-sonnet-4-6", usage=(0, 0)))
    assert state.usage.priced
    assert state.usage.estimated_cost_cents == pytest.approx(info.input_price * 100)


def test_pause_turn_of_a_server_tool_resends_to_resume() -> None:
    paused = Completion(
        stop_reason="end_turn", raw_stop_reason="pause_turn",
        message=Message(role="assistant", content=[
            {"type": "server_tool_use", "id": "srv1", "name": "code_execution",
             "input": {"code": "print(1)"}},
            {"type": "code_execution_tool_result", "tool_use_id": "srv1", "content": {}},
        ]),
    )
    provider = Scripted([paused, "The result is 1."])
    state = loop(provider)
    assert state.status == "completed" and state.turn == 2
    assert provider.calls[1].messages[-1].role == "assistant"  # resumed, no extra prompt
    assert state.last_assistant_text == "The result is 1."
