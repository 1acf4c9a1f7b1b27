"""Run one reply's tool calls: middleware tagging, then execution with timeouts.

Every call gets exactly one result block (in call order) and one metadata entry: a crash,
a timeout, an unknown name or a ``Block`` becomes an error result the model can read;
nothing here ends the run except a ``Halt`` from ``before_tool_call``.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import inspect
import logging
import os
import queue
import threading
import time
from collections.abc import Callable, Sequence
from functools import partial
from typing import TYPE_CHECKING, Any

from alloy_nb import telemetry
from alloy_nb.errors import ToolError
from alloy_nb.events import Emitter, ToolEndPayload, ToolStartPayload
from alloy_nb.messages import ToolResultBlock, ToolUseBlock
from alloy_nb.middleware import Block, EditCall, Halt, run_before_tool_call
from alloy_nb.result import ToolCall
from alloy_nb.state import AgentState
from alloy_nb.tool_dispatch import current_tool_dispatcher
from alloy_nb.tools import _wait
from alloy_nb.tools.base import Tool, ToolResult

if TYPE_CHECKING:
    from alloy_nb.agent.config import AgentConfig

__all__ = ["ToolExit", "execute_tools", "in_daemon_thread", "tool_context", "truncate_result"]

log = logging.getLogger("alloy_nb")

_Outcome = tuple[ToolResultBlock, ToolCall]
_CANCEL_GRACE_S = 1.0


class _TimedOut(Exception):
    """The tool outlived ``tool_timeout_ms``."""


class ToolExit(Exception):
    """A tool raised ``SystemExit`` (argparse does on bad arguments), or ``KeyboardInterrupt``
    in its worker thread; reported to the model as a crash instead of killing the loop."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(f"{type(exc).__name__}: {exc}")


def _retrieve(task: asyncio.Future[Any]) -> None:
    """Mark a detached task's exception as seen (no 'never retrieved' noise)."""
    if not task.cancelled():
        task.exception()


def tool_context(config: AgentConfig, state: AgentState) -> dict[str, Any]:
    """The mapping tools receive: config context, then state context, then the run's
    ``working_directory`` and ``tool_timeout_ms`` (so a tool such as Bash can stop itself
    just before the executor would, and keep its partial output)."""
    return {
        **config.context, **state.context,
        "working_directory": config.working_directory,
        "tool_timeout_ms": config.tool_timeout_ms,
    }


def truncate_result(text: str, limit: int | None) -> str:
    """Keep the head and the tail of an over-long result, with a marker between them."""
    if not limit or len(text) <= limit:
        return text
    head = limit // 2
    tail = limit - head
    cut = len(text) - head - tail
    return f"{text[:head]}\n\n[... {cut} characters truncated ...]\n\n{text[-tail:]}"


def _settle(future: asyncio.Future[Any], value: Any, exc: BaseException | None) -> None:
    if future.done():  # the run gave up on this call (timeout, cancellation)
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(value)


_Job = Callable[[], "Callable[[], None] | None"]


class _ToolThreads:
    """An elastic pool of daemon threads for sync tools.

    A call goes to an idle worker when there is one, else to a new thread, so a worker
    held by an abandoned (stuck) tool never delays a later call: the pool simply grows
    past it, as the old thread-per-call code did, but without paying a thread start per
    call. At most ``max_idle`` workers wait for work, each for ``idle_s`` at most.
    Daemon threads never block interpreter exit; a stuck worker is only ever abandoned.

    Invariant (under ``_lock``): ``_idle`` == workers waiting (or about to wait) on
    ``_jobs`` minus the jobs queued in it, so every queued job has a worker to take it.
    """

    def __init__(self, max_idle: int = 8, idle_s: float = 60.0) -> None:
        self.max_idle = max_idle
        self.idle_s = idle_s
        self._reset()

    def _reset(self) -> None:
        """Fresh state; also run in a forked child, where the parent's workers do not exist."""
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._idle = 0
        self._started = 0

    def submit(self, job: _Job) -> None:
        """Run ``job`` (which must not raise) on a pooled thread; never waits.

        ``job`` may return a ``deliver`` callable: it runs once the worker already counts
        as idle, so the caller woken by it finds the worker free for its next call.
        """
        with self._lock:
            if self._idle > 0:
                self._idle -= 1
                self._jobs.put(job)
                return
            self._started += 1
            number = self._started
        thread = threading.Thread(
            target=self._work, args=(job,), name=f"alloy_nb-tool-{number}", daemon=True
        )
        thread.start()

    def _work(self, job: _Job) -> None:
        jobs = self._jobs
        next_job: _Job | None = job
        while next_job is not None:
            deliver = next_job()
            with self._lock:
                stay = self._jobs is jobs and self._idle < self.max_idle  # else: enough wait
                if stay:
                    self._idle += 1
            if deliver is not None:
                try:
                    deliver()
                except Exception:  # never die while counted idle: a queued job would starve
                    log.exception("delivering a tool's outcome failed")
            next_job = self._next(jobs) if stay else None

    def _next(self, jobs: queue.SimpleQueue[_Job]) -> _Job | None:
        """Wait, counted idle, for the next job; None: this worker should end."""
        try:
            return jobs.get(timeout=self.idle_s)
        except queue.Empty:
            with self._lock:
                try:  # a job was queued for "some idle worker" just as we timed out: take it
                    return jobs.get_nowait()
                except queue.Empty:
                    self._idle -= 1
                    return None


