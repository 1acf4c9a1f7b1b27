"""A session's request queue: one request at a time, how it runs, and what it leaves.

``Session`` (``_session``) is the public face and composes one ``RequestQueue``. The queue
owns the moving parts: the conversation the requests share (history, usage, the context
``session_start`` middleware set), the running request, the FIFO of waiting ones, the
finished Results, subscriber delivery and the hand-over to the next queued request,
possibly on another event loop (the caller's, or the ``_sync`` loop thread). Everything
is guarded by one thread lock because a session may be driven from several loops and
threads.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from contextlib import contextmanager
from datetime import datetime, timezone
from typing import Any, Protocol

from alloy_nb import _ledger, _sync
from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.errors import AgentError, Busy, ConfigError, QueueFull
from alloy_nb.events import Emitter, Event
from alloy_nb.messages import Message
from alloy_nb.middleware import Halt, run_hook
from alloy_nb.result import Result
from alloy_nb.session._request import SessionRequest, await_future
from alloy_nb.state import AgentState
from alloy_nb.usage import Usage

__all__ = ["QueueHost", "RequestQueue", "Subscriber", "utcnow"]

log = logging.getLogger("alloy_nb")
Subscriber = Callable[[Event], Any]
# (Result, the exception that ended the run, whether the cancellation came from outside)
_Outcome = tuple[Result, BaseException | None, bool]


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class QueueHost(Protocol):
    """What the queue reads from the session it serves: its identity (a ``session_id``
    set by middleware is written back here) and its current options."""

    id: str
    name: str | None

    @property
    def config(self) -> AgentConfig: ...


async def _awaited(awaitable: Awaitable[Any], callback: Subscriber) -> None:
    try:
        await awaitable
    except Exception:
        log.exception("session subscriber %r raised; ignoring", callback)


class RequestQueue:
    """Runs a session's requests one at a time (chats wait, background requests queue
    FIFO up to ``max_pending``) and keeps the conversation they continue."""

    def __init__(self, host: QueueHost, messages: list[Message]) -> None:
        self._host = host
        self.lock = threading.Lock()
        self._messages = messages
        self._usage = Usage()
        self._active: SessionRequest | None = None
        self._pending: deque[SessionRequest] = deque()
        self._requests: dict[str, SessionRequest] = {}
        self._history: list[Result] = []
        self._subscribers: list[Subscriber] = []
        self._tasks: set[asyncio.Future[Any]] = set()
        self._context: dict[str, Any] = {}  # what session_start middleware added
        self._started = False  # session_start middleware ran
        self._last: tuple[str, int] = ("idle", 0)
        self._born = time.monotonic()
        self.updated_at = utcnow()

    # ---- reading (each a consistent copy) ------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        with self.lock:
            return list(self._messages)

    @property
    def usage(self) -> Usage:
        with self.lock:
            return self._usage

    @property
    def history(self) -> list[Result]:
        with self.lock:
            return list(self._history)

    @property
    def last_result(self) -> Result | None:
        with self.lock:
            return self._history[-1] if self._history else None

    @property
    def active_id(self) -> str | None:
        with self.lock:
            return self._active.request_id if self._active else None

    @property
    def context(self) -> dict[str, Any]:
        with self.lock:
            return dict(self._context)

    def status(self) -> dict[str, Any]:
        """The queue's part of ``Session.health()``."""
        with self.lock:
            active = self._active
            status, turns = self._last
            if active is not None:
                status = "running"
                turns = active.state.turn if active.state is not None else 0
            return {
                "status": status, "busy": active is not None,
                "request_id": active.request_id if active else None, "turns": turns,
                "message_count": len(self._messages), "usage": self._usage,
                "uptime_ms": max(1, int((time.monotonic() - self._born) * 1000)),
                "pending_count": len(self._pending),
            }

    # ---- changing the conversation between requests ------------------------------------

    @contextmanager
    def idle(self, what: str) -> Iterator[None]:
        """Hold the lock while no request runs or waits; ``Busy`` otherwise."""
        with self.lock:
            if self._active is not None or self._pending:
                rid = self._active.request_id if self._active else "?"
                raise Busy(f"cannot {what} while request {rid} runs; wait for it or cancel it")
            yield

    def reset(self) -> None:
        """Forget the history (and the queue); usage and finished Results stay."""
        with self.idle("reset the session"):
            self._messages = []
            self._pending.clear()
            self._last = ("idle", 0)
            self.updated_at = utcnow()

    def restore(self, usage: Usage, updated_at: datetime) -> None:
        """Continue a saved session: its usage so far and when it last changed."""
        with self.idle("restore a saved session"):
            self._usage = usage
            self.updated_at = updated_at

    def adopt_session_id(self, context: dict[str, Any]) -> None:
        """A ``session_id`` put in the context by ``session_start``/``session_end``
        middleware becomes the session's id (reference §7.1, §7.8)."""
        sid = context.get("session_id")
        if isinstance(sid, str) and sid and sid != self._host.id:
            with self.lock:
                self._host.id = sid

    # ---- subscribers --------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        with self.lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self.lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # ---- starting requests --------------------------------------------------------------

    async def chat(self, request: SessionRequest, timeout: float | None = None) -> Result:
        """Claim the session, run ``request`` and return its Result (``AgentError`` unless
        ok).

        With ``timeout`` (seconds, for the whole call) the caller gets ``TimeoutError``
        when it expires, while a started request keeps running on this loop (its Result
        ends up in ``history``; ``wait``/``result``/``cancel_request`` take its id). One
        still waiting for an earlier chat when time is up is dropped (it never started).
        """
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        while True:  # claim the session; an earlier chat is waited for, never interleaved
            with self.lock:
                active = self._active
                if active is None and not self._pending:
                    self._register(request)
                    break
                if active is None or active.kind == "background" or self._pending:
                    rid = active.request_id if active is not None else "?"
                    raise Busy(f"session {self._host.id} is running background request "
                               f"{rid}; wait for it or cancel it")
                waiting = active.future
            if deadline is None:
                await await_future(waiting)
                continue
            try:
                await asyncio.wait_for(await_future(waiting), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise TimeoutError(
                    f"request {request.request_id} timed out after {timeout} s waiting for "
                    f"an earlier chat on session {self._host.id}; it was not started") from None
        if deadline is None:
            result, exc, external = await self._execute(request)
        else:
            task = loop.create_task(self._execute(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
            try:
                result, exc, external = await asyncio.wait_for(
                    asyncio.shield(task), max(0.0, deadline - loop.time()))
            except TimeoutError:
                raise TimeoutError(
                    f"request {request.request_id} did not finish within {timeout} s; it "
                    f"keeps running in the background (session.wait({request.request_id!r}),"
                    " await session.result(...) or session.cancel_request(...))") from None
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

    def submit(self, request: SessionRequest) -> None:
        """Start ``request`` in the background now, or queue it behind the running one."""
        with self.lock:
            if self._active is None and not self._pending:
                self._register(request)
                start = True
            else:
                limit = self._host.config.max_pending
                if limit == 0:
                    rid = self._active.request_id if self._active else "?"
                    raise Busy(f"session {self._host.id} is running request {rid} and "
                               "max_pending is 0; wait, cancel it, or set max_pending")
                if len(self._pending) >= limit:
                    raise QueueFull(
                        f"session {self._host.id} already has {limit} queued requests")
                self._check_unused(request.request_id)
                self._requests[request.request_id] = request
                self._pending.append(request)
                start = False
        if start:
            self._launch(request)

    def _check_unused(self, request_id: str) -> None:
        old = self._requests.get(request_id)
        if old is not None and not old.finished:
            raise ConfigError(f"request id {request_id!r} is already in use")

    def _register(self, request: SessionRequest) -> None:
        """Under the lock: make ``request`` the running request."""
        self._check_unused(request.request_id)
        self._requests[request.request_id] = request
        self._activate(request)

    def _activate(self, request: SessionRequest) -> None:
        """Under the lock: ``request`` becomes the running request and its prompt joins the
        history at once, so ``messages`` (and ``save``) right after ``send_message``
        already show it (reference §7.3), before the loop task gets to run."""
        self._active = request
        if request.prompt is not None:
            self._messages = [*self._messages, request.prompt]

    def _launch(self, request: SessionRequest, on_current_loop: bool = True) -> None:
        loop: asyncio.AbstractEventLoop | None = None
        if on_current_loop:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        if loop is not None and not loop.is_closed():
            task = loop.create_task(self._background(request))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)
        else:
            asyncio.run_coroutine_threadsafe(self._background(request), _sync.background_loop())

    async def _background(self, request: SessionRequest) -> None:
        _, _, external = await self._execute(request)
        if external:  # the loop itself is shutting down
            raise asyncio.CancelledError

    # ---- finding, waiting for and cancelling requests -----------------------------------

    def get(self, request_id: str) -> SessionRequest:
        with self.lock:
            request = self._requests.get(request_id)
        if request is None:
            raise KeyError(f"no request {request_id!r} in session {self._host.id}")
        return request

    def wait(self, request_id: str, timeout: float | None = None) -> Result:
        request = self.get(request_id)
        if not request.future.done():
            try:
                running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            with self.lock:
                loop = request.loop or (self._active.loop if self._active else None)
            if running is not None and (loop is None or loop is running):
                raise RuntimeError(
                    "session.wait() would block the event loop this request runs on; "
                    "use `await session.result(request_id)` instead")
        return request.future.result(timeout)

    async def result(self, request_id: str, timeout: float | None = None) -> Result:
        request = self.get(request_id)
        await asyncio.wait_for(await_future(request.future), timeout)
        return request.future.result()

    def cancel(self, request_id: str) -> bool:
        """Cancel the running request or drop a queued one; False if unknown or done."""
        with self.lock:
            request = self._requests.get(request_id)
            if request is None or request.finished:
                return False
            if request is self._active:
                request.cancel_requested = True
            elif request in self._pending:
                self._pending.remove(request)
                request.finished = True
            else:
                return False
        if not request.finished:
            request.cancel_task()
            return True
        result = Result(messages=self.messages, usage=self.usage, status="cancelled",
                        error="cancelled", request_id=request_id)
        result = result.model_copy(update={"cancelled_phase": "queued"})
        self._complete(request, result, Emitter(request_id))
        return True

    async def cancel_all(self) -> None:
        """Drop the queued requests, cancel the running one and wait until it has ended."""
        with self.lock:
            queued = list(self._pending)
            active = self._active
        for request in queued:
            self.cancel(request.request_id)
        if active is not None:
            self.cancel(active.request_id)
            await await_future(active.future)

    # ---- running one request ------------------------------------------------------------

    async def _execute(self, request: SessionRequest) -> _Outcome:
        """Run ``request`` (already the active one) and record its outcome.

        Returns the Result, the exception that ended it, and whether the cancellation
        came from outside (the caller's task or the loop shutting down) rather than from
        ``cancel_request``.
        """
        loop = asyncio.get_running_loop()
        with self.lock:
            config, before = self._host.config, self._usage
            if request.overrides:
                config = config.replace(**request.overrides)
            if request.output_type is not None:
                config = config.replace(output_type=request.output_type)
            context = {**self._context, "session_id": self._host.id,
                       "request_id": request.request_id}
            state = AgentState(messages=list(self._messages), context=context, usage=before)
            request.state, request.loop = state, loop
        listeners: list[Subscriber] = [self._broadcast]
        if request.on_event is not None:
            listeners.append(request.on_event)
        emitter = new_emitter(config, state, correlation_id=request.request_id,
                              listeners=listeners)
        exc: BaseException | None = None
        external = False
        try:
            if not state.messages:
                raise ConfigError("nothing to send: the session has no history and no prompt")
            if await self._session_start(config, state):
                inner = loop.create_task(run_loop(config, state, emitter,
                                                  streaming=request.streaming,
                                                  on_chunk=request.on_chunk))
                with self.lock:
                    request.task = inner
                    if request.cancel_requested:
                        inner.cancel()
                await inner
        except asyncio.CancelledError as err:
            exc = err
            cancelling = getattr(asyncio.current_task(), "cancelling", None)  # Python 3.11+
            external = bool(cancelling and cancelling()) or not request.cancel_requested
        except Exception as err:
            exc = err
            if state.status in ("idle", "running"):
                state.status, state.error = "error", f"{type(err).__name__}: {err}"
        finally:
            if state.status in ("idle", "running"):  # cancelled before the loop started
                state.status, state.error = "cancelled", "cancelled"
            result = state.to_result(request_id=request.request_id)
            extra: dict[str, Any] = {"run_usage": state.usage - before}
            if result.status == "cancelled":
                extra["cancelled_phase"] = "running"
            result = result.model_copy(update=extra)
            with self.lock:
                self._messages = list(state.messages)
                self._usage = state.usage
                self._last = ((result.status, result.turns) if request.kind == "background"
                              else ("idle", 0))
            self._complete(request, result, emitter, on_current_loop=not external)
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
        self.adopt_session_id(out.context)
        with self.lock:
            self._context.update(
                {k: v for k, v in out.context.items() if k not in ("request_id", "session_id")}
            )
        if out is not state:
            state.messages, state.context = out.messages, out.context
        return True

    def _complete(self, request: SessionRequest, result: Result, emitter: Emitter,
                  on_current_loop: bool = True) -> None:
        """Record a finished request, tell subscribers, wake waiters, start the next."""
        nxt = None
        with self.lock:
            request.finished = True
            request.state = None
            self._history.append(result)
            self.updated_at = utcnow()
            if self._active is request:
                self._active = None
                if self._pending:
                    nxt = self._pending.popleft()
                    self._activate(nxt)
        _ledger.record_request(self._host, result)  # %alloy usage counts every request
        emitter.emit_result({"request_id": request.request_id, "result": result},
                            turn=result.turns, to=self._broadcast)
        if not request.future.done():
            request.future.set_result(result)
        if nxt is not None:
            self._launch(nxt, on_current_loop)

    def _broadcast(self, event: Event) -> None:
        with self.lock:
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
