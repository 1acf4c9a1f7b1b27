"""Run a coroutine to completion from synchronous code, inside or outside a running loop.

The single home of that trick: coroutines run on one private event-loop thread (daemon,
started lazily, one per process), so a blocking call works the same in a script, in a
notebook cell whose loop is already running, and from a worker thread. No nest_asyncio.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import threading
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

__all__ = ["CANCEL_GRACE_S", "background_loop", "loop_thread_running", "run_sync"]

T = TypeVar("T")

#: How long an interrupted ``run_sync`` waits for the coroutine's cancellation cleanup.
CANCEL_GRACE_S = 2.0

_lock = threading.Lock()
_loop: asyncio.AbstractEventLoop | None = None
_thread: threading.Thread | None = None
_pid: int | None = None


def _serve(loop: asyncio.AbstractEventLoop, ready: threading.Event) -> None:
    asyncio.set_event_loop(loop)
    loop.call_soon(ready.set)
    loop.run_forever()


def _background_loop() -> asyncio.AbstractEventLoop:
    """The private loop, started on first use (and again after a fork)."""
    global _loop, _thread, _pid
    with _lock:
        alive = _thread is not None and _thread.is_alive() and _pid == os.getpid()
        if _loop is None or not alive:
            loop = asyncio.new_event_loop()
            ready = threading.Event()
            thread = threading.Thread(
                target=_serve, args=(loop, ready), name="alloy_nb-loop", daemon=True
            )
            thread.start()
            ready.wait()
            _loop, _thread, _pid = loop, thread, os.getpid()
        return _loop


def background_loop() -> asyncio.AbstractEventLoop:
    """The shared private loop (started if needed), for code that schedules onto it."""
    return _background_loop()


def loop_thread_running() -> bool:
    """True when called on the private loop thread (where blocking would deadlock)."""
    return _thread is not None and threading.current_thread() is _thread


class _Escaped(Exception):
    """Carries a ``SystemExit``/``KeyboardInterrupt`` raised by the coroutine back to the
    blocked caller, instead of letting it stop the shared loop thread."""

    def __init__(self, exc: BaseException) -> None:
        super().__init__(repr(exc))
        self.exc = exc


async def _tracked(coro: Coroutine[Any, Any, T], finished: threading.Event) -> T:
    try:
        return await coro
    except (SystemExit, KeyboardInterrupt) as exc:
        # from None: _Escaped only carries ``exc`` across threads; it is re-raised as itself
        raise _Escaped(exc) from None
    finally:
        finished.set()


def run_sync(
    aw: Coroutine[Any, Any, T] | Callable[[], Coroutine[Any, Any, T]],
) -> T:
    """Block until ``aw`` (a coroutine, or a function returning one) has finished.

    On ``KeyboardInterrupt`` while blocking, the coroutine is cancelled, given up to
    ``CANCEL_GRACE_S`` to finish its cleanup (so history and usage are consistent), and
    the interrupt is re-raised. A ``SystemExit``/``KeyboardInterrupt`` raised *by* the
    coroutine (user code on the loop thread) is re-raised here, in the caller's thread;
    the shared loop thread keeps running.
    """
    if loop_thread_running():
        if asyncio.iscoroutine(aw):
            aw.close()
        raise RuntimeError(
            "a blocking alloy_nb call was made on alloy_nb's own event-loop thread "
            "(from async code it started); use the async form instead (await arun/astream)"
        )
    coro = aw if asyncio.iscoroutine(aw) else aw()
    loop = _background_loop()
    thread = _thread
    finished = threading.Event()
    future = asyncio.run_coroutine_threadsafe(_tracked(coro, finished), loop)
    try:
        # A short poll keeps the wait interruptible everywhere (Windows included), and
        # notices a loop thread that died anyway (another task on it raised SystemExit),
        # which would otherwise leave us waiting forever.
        while not future.done():
            concurrent.futures.wait([future], timeout=0.25)
            if not future.done() and thread is not None and not thread.is_alive():
                raise RuntimeError(
                    "alloy_nb's event-loop thread stopped (SystemExit or KeyboardInterrupt "
                    "raised by other code running on it); the run was abandoned"
                )
    except KeyboardInterrupt:
        future.cancel()
        finished.wait(CANCEL_GRACE_S)
        raise
    try:
        return future.result()
    except _Escaped as escaped:  # re-raise in the caller's thread, where it belongs
        # from None: the exception is re-raised as it was, not as a consequence of _Escaped
        raise escaped.exc from None