_threads = _ToolThreads()
if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_threads._reset)


async def in_daemon_thread(fn: Callable[..., Any], *args: Any) -> Any:
    """Run ``fn(*args)`` on a pooled daemon thread and await its outcome.

    Not ``asyncio.to_thread``: a sync tool that never returns would hold a slot of the
    loop's default executor forever, and ``asyncio.run`` (or interpreter exit) waits for
    that executor, so one stuck tool would hang the caller after the run had ended. The
    pool (``_ToolThreads``) abandons such a thread and starts another for the next call.
    ``SystemExit``/``KeyboardInterrupt`` raised in the thread arrive as ``ToolExit`` (a
    plain exception) so they cannot stop the loop.
    """
    loop = asyncio.get_running_loop()
    future: asyncio.Future[Any] = loop.create_future()
    ctx = contextvars.copy_context()

    def work() -> Callable[[], None]:
        value: Any = None
        error: BaseException | None = None
        try:
            value = ctx.run(fn, *args)
        except Exception as exc:  # the tool's own error (user code): reported to the model
            error = exc
        except BaseException as exc:  # SystemExit, KeyboardInterrupt: not the loop's to die of
            error = ToolExit(exc)
            error.__cause__ = exc

        def deliver() -> None:
            with contextlib.suppress(RuntimeError):  # a closed loop: nobody is waiting any more
                loop.call_soon_threadsafe(_settle, future, value, error)

        return deliver

    _threads.submit(work)
    return await future


async def _invoke(tool: Tool, args: dict[str, Any], context: dict[str, Any]) -> object:
    execute = tool.execute
    dispatcher = current_tool_dispatcher()  # a caller's say on where the call runs
    try:
        dispatched = dispatcher(tool, partial(execute, args, context)) if dispatcher else None
        if dispatched is not None:
            out = await dispatched
        elif inspect.iscoroutinefunction(execute):
            out = await execute(args, context)
        else:
            out = await in_daemon_thread(execute, args, context)  # never block the loop
        if inspect.isawaitable(out):
            out = await out
    except Exception:  # ordinary errors pass untouched; only BaseExceptions are wrapped
        raise
    except asyncio.CancelledError:
        cancelling = getattr(asyncio.current_task(), "cancelling", None)  # 3.11+
        if cancelling is None or cancelling():
            raise  # our own cancellation (Stop, interrupt, tool timeout)
        raise ToolExit(asyncio.CancelledError("the tool raised CancelledError")) from None
    except BaseException as exc:  # SystemExit, KeyboardInterrupt, ...: in a task they would
        raise ToolExit(exc) from exc  # be re-raised out of the event loop and kill its thread
    return out


def _as_result(tool: Tool, out: object) -> ToolResult:
    if isinstance(out, ToolResult):
        return out
    if isinstance(out, str):
        return ToolResult(content=out)
    raise TypeError(
        f"tool {tool.name!r} returned {type(out).__name__}; return a str or a ToolResult"
    )


