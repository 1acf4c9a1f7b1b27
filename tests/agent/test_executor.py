"""Tool execution (spec §3.3): tagging, ordering, concurrency, timeouts, error results."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest

from alloy_nb.agent import AgentConfig
from alloy_nb.agent.executor import execute_tools, tool_context, truncate_result
from alloy_nb.errors import ToolError
from alloy_nb.events import Emitter, Event
from alloy_nb.messages import ToolUseBlock
from alloy_nb.middleware import Block, Halt, Middleware
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState
from alloy_nb.tools.base import Tool, ToolResult
from alloy_nb.tools.function import as_tool


class Echo(Tool):
    name = "echo"
    description = "Echo"

    def execute(self, input: dict[str, Any], context: Any) -> str:
        return input.get("text", "")


class Sleepy(Tool):
    name = "sleepy"
    description = "Async sleep, then report"

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        await asyncio.sleep(input.get("s", 0.2))
        return f"slept {input.get('s', 0.2)}"


class Serial(Tool):
    name = "serial"
    description = "Must not run concurrently"
    concurrent = False
    log: list[str] = []  # noqa: RUF012 - shared on purpose in the test

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        Serial.log.append(f"start {input['n']}")
        await asyncio.sleep(0.02)
        Serial.log.append(f"end {input['n']}")
        return str(input["n"])


class Crashy(Tool):
    name = "crashy"
    description = "Raises"

    def execute(self, input: dict[str, Any], context: Any) -> str:
        raise ValueError("bad value")


class Polite(Tool):
    name = "polite"
    description = "Raises a ToolError"

    def execute(self, input: dict[str, Any], context: Any) -> str:
        raise ToolError("file not found: x.txt")


class Structured(Tool):
    name = "structured"
    description = "Returns data"

    def execute(self, input: dict[str, Any], context: Any) -> ToolResult:
        return ToolResult(content="3 rows", data={"rows": [1, 2, 3]})


class WrongType(Tool):
    name = "wrong"
    description = "Returns an int"

    def execute(self, input: dict[str, Any], context: Any) -> Any:
        return 42


class Long(Tool):
    name = "long"
    description = "Returns a long text"
    max_result_chars = 100

    def execute(self, input: dict[str, Any], context: Any) -> str:
        return "H" * 500 + "middle" + "T" * 500


class OwnTimeout(Tool):
    name = "own_timeout"
    description = "Raises the builtin TimeoutError itself"

    def execute(self, input: dict[str, Any], context: Any) -> str:
        raise TimeoutError("socket read timed out")


class ContextProbe(Tool):
    name = "probe"
    description = "Reports its context and thread"

    def execute(self, input: dict[str, Any], context: Any) -> str:
        on_main = threading.current_thread() is threading.main_thread()
        return f"{context['working_directory']}|{context.get('user')}|{on_main}"


def call(name: str, input: dict[str, Any] | None = None, id: str | None = None) -> ToolUseBlock:
    return ToolUseBlock(id=id or f"id_{name}", name=name, input=input or {})


def execute(calls: list[ToolUseBlock], *, tools: list[Any], events: list[Event] | None = None,
            **options: Any) -> Any:
    config = AgentConfig.from_options(provider=Scripted(), tools=tools, **options)
    state = AgentState(config=config, turn=1)
    emitter = Emitter("corr", [events.append] if events is not None else [])
    return asyncio.run(execute_tools(calls, config, state, emitter, turn=1))


def test_results_in_call_order_with_metadata() -> None:
    events: list[Event] = []
    blocks, metas = execute([call("echo", {"text": "a"}, "1"), call("echo", {"text": "b"}, "2")],
                            tools=[Echo], events=events)
    assert [(b.tool_use_id, b.content) for b in blocks] == [("1", "a"), ("2", "b")]
    assert [m.id for m in metas] == ["1", "2"]
    for m in metas:
        assert m.correlation_id == "corr" and m.end_event_seq > m.start_event_seq
    starts = {e.payload["id"]: e.seq for e in events if e.event == "tool_start"}
    ends = {e.payload["id"]: e.payload["start_event_seq"] for e in events if e.event == "tool_end"}
    assert starts == ends


def test_unknown_tool() -> None:
    [block], [meta] = execute([call("nope")], tools=[Echo])
    assert block.is_error and block.content == "Unknown tool: nope"
    assert meta.error == "Unknown tool: nope"


def test_crash_becomes_error_result() -> None:
    [block], [meta] = execute([call("crashy")], tools=[Crashy])
    assert block.is_error and block.content == "Tool crashed: ValueError: bad value"
    assert meta.error == block.content


def test_tool_error_text_passes_through() -> None:
    [block], _ = execute([call("polite")], tools=[Polite])
    assert (block.content, block.is_error) == ("file not found: x.txt", True)


def test_validation_error_from_function_tool_names_the_field() -> None:
    def add(a: int, b: int) -> int:
        """Add two integers."""
        return a + b

    [ok, bad], _ = execute([call("add", {"a": 1, "b": 2}, "1"),
                            call("add", {"a": "one", "b": 2}, "2")], tools=[as_tool(add)])
    assert (ok.content, ok.is_error) == ("3", False)
    assert bad.is_error and "a" in bad.content and "Tool crashed" not in bad.content


def test_tool_result_data_and_wrong_return_type() -> None:
    [good, wrong], [meta, _] = execute([call("structured"), call("wrong")],
                                       tools=[Structured, WrongType])
    assert good.content == "3 rows" and meta.structured_data == {"rows": [1, 2, 3]}
    assert wrong.is_error and "returned int" in wrong.content and "ToolResult" in wrong.content


def test_timeout_result_keeps_the_call_id() -> None:
    events: list[Event] = []
    t0 = time.monotonic()
    [block], [meta] = execute([call("sleepy", {"s": 5}, "slow-1")], tools=[Sleepy],
                              tool_timeout_ms=50, events=events)
    assert time.monotonic() - t0 < 3
    assert block.tool_use_id == "slow-1" and block.is_error
    assert block.content == "Tool execution crashed: timeout after 50 ms"
    assert "crashed" in meta.error
    assert [e.event for e in events] == ["tool_start", "tool_end"]


def test_a_tools_own_timeout_error_is_a_crash_not_our_timeout() -> None:
    [block], _ = execute([call("own_timeout")], tools=[OwnTimeout])
    assert block.content == "Tool crashed: TimeoutError: socket read timed out"


def test_concurrent_tools_overlap() -> None:
    t0 = time.monotonic()
    blocks, _ = execute([call("sleepy", {"s": 0.3}, str(i)) for i in range(4)], tools=[Sleepy])
    assert time.monotonic() - t0 < 1.0  # four 0.3 s sleeps together, not 1.2 s in a row
    assert [b.tool_use_id for b in blocks] == ["0", "1", "2", "3"]


def test_non_concurrent_tools_run_first_one_at_a_time() -> None:
    Serial.log.clear()
    blocks, _ = execute([call("echo", {"text": "e"}, "e"), call("serial", {"n": 1}, "s1"),
                         call("serial", {"n": 2}, "s2")], tools=[Echo, Serial])
    assert Serial.log == ["start 1", "end 1", "start 2", "end 2"]
    assert [b.tool_use_id for b in blocks] == ["e", "s1", "s2"]  # still call order


def test_sync_tools_run_in_a_worker_thread_with_context() -> None:
    [block], _ = execute([call("probe")], tools=[ContextProbe], working_directory="/tmp/w",
                         context={"user": "ada", "working_directory": "ignored"})
    assert block.content == "/tmp/w|ada|False"


def test_tool_context_merges_state_over_config() -> None:
    config = AgentConfig.from_options(provider=Scripted(), context={"a": 1, "b": 1})
    state = AgentState(context={"b": 2})
    assert tool_context(config, state) == {
        "a": 1, "b": 2, "working_directory": ".", "tool_timeout_ms": 120_000}


def test_tool_context_tells_tools_the_executor_timeout() -> None:
    """Tools (Bash) read ``tool_timeout_ms`` from the context to stop before the executor
    does; the loop used to leave it out, so that cap never applied."""
    config = AgentConfig.from_options(provider=Scripted(), tool_timeout_ms=900,
                                      context={"tool_timeout_ms": 5})
    assert tool_context(config, AgentState())["tool_timeout_ms"] == 900


def test_max_result_chars_keeps_head_and_tail() -> None:
    [block], _ = execute([call("long")], tools=[Long])
    assert block.content.startswith("H" * 50) and block.content.endswith("T" * 50)
    assert "truncated" in block.content and "middle" not in block.content
    assert truncate_result("short", 100) == "short"
    assert truncate_result("x" * 10, None) == "x" * 10


class BlockBash(Middleware):
    def before_tool_call(self, state: AgentState) -> Any:
        current = state.context["current_tool_call"]
        assert set(current) == {"type", "id", "name", "input"}
        if current["name"] == "bash":
            return Block("bash tool is disabled by policy")
        return state


class Bash(Tool):
    name = "bash"
    description = "Pretend shell"
    ran = False

    def execute(self, input: dict[str, Any], context: Any) -> str:
        Bash.ran = True
        return "ran"


def test_blocked_call_gets_error_result_others_run() -> None:
    events: list[Event] = []
    blocks, metas = execute([call("bash", {"cmd": "rm -rf /"}), call("echo", {"text": "ok"})],
                            tools=[Bash, Echo], middleware=[BlockBash()], events=events)
    assert not Bash.ran
    assert blocks[0].content == "Blocked: bash tool is disabled by policy" and blocks[0].is_error
    assert metas[0].duration_ms == 0 and metas[0].error == blocks[0].content
    assert blocks[1].content == "ok"
    assert sum(e.event == "tool_start" for e in events) == 2  # blocked calls emit too


def test_halt_before_tool_call_aborts_batch_without_events() -> None:
    class Stop(Middleware):
        def before_tool_call(self, state: AgentState) -> Halt:
            return Halt("blocked")

    events: list[Event] = []
    out = execute([call("echo"), call("echo", id="2")], tools=[Echo], middleware=[Stop()],
                  events=events)
    assert out == Halt("blocked") and events == []


@pytest.mark.parametrize("n", [1, 3])
def test_empty_input_is_a_dict(n: int) -> None:
    blocks, _ = execute([call("echo", None, str(i)) for i in range(n)], tools=[Echo])
    assert [b.content for b in blocks] == [""] * n


def test_a_stuck_sync_tool_does_not_hang_the_callers_event_loop() -> None:
    """A sync tool that never returns is abandoned after tool_timeout_ms; it used to sit in
    the loop's default executor, and asyncio.run() waited for it after the run ended."""
    release = threading.Event()

    class Stuck(Tool):
        name = "stuck"
        description = "Blocks its thread"

        def execute(self, input: dict[str, Any], context: Any) -> str:
            release.wait(10)
            return "late"

    try:
        t0 = time.monotonic()
        [block], _ = execute([call("stuck")], tools=[Stuck], tool_timeout_ms=100)
        assert time.monotonic() - t0 < 3  # asyncio.run returned without joining the thread
        assert block.content == "Tool execution crashed: timeout after 100 ms"
    finally:
        release.set()


