"""Where a notebook run executes: blocking (private loop thread + main-thread UI pump) or
in the background (a task on the kernel's loop), and how interrupt and Stop cancel it.

It owns no agent logic: it awaits a coroutine that ``magics.py``/``display.py`` build from
the public ``Session`` API, and forwards the run's events to a view on the main thread.
Uses ``alloy_nb._sync``'s private loop thread, so blocking runs share one loop and client.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import logging
import queue
import threading
import time
import weakref
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, Protocol, TypeVar

from alloy_nb import _sync  # the one private module the UI uses: the shared loop thread
from alloy_nb.errors import AgentError, RunInterrupted, RunNotFinished  # re-exported here
from alloy_nb.jupyter._sigint import cancel_on_sigint
from alloy_nb.result import Result
from alloy_nb.tool_dispatch import ToolDispatcher, ToolInvocation, dispatching_tools
from alloy_nb.tools._wait import carry_clock

__all__ = [
    "FLUSH_INTERVAL_S",
    "BackgroundRun",
    "RunInterrupted",
    "RunNotFinished",
    "conclude",
    "on_main_thread",
    "run_blocking",
    "start_background",
]

log = logging.getLogger("alloy_nb")

# at most 10 flushes a second, whatever the token rate; a flush sends one or two messages
# (the live paragraph, plus one output with what was finished since), so <= 20 msg/s
FLUSH_INTERVAL_S = 0.1
_POLL_S = 0.05

Post = Callable[[Callable[[], Any]], None]  # hands a callable to the main thread's pump
T = TypeVar("T")


class View(Protocol):
    """What the runner needs from a view (``widgets.RunView``, ``display.PlainView``)."""

    transcript: Any

    def flush(self) -> None: ...
    def finalize(self) -> None: ...


RunFactory = Callable[[Callable[[Any], None]], Coroutine[Any, Any, Result]]


def _loop_thread() -> asyncio.AbstractEventLoop:
    return _sync.background_loop()


# ---- namespace tools on the main thread ---------------------------------------------

#: Tools (by identity) that must run where the user namespace lives (``on_main_thread``).
_MAIN_THREAD_TOOLS: weakref.WeakSet[Any] = weakref.WeakSet()


def on_main_thread(tool: T) -> T:
    """Mark a namespace-touching tool: notebook runs execute it on the kernel's main thread.

    The user namespace (DataFrames, plots, ``run_python``) is not thread-safe; in a
    blocking cell the main thread is parked in our pump, so the call is posted there; in
    a background run on the kernel's loop it runs inline, on that loop. The tool itself is
    returned unchanged; the runs' ``ToolDispatcher`` (``tool_dispatch``) does the routing.
    """
    _MAIN_THREAD_TOOLS.add(tool)
    return tool


def _dispatcher(post: Post | None) -> ToolDispatcher:
    """Where marked tools run: posted to the main thread's pump (``post``, in a blocking
    run) or inline on the run's loop; every other tool is left to the executor."""

    def dispatch(tool: Any, call: ToolInvocation) -> Awaitable[Any] | None:
        if tool not in _MAIN_THREAD_TOOLS:
            return None
        if post is None or threading.current_thread() is threading.main_thread():
            return _inline(call)
        return _posted(post, call)

    return dispatch


async def _inline(call: ToolInvocation) -> Any:
    out = call()
    return await out if isinstance(out, Awaitable) else out


async def _posted(post: Post, call: ToolInvocation) -> Any:
    """Run ``call`` on the main thread (its pump) and await the outcome on this loop."""
    done: concurrent.futures.Future[Any] = concurrent.futures.Future()
    run_here = carry_clock(_run_here)  # a person's wait on this thread is not tool time

    def job() -> None:
        if not done.set_running_or_notify_cancel():
            return  # the run was cancelled before the pump got here
        try:
            done.set_result(run_here(call))
        except KeyboardInterrupt:
            done.set_exception(asyncio.CancelledError())
            raise  # the pump turns it into a cancel of the whole run
        except BaseException as exc:
            done.set_exception(exc)

    post(job)
    return await asyncio.wrap_future(done)


