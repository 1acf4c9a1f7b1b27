"""The vendors' half-price batch APIs: submit many single calls at once, poll, fetch, align.

Anthropic Message Batches (``/v1/messages/batches``) and OpenAI Batch (``/v1/files`` +
``/v1/batches``, for the Responses and the Chat Completions providers). Each item's body is
exactly what the provider's ``complete()`` would send (its own ``build_body``) and each
answer goes through the provider's own parser, so a batch Completion is the same as a live
one; only its cost is halved (``BATCH_PRICE_FACTOR``). The wire protocols are
``_vendor_api.py``; notes in ``docs/batch-vendor.md``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, ConfigDict

from alloy_nb import model_metadata
from alloy_nb.batch._vendor_api import BATCH_PRICE_FACTOR, Outcome, VendorApi, api_for
from alloy_nb.errors import (
    BatchFailed,
    BatchItemCanceled,
    BatchItemExpired,
    ConfigError,
    ProviderError,
)
from alloy_nb.providers.base import Completion, Provider, ProviderRequest

__all__ = ["BATCH_PRICE_FACTOR", "BatchProgress", "abatch_complete"]

log = logging.getLogger("alloy_nb")

_CANCEL_WAIT_S = 10.0  # how long a cancelled caller waits for the remote cancel to land


class BatchProgress(BaseModel):
    """Where a remote batch stands, reported after submitting, after each poll and once at
    the end (``done``). ``errored`` counts every finished item without an answer (errored,
    expired, canceled); ``expired`` and ``canceled`` break part of it out."""

    model_config = ConfigDict(frozen=True)

    batch_id: str | None = None
    status: str
    total: int
    succeeded: int = 0
    errored: int = 0
    processing: int = 0
    expired: int = 0
    canceled: int = 0
    polls: int = 0
    elapsed_s: float = 0.0
    done: bool = False


async def abatch_complete(
    provider: Provider,
    requests: Sequence[ProviderRequest],
    *,
    poll_interval_s: float = 5.0,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> list[Completion | ProviderError]:
    """Run ``requests`` as one vendor batch (several past the vendor's size limits); the
    outcomes come back aligned with them.

    Per-item failures are returned in place (``BatchItemError``, ``BatchItemExpired``,
    ``BatchItemCanceled``, or the parser's own ``ProviderError``); the call raises only
    when the batch as a whole fails (``BatchFailed``, or the HTTP error of a control
    request that retries could not fix). Cancelling the awaiting task cancels the remote
    batch (best effort, shielded) and re-raises.
    """
    if not isinstance(poll_interval_s, (int, float)) or poll_interval_s < 0:
        raise ConfigError(f"poll_interval_s must be a number >= 0, got {poll_interval_s!r}")
    api = api_for(provider)
    if not requests:
        return []
    items = [(f"alloy-{i}", _provider_body(api, r)) for i, r in enumerate(requests)]
    chunks = _chunks(items, api.max_items, api.max_bytes)
    if len(chunks) == 1:
        return await _Run(api, items, float(poll_interval_s), on_progress).run()
    # Over one batch's limits: several batches side by side, progress summed. A failure in
    # one cancels the others (and, through their own handlers, their remote batches).
    merged = _MergedProgress(len(chunks), on_progress) if on_progress else None
    tasks = [
        asyncio.ensure_future(
            _Run(api, chunk, float(poll_interval_s), merged.hook(k) if merged else None).run()
        )
        for k, chunk in enumerate(chunks)
    ]
    try:
        parts = await asyncio.gather(*tasks)
    except BaseException:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)  # let each cancel its batch
        raise
    return [outcome for part in parts for outcome in part]


def _provider_body(api: VendorApi, request: ProviderRequest) -> dict[str, Any]:
    """The body ``complete()`` would send for ``request`` (no streaming)."""
    return api.provider.build_body(request, stream=False)


def _chunks(
    items: list[tuple[str, dict[str, Any]]], max_items: int, max_bytes: int
) -> list[list[tuple[str, dict[str, Any]]]]:
    """Split items, in order, into batches within the vendor's count and size limits."""
    out: list[list[tuple[str, dict[str, Any]]]] = [[]]
    size = 0
    for item in items:
        n = len(json.dumps(item[1], ensure_ascii=False).encode()) + 200  # + the line's envelope
        if out[-1] and (len(out[-1]) >= max_items or size + n > max_bytes):
            out.append([])
            size = 0
        out[-1].append(item)
        size += n
    return out


class _MergedProgress:
    """Sums the progress of several batches into one report (batch ids comma-joined)."""

    def __init__(self, n: int, on_progress: Callable[[BatchProgress], None]) -> None:
        self.latest: list[BatchProgress | None] = [None] * n
        self.on_progress = on_progress

    def hook(self, k: int) -> Callable[[BatchProgress], None]:
        def report(p: BatchProgress) -> None:
            self.latest[k] = p
            self._emit()

        return report

    def _emit(self) -> None:
        seen = [p for p in self.latest if p is not None]
        if len(seen) < len(self.latest):
            return  # every batch reports once right after its create
        def total(field: str) -> int:
            return sum(int(getattr(p, field)) for p in seen)

        statuses = list(dict.fromkeys(p.status for p in seen))
        self.on_progress(
            BatchProgress(
                batch_id=",".join(p.batch_id or "" for p in seen),
                status=statuses[0] if len(statuses) == 1 else "/".join(statuses),
                total=total("total"),
                succeeded=total("succeeded"),
                errored=total("errored"),
                processing=total("processing"),
                expired=total("expired"),
                canceled=total("canceled"),
                polls=max(p.polls for p in seen),
                elapsed_s=max(p.elapsed_s for p in seen),
                done=all(p.done for p in seen),
            )
        )


# --------------------------------------------------------------------------- the run


class _Run:
    """One batch from submit to aligned results, cancelling the remote batch on the way out
    if anything (including the caller's cancellation) interrupts it."""

    def __init__(
        self,
        api: VendorApi,
        items: list[tuple[str, dict[str, Any]]],
        poll_interval_s: float,
        on_progress: Callable[[BatchProgress], None] | None,
    ) -> None:
        self.api = api
        self.ids = [cid for cid, _ in items]
        self.bodies = [body for _, body in items]
        self.poll_interval_s = poll_interval_s
        self.on_progress = on_progress
        self.polls = 0
        self.started = time.monotonic()

    async def run(self) -> list[Outcome]:
        items = list(zip(self.ids, self.bodies, strict=True))
        submit = asyncio.ensure_future(self.api.submit(items))
        try:
            batch = await asyncio.shield(submit)
        except asyncio.CancelledError:
            await self._cancel_when_created(submit)
            raise
        batch_id = str(batch.get("id") or "")
        if not batch_id:
            raise BatchFailed(
                f"the batch create reply has no id: {str(batch)[:200]!r}", **self.api.who()
            )
        ended = False
        try:
            self._report(batch_id, batch)
            while not self.api.terminal(batch):
                await asyncio.sleep(self.poll_interval_s)
                batch = await self.api.retrieve(batch_id)
                self.polls += 1
                self._report(batch_id, batch)
            ended = True
            found = await self.api.results(batch_id, batch)
        except BaseException:
            if not ended:
                await _best_effort_cancel(self.api, batch_id)
            raise
        outcomes = [
            found[cid] if cid in found else self.api.missing(batch_id, batch, cid, i)
            for i, cid in enumerate(self.ids)
        ]
        outcomes = [_half_price(o, self.api.provider) for o in outcomes]
        self._final(batch_id, batch, outcomes)
        return outcomes

    async def _cancel_when_created(self, submit: asyncio.Future[dict[str, Any]]) -> None:
        """Cancelled while submitting: the batch may still be created, so wait briefly for
        the reply and cancel what it made."""
        try:
            await asyncio.wait({submit}, timeout=_CANCEL_WAIT_S)
        except asyncio.CancelledError:
            return  # cancelled again: stop waiting, the caller is leaving
        if submit.done() and not submit.cancelled() and submit.exception() is None:
            batch_id = submit.result().get("id")
            if batch_id:
                await _best_effort_cancel(self.api, str(batch_id))
        elif not submit.done():
            submit.cancel()

    def _report(self, batch_id: str, batch: dict[str, Any]) -> None:
        if self.on_progress is None:
            return
        counts = self.api.counts(batch, len(self.ids))
        self.on_progress(
            BatchProgress.model_validate(
                {
                    "batch_id": batch_id,
                    "status": self.api.status(batch),
                    "total": len(self.ids),
                    "polls": self.polls,
                    "elapsed_s": time.monotonic() - self.started,
                    **counts,
                }
            )
        )

    def _final(self, batch_id: str, batch: dict[str, Any], outcomes: list[Outcome]) -> None:
        if self.on_progress is None:
            return
        ok = sum(isinstance(o, Completion) for o in outcomes)
        self.on_progress(
            BatchProgress(
                batch_id=batch_id,
                status=self.api.status(batch),
                total=len(outcomes),
                succeeded=ok,
                errored=len(outcomes) - ok,
                expired=sum(isinstance(o, BatchItemExpired) for o in outcomes),
                canceled=sum(isinstance(o, BatchItemCanceled) for o in outcomes),
                polls=self.polls,
                elapsed_s=time.monotonic() - self.started,
                done=True,
            )
        )


async def _best_effort_cancel(api: VendorApi, batch_id: str) -> None:
    """Ask the vendor to cancel, shielded from the caller's own cancellation, for at most
    ``_CANCEL_WAIT_S``; a failure is logged, never raised over the original exception."""
    task = asyncio.ensure_future(api.cancel(batch_id))
    try:
        await asyncio.wait_for(asyncio.shield(task), _CANCEL_WAIT_S)
    except (Exception, asyncio.CancelledError) as exc:
        log.warning("could not cancel %s batch %s: %s", api.provider.name, batch_id, exc)


def _half_price(outcome: Outcome, provider: Provider) -> Outcome:
    """Price a batch answer at the vendors' batch rate (half the list price)."""
    if not isinstance(outcome, Completion):
        return outcome
    usage = outcome.usage
    info = model_metadata.lookup(outcome.model or provider.model)
    if info is None:
        usage = usage.with_cost(None, None)
    else:
        usage = usage.with_cost(
            info.input_price, info.output_price, info.cache_read_price, info.cache_write_price
        )
    usage = usage.model_copy(
        update={"estimated_cost_cents": usage.estimated_cost_cents * BATCH_PRICE_FACTOR}
    )
    return outcome.model_copy(update={"usage": usage})
