"""Session: history across calls, the background queue, cancellation, subscribers, model
switch, reset, health (spec §7; conformance E, F, G named in comments)."""

from __future__ import annotations

import asyncio
import time

import pytest

from alloy_nb.errors import AgentError, Busy, ConfigError, ProviderError, QueueFull
from alloy_nb.events import Event
from alloy_nb.messages import ToolResultBlock, ToolUseBlock, repair_history, user
from alloy_nb.middleware import Halt, Middleware
from alloy_nb.providers.scripted import Scripted
from alloy_nb.session import Session
from alloy_nb.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def _texts(session: Session) -> list[tuple[str, str]]:
    return [(m.role, m.text) for m in session.messages]


# --- chat and history (E77, E78, E79, E80, E92) ------------------------------------------


def test_chat_keeps_history_and_counts_usage():
    session = Session(provider=Scripted(["Hi!", "Fine."]))
    assert session.messages == []  # E78
    r1 = session.chat("Hello")
    assert (r1.text, r1.status, r1.turns) == ("Hi!", "completed", 1)  # E77
    assert len(session.messages) == 2
    usage_after_one = session.usage
    r2 = session.chat("How are you?")
    assert _texts(session) == [  # E77: user/assistant/user/assistant, contents as sent
        ("user", "Hello"), ("assistant", "Hi!"), ("user", "How are you?"), ("assistant", "Fine."),
    ]
    assert session.usage.input_tokens >= usage_after_one.input_tokens  # E80
    assert r2.usage == session.usage  # cumulative (reference §7.2) ...
    assert r2.run_usage.input_tokens == 10  # ... and this request's own share
    assert [r.request_id for r in session.history] == [r1.request_id, r2.request_id]
    assert session.last_result is session.history[-1]


def test_health_fresh_and_after_chat():  # E74, E92, G111
    session = Session(provider=Scripted(["ok"]))
    h = session.health()
    assert (h["status"], h["turns"], h["message_count"], h["busy"]) == ("idle", 0, 0, False)
    assert (h["pending_count"], h["max_pending"]) == (0, 0)
    time.sleep(0.01)
    assert session.health()["uptime_ms"] > 0
    session.chat("hi")
    h = session.health()
    assert (h["status"], h["turns"], h["message_count"]) == ("idle", 0, 2)


def test_chat_with_tools_and_streaming():
    chunks: list[str] = []
    provider = Scripted([Scripted.tool_calls(("add", {"a": 2, "b": 3})), "It is 5."])
    session = Session(provider=provider, tools=[add])
    result = session.stream_chat("2+3?", chunks.append)
    assert result.text == "It is 5." and "".join(chunks) == "It is 5."
    assert [c.name for c in result.tool_calls] == ["add"]
    assert repair_history(session.messages) == session.messages


def test_error_raises_agent_error_and_keeps_valid_history():
    provider = Scripted([Scripted.error(ProviderError("boom")), "recovered"])
    session = Session(provider=provider, max_retries=0)
    with pytest.raises(AgentError) as info:
        session.chat("first")
    assert info.value.result.status == "error" and "boom" in info.value.result.error
    assert _texts(session) == [("user", "first")]  # the prompt stays (reference §7.5)
    assert session.chat("second").text == "recovered"
    assert session.history[0].status == "error"


def test_halted_chat_raises():
    class Stop(Middleware):
        def before_completion(self, state):
            return Halt("nope")

    session = Session(provider=Scripted(["never"]), middleware=[Stop()])
    with pytest.raises(AgentError, match="halted"):
        session.chat("hi")


def test_export_id_from_context_session_id():  # E82
    assert Session(provider=Scripted([]), context={"session_id": "my-session-123"}).id == (
        "my-session-123")
    a, b = Session(provider=Scripted([])), Session(provider=Scripted([]))
    assert a.id and a.id != b.id
    assert Session(provider=Scripted([]), id="given").id == "given"


