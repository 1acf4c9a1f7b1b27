"""Event envelopes (v1) and the per-run emitter that numbers them.

The loop emits; listeners (``on_event``, Session subscribers, the notebook view) receive
``Event`` objects. The emitter owns ``seq`` and the correlation id so that every event of
one run is numbered in one strictly increasing sequence.
"""

# no ``from __future__ import annotations`` here: TypedDict reads NotRequired[...] from the
# evaluated annotations
import logging
import secrets
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Literal, overload

from pydantic import BaseModel, ConfigDict
from typing_extensions import NotRequired, TypedDict

if TYPE_CHECKING:
    from alloy_nb.result import Result

__all__ = [
    "EVENT_PAYLOADS",
    "CompactionPayload",
    "DonePayload",
    "Emitter",
    "ErrorPayload",
    "ErrorStage",
    "Event",
    "EventName",
    "ResultPayload",
    "RetryPayload",
    "ToolEndPayload",
    "ToolStartPayload",
    "TurnEndPayload",
    "TurnStartPayload",
    "UsagePayload",
    "new_id",
]

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


# ---- payloads: one per event name (``text_delta``/``thinking_delta`` carry the bare str) ----


class ToolStartPayload(TypedDict):
    """``tool_start``: a tool call is about to run (or be reported blocked)."""

    id: str
    name: str
    input: dict[str, Any]


class ToolEndPayload(TypedDict):
    """``tool_end``: the call's outcome. ``result`` is what the model reads; ``error`` is
    that same text when the call failed, else None. ``wait_ms`` only when a person was
    waited on (approval, input), which ``duration_ms`` excludes."""

    id: str
    name: str
    input: dict[str, Any]
    duration_ms: int
    error: str | None
    start_event_seq: int | None
    result: str
    wait_ms: NotRequired[int]


class TurnStartPayload(TypedDict):
    """``turn_start``: the model is about to be called."""

    model: str
    provider: str


class TurnEndPayload(TypedDict):
    """``turn_end``: the model answered."""

    stop_reason: str
    raw_stop_reason: str | None
    model: str | None
    request_id: str | None


class UsagePayload(TypedDict):
    """``usage``: one reply's priced usage and the run's running total (``Usage`` dumps).
    ``incomplete`` marks usage of replies that failed or were cancelled mid-way."""

    usage: dict[str, Any]
    total: dict[str, Any]
    model: str | None
    incomplete: NotRequired[bool]


class CompactionPayload(TypedDict):
    """``compaction``: the history was shortened; ``forced`` when the provider said the
    prompt was too long."""

    before_tokens: int
    after_tokens: int
    method: Literal["summary", "truncation"]
    removed_messages: int
    forced: NotRequired[bool]


class RetryPayload(TypedDict):
    """``retry``: a failed model call is retried after ``delay_ms`` (``fallback``: the
    next provider is tried instead)."""

    attempt: int
    delay_ms: int
    error_type: str
    error: str
    provider: str
    model: str | None
    fallback: bool


ErrorStage = Literal["provider", "compaction", "middleware"]


class ErrorPayload(TypedDict):
    """``error``: the run failed at ``stage`` (provider, compaction, middleware)."""

    error: str | None
    type: str
    stage: ErrorStage
    retryable: bool


class DonePayload(TypedDict):
    """``done``: the run ended (always the run's last event)."""

    status: str
    error: str | None
    turns: int
    usage: dict[str, Any]


class ResultPayload(TypedDict):
    """``result`` (Session subscribers only): one request finished."""

    request_id: str
    result: "Result"


#: Event name to payload type, for documentation, tests and readers.
EVENT_PAYLOADS: dict[str, Any] = {
    "text_delta": str,
    "thinking_delta": str,
    "tool_start": ToolStartPayload,
    "tool_end": ToolEndPayload,
    "turn_start": TurnStartPayload,
    "turn_end": TurnEndPayload,
    "usage": UsagePayload,
    "compaction": CompactionPayload,
    "retry": RetryPayload,
    "error": ErrorPayload,
    "done": DonePayload,
    "runtime_event": dict,
    "result": ResultPayload,
}


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

    @overload
    def emit(self, event: Literal["text_delta", "thinking_delta"], payload: str, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["tool_start"], payload: ToolStartPayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["tool_end"], payload: ToolEndPayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["turn_start"], payload: TurnStartPayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["turn_end"], payload: TurnEndPayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["usage"], payload: UsagePayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["compaction"], payload: CompactionPayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["retry"], payload: RetryPayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["error"], payload: ErrorPayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["done"], payload: DonePayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["result"], payload: ResultPayload, *,
             turn: int = 0, seq: int | None = None) -> Event: ...
    @overload
    def emit(self, event: Literal["runtime_event"], payload: dict[str, Any], *,
             turn: int = 0, seq: int | None = None) -> Event: ...

    def emit(
        self, event: EventName, payload: Any = None, *, turn: int = 0, seq: int | None = None
    ) -> Event:
        """Number, build and deliver one event (the overloads pair each name with its
        payload type)."""
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

    def emit_result(self, payload: ResultPayload, *, turn: int, to: Listener) -> Event:
        """A Session's ``result`` event: numbered in this run's sequence like every other
        event, but delivered only to ``to`` (the session's subscribers), since a run's
        ``on_event`` listeners see the run end at ``done``."""
        self._seq += 1
        ev: Event = _validate_event({
            "seq": self._seq, "correlation_id": self.correlation_id, "turn": turn,
            "ts_ms": int(time.time() * 1000), "event": "result", "payload": payload,
        })
        to(ev)
        return ev

    def emit_delta(
        self, event: Literal["text_delta", "thinking_delta"], text: str, *, turn: int
    ) -> None:
        """``emit`` for the many per-delta events (``text_delta``, ``thinking_delta``),
        whose Event the caller never keeps: built only when someone listens. ``seq``
        advances either way, so the numbering is the same with or without listeners."""
        if self.listeners:
            self.emit(event, text, turn=turn)
        else:
            self._seq += 1
