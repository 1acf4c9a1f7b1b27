"""One session request's record, and loop-agnostic waiting for it to finish.

A Session may be driven from several event loops (the caller's, and ``_sync``'s private
loop thread for the blocking API), so nothing here is bound to a loop: completion is a
``concurrent.futures.Future`` and waiting on it from a coroutine goes through
``call_soon_threadsafe``. ``_queue`` owns the behaviour; this module only the records.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from alloy_nb.events import Event
from alloy_nb.messages import Message
from alloy_nb.result import Result
from alloy_nb.state import AgentState

__all__ = ["RequestKind", "SessionRequest", "await_future"]

RequestKind = Literal["chat", "background"]


@dataclass(eq=False)
class SessionRequest:
    """One request, queued, running or finished. ``task`` runs only the loop (never the
    caller's own task), so a late ``cancel_request`` can at worst cancel a task that has
    already finished."""

    request_id: str
    prompt: Message | None
    kind: RequestKind
    streaming: bool = False
    on_chunk: Callable[[str], Any] | None = None
    on_event: Callable[[Event], Any] | None = None
    future: concurrent.futures.Future[Result] = field(default_factory=concurrent.futures.Future)
    task: asyncio.Task[None] | None = None
    loop: asyncio.AbstractEventLoop | None = None
    state: AgentState | None = None  # while the request runs
    cancel_requested: bool = False
    finished: bool = False
    output_type: Any = None  # a per-request output_type (overrides the session's)
    #: per-request options (``provider``, ``tools``, ``system_prompt``, ``max_turns``):
    #: applied to this request's copy of the config only, never to the session's
    overrides: dict[str, Any] = field(default_factory=dict)

    def cancel_task(self) -> None:
        """Cancel the loop task from any thread (no-op when it is not running yet)."""
        task, loop = self.task, self.loop
        if task is None or loop is None or task.done():
            return
        try:
            running: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
        except RuntimeError:
            running = None
        if running is loop:
            task.cancel()
        elif not loop.is_closed():
            loop.call_soon_threadsafe(task.cancel)


def _wake(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_result(None)


async def await_future(future: concurrent.futures.Future[Any]) -> None:
    """Wait for ``future`` on the current loop without tying it to that loop.

    Unlike ``asyncio.wrap_future``, cancelling the waiter leaves ``future`` alone: stop
    waiting, keep running (``cancel_request`` is how a request is stopped).
    """
    if future.done():
        return
    loop = asyncio.get_running_loop()
    waiter: asyncio.Future[None] = loop.create_future()

    def done(_: concurrent.futures.Future[Any]) -> None:
        with contextlib.suppress(RuntimeError):  # the waiting loop closed: nobody waits
            loop.call_soon_threadsafe(_wake, waiter)

    future.add_done_callback(done)
    await waiter