def _run_here(call: ToolInvocation) -> Any:
    """Call ``call`` on this (main) thread; an async result is driven by a throwaway loop.

    The kernel's own loop is parked in our pump but still registered as this thread's
    running loop, and asyncio has no public way to run another loop on such a thread;
    so it is hidden for the duration with ``asyncio._set_running_loop`` (its one use).
    """
    out = call()
    if not isinstance(out, Awaitable):
        return out
    try:
        outer: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        outer = None
    asyncio._set_running_loop(None)
    loop = asyncio.new_event_loop()
    task = loop.create_task(_awaited(out))
    try:
        return loop.run_until_complete(task)
    except BaseException:  # interrupted inside the tool: let it unwind before closing
        task.cancel()
        with contextlib.suppress(BaseException):
            loop.run_until_complete(task)
        raise
    finally:
        loop.close()
        asyncio._set_running_loop(outer)


async def _awaited(value: Awaitable[Any]) -> Any:
    return await value


# ---- blocking runs --------------------------------------------------------------------


def run_blocking(factory: RunFactory, view: View,
                 cancel: Callable[[], bool] | None = None) -> Result:
    """Run ``factory(on_event)`` on the loop thread while this thread draws ``view``.

    On ``KeyboardInterrupt`` (the kernel's ■) the run is cancelled (``cancel()``, e.g.
    ``Session.cancel_request``, else by cancelling its task), given
    ``_sync.CANCEL_GRACE_S`` to repair its history, drawn as interrupted, and the interrupt
    is re-raised so "Run All" stops.
    """
    if _sync.loop_thread_running():
        raise RuntimeError("a blocking %%alloy run cannot start from alloy_nb's loop thread")
    inbox: queue.SimpleQueue[Callable[[], Any]] = queue.SimpleQueue()
    finished = threading.Event()
    feed = view.transcript.feed

    def on_event(event: Any) -> None:  # called on the loop thread
        inbox.put(lambda: feed(event))

    async def main() -> Result:
        try:
            with dispatching_tools(_dispatcher(inbox.put)):
                return await factory(on_event)
        finally:
            finished.set()

    future = asyncio.run_coroutine_threadsafe(main(), _loop_thread())
    last_flush = 0.0
    try:
        while not finished.is_set():
            last_flush = _pump(inbox, view, last_flush)
    except KeyboardInterrupt as interrupt:
        if cancel is None or not _safe(cancel):
            future.cancel()
        deadline = time.monotonic() + _sync.CANCEL_GRACE_S
        with contextlib.suppress(KeyboardInterrupt):  # a second ■ stops the wait, not us
            while not finished.is_set() and time.monotonic() < deadline:
                last_flush = _pump(inbox, view, last_flush)
        _drain(inbox)
        outcome: BaseException = interrupt
        if future.done() and not future.cancelled():
            outcome = future.exception() or interrupt  # AgentError: the cancelled Result
        conclude(view, outcome)
        raise RunInterrupted() from None
    _drain(inbox)
    try:
        result = future.result()
    except BaseException as exc:
        conclude(view, exc)
        raise
    conclude(view, result)
    return result


def conclude(view: View, outcome: Result | BaseException) -> None:
    """Draw the end of a run: final status, usage, tool results, the static copy."""
    t = view.transcript
    if isinstance(outcome, Result):
        t.finish(outcome)
    elif isinstance(outcome, AgentError):
        t.finish(outcome.result)
    elif isinstance(outcome, KeyboardInterrupt | asyncio.CancelledError):
        t.finish(status="cancelled")
    else:
        t.finish(status="error", error=f"{type(outcome).__name__}: {outcome}")
    _call(view.finalize)  # a drawing failure must never cost the caller its Result