def test_reset_clears_history_keeps_usage_and_id():  # E79, E74
    session = Session(provider=Scripted(["a", "b"]))
    session.chat("one")
    usage, sid = session.usage, session.id
    session.reset()
    assert session.messages == [] and session.usage == usage and session.id == sid
    assert session.health()["status"] == "idle"
    session.chat("two")
    assert _texts(session) == [("user", "two"), ("assistant", "b")]


def test_chat_without_prompt_needs_history():
    with pytest.raises(AgentError, match="nothing to send"):
        Session(provider=Scripted(["x"])).chat()
    session = Session(provider=Scripted(["continued"]), messages=[user("pending question")])
    assert session.chat().text == "continued"


def test_unknown_option_is_a_config_error():
    with pytest.raises(ConfigError):
        Session(provider=Scripted([]), max_turn=3)


# --- model switch (F93–F99) ----------------------------------------------------------------


def test_set_model_switches_provider_and_keeps_everything_else():
    session = Session(provider=Scripted(["first"], model="gpt-5.4"), system_prompt="sys",
                      max_turns=7, working_directory="/tmp")
    assert session.max_tokens == 1_050_000  # F98: derived from gpt-5.4
    session.chat("hello")
    before = (session.messages, session.usage)
    session.set_model(Scripted(["Switched!"], model="claude-haiku-4-5"))
    assert (session.messages, session.usage) == before  # F94, F97
    assert session.max_tokens == 200_000  # F98: re-derived
    config = session.config
    assert (config.system_prompt, config.max_turns, config.working_directory) == (
        "sys", 7, "/tmp")  # F95
    assert session.chat("again").text == "Switched!"  # F93
    assert len(session.messages) == 4  # E86


def test_set_model_keeps_explicit_max_tokens():  # F99
    session = Session(provider=Scripted([], model="gpt-5.4"), max_tokens=123_456)
    session.set_model(Scripted([], model="claude-haiku-4-5"))
    assert session.max_tokens == 123_456


def test_set_model_uses_overrides():
    session = Session(provider=Scripted([], model="gpt-5.4"),
                      model_metadata_overrides={"acme": 64_000})
    session.set_model(Scripted([], model="acme"))
    assert session.max_tokens == 64_000


# --- background requests and the queue (G100–G117) ------------------------------------


def test_send_message_returns_id_and_result():  # G100, G107
    async def main():
        session = Session(provider=Scripted(["done"]))
        rid = session.send_message("go")
        assert isinstance(rid, str) and rid
        result = await session.result(rid)
        assert (result.text, result.status, result.request_id) == ("done", "completed", rid)
        assert session.send_message("again", request_id="mine") == "mine"  # G100 echo
        assert (await session.result("mine")).status == "error"  # script exhausted
        return session

    session = asyncio.run(main())
    assert session.health()["status"] == "error"  # G112: final status kept after async run


def test_send_message_without_loop_runs_on_private_thread():  # G117
    session = Session(provider=Scripted(["async answer", "sync answer"]))
    rid = session.send_message("background")
    assert session.wait(rid, timeout=10).text == "async answer"
    h = session.health()
    assert h["status"] == "completed" and h["turns"] > 0  # G112
    assert session.chat("foreground").text == "sync answer"
    assert [m.role for m in session.messages] == ["user", "assistant"] * 2  # G117


