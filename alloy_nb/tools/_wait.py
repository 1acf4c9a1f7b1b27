"""Time a tool spends waiting for a person (an approval prompt) is not the tool's time.

The executor opens a ``Clock`` around each call; a tool wraps its wait for a human in
``waiting_for_person()``. The call's ``duration_ms`` then excludes the wait (reported
apart as ``wait_ms``) and ``tool_timeout_ms`` does not run out while someone reads the
code they are asked to approve. The clock travels in a ContextVar, so it follows the call
into tasks and, with ``carry_clock``, onto the thread that asks.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["Clock", "carry_clock", "tracking", "waiting_for_person"]


class Clock:
    """Seconds waited for a person so far, including a wait still going on."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._done = 0.0
        self._since: float | None = None
        self._depth = 0

    def waited(self) -> float:
        with self._lock:
            running = time.monotonic() - self._since if self._since is not None else 0.0
            return self._done + running

    def _enter(self) -> None:
        with self._lock:
            self._depth += 1
            if self._depth == 1:
                self._since = time.monotonic()

    def _exit(self) -> None:
        with self._lock:
            self._depth -= 1
            if self._depth == 0 and self._since is not None:
                self._done += time.monotonic() - self._since
                self._since = None


_CLOCK: ContextVar[Clock | None] = ContextVar("alloy_nb_tool_clock", default=None)


@contextmanager
def tracking() -> Iterator[Clock]:
    """Give the tool call started inside this block a fresh ``Clock``."""
    clock = Clock()
    token = _CLOCK.set(clock)
    try:
        yield clock
    finally:
        _CLOCK.reset(token)


@contextmanager
def waiting_for_person() -> Iterator[None]:
    """Mark the enclosed wait as human time (a no-op outside a tracked tool call)."""
    clock = _CLOCK.get()
    if clock is None:
        yield
        return
    clock._enter()
    try:
        yield
    finally:
        clock._exit()


def carry_clock(fn: Callable[..., Any]) -> Callable[..., Any]:
    """``fn`` bound to the current call's clock, to be run on another thread (only the
    clock goes along: that thread keeps its own context, e.g. the kernel's parent)."""
    clock = _CLOCK.get()

    def call(*args: Any) -> Any:
        token = _CLOCK.set(clock)
        try:
            return fn(*args)
        finally:
            _CLOCK.reset(token)

    return call
