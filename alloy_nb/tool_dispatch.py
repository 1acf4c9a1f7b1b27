"""Where a tool call runs: a hook a caller installs around a run, consulted per call.

By default the executor awaits an ``async def`` tool on the loop and runs a sync tool on a
pooled daemon thread. A caller that needs some tools elsewhere (the Jupyter layer runs
notebook tools on the kernel's main thread, where the user namespace lives) installs a
``ToolDispatcher`` with ``dispatching_tools``. The dispatcher is called with the tool and a
zero-argument ``call`` that runs ``tool.execute(args, context)``; it returns an awaitable
for the call's outcome (a ``str``/``ToolResult``, or an awaitable of one, as ``execute``
returns), or ``None`` to leave that tool to the default. The hook is a context variable, so
it covers exactly the requests started inside the ``with`` block (tasks inherit it) and
never another caller's.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

__all__ = ["ToolDispatcher", "ToolInvocation", "current_tool_dispatcher", "dispatching_tools"]

ToolInvocation = Callable[[], Any]
"""Runs one ``tool.execute(args, context)`` where it is called; returns what it returns."""

ToolDispatcher = Callable[[Any, ToolInvocation], Awaitable[Any] | None]
"""``dispatcher(tool, call)``: an awaitable of ``call()``'s outcome, or None (default)."""

_dispatcher: ContextVar[ToolDispatcher | None] = ContextVar("alloy_nb_tool_dispatcher",
                                                            default=None)


@contextmanager
def dispatching_tools(dispatcher: ToolDispatcher | None) -> Iterator[None]:
    """Use ``dispatcher`` for tool calls of runs started in this block (None: default)."""
    token = _dispatcher.set(dispatcher)
    try:
        yield
    finally:
        _dispatcher.reset(token)


def current_tool_dispatcher() -> ToolDispatcher | None:
    """The dispatcher installed for the current context, if any (the executor asks)."""
    return _dispatcher.get()