class _Batch:
    """The calls of one assistant reply and what is needed to run and report them."""

    def __init__(self, config: AgentConfig, state: AgentState, emitter: Emitter,
                 turn: int) -> None:
        self.config = config
        self.state = state
        self.emitter = emitter
        self.turn = turn
        self.context = tool_context(config, state)
        self.timeout_s = config.tool_timeout_ms / 1000

    def _start(self, call: ToolUseBlock) -> int:
        payload: ToolStartPayload = {"id": call.id, "name": call.name, "input": call.input}
        return self.emitter.emit("tool_start", payload, turn=self.turn).seq

    def _finish(self, call: ToolUseBlock, start_seq: int | None, started: float,
                result: ToolResult, clock: _wait.Clock | None = None) -> _Outcome:
        waited = clock.waited() if clock is not None else 0.0  # a person's time, not the tool's
        duration_ms = max(0, int((time.monotonic() - started - waited) * 1000)) if started else 0
        error = result.content if result.is_error else None
        payload: ToolEndPayload = {
            "id": call.id, "name": call.name, "input": call.input,
            "duration_ms": duration_ms, "error": error, "start_event_seq": start_seq,
            "result": result.content,
        }
        if int(waited * 1000):
            payload["wait_ms"] = int(waited * 1000)
        end = self.emitter.emit("tool_end", payload, turn=self.turn)
        block = ToolResultBlock(
            tool_use_id=call.id, content=result.content, is_error=result.is_error
        )
        meta = ToolCall(
            id=call.id, name=call.name, input=dict(call.input), duration_ms=duration_ms,
            error=error, correlation_id=self.emitter.correlation_id,
            start_event_seq=start_seq, end_event_seq=end.seq, structured_data=result.data,
            wait_ms=int(waited * 1000),
        )
        return block, meta

    async def _bounded(self, coro: Any, clock: _wait.Clock | None = None) -> Any:
        """Await ``coro`` for at most ``tool_timeout_ms`` of its own time (a person's wait
        on ``clock`` does not count; a tool's own TimeoutError is a crash, not our
        timeout). Cancelled work gets a short grace to clean up."""
        task = asyncio.ensure_future(coro)
        task.add_done_callback(_retrieve)
        started = time.monotonic()
        left = self.timeout_s
        try:
            while True:
                done, _ = await asyncio.wait({task}, timeout=left)
                waited = clock.waited() if clock is not None else 0.0
                left = self.timeout_s - (time.monotonic() - started - waited)
                if done or left <= 0:
                    break
        except asyncio.CancelledError:
            task.cancel()  # the run was cancelled: stop the tool, do not wait for it
            raise
        if not done:
            task.cancel()
            await asyncio.wait({task}, timeout=_CANCEL_GRACE_S)
            raise _TimedOut
        return task.result()

    async def blocked(self, call: ToolUseBlock, reason: str) -> _Outcome:
        start = self._start(call)
        return self._finish(call, start, 0.0, ToolResult(content=f"Blocked: {reason}",
                                                          is_error=True))

    async def run(self, call: ToolUseBlock) -> _Outcome:
        start = self._start(call)
        started = time.monotonic()
        tool = self.config.tools_by_name.get(call.name)
        if tool is None:
            result = ToolResult(content=f"Unknown tool: {call.name}", is_error=True)
            return self._finish(call, start, started, result)
        clock = None
        try:
            with _wait.tracking() as clock:  # the tool's task inherits it
                out = await self._bounded(
                    _invoke(tool, dict(call.input or {}), dict(self.context)), clock)
            result = _as_result(tool, out)
        except _TimedOut:
            ms = self.config.tool_timeout_ms
            result = ToolResult(
                content=f"Tool execution crashed: timeout after {ms} ms", is_error=True
            )
        except ToolError as exc:
            result = ToolResult(content=str(exc), is_error=True)
        except ToolExit as exc:
            result = ToolResult(content=f"Tool crashed: {exc}", is_error=True)
        except Exception as exc:  # the tool's own bug (user code): an error result
            log.debug("tool %r raised", call.name, exc_info=True)  # the model and the UI see it
            result = ToolResult(
                content=f"Tool crashed: {type(exc).__name__}: {exc}", is_error=True
            )
        limit = tool.max_result_chars
        if limit and len(result.content) > limit:
            result = result.model_copy(update={"content": truncate_result(result.content, limit)})
        return self._finish(call, start, started, result, clock)


async def execute_tools(
    calls: Sequence[ToolUseBlock], config: AgentConfig, state: AgentState, emitter: Emitter,
    *, turn: int,
) -> tuple[list[ToolResultBlock], list[ToolCall]] | Halt:
    """Run ``calls`` and return result blocks and metadata in call order, or a ``Halt``.

    1. ``before_tool_call`` middleware tags each call in order (run / Block / Halt /
       EditCall, which swaps in a new input); a Halt aborts the batch before anything runs
       or any event is emitted.
    2. Tools with ``concurrent = False`` run one at a time, in call order.
    3. The rest (and blocked/unknown calls) run together; each is bounded by
       ``tool_timeout_ms``.
    """
    tags: list[Block | None] = []
    calls = list(calls)
    for i, call in enumerate(calls):
        verdict = await run_before_tool_call(config.middleware, state, call.model_dump())
        if isinstance(verdict, Halt):
            return verdict
        if isinstance(verdict, EditCall):  # same id and name, the input that will run
            calls[i] = call.model_copy(update={"input": dict(verdict.input)})
            verdict = None
        tags.append(verdict)

    batch = _Batch(config, state, emitter, turn)
    outcomes: list[_Outcome | None] = [None] * len(calls)
    sequential: list[int] = []
    together: list[int] = []
    for i, call in enumerate(calls):
        tool = config.tools_by_name.get(call.name)
        serial = tags[i] is None and tool is not None and not tool.concurrent
        (sequential if serial else together).append(i)

    for i in sequential:
        outcomes[i] = await telemetry.traced_tool(calls[i], batch.run(calls[i]))

    def job(i: int) -> Any:
        tag = tags[i]
        work = batch.blocked(calls[i], tag.reason) if tag is not None else batch.run(calls[i])
        return telemetry.traced_tool(calls[i], work)

    if len(together) == 1:
        outcomes[together[0]] = await job(together[0])
    elif together:
        done = await asyncio.gather(*(job(i) for i in together))
        for i, outcome in zip(together, done, strict=True):
            outcomes[i] = outcome
    blocks = [o[0] for o in outcomes if o is not None]
    metas = [o[1] for o in outcomes if o is not None]
    return blocks, metas
