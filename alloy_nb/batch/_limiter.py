"""Adaptive concurrency: at most ``limit`` items in flight; a 429 halves the limit and
pauses new starts for its Retry-After; steady successes raise it back by one at a time."""

from __future__ import annotations

import asyncio
import time

__all__ = ["AdaptiveLimiter"]

_DEFAULT_PAUSE_S = 1.0
_DECREASE_GAP_S = 0.5  # 429s arriving together count as one signal


class AdaptiveLimiter:
    def __init__(self, limit: int) -> None:
        self.max_limit = limit
        self.limit = limit
        self.in_flight = 0
        self.resume_at = 0.0
        self.rate_limited = 0  # 429s seen
        self.lowest = limit
        self._last_decrease = -1e9
        self._streak = 0
        self._changed = asyncio.Event()

    async def acquire(self) -> None:
        while True:
            wait = self.resume_at - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
                continue
            if self.in_flight < self.limit:
                self.in_flight += 1
                return
            self._changed.clear()
            await self._changed.wait()

    def release(self, ok: bool) -> None:
        self.in_flight -= 1
        if ok:
            self._streak += 1
            if self._streak >= self.limit and self.limit < self.max_limit:
                self.limit += 1  # recover: additive increase
                self._streak = 0
        self._changed.set()

    def on_rate_limit(self, retry_after_s: float | None) -> None:
        """A 429: fewer in flight, and no new start before Retry-After has passed."""
        now = time.monotonic()
        self.rate_limited += 1
        self._streak = 0
        pause = retry_after_s if retry_after_s and retry_after_s > 0 else _DEFAULT_PAUSE_S
        self.resume_at = max(self.resume_at, now + pause)
        if now - self._last_decrease >= _DECREASE_GAP_S:
            self.limit = max(1, self.limit // 2)
            self.lowest = min(self.lowest, self.limit)
            self._last_decrease = now