def test_sync_tools_run_on_daemon_threads_and_keep_contextvars() -> None:
    import contextvars

    var: contextvars.ContextVar[str] = contextvars.ContextVar("var", default="unset")

    class Where(Tool):
        name = "where"
        description = "Reports its thread"

        def execute(self, input: dict[str, Any], context: Any) -> str:
            return f"{threading.current_thread().daemon}|{var.get()}"

    async def go() -> Any:
        var.set("set")
        config = AgentConfig.from_options(provider=Scripted(), tools=[Where])
        return await execute_tools([call("where")], config, AgentState(config=config),
                                   Emitter("c"), turn=1)

    [block], _ = asyncio.run(go())
    assert block.content == "True|set"


def test_system_exit_in_a_tool_is_an_error_result_not_the_end_of_the_loop() -> None:
    """argparse calls sys.exit() on bad arguments; in a worker thread or an async tool that
    used to escape the executor and stop the event loop (run() then hung forever)."""
    import argparse

    def cli(args: str) -> str:
        """Parse a command line."""
        parser = argparse.ArgumentParser(prog="cli", add_help=False)
        parser.add_argument("--n", type=int, required=True)
        return str(parser.parse_args(args.split()).n)

    class AsyncExit(Tool):
        name = "async_exit"
        description = "Exits"

        async def execute(self, input: dict[str, Any], context: Any) -> str:
            raise SystemExit(3)

    blocks, _ = execute([call("cli", {"args": "--x"}, "1"), call("cli", {"args": "--n 2"}, "2"),
                         call("async_exit", {}, "3")], tools=[as_tool(cli), AsyncExit])
    assert [b.content for b in blocks] == [
        "Tool crashed: SystemExit: 2", "2", "Tool crashed: SystemExit: 3"]
    assert [b.is_error for b in blocks] == [True, False, True]