def test_busy_and_queue_full():  # G101, G102, G103, G110, G111
    async def main():
        slow = Scripted([Scripted.delay(0.3, "slow"), "r2", "r3", "later"])
        session = Session(provider=slow, max_pending=2)
        ids = [session.send_message(f"m{i}") for i in range(3)]
        with pytest.raises(QueueFull):
            session.send_message("m3")
        h = session.health()
        assert (h["busy"], h["pending_count"], h["status"]) == (True, 2, "running")
        t0 = time.perf_counter()
        assert session.health()["busy"] and time.perf_counter() - t0 < 0.1  # G108
        for call in (lambda: session.reset(), lambda: session.set_model(Scripted([]))):
            with pytest.raises(Busy):
                call()
        with pytest.raises(Busy):
            await session.achat("chat while busy")
        results = [await session.result(i) for i in ids]
        assert [(r.request_id, r.text) for r in results] == list(  # FIFO
            zip(ids, ["slow", "r2", "r3"], strict=True))
        h = session.health()
        assert (h["busy"], h["pending_count"]) == (False, 0)
        assert (await session.result(session.send_message("m4"))).text == "later"  # G102

        no_queue = Session(provider=Scripted([Scripted.delay(0.2, "x")]))
        no_queue.send_message("one")
        with pytest.raises(Busy):  # G101
            no_queue.send_message("two")
        await no_queue.result(no_queue.current_request_id)

    asyncio.run(main())


def test_three_queued_second_cancelled():  # G104
    async def main():
        provider = Scripted([Scripted.delay(0.2, "first"), "third"])
        session = Session(provider=provider, max_pending=2)
        seen: list[Event] = []
        session.subscribe(seen.append)
        r1, r2, r3 = (session.send_message(t) for t in ("one", "two", "three"))
        assert session.cancel_request(r2) is True
        assert session.cancel_request(r2) is False  # already gone
        results = [await session.result(r) for r in (r1, r2, r3)]
        return session, results, seen, provider

    session, (a, b, c), seen, provider = asyncio.run(main())
    assert (a.text, a.status) == ("first", "completed")
    assert (b.status, b.error, b.cancelled_phase) == ("cancelled", "cancelled", "queued")
    assert (c.text, c.status) == ("third", "completed")
    assert _texts(session) == [  # exactly the turns of the first and third request
        ("user", "one"), ("assistant", "first"), ("user", "three"), ("assistant", "third"),
    ]
    assert len(provider.calls) == 2  # the cancelled one never reached the provider
    tagged = [e.payload["request_id"] for e in seen if e.event == "result"]
    assert tagged == [b.request_id, a.request_id, c.request_id]


def test_provider_failure_mid_queue_moves_on():  # G109, G116
    async def main():
        provider = Scripted([Scripted.delay(0.05, "one"), Scripted.error(ProviderError("down")),
                             "three"])
        session = Session(provider=provider, max_pending=2, max_retries=0)
        ids = [session.send_message(t) for t in ("a", "b", "c")]
        return session, [await session.result(i) for i in ids]

    session, results = asyncio.run(main())
    assert [r.status for r in results] == ["completed", "error", "completed"]
    assert "down" in results[1].error
    assert repair_history(session.messages) == session.messages
    assert _texts(session) == [("user", "a"), ("assistant", "one"), ("user", "b"),
                               ("user", "c"), ("assistant", "three")]


def test_cancel_running_request_keeps_usage_and_next_chat_continues():  # G105
    async def main():
        provider = Scripted([
            Scripted.tool_calls(("add", {"a": 1, "b": 2})),
            Scripted.delay(30, "never"),
            "continued",
        ])
        session = Session(provider=provider, tools=[add])
        rid = session.send_message("start")
        while len(provider.calls) < 2:  # first turn done, second call in flight
            await asyncio.sleep(0.01)
        assert session.cancel_request(rid) is True
        result = await session.result(rid)
        nxt = await session.achat("go on")
        return session, result, nxt

    session, result, nxt = asyncio.run(main())
    assert (result.status, result.error, result.cancelled_phase) == (
        "cancelled", "cancelled", "running")
    assert result.usage.input_tokens == 10 and result.turns == 1  # partial usage kept
    assert [c.name for c in result.tool_calls] == ["add"]
    assert nxt.text == "continued"
    assert repair_history(session.messages) == session.messages
    assert session.messages[-2].text == "go on"
    assert session.usage.input_tokens == 20


