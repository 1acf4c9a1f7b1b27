"""One model call with retries, jittered back-off, Retry-After, a deadline and fallbacks.

Whether an error is worth retrying is the error class's decision (``errors.py``); this
module decides how long to wait, when to give up, and never retries or switches provider
once any delta of the reply has been emitted.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from typing import TYPE_CHECKING

from alloy_nb.errors import ProviderError, ProviderHTTPError
from alloy_nb.events import Emitter
from alloy_nb.providers.base import Completion, DeltaKind, OnDelta, Provider, ProviderRequest

if TYPE_CHECKING:
    from alloy_nb.agent.config import AgentConfig

__all__ = ["DEADLINE_HEADROOM_S", "MIN_READ_TIMEOUT_S", "backoff_s", "call_with_retry",
           "is_retryable"]

log = logging.getLogger("alloy_nb")

#: The loop's deadline is ``start + timeout_ms - 5 s`` (spec §2.1).
DEADLINE_HEADROOM_S = 5.0
#: The HTTP read timeout handed to providers never drops below this.
MIN_READ_TIMEOUT_S = 1.0

_rng = random.Random()


def is_retryable(err: BaseException | None) -> bool:
    """True for provider errors whose class says retrying may help (429, 5xx, network)."""
    return isinstance(err, ProviderError) and bool(err.retryable)


def backoff_s(attempt: int, retry_backoff_ms: int, err: BaseException | None = None) -> float:
    """Seconds to wait before retry number ``attempt`` (1-based).

    The provider's ``retry_after`` wins when it gave one; otherwise full jitter: a uniform
    integer in ``[1, 2 * retry_backoff_ms * 2**(attempt-1)]`` milliseconds.
    """
    retry_after = err.retry_after if isinstance(err, ProviderHTTPError) else None
    if retry_after is not None:
        return max(float(retry_after), 0.0)
    base = round(retry_backoff_ms * 2 ** (attempt - 1))
    return _rng.randint(1, max(1, 2 * base)) / 1000


def _bug(provider: Provider, exc: Exception) -> ProviderError:
    return ProviderError(
        f"provider {type(provider).__name__} raised {type(exc).__name__}: {exc} "
        "(a bug in the provider: it should raise alloy_nb.ProviderError)",
        provider=provider.name, model=provider.model or None,
    )


class _Attempts:
    """The attempts of one turn: shared 'emitted' flag, deadline and event plumbing."""

    def __init__(
        self, config: AgentConfig, request: ProviderRequest, emitter: Emitter, turn: int,
        deadline: float, streaming: bool, on_delta: OnDelta | None,
    ) -> None:
        self.config = config
        self.request = request
        self.emitter = emitter
        self.turn = turn
        self.deadline = deadline
        self.streaming = streaming
        self.on_delta = on_delta
        self.emitted = False

    def _delta(self, kind: DeltaKind, text: str) -> None:
        self.emitted = True
        if self.on_delta is not None:
            self.on_delta(kind, text)

    async def _once(self, provider: Provider) -> Completion:
        timeout_s = max(self.deadline - time.monotonic(), MIN_READ_TIMEOUT_S)
        request = self.request.model_copy(update={"timeout_s": timeout_s})
        try:
            if self.streaming and provider.supports_streaming:
                return await provider.stream(request, self._delta)
            return await provider.complete(request)
        except ProviderError:
            raise
        except Exception as exc:  # the provider's own bug (user code): a typed error
            log.exception("provider %r raised a non-ProviderError", provider)
            raise _bug(provider, exc) from exc

    def announce(self, provider: Provider, err: ProviderError, attempt: int, delay: float,
                 fallback: bool = False) -> None:
        """Emit a ``retry`` event (also when moving on to a fallback provider)."""
        self.emitter.emit("retry", {
            "attempt": attempt,
            "delay_ms": round(delay * 1000),
            "error_type": type(err).__name__,
            "error": str(err),
            "provider": provider.name,
            "model": provider.model,
            "fallback": fallback,
        }, turn=self.turn)

    async def with_retries(self, provider: Provider) -> Completion:
        """Up to ``1 + max_retries`` attempts against one provider."""
        max_retries = self.config.max_retries
        attempt = 0
        while True:
            try:
                return await self._once(provider)
            except ProviderError as err:
                attempt += 1
                if self.emitted or not is_retryable(err) or attempt > max_retries:
                    raise
                delay = backoff_s(attempt, self.config.retry_backoff_ms, err)
                if self.deadline - time.monotonic() < delay:
                    raise  # waiting would outlive the run's deadline
                self.announce(provider, err, attempt, delay)
                await asyncio.sleep(delay)


async def call_with_retry(
    config: AgentConfig,
    request: ProviderRequest,
    emitter: Emitter,
    *,
    turn: int,
    deadline: float,
    streaming: bool = False,
    on_delta: OnDelta | None = None,
) -> tuple[Completion, Provider]:
    """Call the primary provider, then each fallback, until one answers.

    Returns ``(completion, provider_that_answered)`` or raises the last ``ProviderError``.
    A fallback is tried only when the previous provider failed with a *retryable* error
    (API.md; upstream also falls back on other errors), nothing was emitted, and the
    deadline (``time.monotonic()`` seconds) has not passed.
    """
    attempts = _Attempts(config, request, emitter, turn, deadline, streaming, on_delta)
    providers = [config.provider, *config.fallback_providers]
    last: ProviderError | None = None
    for index, provider in enumerate(providers):
        if index > 0:
            if deadline - time.monotonic() <= 0:
                break
            assert last is not None
            attempts.announce(provider, last, 1, 0.0, fallback=True)
        try:
            return await attempts.with_retries(provider), provider
        except ProviderError as err:
            last = err
            if attempts.emitted or not is_retryable(err):
                raise
    assert last is not None
    raise last
