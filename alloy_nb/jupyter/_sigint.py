"""A scoped SIGINT handler that lets the kernel's ■ reach an awaiting task at once.

ipykernel turns ■ during an async cell into a cancel of the cell's task, but schedules
it with a plain ``call_soon`` from the signal handler, which does not wake the event
loop's selector: the cancel waits for the next I/O or timer, possibly a whole HTTP read
timeout (ipykernel #881, reference jupyter.md §1.4 and §6 item 2). While an awaiting
task is inside :func:`cancel_on_sigint`, SIGINT also does
``loop.call_soon_threadsafe(task.cancel)`` (which wakes the loop) and then chains to
the handler that was installed before, so the owner of the handler (ipykernel,
``asyncio.Runner``, ...) still does what it always did.

Installed only on the main thread and only when the current handler is a Python
callable: while the kernel is idle it sets ``SIG_IGN``, so tasks that wait between
cells never see an interrupt. Handlers may be left in any order (``gather`` of several
waits): each is marked inactive on exit, and the chain is unwound past inactive ones
whenever ours is still the installed handler.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import threading
from collections.abc import Callable, Iterator
from typing import Any

__all__ = ["cancel_on_sigint"]

log = logging.getLogger("alloy_nb")


class _Handler:
    """SIGINT: cancel ``task`` on ``loop`` (thread-safely, so the loop wakes), then chain."""

    def __init__(self, previous: Callable[..., Any], loop: asyncio.AbstractEventLoop,
                 task: asyncio.Task[Any]) -> None:
        self.previous = previous
        self.loop = loop
        self.task = task
        self.active = True

    def __call__(self, signum: int, frame: Any) -> Any:
        if self.active and not self.task.done():
            with contextlib.suppress(RuntimeError):  # the loop is closed: nothing to wake
                self.loop.call_soon_threadsafe(self._cancel)
        return self.previous(signum, frame)

    def _cancel(self) -> None:
        if self.active and not self.task.done():
            self.task.cancel()


def _install(task: asyncio.Task[Any] | None) -> _Handler | None:
    if task is None or threading.current_thread() is not threading.main_thread():
        return None
    try:
        previous = signal.getsignal(signal.SIGINT)
        if not callable(previous):  # SIG_IGN (an idle kernel), SIG_DFL or not from Python
            return None
        handler = _Handler(previous, task.get_loop(), task)
        signal.signal(signal.SIGINT, handler)
    except (ValueError, OSError, RuntimeError):  # no signals here (embedded interpreter)
        log.debug("alloy_nb: no scoped SIGINT handler", exc_info=True)
        return None
    return handler


def _uninstall(handler: _Handler) -> None:
    handler.active = False
    try:
        current = signal.getsignal(signal.SIGINT)
        if not isinstance(current, _Handler) or current.active:
            return  # replaced by its owner (ipykernel restores at cell end) or still in use
        restore: Any = current
        while isinstance(restore, _Handler) and not restore.active:
            restore = restore.previous
        signal.signal(signal.SIGINT, restore)
    except (ValueError, OSError, RuntimeError, TypeError):
        log.debug("alloy_nb: could not restore the SIGINT handler", exc_info=True)


@contextlib.contextmanager
def cancel_on_sigint(task: asyncio.Task[Any] | None = None) -> Iterator[bool]:
    """While inside, SIGINT cancels ``task`` (default: the current task) at once.

    Yields whether a handler was installed (main thread, a callable handler in place).
    """
    if task is None:
        try:
            task = asyncio.current_task()
        except RuntimeError:
            task = None
    handler = _install(task)
    try:
        yield handler is not None
    finally:
        if handler is not None:
            _uninstall(handler)