def test_cancel_unknown_and_finished():  # G106
    session = Session(provider=Scripted(["x"]))
    assert session.cancel_request("nope") is False
    rid = session.send_message("hi")
    session.wait(rid, timeout=10)
    assert session.cancel_request(rid) is False
    assert session.cancel() is False


def test_cancel_chat_by_request_id_raises_agent_error():
    async def main():
        session = Session(provider=Scripted([Scripted.delay(30, "never"), "after"]))
        task = asyncio.ensure_future(session.achat("slow", request_id="chat-1"))
        while session.current_request_id != "chat-1" or not session.health()["busy"]:
            await asyncio.sleep(0.01)
        await asyncio.sleep(0.02)
        assert session.cancel_request("chat-1")
        with pytest.raises(AgentError) as info:
            await task
        assert info.value.result.status == "cancelled"
        assert (await session.achat("again")).text == "after"

    asyncio.run(main())


def test_external_cancellation_of_achat_propagates():
    async def main():
        session = Session(provider=Scripted([Scripted.delay(30, "never")]))
        task = asyncio.ensure_future(session.achat("slow"))
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return session

    session = asyncio.run(main())
    assert session.last_result.status == "cancelled"
    assert not session.health()["busy"]


def test_two_chats_on_one_session_never_interleave():
    async def main():
        provider = Scripted([Scripted.delay(0.1, "a1"), "a2"])
        session = Session(provider=provider)
        r1, r2 = await asyncio.gather(session.achat("q1"), session.achat("q2"))
        return session, r1, r2

    session, r1, r2 = asyncio.run(main())
    assert (r1.text, r2.text) == ("a1", "a2")
    assert _texts(session) == [("user", "q1"), ("assistant", "a1"), ("user", "q2"),
                               ("assistant", "a2")]


def test_two_sessions_run_concurrently_on_one_loop():
    async def main():
        s1 = Session(provider=Scripted([Scripted.delay(0.4, "one")]))
        s2 = Session(provider=Scripted([Scripted.delay(0.4, "two")]))
        t0 = time.perf_counter()
        r1, r2 = await asyncio.gather(s1.achat("a"), s2.achat("b"))
        return time.perf_counter() - t0, r1, r2

    elapsed, r1, r2 = asyncio.run(main())
    assert (r1.text, r2.text) == ("one", "two")
    assert elapsed < 0.75  # concurrent, not 0.8 s in sequence


def test_sync_chat_inside_running_loop_and_across_loops():
    session = Session(provider=Scripted(["from loop", "from async", "from another run"]))

    async def inside():
        return session.chat("sync call in a running loop")  # runs on the private thread

    assert asyncio.run(inside()).text == "from loop"
    assert asyncio.run(session.achat("on loop 2")).text == "from async"
    assert asyncio.run(session.achat("on loop 3")).text == "from another run"
    assert len(session.messages) == 6


def test_wait_refuses_to_block_its_own_loop():
    async def main():
        session = Session(provider=Scripted([Scripted.delay(0.1, "x")]))
        rid = session.send_message("hi")
        with pytest.raises(RuntimeError, match=r"await session\.result"):
            session.wait(rid)
        assert (await session.result(rid)).text == "x"
        with pytest.raises(KeyError):
            await session.result("missing")

    asyncio.run(main())


# --- subscribers ---------------------------------------------------------------------------


def test_subscribe_gets_events_and_tagged_results():
    session = Session(provider=Scripted([Scripted.tool_calls(("add", {"a": 1, "b": 1})), "2",
                                         "again"]), tools=[add])
    seen: list[Event] = []
    unsubscribe = session.subscribe(seen.append)
    result = session.chat("1+1")
    names = [e.event for e in seen]
    assert {"turn_start", "tool_start", "tool_end", "usage", "done"} <= set(names)
    assert names[-1] == "result"
    assert {e.correlation_id for e in seen} == {result.request_id}
    seqs = [e.seq for e in seen]
    assert seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    final = seen[-1].payload
    assert final["request_id"] == result.request_id and final["result"] == result
    unsubscribe()
    session.chat("more")
    assert names == [e.event for e in seen]  # nothing after unsubscribing


