"""Provider retry, back-off, Retry-After, deadline and fallback providers (spec §2.6–2.8;
conformance C28–C40, C47–C64, O180–O181). Retryability is decided by error class here,
where upstream matched message prefixes; each upstream string maps to one class."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.agent.retry import backoff_s, is_retryable
from alloy_nb.errors import (
    AuthenticationError,
    BadRequestError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    StreamError,
    TransientStreamError,
)
from alloy_nb.events import Event
from alloy_nb.messages import Message, user
from alloy_nb.providers.base import Completion, OnDelta, Provider, ProviderRequest
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState
from alloy_nb.tools.base import Tool


def http(status: int, body: str = "Server Error", retry_after: float | None = None) -> Any:
    cls = {429: RateLimitError, 401: AuthenticationError, 403: AuthenticationError,
           400: BadRequestError}.get(status, OverloadedError)
    return cls(f"HTTP {status}: {body}", status_code=status, retry_after=retry_after)


def run(provider: Any, *, streaming: bool = False, on_chunk: Any = None,
        events: list[Event] | None = None, **options: Any) -> AgentState:
    options.setdefault("retry_backoff_ms", 1)
    config = AgentConfig.from_options(provider=provider, **options)
    state = AgentState(messages=[user("hi")])
    emitter = new_emitter(config, listeners=[events.append] if events is not None else [])
    asyncio.run(run_loop(config, state, emitter, streaming=streaming, on_chunk=on_chunk))
    return state


@pytest.mark.parametrize("err", [
    http(429, "Too Many Requests"), http(500), http(502), http(503), http(504), http(529),
    ProviderConnectionError("HTTP request failed: econnrefused"),
    ProviderConnectionError("HTTP request failed: closed"),
    ProviderConnectionError("HTTP request failed: timeout"),
    ProviderConnectionError("HTTP request failed: unprocessed"),
    TransientStreamError("overloaded_error: busy"),
])
def test_o180_retryable(err: ProviderError) -> None:
    assert is_retryable(err)


@pytest.mark.parametrize("err", [
    http(400, "Bad Request"), http(401, "Unauthorized"), ProviderError("unknown error"),
    StreamError("malformed event"), ValueError("badarg"), None,
])
def test_o180_not_retryable(err: Any) -> None:
    assert not is_retryable(err)


@pytest.mark.parametrize("err", [
    http(429, "Too Many Requests"),  # C28
    http(500, "Internal Server Error"),  # C29
    http(502, "Gateway Error"), http(503, "Gateway Error"), http(504, "Gateway Error"),  # C30
    http(529, "overloaded_error: Overloaded"),  # C37
    ProviderConnectionError("HTTP request failed: econnrefused"),  # C32, C53
    ProviderConnectionError("HTTP request failed: closed"),
    ProviderConnectionError("HTTP request failed: timeout"),
    ProviderConnectionError("HTTP request failed: unprocessed"),  # C49
])
def test_c28_c37_retryable_errors_recover(err: ProviderError) -> None:
    provider = Scripted([Scripted.error(err), Scripted.error(err), "Done"])
    state = run(provider, max_retries=3)
    assert (state.status, state.last_assistant_text) == ("completed", "Done")
    assert len(provider.calls) == 3


@pytest.mark.parametrize("err", [http(401, "Unauthorized"),  # C33
                                 AuthenticationError("authentication_error: Invalid API key",
                                                     status_code=401)])  # C34
def test_c33_c34_auth_errors_are_not_retried(err: ProviderError) -> None:
    provider = Scripted([Scripted.error(err), "unused"])
    state = run(provider)
    assert (state.status, state.error) == ("error", str(err))
    assert provider.replies_left == 1 and len(provider.calls) == 1


def test_c35_max_retries_zero_is_one_attempt() -> None:
    provider = Scripted([Scripted.error(http(429)), "unused"])
    assert run(provider, max_retries=0).status == "error"
    assert len(provider.calls) == 1


def test_c36_o181_exhausted_retries_return_the_last_error() -> None:
    provider = Scripted([Scripted.error(http(500, "Internal Server Error"))] * 4 + ["unused"])
    state = run(provider, max_retries=3)
    assert state.status == "error" and state.error.startswith("HTTP 500: Internal Server Error")
    assert len(provider.calls) == 4
    provider = Scripted([Scripted.error(http(500))] * 2 + ["unused"])
    assert run(provider, max_retries=1).error.startswith("HTTP 500: Server Error")


def test_retry_events_carry_attempt_delay_and_error() -> None:
    events: list[Event] = []
    run(Scripted([Scripted.error(http(503)), "ok"]), events=events)
    [retry] = [e for e in events if e.event == "retry"]
    assert retry.payload["attempt"] == 1 and retry.payload["error_type"] == "OverloadedError"
    assert retry.payload["error"] == "HTTP 503: Server Error (status=503)"
    assert isinstance(retry.payload["delay_ms"], int) and retry.turn == 1


def test_c38_deadline_prevents_sleeping() -> None:
    t0 = time.monotonic()
    state = run(Scripted([Scripted.error(http(429, "Too Many Requests")), "unused"]),
                retry_backoff_ms=50_000, timeout_ms=1_000)
    assert time.monotonic() - t0 < 2
    assert state.status == "error" and state.error.startswith("HTTP 429: Too Many Requests")


def test_c39_backoff_is_bounded() -> None:
    t0 = time.monotonic()
    state = run(Scripted([Scripted.error(http(500))] * 4), retry_backoff_ms=25, max_retries=3)
    assert state.status == "error" and time.monotonic() - t0 < 5


def test_c40_full_jitter() -> None:
    samples = [backoff_s(1, 25) for _ in range(50)]
    assert len(set(samples)) >= 2
    assert all(0.001 <= s <= 0.050 for s in samples)
    assert all(0.001 <= backoff_s(3, 25) <= 0.2 for _ in range(50))  # 2 * 25 * 2**2 ms


def test_retry_after_is_honoured_instead_of_backoff() -> None:
    events: list[Event] = []
    t0 = time.monotonic()
    state = run(Scripted([Scripted.error(http(429, retry_after=0.05)), "ok"]),
                retry_backoff_ms=60_000, events=events)
    assert state.status == "completed" and time.monotonic() - t0 < 5
    [retry] = [e for e in events if e.event == "retry"]
    assert retry.payload["delay_ms"] == 50
    assert backoff_s(1, 1000, http(429, retry_after=-3)) == 0.0


def test_retry_after_beyond_the_deadline_is_not_waited_for() -> None:
    t0 = time.monotonic()
    state = run(Scripted([Scripted.error(http(429, retry_after=100)), "unused"]),
                timeout_ms=10_000)
    assert state.status == "error" and time.monotonic() - t0 < 2


def test_c47_streaming_retries_before_any_output() -> None:
    chunks: list[str] = []
    provider = Scripted([Scripted.error(http(429)), Scripted.error(http(429)), "Streamed OK"],
                        chunk_size=1)
    state = run(provider, streaming=True, on_chunk=chunks.append)
    assert state.status == "completed"
    assert chunks == list("Streamed OK")


def test_c48_streaming_503_retried() -> None:
    state = run(Scripted([Scripted.error(http(503)), "fine"]), streaming=True)
    assert (state.status, state.last_assistant_text) == ("completed", "fine")


class Sleeper(Tool):
    name = "sleeper"
    description = "Sleeps 600 ms"

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        await asyncio.sleep(0.6)
        return "awake"


def test_c50_deadline_is_per_loop() -> None:
    provider = Scripted([Scripted.tool_calls(("sleeper", {})), Scripted.error(http(429)), "no"])
    t0 = time.monotonic()
    state = run(provider, tools=[Sleeper], timeout_ms=5_500)
    assert time.monotonic() - t0 < 3
    assert state.status == "error" and state.error.startswith("HTTP 429")
    assert provider.replies_left == 1


@pytest.mark.parametrize(("timeout_ms", "low", "high"), [
    (30_000, 20, 25),  # C51
    (8_000, 1, 4),  # C57: ~3 s
    (1_000, 1, 1),  # floor
])
def test_c51_c57_read_timeout_from_deadline(timeout_ms: int, low: float, high: float) -> None:
    provider = Scripted(["ok"])
    run(provider, timeout_ms=timeout_ms)
    assert low <= provider.calls[0].timeout_s <= high


def test_c56_no_retry_after_an_emitted_thinking_delta() -> None:
    events: list[Event] = []
    provider = Scripted([Scripted.thinking_then_error("pondering", http(503)), "unused"])
    state = run(provider, streaming=True, events=events)
    assert state.status == "error"
    assert [e.payload for e in events if e.event == "thinking_delta"] == ["pondering"]
    assert len(provider.calls) == 1


class HalfStream(Provider):
    """Streams one chunk, then fails with a retryable error (C63)."""

    name = "half"
    supports_streaming = True
    model = "half-1"

    def __init__(self) -> None:
        self.calls = 0

    async def complete(self, request: ProviderRequest) -> Completion:
        raise AssertionError("not used")

    async def stream(self, request: ProviderRequest, on_delta: OnDelta) -> Completion:
        self.calls += 1
        on_delta("text", "A")
        raise OverloadedError("HTTP 503: primary stream broke", status_code=503)


def test_c63_never_retry_or_fall_back_after_a_streamed_delta() -> None:
    chunks: list[str] = []
    primary, fallback = HalfStream(), Scripted(["fallback"])
    state = run(primary, streaming=True, on_chunk=chunks.append, fallback_providers=[fallback])
    assert state.status == "error" and state.error.startswith("HTTP 503: primary stream broke")
    assert chunks == ["A"] and primary.calls == 1 and fallback.replies_left == 1


def test_c59_fallback_after_retryable_primary_failure() -> None:
    primary = Scripted([Scripted.error(http(500))])
    state = run(primary, max_retries=0, fallback_providers=[Scripted(["from fallback"])])
    assert (state.status, state.last_assistant_text) == ("completed", "from fallback")


def test_c59_fallback_from_class_config_pair() -> None:
    primary = Scripted([Scripted.error(http(500))])
    state = run(primary, max_retries=0, fallback_providers=[(Scripted, {"replies": ["pair"]})])
    assert state.last_assistant_text == "pair"


def test_c60_streaming_fallback_keeps_deltas() -> None:
    events: list[Event] = []
    primary = Scripted([Scripted.error(http(503))])
    state = run(primary, max_retries=0, streaming=True, events=events,
                fallback_providers=[Scripted(["OK"], chunk_size=1)])
    assert state.status == "completed"
    assert [e.payload for e in events if e.event == "text_delta"] == ["O", "K"]
    assert any(e.event == "retry" and e.payload["fallback"] for e in events)


def test_c61_all_providers_fail() -> None:
    state = run(Scripted([Scripted.error(http(500, "p"))]), max_retries=0,
                fallback_providers=[Scripted([Scripted.error(http(502, "f1"))]),
                                    Scripted([Scripted.error(http(503, "f2"))])])
    assert state.status == "error" and state.error.startswith("HTTP 503: f2")


def test_c62_deadline_expiry_between_fallbacks() -> None:
    slow_fail = Scripted([Scripted.delay(1.1, Scripted.error(http(500, "fallback1 down")))])
    second = Scripted(["never"])
    state = run(Scripted([Scripted.error(http(500))]), max_retries=0, timeout_ms=6_000,
                fallback_providers=[slow_fail, second])
    assert state.status == "error" and state.error.startswith("HTTP 500: fallback1 down")
    assert second.replies_left == 1


def test_c64_primary_success_leaves_fallbacks_alone() -> None:
    fallback = Scripted(["unused"])
    state = run(Scripted(["primary"]), fallback_providers=[fallback])
    assert state.last_assistant_text == "primary" and fallback.replies_left == 1
    state = run(Scripted([Scripted.error(http(500, "only"))]), max_retries=0)
    assert state.error == "HTTP 500: only (status=500)"


def test_non_retryable_primary_error_does_not_fall_back() -> None:
    """API.md: fallbacks are for retryable failures (upstream also falls back on others)."""
    fallback = Scripted(["unused"])
    state = run(Scripted([Scripted.error(http(400, "bad request"))]),
                fallback_providers=[fallback])
    assert state.error.startswith("HTTP 400: bad request") and fallback.replies_left == 1


def test_provider_receives_history_tools_and_system() -> None:
    provider = Scripted(["ok"])
    run(provider, system_prompt="Be brief.")
    [request] = provider.calls
    assert request.system == "Be brief."
    assert request.messages == [Message(role="user", content="hi")]
