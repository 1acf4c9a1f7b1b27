"""Middleware: user code the loop calls at fixed points (hooks) with the run's state.

This module is the only place hook results are interpreted. The loop (``agent/turn.py``)
decides *when* each hook fires; here we decide what a returned value means.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from alloy_nb.errors import ConfigError, MiddlewareReturnError
from alloy_nb.state import AgentState

__all__ = [
    "HOOKS",
    "Block",
    "EditCall",
    "Halt",
    "Hook",
    "Middleware",
    "MiddlewareLike",
    "MiddlewareReturnError",
    "run_before_tool_call",
    "run_hook",
]

Hook = Literal[
    "before_completion",
    "after_completion",
    "after_tool_request",
    "before_tool_call",
    "after_tool_execution",
    "on_error",
    "session_start",
    "session_end",
    "after_compaction",
]
HOOKS: tuple[str, ...] = Hook.__args__  # type: ignore[attr-defined]


@dataclass(frozen=True)
class Halt:
    """Stop the run (status ``halted``, error ``"Halted by middleware: <reason>"``)."""

    reason: str


@dataclass(frozen=True)
class Block:
    """Refuse one tool call (only from ``before_tool_call``); the model sees
    ``"Blocked: <reason>"`` as that call's error result and the run goes on."""

    reason: str


@dataclass(frozen=True)
class EditCall:
    """Run one tool call with a new ``input`` (only from ``before_tool_call``); the call
    keeps its id and name, and ``result.tool_calls`` and the ``tool_end`` event show the
    input that ran. Later middleware sees the edited call; the model's own message in the
    history is left as the model wrote it."""

    input: dict[str, Any]

    def __post_init__(self) -> None:
        if not isinstance(self.input, dict):
            raise ConfigError(
                f"EditCall needs the new tool input as a dict, got {type(self.input).__name__}"
            )


class Middleware:
    """Base class for middleware; subclass and override ``call`` (sync or async).

    ``call(hook, state)`` must return the state (the same object, changed or not, or a
    replacement ``AgentState``), ``Halt(reason)`` to stop the run, or ``Block(reason)``
    or ``EditCall(input)`` (only in ``before_tool_call``, where
    ``state.context["current_tool_call"]`` holds the call as ``{"type", "id", "name",
    "input"}``). Anything else raises an error naming
    the fix. The default ``call`` dispatches to a method named after the hook when the
    subclass defines one (``def before_completion(self, state): ...``), else passes.
    """

    def call(self, hook: str, state: AgentState) -> Any:
        method = getattr(self, hook, None) if hook in HOOKS else None
        if method is None:
            return state
        return method(state)

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


#: What ``middleware=[...]`` holds once resolved: a ``Middleware`` (or any object with a
#: ``call(hook, state)`` method), or a plain function ``(hook, state)``, sync or async.
MiddlewareLike = Middleware | Callable[[str, AgentState], object]


def _name(mw: object) -> str:
    qualname = getattr(mw, "__qualname__", None)  # functions have one, instances do not
    return str(qualname or type(mw).__qualname__)


async def _call(mw: MiddlewareLike, hook: str, state: AgentState) -> object:
    # an object with .call (a Middleware, or one shaped like it), else the callable itself
    fn: Callable[[str, AgentState], object] | None = getattr(mw, "call", None)
    if fn is None:
        assert callable(mw)
        fn = mw
    out = fn(hook, state)
    if inspect.isawaitable(out):
        awaited: object = await out
        return awaited
    return out


def _misuse(mw: object, hook: str, out: object) -> ConfigError:
    if isinstance(out, EditCall):
        return ConfigError(
            f"middleware {_name(mw)} returned EditCall(...) from the {hook!r} hook; "
            "EditCall(input) is only valid for the 'before_tool_call' hook, where "
            "state.context['current_tool_call'] is the call to edit. Return the state "
            "(changed or not) or Halt(reason) from this hook."
        )
    if isinstance(out, Block):
        return ConfigError(
            f"middleware {_name(mw)} returned Block({out.reason!r}) from the {hook!r} hook; "
            "Block(reason) is only valid for the 'before_tool_call' hook. "
            f"To stop the run, return Halt({out.reason!r}) instead."
        )
    return MiddlewareReturnError(
        f"middleware {_name(mw)} returned {type(out).__name__} from the {hook!r} hook; "
        "return the state (changed or not), Halt(reason) to stop the run, or "
        "Block(reason) / EditCall(input) from 'before_tool_call' to refuse or edit one call"
        + (" (did you forget `return state`?)" if out is None else "")
    )


async def run_hook(
    middleware: Sequence[MiddlewareLike], hook: str, state: AgentState
) -> AgentState | Halt:
    """Run ``hook`` through every middleware in order, threading the state.

    Returns the final state or the first ``Halt`` (later middleware is not called).
    A ``Block`` here, or any other return type, raises ``ConfigError`` naming the fix.
    """
    if hook == "before_tool_call":
        raise ValueError("use run_before_tool_call for the 'before_tool_call' hook")
    for mw in middleware:
        out = await _call(mw, hook, state)
        if isinstance(out, AgentState):
            state = out
        elif isinstance(out, Halt):
            return out
        else:
            raise _misuse(mw, hook, out)
    return state


async def run_before_tool_call(
    middleware: Sequence[MiddlewareLike], state: AgentState, call: dict[str, Any]
) -> Block | Halt | EditCall | None:
    """Ask every middleware about one tool call: None (run it), ``Block``, ``Halt`` or
    ``EditCall`` (run it with a new input).

    State is not threaded here (each middleware sees the same state, with
    ``context["current_tool_call"]`` injected into a copy); returned states are ignored.
    The first ``Block`` or ``Halt`` wins and later middleware is not called. An
    ``EditCall`` replaces the call's input for the middleware after it (which may edit it
    again, block it or halt); the last edit is returned.
    """
    if not middleware:
        return None
    edit: EditCall | None = None
    seen = dataclasses.replace(state, context={**state.context, "current_tool_call": call})
    for mw in middleware:
        out = await _call(mw, "before_tool_call", seen)
        if isinstance(out, Block | Halt):
            return out
        if isinstance(out, EditCall):
            edit = out
            call = {**call, "input": dict(out.input)}
            seen = dataclasses.replace(
                state, context={**state.context, "current_tool_call": call}
            )
        elif not isinstance(out, AgentState):
            raise _misuse(mw, "before_tool_call", out)
    return edit
