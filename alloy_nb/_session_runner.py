"""How a Session runs one request: claim the session, run the loop, record the outcome.

``session.py`` is the public face (chat, queue, cancel, persistence); this base class holds
the moving parts it shares: the active request, the FIFO queue, subscriber delivery and the
hand-over to the next queued request, possibly on another event loop.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine
from datetime import datetime, timezone
from typing import Any

from alloy_nb import _ledger, _sync
from alloy_nb._session_jobs import Job, await_future
from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.errors import AgentError, Busy, ConfigError
from alloy_nb.events import Emitter, Event
from alloy_nb.messages import Message
from alloy_nb.middleware import Halt, run_hook
from alloy_nb.result import Result
from alloy_nb.state import AgentState
from alloy_nb.usage import Usage

__all__ = ["SessionRunner"]

log = logging.getLogger("alloy_nb")


def _now() -> datetime:
    return datetime.now(timezone.utc)


async def _awaited(awaitable: Awaitable[Any], callback: Any) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("session subscriber %r raised; ignoring", callback)


class SessionRunner:
    """Request machinery behind ``Session``; all bookkeeping is guarded by a thread lock
    because a session may be driven from several loops and threads."""

    id: str
    _config: AgentConfig

    def __init__(self, messages: list[Message]) -> None:
        self._messages = messages
        self._usage = Usage()
        self._lock = threading.Lock()
        self._active: Job | None = None
        self._pending: deque[Job] = deque()
        self._jobs: dict[str, Job] = {}
        self._history: list[Result] = []
        self._subscribers: list[Any] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._context: dict[str, Any] = {}
        self._started = False  # session_start middleware ran
        self._last: tuple[str, int] = ("idle", 0)
        self._born = time.monotonic()
        self.created_at = self.updated_at = _now()

    async def _chat(self, job: Job, timeout: float | None = None) -> Result:
        """Claim the session, run ``job`` and return its Result (``AgentError`` unless ok).

        With ``timeout`` (seconds, for the whole call) the caller gets ``TimeoutError``
        when it expires, while a started request keeps running on this loop (its Result
        ends up in ``history``; ``wait``/``result``/``cancel_request`` take its id). One
        still waiting for an earlier chat when time is up is dropped (it never started).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:  # claim the session; an earlier chat is waited for, never interleaved
            with self._lock:
                active = self._active
                if active is None and not self._pending:
                    self._register(job)
                    break
                if active is None or active.kind == "background" or self._pending:
                    raise Busy(f"session {self.id} is running background request "
                               f"{getattr(active, 'request_id', '?')}; wait for it or cancel it")
                waiting = active.future
            if deadline is None:
                await await_future(waiting)
                continue
            try:
                await asyncio.wait_for(await_future(waiting), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise TimeoutError(
                    f"request {job.request_id} timed out after {timeout} s waiting for an "
                    f"earlier chat on session {self.id}; it was not started") from None
        if deadline is None:
            result, exc, external = await self._execute(job)
        else:
            task = loop.create_task(self._execute(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            try:
                result, exc, external = await asyncio.wait_for(
                    asyncio.shield(task), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise TimeoutError(
                    f"request {job.request_id} did not finish within {timeout} s; it keeps "
                    f"running in the background (session.wait({job.request_id!r}), "
                    "await session.result(...) or session.cancel_request(...))") from None
            except asyncio.CancelledError:
                task.cancel()  # the caller was cancelled: stop the run, as without a timeout
                raise
        if external:
            raise asyncio.CancelledError
        if not result.ok:
            from alloy_nb.output import agent_error

            error: AgentError = agent_error(result)  # typed: OutputValidationError
            raise error from exc
        return result

    def _register(self, job: Job) -> None:
        """Under the lock: make ``job`` the running request."""
        old = self._jobs.get(job.request_id)
        if old is not None and not old.finished:
            raise ConfigError(f"request id {job.request_id!r} is already in use")
        self._jobs[job.request_id] = job
        self._activate(job)

    def _activate(self, job: Job) -> None:
        """Under the lock: ``job`` becomes the running request and its prompt joins the
        history at once, so ``messages`` (and ``save``) right after ``send_message``
        already show it (reference §7.3), before the loop task gets to run."""
        self._active = job
        if job.prompt is not None:
            self._messages = [*self._messages, job.prompt]

    def _launch(self, job: Job, on_current_loop: bool = True) -> None:
        try:
            loop = asyncio.get_running_loop() if on_current_loop else None
        except RuntimeError:
            loop = None
        if loop is not None and not loop.is_closed():
            task = loop.create_task(self._background(job))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            asyncio.run_coroutine_threadsafe(self._background(job), _sync.background_loop())

    async def _background(self, job: Job) -> None:
        _, _, external = await self._execute(job)
        if external:  # the loop itself is shutting down
            raise asyncio.CancelledError

    # ---- running one request ------------------------------------------------------------

    async def _execute(self, job: Job) -> tuple[Result, BaseException | None, bool]:
        """Run ``job`` (already the active request) and record its outcome.

        Returns the Result, the exception that ended it, and whether the cancellation
        came from outside (the caller's task or the loop shutting down) rather than from
        ``cancel_request``.
        """
        loop = asyncio.get_running_loop()
        with self._lock:
            config, before = self._config, self._usage
            if job.output_type is not None:
                config = config.replace(output_type=job.output_type)
            context = {**self._context, "session_id": self.id, "request_id": job.request_id}
            state = AgentState(messages=list(self._messages), context=context, usage=before)
            job.state, job.loop = state, loop
        listeners: list[Callable[[Event], Any]] = [self._broadcast]
        if job.on_event is not None:
            listeners.append(job.on_event)
        emitter = new_emitter(config, state, correlation_id=job.request_id, listeners=listeners)
        exc: BaseException | None = None
        external = False
        try:
            if not state.messages:
                raise ConfigError("nothing to send: the session has no history and no prompt")
            if await self._session_start(config, state):
                inner = loop.create_task(run_loop(config, state, emitter, streaming=job.streaming,
                                                  on_chunk=job.on_chunk))
                with self._lock:
                    job.task = inner
                    if job.cancel_requested:
                        inner.cancel()
                await inner
        except asyncio.CancelledError as err:
            exc = err
            task = asyncio.current_task()
            cancelling = getattr(task, "cancelling", None)
            external = bool(cancelling and cancelling()) or not job.cancel_requested
        except Exception as err:
            exc = err
            if state.status in ("idle", "running"):
                state.status, state.error = "error", f"{type(err).__name__}: {err}"
        finally:
            if state.status in ("idle", "running"):  # cancelled before the loop started
                state.status, state.error = "cancelled", "cancelled"
            result = state.to_result(request_id=job.request_id)
            extra: dict[str, Any] = {"run_usage": state.usage - before}
            if result.status == "cancelled":
                extra["cancelled_phase"] = "running"
            result = result.model_copy(update=extra)
            with self._lock:
                self._messages = list(state.messages)
                self._usage = state.usage
                self._last = (result.status, result.turns) if job.kind == "background" else (
                    "idle", 0)
            self._complete(job, result, emitter, on_current_loop=not external)
        return result, exc, external

    async def _session_start(self, config: AgentConfig, state: AgentState) -> bool:
        """Run ``session_start`` middleware before the first request; False if it halted
        (that request ends ``halted``; the hook is tried again on the next one)."""
        if self._started or not config.middleware:
            return True
        state.config = config
        out = await run_hook(config.middleware, "session_start", state)
        if isinstance(out, Halt):
            state.status, state.error = "halted", f"Halted by middleware: {out.reason}"
            return False
        self._started = True
        self._adopt_session_id(out.context)
        with self._lock:
            self._context.update(
                {k: v for k, v in out.context.items() if k not in ("request_id", "session_id")}
            )
        if out is not state:
            state.messages, state.context = out.messages, out.context
        return True

    def _adopt_session_id(self, context: dict[str, Any]) -> None:
        """A ``session_id`` put in the context by ``session_start``/``session_end``
        middleware becomes the session's id (reference §7.1, §7.8)."""
        sid = context.get("session_id")
        if isinstance(sid, str) and sid and sid != self.id:
            with self._lock:
                self.id = sid

    def _complete(self, job: Job, result: Result, emitter: Emitter,
                  on_current_loop: bool = True) -> None:
        """Record a finished request, tell subscribers, wake waiters, start the next."""
        nxt = None
        with self._lock:
            job.finished = True
            job.state = None
            self._history.append(result)
            self.updated_at = _now()
            if self._active is job:
                self._active = None
                if self._pending:
                    nxt = self._pending.popleft()
                    self._activate(nxt)
        _ledger.record_request(self, result)  # %alloy usage counts every request
        self._broadcast(Event(
            seq=emitter.next_seq(), correlation_id=job.request_id, turn=result.turns,
            ts_ms=int(time.time() * 1000), event="result",
            payload={"request_id": job.request_id, "result": result},
        ))
        if not job.future.done():
            job.future.set_result(result)
        if nxt is not None:
            self._launch(nxt, on_current_loop)

    def _broadcast(self, event: Event) -> None:
        with self._lock:
            subscribers = list(self._subscribers)
        for callback in subscribers:
            try:
                out = callback(event)
                if inspect.isawaitable(out):
                    self._spawn(_awaited(out, callback))
            except Exception:
                log.exception("session subscriber %r raised; ignoring", callback)

    def _spawn(self, coro: Coroutine[Any, Any, None]) -> None:
        """Run an async subscriber's coroutine on this thread's loop, or on the private loop
        thread when none runs here (e.g. ``cancel_request`` called from plain code)."""
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            asyncio.run_coroutine_threadsafe(coro, _sync.background_loop())
            return
        task = loop.create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _check_idle(self, what: str) -> None:
        if self._active is not None or self._pending:
            rid = self._active.request_id if self._active else "?"
            raise Busy(f"cannot {what} while request {rid} runs; wait for it or cancel it")