# ---- the sync-tool thread pool --------------------------------------------------------


def test_a_stuck_sync_tool_does_not_block_later_sync_tools() -> None:
    """More stuck tools than the pool keeps idle workers: each is abandoned after
    tool_timeout_ms, and sync tools called beside them and after them still answer."""
    from alloy_nb.agent.executor import _threads

    release = threading.Event()

    class Stuck(Tool):
        name = "stuck"
        description = "Blocks its thread"

        def execute(self, input: dict[str, Any], context: Any) -> str:
            release.wait(20)
            return "late"

    stuck = _threads.max_idle + 2
    try:
        calls = [call("stuck", id=f"s{i}") for i in range(stuck)] + [call("echo", {"text": "hi"})]
        t0 = time.monotonic()
        blocks, _ = execute(calls, tools=[Stuck, Echo], tool_timeout_ms=200)
        assert [b.content for b in blocks] == (
            ["Tool execution crashed: timeout after 200 ms"] * stuck + ["hi"])
        for n in range(3):  # later runs: every worker of the pool but new ones is stuck
            blocks, _ = execute([call("echo", {"text": str(n)})], tools=[Echo])
            assert blocks[0].content == str(n)
        assert time.monotonic() - t0 < 5
    finally:
        release.set()


def test_many_sync_calls_reuse_threads() -> None:
    seen: list[threading.Thread] = []  # the objects, not idents: idents of dead threads recur

    class Where(Tool):
        name = "where"
        description = "Records its thread"

        def execute(self, input: dict[str, Any], context: Any) -> str:
            seen.append(threading.current_thread())
            return "ok"

    async def go() -> None:
        config = AgentConfig.from_options(provider=Scripted(), tools=[Where])
        for _ in range(40):
            await execute_tools([call("where")], config, AgentState(config=config),
                                Emitter("c"), turn=1)

    from alloy_nb.agent.executor import _threads

    before = _threads._started
    asyncio.run(go())
    asyncio.run(go())  # a new event loop reuses the same workers
    assert len(seen) == 80
    assert _threads._started - before <= 1  # at most one thread started for 80 calls
    assert len({id(t) for t in seen}) <= _threads.max_idle + 1
    assert all(t.daemon and t is not threading.main_thread() for t in seen)