def test_raising_subscriber_does_not_break_the_run():
    session = Session(provider=Scripted(["fine"]))

    def bad(event):
        raise RuntimeError("ui broke")

    session.subscribe(bad)
    assert session.chat("hi").text == "fine"


def test_session_start_middleware_runs_once_and_can_halt():
    calls: list[str] = []

    class Start(Middleware):
        def session_start(self, state):
            calls.append("start")
            state.context["team"] = "blue"
            return state

    seen_context: dict = {}

    class Look(Middleware):
        def before_completion(self, state):
            seen_context.update(state.context)
            return state

    session = Session(provider=Scripted(["a", "b"]), middleware=[Start(), Look()])
    session.chat("one")
    session.chat("two")
    assert calls == ["start"]
    assert seen_context["team"] == "blue" and seen_context["session_id"] == session.id

    class Refuse(Middleware):
        def session_start(self, state):
            return Halt("blocked at start")

    refusing = Session(provider=Scripted(["x"]), middleware=[Refuse()])
    with pytest.raises(AgentError, match="blocked at start"):
        refusing.chat("hi")


def test_close_cancels_queue_and_runs_session_end():
    ended: list[int] = []

    class End(Middleware):
        def session_end(self, state):
            ended.append(len(state.messages))
            return state

    async def main():
        session = Session(provider=Scripted([Scripted.delay(30, "x")]), max_pending=1,
                          middleware=[End()])
        r1 = session.send_message("one")
        r2 = session.send_message("two")
        await asyncio.sleep(0.02)
        async with session:
            pass
        return [await session.result(r) for r in (r1, r2)]

    results = asyncio.run(main())
    assert [r.status for r in results] == ["cancelled", "cancelled"]
    assert ended == [1]


def test_repr_is_cheap_and_key_free():
    session = Session(provider=Scripted([], model="m1"), name="demo")
    text = repr(session)
    assert "demo" in text and "m1" in text and "messages=0" in text


def test_tool_result_pairs_survive_compaction_in_a_session():
    # every reply carries text, so whichever one the summariser gets is a usable summary
    replies = [Scripted.reply(f"step {i}", tool_calls=[("add", {"a": i, "b": 1}, f"c{i}")])
               for i in range(40)]
    replies += ["final", "final"]
    session = Session(provider=Scripted(replies), tools=[add], max_tokens=600, max_turns=100,
                      compaction={"reserve_tokens": 100, "keep_recent_tokens": 150})
    compactions: list[Event] = []
    session.subscribe(lambda e: compactions.append(e) if e.event == "compaction" else None)
    result = session.chat("count " + "x" * 400)
    assert result.text == "final"
    assert compactions and {e.payload["method"] for e in compactions} == {"summary"}
    msgs = session.messages
    assert msgs[0].text.startswith("count")
    assert msgs[1].text.startswith("[Conversation summary]\nstep ")
    assert repair_history(msgs) == msgs
    for i, m in enumerate(msgs):
        ids = [b.id for b in m.content if isinstance(b, ToolUseBlock)]
        if ids:
            assert [b.tool_use_id for b in msgs[i + 1].content
                    if isinstance(b, ToolResultBlock)] == ids


