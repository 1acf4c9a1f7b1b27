"""Event envelopes (v1) and the per-run emitter that numbers them.

The loop emits; listeners (``on_event``, Session subscribers, the notebook view) receive
``Event`` objects. The emitter owns ``seq`` and the correlation id so that every event of
one run is numbered in one strictly increasing sequence.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

__all__ = ["Emitter", "Event", "EventName", "new_id"]

log = logging.getLogger("alloy_nb")

EventName = Literal[
    "text_delta",
    "thinking_delta",
    "tool_start",
    "tool_end",
    "turn_start",
    "turn_end",
    "usage",
    "compaction",
    "retry",
    "error",
    "done",
    "runtime_event",
    "result",
]


class Event(BaseModel):
    """``{"v": 1, "seq", "correlation_id", "turn", "ts_ms", "event", "payload"}``.

    Supports ``ev["payload"]`` as well as ``ev.payload`` so dict-minded callers work.
    """

    model_config = ConfigDict(frozen=True)

    v: Literal[1] = 1
    seq: int
    correlation_id: str
    turn: int
    ts_ms: int
    event: str
    payload: Any = None

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)


_validate_event = Event.__pydantic_validator__.validate_python


def new_id(nbytes: int = 12) -> str:
    """URL-safe random id without padding (b64url(n) in the reference)."""
    return secrets.token_urlsafe(nbytes)


Listener = Callable[[Event], Any]


class Emitter:
    """Numbers and delivers the events of one run.

    A listener that raises is logged and otherwise ignored: a broken UI callback must not
    kill the agent run.
    """

    def __init__(
        self, correlation_id: str | None = None, listeners: list[Listener] | None = None
    ) -> None:
        self.correlation_id = correlation_id or f"run_{new_id()}"
        self.listeners: list[Listener] = [f for f in (listeners or []) if f is not None]
        self._seq = 0

    def next_seq(self) -> int:
        self._seq += 1
        return self._seq

    def emit(
        self, event: str, payload: Any = None, *, turn: int = 0, seq: int | None = None
    ) -> Event:
        if seq is None:
            self._seq += 1
            seq = self._seq
        # the validator straight from a dict: the same checks as Event(...), without the
        # keyword-argument wrapper (a third of the cost, paid for every streamed delta)
        ev: Event = _validate_event({
            "seq": seq,
            "correlation_id": self.correlation_id,
            "turn": turn,
            "ts_ms": int(time.time() * 1000),
            "event": event,
            "payload": payload,
        })
        for listener in self.listeners:
            try:
                listener(ev)
            except Exception:
                log.exception("on_event listener %r raised; ignoring", listener)
        return ev

    def emit_delta(self, event: str, text: str, *, turn: int) -> None:
        """``emit`` for the many per-delta events (``text_delta``, ``thinking_delta``),
        whose Event the caller never keeps: built only when someone listens. ``seq``
        advances either way, so the numbering is the same with or without listeners."""
        if self.listeners:
            self.emit(event, text, turn=turn)
        else:
            self._seq += 1
