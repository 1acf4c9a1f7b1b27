"""OpenTelemetry spans for runs, turns, model calls and tool calls — only where
``opentelemetry-api`` is installed (``pip install alloy_nb[otel]``).

The loop calls the thin hooks below; without OpenTelemetry each one is a shared no-op and
nothing is imported (the check happens once, on the first run, never at ``import
alloy_nb``); with it but no TracerProvider configured they are no-ops too. Otherwise spans
follow the OpenTelemetry GenAI semantic conventions:

- ``invoke_agent alloy_nb`` (one per run): ``gen_ai.operation.name="invoke_agent"``,
  ``gen_ai.agent.name``, ``gen_ai.conversation.id`` (session id), ``gen_ai.request.model``,
  run totals in ``gen_ai.usage.*``, ``alloy_nb.status`` and ``alloy_nb.turns``;
- ``alloy_nb.turn`` (one per loop iteration that calls the model): ``alloy_nb.turn``;
- ``chat <model>`` (one per model call, retries and fallbacks included, kind CLIENT):
  ``gen_ai.provider.name``, ``gen_ai.request.model``, ``gen_ai.response.model``,
  ``gen_ai.response.id``, ``gen_ai.response.finish_reasons``, ``gen_ai.usage.*``;
- ``execute_tool <name>`` (one per tool call): ``gen_ai.tool.name``,
  ``gen_ai.tool.call.id``, ``gen_ai.tool.type="function"``.

Failures set the span status to ERROR and ``error.type``. Message, prompt and tool
contents are never recorded (they may hold secrets); only names, ids and counts.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Awaitable, Iterator
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from alloy_nb.agent.config import AgentConfig
    from alloy_nb.providers.base import Completion, Provider
    from alloy_nb.state import AgentState

__all__ = ["enabled", "provider_span", "run_span", "tool_span", "traced_tool", "turn_span"]

T = TypeVar("T")
_AGENT = "alloy_nb"
_state: dict[str, Any] = {}  # "trace": the opentelemetry.trace module, or None


def enabled() -> bool:
    """True when ``opentelemetry-api`` can be imported (decided once per process)."""
    if "trace" not in _state:
        trace = None
        try:
            found = importlib.util.find_spec("opentelemetry") is not None
        except (ImportError, ValueError):
            found = False
        if found:
            try:
                from opentelemetry import trace as trace_module
            except ImportError:
                trace_module = None  # type: ignore[assignment]
            trace = trace_module
        _state["trace"] = trace
    return _state["trace"] is not None


def _tracer() -> Any:
    """The tracer of the global TracerProvider, cached per provider; None while none is
    configured (the API's proxy/no-op provider), so the hooks skip span work entirely."""
    trace = _state["trace"]
    provider = trace.get_tracer_provider()
    cached = _state.get("tracer")
    if cached is not None and cached[0] is provider:
        return cached[1]
    tracer = None
    if not isinstance(provider, trace.ProxyTracerProvider | trace.NoOpTracerProvider):
        from alloy_nb._version import __version__

        tracer = provider.get_tracer(_AGENT, __version__)
    _state["tracer"] = (provider, tracer)
    return tracer


def _active() -> bool:
    return enabled() and _tracer() is not None


class _Recorder:
    """What a hook's caller may add to its span once the outcome is known."""

    __slots__ = ("span",)

    def __init__(self, span: Any = None) -> None:
        self.span = span

    def set(self, key: str, value: Any) -> None:
        if self.span is not None and value is not None:
            self.span.set_attribute(key, value)

    def usage(self, usage: Any) -> None:
        if self.span is None or usage is None:
            return
        self.set("gen_ai.usage.input_tokens", usage.input_tokens)
        self.set("gen_ai.usage.output_tokens", usage.output_tokens)
        self.set("gen_ai.usage.cache_read_input_tokens", usage.cache_read_input_tokens)
        self.set("gen_ai.usage.cache_creation_input_tokens", usage.cache_creation_input_tokens)

    def completion(self, completion: Completion, provider: Provider) -> None:
        if self.span is None:
            return
        self.set("gen_ai.provider.name", provider.name)
        self.set("gen_ai.response.model", completion.model)
        self.set("gen_ai.response.id", completion.request_id)
        reason = completion.raw_stop_reason or completion.stop_reason
        self.set("gen_ai.response.finish_reasons", [str(reason)])
        self.usage(completion.usage)

    def fail(self, status: str, description: str | None = None) -> None:
        if self.span is None:
            return
        from opentelemetry.trace import Status, StatusCode

        self.span.set_attribute("error.type", status)
        self.span.set_status(Status(StatusCode.ERROR, description))


_NOOP = _Recorder()


@contextlib.contextmanager
def _span(name: str, attributes: dict[str, Any], kind: str = "INTERNAL") -> Iterator[_Recorder]:
    from opentelemetry.trace import SpanKind

    attrs = {k: v for k, v in attributes.items() if v is not None}
    with _tracer().start_as_current_span(
        name, kind=getattr(SpanKind, kind), attributes=attrs, record_exception=True,
        set_status_on_exception=True,
    ) as span:
        rec = _Recorder(span)
        try:
            yield rec
        except BaseException as exc:
            span.set_attribute("error.type", type(exc).__qualname__)
            raise


_NULL = contextlib.nullcontext(_NOOP)  # reusable


def _noop() -> contextlib.AbstractContextManager[_Recorder]:
    return _NULL


def run_span(
    config: AgentConfig, state: AgentState
) -> contextlib.AbstractContextManager[_Recorder]:
    """Around one ``run_loop``; records the final status, turns and usage of ``state``."""
    if not _active():
        return _noop()
    return _run_span(config, state)


@contextlib.contextmanager
def _run_span(config: AgentConfig, state: AgentState) -> Iterator[_Recorder]:
    context = state.context or {}
    with _span(f"invoke_agent {_AGENT}", {
        "gen_ai.operation.name": "invoke_agent",
        "gen_ai.agent.name": _AGENT,
        "gen_ai.conversation.id": context.get("session_id"),
        "gen_ai.provider.name": config.provider.name,
        "gen_ai.request.model": config.model or None,
        "alloy_nb.request_id": context.get("request_id"),
    }) as rec:
        try:
            yield rec
        finally:
            rec.set("alloy_nb.status", state.status)
            rec.set("alloy_nb.turns", state.turn)
            rec.usage(state.usage)
            if state.status in ("error", "halted", "cancelled"):
                rec.fail(state.status, state.error)


def turn_span(number: int) -> contextlib.AbstractContextManager[_Recorder]:
    """Around one loop iteration that calls the model (compaction, hooks, call, tools)."""
    if not _active():
        return _noop()
    return _span("alloy_nb.turn", {"alloy_nb.turn": number})


def provider_span(config: AgentConfig, number: int) -> contextlib.AbstractContextManager[_Recorder]:
    """Around one model call (with its retries and fallbacks); the caller records the
    completion with ``rec.completion(completion, provider)``."""
    if not _active():
        return _noop()
    model = config.model or None
    return _span(f"chat {model}" if model else "chat", {
        "gen_ai.operation.name": "chat",
        "gen_ai.provider.name": config.provider.name,
        "gen_ai.request.model": model,
        "alloy_nb.turn": number,
    }, kind="CLIENT")


def tool_span(call: Any) -> contextlib.AbstractContextManager[_Recorder]:
    """Around one tool call."""
    if not _active():
        return _noop()
    return _span(f"execute_tool {call.name}", {
        "gen_ai.operation.name": "execute_tool",
        "gen_ai.tool.name": call.name,
        "gen_ai.tool.call.id": call.id,
        "gen_ai.tool.type": "function",
    })


def traced_tool(call: Any, work: Awaitable[T]) -> Awaitable[T]:
    """``work`` (a tool call's coroutine returning ``(block, meta)``) inside a tool span;
    ``work`` itself when OpenTelemetry is absent."""
    if not _active():
        return work
    return _traced_tool(call, work)


async def _traced_tool(call: Any, work: Awaitable[T]) -> T:
    with tool_span(call) as rec:
        out = await work
        meta = out[1] if isinstance(out, tuple) and len(out) == 2 else None
        error = getattr(meta, "error", None)
        rec.set("alloy_nb.tool.duration_ms", getattr(meta, "duration_ms", None))
        if error:
            rec.fail("tool_error", error[:200])
        return out