def _safe(fn: Callable[[], Any]) -> bool:
    try:
        return bool(fn())
    except Exception:
        log.exception("alloy_nb: cancelling the run failed")
        return False


def _pump(inbox: queue.SimpleQueue[Callable[[], Any]], view: View, last: float) -> float:
    """Run posted callables for one poll period; flush the view when it is due."""
    wait = max(0.0, min(_POLL_S, FLUSH_INTERVAL_S - (time.monotonic() - last)))
    try:
        _call(inbox.get(timeout=wait or 0.001))
        _drain(inbox)  # and whatever else is ready, without blocking
    except queue.Empty:
        pass
    now = time.monotonic()
    if now - last >= FLUSH_INTERVAL_S:
        _call(view.flush)
        return now
    return last


def _drain(inbox: queue.SimpleQueue[Callable[[], Any]]) -> None:
    while True:
        try:
            job = inbox.get_nowait()
        except queue.Empty:
            return
        _call(job)


def _call(job: Callable[[], Any]) -> None:
    """Run a UI job; a drawing bug is logged, never allowed to abandon the run."""
    try:
        job()
    except Exception:
        log.exception("alloy_nb view update failed")


# ---- background runs ------------------------------------------------------------------


class BackgroundRun:
    """Handle of a ``--background`` run: ``await handle`` gives the Result; ``cancel()``.

    In a kernel the run is a task on the kernel's loop; it advances between cells and
    during ``await``s. ``result()`` never blocks on it from a cell (that would deadlock).
    """

    def __init__(self, name: str, view: View,
                 cancel: Callable[[], bool] | None = None) -> None:
        self.name = name
        self.view = view
        self.stop_requested = False
        self.republished = False  # the final view was published again under a later cell
        self._cancel = cancel
        self._future: asyncio.Future[Result] | concurrent.futures.Future[Result] | None = None
        self._kernel_loop = False

    # -- control ----------------------------------------------------------------------

    def cancel(self) -> bool:
        """Stop the run (what the Stop button does); the partial answer is kept."""
        if self._future is None or self._future.done():
            return False
        self.stop_requested = True
        if self._cancel is not None and _safe(self._cancel):
            return True
        return self._future.cancel()

    def done(self) -> bool:
        return self._future is not None and self._future.done()

    @property
    def status(self) -> str:
        if not self.done():
            return "running"
        status: str = self.view.transcript.status
        return status

    def add_done_callback(self, fn: Callable[[BackgroundRun], Any]) -> None:
        assert self._future is not None
        self._future.add_done_callback(lambda _f: fn(self))

    def outcome(self) -> Result | None:
        """The finished run's Result, failed runs' included (their ``AgentError``'s);
        None while running, or when it was cancelled or crashed without one."""
        fut = self._future
        if fut is None or not fut.done() or fut.cancelled():
            return None
        exc = fut.exception()
        if isinstance(exc, AgentError):
            return exc.result
        return None if exc is not None else fut.result()

    def result(self, timeout: float | None = None) -> Result:
        """The Result; in a kernel only once done (use ``await handle`` to wait)."""
        assert self._future is not None
        if isinstance(self._future, concurrent.futures.Future):
            return self._future.result(timeout)
        if not self._future.done():
            raise RunNotFinished(
                f"background run {self.name!r} is still running; wait with `await handle` "
                "(a blocking wait here would freeze the kernel that runs it)"
            )
        return self._future.result()

    async def wait(self, shield: bool = False) -> Result:
        """Wait for the Result; ■ during the wait stops the run unless ``shield=True``.

        ■ (the kernel's interrupt) cancels the awaiting cell, and asyncio passes that
        cancel on to the run: the likely intent of ■ during a wait is "stop it". The run
        ends cancelled (history repaired, view drawn interrupted) and the cell gets
        ``CancelledError``, as async cells do for an interrupt. With ``shield=True`` only
        the wait stops and the run goes on. A scoped SIGINT handler (``_sigint``) makes
        this take effect at once instead of at the loop's next wake-up (ipykernel #881).
        """
        assert self._future is not None
        fut = self._future
        if isinstance(fut, concurrent.futures.Future):
            fut = asyncio.wrap_future(fut)
        try:
            with cancel_on_sigint():
                return await (asyncio.shield(fut) if shield else fut)
        finally:
            if fut.done():
                self.republished = True
                _resend(self.view)  # under the awaiting cell: nbclient records it there

    def __await__(self) -> Any:
        return self.wait().__await__()

    def __repr__(self) -> str:
        hint = " (`await` it for the Result)" if not self.done() else ""
        return f"<alloy background run {self.name!r}: {self.status}{hint}>"