@pytest.mark.parametrize("exc", [ValueError("bad"), KeyboardInterrupt(), SystemExit(4)],
                         ids=["ValueError", "KeyboardInterrupt", "SystemExit"])
def test_sync_tool_exceptions_are_error_results_and_the_worker_survives(
    exc: BaseException,
) -> None:
    seen: list[threading.Thread] = []

    class Raises(Tool):
        name = "raises"
        description = "Raises"

        def execute(self, input: dict[str, Any], context: Any) -> str:
            seen.append(threading.current_thread())
            if input.get("ok"):
                return "fine"
            raise exc

    async def go() -> list[Any]:
        config = AgentConfig.from_options(provider=Scripted(), tools=[Raises])
        out = []
        for ok in (False, True, False, True):
            blocks, _ = await execute_tools([call("raises", {"ok": ok})], config,
                                            AgentState(config=config), Emitter("c"), turn=1)
            out.append(blocks[0])
        return out

    blocks = asyncio.run(go())
    name = type(exc).__name__
    expected = f"Tool crashed: {name}: {exc}"
    assert [(b.content, b.is_error) for b in blocks] == [
        (expected, True), ("fine", False), (expected, True), ("fine", False)]
    assert all(t.is_alive() for t in seen)  # the exception did not end the worker


def test_the_pool_keeps_at_most_max_idle_workers_and_idle_ones_expire() -> None:
    from alloy_nb.agent.executor import _ToolThreads

    pool = _ToolThreads(max_idle=2, idle_s=0.2)
    release = threading.Event()
    started = threading.Semaphore(0)
    threads: list[threading.Thread] = []

    def job() -> None:
        threads.append(threading.current_thread())
        started.release()
        release.wait(5)

    for _ in range(5):
        pool.submit(job)
    for _ in range(5):
        assert started.acquire(timeout=5)
    assert len({id(t) for t in threads}) == 5  # none idle: each call got a new thread
    release.set()
    deadline = time.monotonic() + 5
    while sum(t.is_alive() for t in threads) > 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert sum(t.is_alive() for t in threads) == 2  # the other three ended
    deadline = time.monotonic() + 5
    while any(t.is_alive() for t in threads) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not any(t.is_alive() for t in threads)  # idle workers expire after idle_s
    done = threading.Event()
    pool.submit(lambda: done.set())  # and the pool still works afterwards
    assert done.wait(5)


@pytest.mark.skipif(not hasattr(__import__("os"), "fork"), reason="needs os.fork")
def test_the_pool_works_in_a_forked_child() -> None:
    """The parent's idle workers do not exist in a child; a job must not wait for them."""
    import os

    from alloy_nb.agent.executor import in_daemon_thread

    asyncio.run(in_daemon_thread(lambda: None))  # leave an idle worker behind
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child
        code = 1
        try:
            import signal

            signal.alarm(5)  # a hang fails the test instead of hanging it
            code = 0 if asyncio.run(in_daemon_thread(lambda: 42)) == 42 else 2
        finally:
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0, status