def test_interrupting_a_blocking_chat_cancels_it_and_keeps_history():
    """A kernel interrupt (KeyboardInterrupt in the main thread) during ``chat``."""
    import _thread
    import threading

    session = Session(provider=Scripted([Scripted.delay(30, "never"), "next"]))
    timer = threading.Timer(0.3, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(AgentError) as info:
            session.chat("long question")
    finally:
        timer.cancel()
    assert isinstance(info.value.__cause__, KeyboardInterrupt)
    assert info.value.result.status == "cancelled"
    assert session.last_result.status == "cancelled"
    assert _texts(session) == [("user", "long question")]
    assert session.chat("retry").text == "next"


def test_queue_survives_the_callers_loop_shutting_down():
    """``asyncio.run`` ends with a request running: it is cancelled, the next one moves to
    the private loop thread and completes."""
    session = Session(provider=Scripted([Scripted.delay(30, "one"), "two"]), max_pending=1)

    async def main():
        ids = session.send_message("a"), session.send_message("b")
        await asyncio.sleep(0.05)
        return ids

    r1, r2 = asyncio.run(main())
    assert session.wait(r1, timeout=10).status == "cancelled"
    assert session.wait(r2, timeout=10).text == "two"
    assert [m.text for m in session.messages] == ["a", "b", "two"]


def test_tiny_timeout_fails_fast_instead_of_sleeping():  # E91
    from alloy_nb.errors import RateLimitError

    limited = RateLimitError("HTTP 429: slow down", status_code=429)
    session = Session(provider=Scripted([Scripted.error(limited)] * 3), timeout_ms=100,
                      retry_backoff_ms=50_000)
    t0 = time.perf_counter()
    with pytest.raises(AgentError) as info:
        session.chat("hi")
    assert info.value.result.status == "error" and time.perf_counter() - t0 < 2
    with pytest.raises(AgentError):
        session.stream_chat("again")


# --- per-call timeout (E81) ---------------------------------------------------------------


def test_chat_timeout_raises_for_the_caller_and_the_request_keeps_running():  # E81
    session = Session(provider=Scripted([Scripted.delay(0.3, "slow"), "quick", "streamed"]))
    with pytest.raises(TimeoutError, match="keeps running"):
        session.chat("one", request_id="r1", timeout=0)
    assert session.health()["busy"] is True  # still running in the background
    assert session.wait("r1", timeout=10).text == "slow"
    assert session.chat("two", timeout=10).text == "quick"  # a generous timeout is no-op
    assert session.stream_chat("three", timeout=None).text == "streamed"
    assert _texts(session) == [("user", "one"), ("assistant", "slow"), ("user", "two"),
                               ("assistant", "quick"), ("user", "three"),
                               ("assistant", "streamed")]
    with pytest.raises(ConfigError, match="timeout"):
        session.chat("four", timeout=-1)


def test_achat_timeout_leaves_the_run_on_the_loop_and_it_can_be_cancelled():  # E81
    async def main():
        session = Session(provider=Scripted([Scripted.delay(5, "never"), "after"]))
        with pytest.raises(TimeoutError):
            await session.achat("one", request_id="r1", timeout=0.05)
        assert session.current_request_id == "r1"
        with pytest.raises(Busy):
            session.send_message("queued?")  # max_pending 0: the timed-out chat still runs
        assert session.cancel_request("r1") is True
        cancelled = await session.result("r1", timeout=5)
        with pytest.raises(TimeoutError):  # streaming chat: same contract
            await session.astream_chat("two", timeout=0)
        return session, cancelled

    session, cancelled = asyncio.run(main())
    assert cancelled.status == "cancelled"
    assert repair_history(session.messages) == session.messages


# --- subscriber delivery off-loop ----------------------------------------------------------


def test_async_subscriber_gets_a_queued_cancellation_made_outside_any_loop():  # G104
    seen: list[str] = []

    async def subscriber(event: Event) -> None:
        if event.event == "result":
            seen.append(event.payload["request_id"])

    session = Session(provider=Scripted([Scripted.delay(0.2, "one"), "three"]), max_pending=2)
    session.subscribe(subscriber)
    r1, r2, r3 = (session.send_message(t) for t in ("a", "b", "c"))  # no loop: private thread
    assert session.cancel_request(r2) is True  # plain code: no running loop in this thread
    assert [session.wait(r, timeout=10).status for r in (r1, r2, r3)] == [
        "completed", "cancelled", "completed"]
    deadline = time.monotonic() + 5
    while len(seen) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sorted(seen) == sorted([r1, r2, r3])