def _resend(view: View) -> None:
    resend = getattr(view, "resend", None)
    if resend is not None:
        try:
            resend()
        except Exception:
            log.exception("alloy_nb could not re-send the view")


def start_background(factory: RunFactory, view: View, name: str, *,
                     cancel: Callable[[], bool] | None = None,
                     on_done: Callable[[BackgroundRun], Any] | None = None) -> BackgroundRun:
    """Start ``factory(on_event)`` without blocking; returns its ``BackgroundRun``.

    With a running loop on this thread (a kernel) the run is a task there and the view is
    updated directly, throttled by a timer. Without one (terminal IPython) it runs on the
    loop thread and the view is updated from there under a lock (text only).
    """
    handle = BackgroundRun(name, view, cancel)
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    draw = _Drawer(view, loop)

    async def main() -> Result:
        try:
            with dispatching_tools(_dispatcher(None)):
                result = await factory(draw.event)
        except asyncio.CancelledError as exc:
            draw.conclude(exc)
            if not handle.stop_requested:
                raise
            return view.transcript.result or Result(
                text=view.transcript.text, status="cancelled", error="stopped",
                usage=view.transcript.usage, turns=view.transcript.turns,
            )
        except AgentError as exc:
            draw.conclude(exc)
            if handle.stop_requested and exc.result.status == "cancelled":
                return exc.result  # Stop is not a failure: `await handle` gets the Result
            raise
        except BaseException as exc:
            draw.conclude(exc)
            raise
        draw.conclude(result)
        return result

    if loop is not None:
        handle._future = loop.create_task(main(), name=f"alloy:{name}")
        handle._kernel_loop = True
    else:
        handle._future = asyncio.run_coroutine_threadsafe(main(), _loop_thread())
    handle._future.add_done_callback(_retrieve)
    if on_done is not None:
        handle.add_done_callback(on_done)
    return handle


def _retrieve(fut: Any) -> None:
    """Mark the outcome as seen: it is shown in the view and re-raised by ``await``."""
    if not fut.cancelled():
        fut.exception()


class _Drawer:
    """Feeds events to a view on its own thread and flushes at most every interval."""

    def __init__(self, view: View, loop: asyncio.AbstractEventLoop | None) -> None:
        self.view = view
        self.loop = loop
        self.lock = threading.Lock()
        self.scheduled = False
        self.last = 0.0

    def event(self, event: Any) -> None:
        if self.loop is not None and not _on_loop(self.loop):
            self.loop.call_soon_threadsafe(self.event, event)
            return
        with self.lock:
            self.view.transcript.feed(event)
            if self.loop is None:
                if time.monotonic() - self.last >= FLUSH_INTERVAL_S:
                    self.flush()
            elif not self.scheduled:
                self.scheduled = True
                delay = max(0.0, FLUSH_INTERVAL_S - (time.monotonic() - self.last))
                self.loop.call_later(delay, self.flush)

    def flush(self) -> None:
        self.scheduled = False
        self.last = time.monotonic()
        self.view.flush()

    def conclude(self, outcome: Result | BaseException) -> None:
        with self.lock:
            conclude(self.view, outcome)


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
