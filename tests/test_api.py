"""One-shot entry points run/stream/arun/astream (conformance A1–A11, plus sync/async
plumbing: inside a running loop, interrupts, cancellation, statuses, events)."""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from typing import Any, ClassVar

import pytest

import alloy_nb as alloy
from alloy_nb import _sync
from alloy_nb.errors import AgentError, ConfigError
from alloy_nb.events import Event
from alloy_nb.messages import Message, assistant, user
from alloy_nb.middleware import Halt, Middleware
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState
from alloy_nb.tools.base import Tool


class Upper(Tool):
    name = "uppercase"
    description = "Upper-case the text"
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object", "properties": {"text": {"type": "string"}}}
    ran: list[str] = []  # noqa: RUF012

    def execute(self, input: dict[str, Any], context: Any) -> str:
        Upper.ran.append(input["text"])
        return input["text"].upper()


def test_a1_single_text_reply() -> None:
    r = alloy.run("What is 2+2?", provider=Scripted(["4"]))
    assert (r.text, r.status, r.turns, r.error) == ("4", "completed", 1, None)


def test_a2_system_prompt() -> None:
    p = Scripted(["Hello!"])
    assert alloy.run("hi", provider=p, system_prompt="You are helpful.").text == "Hello!"
    assert p.calls[0].system == "You are helpful."


def test_a3_tool_then_text() -> None:
    Upper.ran.clear()
    p = Scripted([Scripted.tool_calls(("uppercase", {"text": "hello"})), "It is HELLO."])
    r = alloy.run("shout hello", provider=p, tools=[Upper])
    assert (r.text, r.turns, r.status) == ("It is HELLO.", 2, "completed")
    assert Upper.ran == ["hello"]
    assert r.tool_calls[0].name == "uppercase"


def test_a4_two_tool_turns() -> None:
    p = Scripted([Scripted.tool_calls(("uppercase", {"text": "a"})),
                  Scripted.tool_calls(("uppercase", {"text": "b"})), "done"])
    r = alloy.run("go", provider=p, tools=[Upper])
    assert (r.turns, r.text) == (3, "done")


def test_a5_history_plus_prompt() -> None:
    history = [user("Hi"), assistant("Hello")]
    r = alloy.run("How are you?", provider=Scripted(["Fine"]), messages=history)
    assert len(r.messages) == 4 and r.messages[:2] == history


def test_a6_none_prompt_with_history() -> None:
    r = alloy.run(None, provider=Scripted(["Hello"]), messages=[user("Hi")])
    assert (len(r.messages), r.text) == (2, "Hello")
    dicts = alloy.run(provider=Scripted(["ok"]),
                      messages=[{"role": "user", "content": "from a dict"}])
    assert dicts.messages[0].text == "from a dict"


def test_a7_error_raises_agent_error_with_result() -> None:
    with pytest.raises(AgentError) as info:
        alloy.run("hi", provider=Scripted([Scripted.error("Rate limited")]))
    result = info.value.result
    assert (result.status, result.error) == ("error", "Rate limited")
    assert [m.role for m in result.messages] == ["user"]


def test_a8_max_turns_returns() -> None:
    p = Scripted([Scripted.tool_calls(("uppercase", {"text": "x"}))] * 30)
    r = alloy.run("loop", provider=p, tools=[Upper], max_turns=5)
    assert (r.status, r.turns, r.text) == ("max_turns", 5, "")


def test_a9_a11_middleware_sees_hooks_and_running() -> None:
    seen: list[tuple[str, str]] = []

    class Rec(Middleware):
        def call(self, hook: str, state: AgentState) -> AgentState:
            seen.append((hook, state.status))
            return state

    alloy.run("hi", provider=Scripted(["x"]), middleware=[Rec()])
    assert seen == [("before_completion", "running"), ("after_completion", "running")]


def test_a10_usage_accumulates() -> None:
    p = Scripted([Scripted.tool_calls(("uppercase", {"text": "x"})), "done"])
    u = alloy.run("go", provider=p, tools=[Upper]).usage
    assert (u.input_tokens, u.output_tokens, u.total_tokens) == (20, 10, 30)


def test_halted_raises_and_budget_exceeded_returns() -> None:
    with pytest.raises(AgentError) as info:
        alloy.run("hi", provider=Scripted(["x"]),
                  middleware=[lambda hook, state: Halt("stop")])
    assert info.value.result.status == "halted"
    p = Scripted([Scripted.tool_calls(("uppercase", {"text": "x"}), usage=(10**6, 0))] * 3,
                 model="claude-sonnet-4-6")
    r = alloy.run("go", provider=p, tools=[Upper], max_budget_cents=1)
    assert (r.status, r.turns) == ("budget_exceeded", 1)


def test_stream_delivers_chunks() -> None:
    chunks: list[str] = []
    r = alloy.stream("hi", chunks.append, provider=Scripted(["Hello there"]))
    assert "".join(chunks) == "Hello there" == r.text and len(chunks) > 1


@pytest.mark.parametrize("entry", ["run", "stream", "arun", "astream"])
def test_on_event_on_every_entry_point(entry: str) -> None:
    events: list[Event] = []
    opts: dict[str, Any] = {"provider": Scripted(["Hi"]), "on_event": events.append}
    if entry == "run":
        alloy.run("x", **opts)
    elif entry == "stream":
        alloy.stream("x", None, **opts)
    elif entry == "arun":
        asyncio.run(alloy.arun("x", **opts))
    else:
        asyncio.run(alloy.astream("x", lambda c: None, **opts))
    names = [e.event for e in events]
    assert names[0] == "turn_start" and names[-1] == "done"
    assert ("text_delta" in names) == entry.endswith("stream")
    assert [e.seq for e in events] == list(range(1, len(events) + 1))
    assert len({e.correlation_id for e in events}) == 1


