"""The provider protocol: what the loop needs from any model API.

A provider translates our ``Message`` list to one wire format and the reply back, and
nothing else: no retries (``agent/retry.py``), no tool execution, no events of its own
beyond the deltas it hands to ``on_delta``.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field

from alloy_nb.messages import Message, ToolDefinition
from alloy_nb.usage import Usage

__all__ = [
    "Completion",
    "DeltaKind",
    "OnDelta",
    "Provider",
    "ProviderRequest",
    "StopReason",
    "UsageMeter",
    "metering",
    "report_lost_usage",
]

StopReason = Literal["end_turn", "tool_use"]
DeltaKind = Literal["text", "thinking"]
OnDelta = Callable[[DeltaKind, str], None]


class ProviderRequest(BaseModel):
    """One model call. ``timeout_s`` is the HTTP read timeout the retry layer computed."""

    model_config = ConfigDict(frozen=True)

    messages: list[Message]
    tools: list[ToolDefinition] = Field(default_factory=list)
    system: str | None = None
    timeout_s: float | None = None


class Completion(BaseModel):
    """One assistant reply.

    ``usage.input_tokens`` counts *uncached* input only (providers that report cached
    tokens inside the input count subtract them), so cost = sum of the four counters at
    their own prices. ``raw_stop_reason`` keeps the vendor's word (``max_tokens``,
    ``length``, ``refusal`` …) for display; the loop only branches on ``stop_reason``.
    """

    stop_reason: StopReason
    message: Message
    usage: Usage = Field(default_factory=Usage)
    request_id: str | None = None
    model: str | None = None
    raw_stop_reason: str | None = None


class Provider(ABC):
    """Base class of every provider. Subclasses set ``name`` and implement ``complete``;
    streaming providers also implement ``stream`` and keep ``supports_streaming = True``.

    Implementations raise ``alloy_nb.errors.ProviderError`` subclasses, never foreign
    exceptions, and never put an API key in a message, repr or log line.
    """

    name: ClassVar[str] = "provider"
    supports_streaming: ClassVar[bool] = False
    model: str = ""

    @abstractmethod
    async def complete(self, request: ProviderRequest) -> Completion:
        """Send the request and return the whole reply."""

    async def stream(self, request: ProviderRequest, on_delta: OnDelta) -> Completion:
        """Stream the reply, calling ``on_delta(kind, text)`` per text/thinking delta.

        The default (for providers that cannot stream) falls back to ``complete``.
        """
        return await self.complete(request)

    async def aclose(self) -> None:  # noqa: B027 - optional hook, default no-op
        """Release connections; the shared HTTP client is closed per event loop."""

    def describe(self) -> dict[str, Any]:
        """Key-free description for display and saved sessions."""
        return {"provider": self.name, "model": self.model}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={self.model!r})"


class UsageMeter:
    """Tokens reported by replies that never became a Completion (cancelled, or failed
    mid-stream): they were billed, so the loop adds them to the run's usage."""

    def __init__(self) -> None:
        self.lost = Usage()

    def take(self) -> Usage:
        """What was reported since the last ``take``, and reset."""
        lost, self.lost = self.lost, Usage()
        return lost


_meter: ContextVar[UsageMeter | None] = ContextVar("alloy_nb_usage_meter", default=None)


@contextmanager
def metering() -> Iterator[UsageMeter]:
    """Collect ``report_lost_usage`` calls made by providers within (tasks inherit it)."""
    meter = UsageMeter()
    token = _meter.set(meter)
    try:
        yield meter
    finally:
        _meter.reset(token)


def report_lost_usage(usage: Usage) -> None:
    """Called by a provider whose reply ended without a Completion, with the usage the
    vendor had reported so far (Anthropic's ``message_start``, a usage chunk)."""
    meter = _meter.get()
    if meter is not None and usage.total_tokens:
        meter.lost = meter.lost + usage