def test_run_inside_a_running_event_loop() -> None:
    async def main() -> str:
        return alloy.run("hi", provider=Scripted(["from inside"])).text or ""

    assert asyncio.run(main()) == "from inside"


def test_arun_and_astream_in_a_loop_concurrently() -> None:
    async def main() -> list[str | None]:
        results = await asyncio.gather(
            alloy.arun("a", provider=Scripted([Scripted.delay(0.05, "one")])),
            alloy.astream("b", None, provider=Scripted([Scripted.delay(0.05, "two")])),
        )
        return [r.text for r in results]

    assert asyncio.run(main()) == ["one", "two"]


def test_arun_cancelled_reraises_cancelled_error() -> None:
    async def main() -> float:
        task = asyncio.create_task(
            alloy.arun("hi", provider=Scripted([Scripted.delay(30, "never")])))
        await asyncio.sleep(0.05)
        t0 = time.monotonic()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return time.monotonic() - t0

    assert asyncio.run(main()) < 0.5


def test_sync_run_interrupted_raises_agent_error_cancelled() -> None:
    """A kernel interrupt (SIGINT) while run() blocks cancels the run, keeps usage and
    leaves a history a follow-up run continues from."""

    def interrupt_on_second_turn(ev: Event) -> None:
        if ev.event == "turn_start" and ev.turn == 2:
            _thread.interrupt_main()

    p = Scripted([Scripted.tool_calls(("uppercase", {"text": "x"})), Scripted.delay(30, "no")])
    t0 = time.monotonic()
    with pytest.raises(AgentError) as info:
        alloy.run("go", provider=p, tools=[Upper], on_event=interrupt_on_second_turn)
    assert time.monotonic() - t0 < 5
    assert isinstance(info.value.__cause__, KeyboardInterrupt)
    result = info.value.result
    assert (result.status, result.error, result.turns) == ("cancelled", "cancelled", 1)
    assert result.usage.input_tokens == 10
    follow = alloy.run("carry on", provider=Scripted(["continued"]), messages=result.messages)
    assert follow.status == "completed" and len(follow.messages) == 5


def test_nested_run_from_a_sync_tool_works_but_not_from_the_loop_thread() -> None:
    class Nested(Tool):
        name = "nested"
        description = "Runs a sub-agent"

        def execute(self, input: dict[str, Any], context: Any) -> str:  # worker thread
            return alloy.run("sub", provider=Scripted(["sub-answer"])).text or ""

    class Blocking(Tool):
        name = "blocking"
        description = "Wrongly blocks the loop"

        async def execute(self, input: dict[str, Any], context: Any) -> str:
            return alloy.run("sub", provider=Scripted(["x"])).text or ""

    p = Scripted([Scripted.tool_calls(("nested", {}), ("blocking", {})), "done"])
    r = alloy.run("go", provider=p, tools=[Nested, Blocking])
    ok, bad = r.messages[2].tool_result_blocks
    assert ok.content == "sub-answer"
    assert bad.is_error and "use the async form" in bad.content


def test_run_sync_accepts_a_factory_and_reports_errors() -> None:
    async def boom() -> None:
        raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        _sync.run_sync(boom)
    assert _sync.run_sync(lambda: asyncio.sleep(0, "v")) == "v"


def test_prompt_validation() -> None:
    with pytest.raises(ConfigError, match="nothing to send"):
        alloy.run(provider=Scripted(["x"]))
    with pytest.raises(ConfigError, match="prompt must be"):
        alloy.run(42, provider=Scripted(["x"]))  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="on_chunk must be"):
        alloy.stream("x", "not callable", provider=Scripted(["x"]))  # type: ignore[arg-type]
    r = alloy.run(Message(role="user", content="as message"), provider=Scripted(["ok"]))
    assert r.messages[0].text == "as message"


def test_result_renders_and_repr() -> None:
    r = alloy.run("hi", provider=Scripted(["**bold**"]))
    assert "**bold**" in r._repr_markdown_() and "completed" in repr(r)


def test_system_exit_on_the_loop_thread_reaches_the_caller_and_the_loop_survives() -> None:
    """sys.exit() in a middleware (or callback) runs on the private loop thread; it used to
    kill that thread and leave run() waiting forever. Now it is re-raised in the caller."""

    def exits(hook: str, state: AgentState) -> AgentState:
        if hook == "before_completion":
            raise SystemExit(3)
        return state

    raised: list[BaseException] = []

    def caller() -> None:  # a thread, so the old behaviour (hang) fails fast
        try:
            alloy.run("go", provider=Scripted(["never"]), middleware=[exits])
        except BaseException as exc:
            raised.append(exc)

    worker = threading.Thread(target=caller, daemon=True)
    worker.start()
    worker.join(5)
    assert not worker.is_alive(), "run() hung after SystemExit on the loop thread"
    assert isinstance(raised[0], SystemExit) and raised[0].code == 3
    assert alloy.run("again", provider=Scripted(["fine"])).text == "fine"  # same loop thread
    assert _sync._thread is not None and _sync._thread.is_alive()
