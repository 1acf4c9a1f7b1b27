"""The vendors' half-price batch APIs: submit many single calls at once, poll, fetch, align.

Anthropic Message Batches (``/v1/messages/batches``) and OpenAI Batch (``/v1/files`` +
``/v1/batches``, for the Responses and the Chat Completions providers). Each item's body is
exactly what the provider's ``complete()`` would send (its own ``build_body``) and each
answer goes through the provider's own parser, so a batch Completion is the same as a live
one; only its cost is halved (``BATCH_PRICE_FACTOR``). Wire notes: ``docs/batch-vendor.md``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from pydantic import BaseModel, ConfigDict

from alloy_nb import model_metadata
from alloy_nb.agent.retry import backoff_s, is_retryable
from alloy_nb.errors import (
    BatchFailed,
    BatchItemCanceled,
    BatchItemError,
    BatchItemExpired,
    ConfigError,
    ProviderError,
)
from alloy_nb.providers import _http
from alloy_nb.providers.base import Completion, Provider, ProviderRequest

__all__ = ["BATCH_PRICE_FACTOR", "BatchProgress", "abatch_complete"]

log = logging.getLogger("alloy_nb")

#: Both vendors bill batch tokens at half the list price.
BATCH_PRICE_FACTOR = 0.5
_CONTROL_RETRIES = 5
_BACKOFF_MS = 500
_CONTROL_TIMEOUT_S = 60.0
_DOWNLOAD_TIMEOUT_S = 600.0
_CANCEL_WAIT_S = 10.0  # how long a cancelled caller waits for the remote cancel to land
_SUPPORTED = (
    "Anthropic (Message Batches), OpenAI (Responses, via the Batch API) and OpenAICompat "
    "(Chat Completions, on servers with OpenAI's Batch API)"
)

T = TypeVar("T")
Outcome = Completion | ProviderError


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
    api = _api_for(provider)
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


def _provider_body(api: _Api, request: ProviderRequest) -> dict[str, Any]:
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
        api: _Api,
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


async def _best_effort_cancel(api: _Api, batch_id: str) -> None:
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


# --------------------------------------------------------------------------- vendors


def _api_for(provider: Provider) -> _Api:
    from alloy_nb.providers.anthropic import Anthropic
    from alloy_nb.providers.openai import OpenAI
    from alloy_nb.providers.openai_compat import OpenAICompat

    if isinstance(provider, Anthropic):
        return _AnthropicBatches(provider)
    if isinstance(provider, OpenAI):
        return _OpenAIBatches(provider, "/v1/responses")
    if isinstance(provider, OpenAICompat):
        return _OpenAIBatches(provider, "/v1/chat/completions")
    raise ConfigError(
        f"mode='batch' is not available for the {type(provider).__name__} provider; "
        f"batch mode supports {_SUPPORTED}"
    )


class _Api:
    """What the run needs from a vendor; the HTTP plumbing shared by both lives here."""

    max_items = 50_000
    max_bytes = 190_000_000  # under both vendors' limits, with room for the envelope

    def __init__(self, provider: _http.HTTPProvider) -> None:
        self.provider = provider

    def who(self) -> dict[str, Any]:
        return {"provider": self.provider.name, "model": self.provider.model}

    def call(self, path: str) -> _http.Call:
        """The provider's own headers and key, aimed at ``path`` under its base URL."""
        base = self.provider.base_url
        if base.endswith("/v1") and path.startswith("/v1/"):
            path = path[3:]
        return dataclasses.replace(self.provider._call(), url=base + path)

    async def control(
        self,
        path: str,
        method: str = "GET",
        *,
        timeout_s: float = _CONTROL_TIMEOUT_S,
        **kw: Any,
    ) -> tuple[bytes, str | None]:
        """One control request, retried on 429/5xx/connection errors (honouring
        Retry-After) as the run loop retries model calls."""
        call = self.call(path)
        return await _retrying(lambda: _http.send(call, method, timeout_s=timeout_s, **kw))

    async def control_json(self, path: str, method: str = "GET", **kw: Any) -> dict[str, Any]:
        raw, rid = await self.control(path, method, **kw)
        try:
            data = json.loads(raw)
        except ValueError:
            data = None
        if not isinstance(data, dict):
            raise BatchFailed(
                self.call(path).scrub(f"{method} {path} did not answer a JSON object: "
                                      f"{raw[:200]!r}"),
                request_id=rid,
                **self.who(),
            )
        return data

    # what each vendor implements
    async def submit(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        raise NotImplementedError

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        raise NotImplementedError

    async def cancel(self, batch_id: str) -> None:
        raise NotImplementedError

    async def results(self, batch_id: str, batch: dict[str, Any]) -> dict[str, Outcome]:
        raise NotImplementedError

    def status(self, batch: dict[str, Any]) -> str:
        raise NotImplementedError

    def terminal(self, batch: dict[str, Any]) -> bool:
        raise NotImplementedError

    def counts(self, batch: dict[str, Any], total: int) -> dict[str, int]:
        raise NotImplementedError

    def missing(self, batch_id: str, batch: dict[str, Any], cid: str, index: int) -> Outcome:
        """The outcome of an item the results do not mention."""
        return BatchItemError(
            f"batch item {index} ({cid}) has no result in the batch's results",
            custom_id=cid,
            error_type="missing_result",
            batch_id=batch_id,
            **self.who(),
        )

    # helpers for the parsers
    def item_error(
        self,
        cid: str,
        batch_id: str,
        payload: Any,
        request_id: str | None,
        status_code: int | None = None,
    ) -> BatchItemError:
        """A vendor error object (any of the shapes ``_http`` reads) as a BatchItemError,
        retryable when the vendor's type or the status says transient."""
        call = self.call("")
        err: ProviderError
        if status_code is not None:
            raw = json.dumps(payload).encode()
            err = _http.status_error(call, status_code, {}, raw)
        else:
            err = _http.error_from_payload(call, payload, request_id, where="from the vendor")
        return BatchItemError(
            f"batch item {cid} failed: {err.message}",
            custom_id=cid,
            error_type=_error_type(payload),
            status_code=status_code,
            retryable=err.retryable,
            batch_id=batch_id,
            request_id=request_id,
            **self.who(),
        )

    def parse(self, cid: str, batch_id: str, body: Any, request_id: str | None) -> Outcome:
        """A successful item's body through the provider's own parser."""
        try:
            return self.provider._parse(self.call(""), body, request_id)
        except ProviderError as err:
            return err
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            return BatchItemError(
                f"batch item {cid}: unreadable answer ({type(exc).__name__}: {exc})",
                custom_id=cid,
                error_type="malformed_result",
                batch_id=batch_id,
                **self.who(),
            )


async def _retrying(fn: Callable[[], Awaitable[T]]) -> T:
    attempt = 0
    while True:
        try:
            return await fn()
        except ProviderError as err:
            attempt += 1
            if not is_retryable(err) or attempt > _CONTROL_RETRIES:
                raise
            delay = backoff_s(attempt, _BACKOFF_MS, err)
            log.info("batch control request failed (%s); retry %d in %.2fs", err, attempt, delay)
            await asyncio.sleep(delay)


def _error_type(payload: Any) -> str | None:
    """The vendor's most specific word for an error: nested ``error.type``/``code``."""
    while isinstance(payload, dict):
        inner = payload.get("error")
        if isinstance(inner, dict):
            payload = inner
            continue
        for key in ("type", "code"):
            v = payload.get(key)
            if isinstance(v, str) and v and v != "error":
                return v
        return None
    return None


def _jsonl(raw: bytes) -> list[dict[str, Any]]:
    """The objects of a JSONL body; unreadable lines are skipped (their items then show up
    as missing results, which is reported per item)."""
    out = []
    for line in raw.splitlines():
        if not line.strip():
            continue
        try:
            obj = json.loads(line)
        except ValueError:
            log.warning("skipped an unreadable line of batch results")
            continue
        if isinstance(obj, dict) and isinstance(obj.get("custom_id"), str):
            out.append(obj)
    return out


def _int(v: Any) -> int:
    return v if isinstance(v, int) and not isinstance(v, bool) and v >= 0 else 0


class _AnthropicBatches(_Api):
    """Message Batches: one POST with ``{custom_id, params}`` per item, poll until
    ``processing_status == "ended"``, then read the JSONL at ``results_url``."""

    max_items = 100_000  # and 256 MB per create request
    max_bytes = 240_000_000

    async def submit(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        body = {"requests": [{"custom_id": cid, "params": params} for cid, params in items]}
        return await self.control_json("/v1/messages/batches", "POST", body=body)

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        return await self.control_json(f"/v1/messages/batches/{quote(batch_id, safe='')}")

    async def cancel(self, batch_id: str) -> None:
        await self.control(f"/v1/messages/batches/{quote(batch_id, safe='')}/cancel", "POST")

    def status(self, batch: dict[str, Any]) -> str:
        return str(batch.get("processing_status") or "unknown")

    def terminal(self, batch: dict[str, Any]) -> bool:
        return batch.get("processing_status") == "ended"

    def counts(self, batch: dict[str, Any], total: int) -> dict[str, int]:
        c = batch.get("request_counts") or {}
        expired, canceled = _int(c.get("expired")), _int(c.get("canceled"))
        return {
            "succeeded": _int(c.get("succeeded")),
            "errored": _int(c.get("errored")) + expired + canceled,
            "processing": _int(c.get("processing")),
            "expired": expired,
            "canceled": canceled,
        }

    def _results_path(self, batch_id: str, batch: dict[str, Any]) -> str:
        """``results_url`` when it is on the provider's own origin, else the documented path
        under base_url: the key is never sent to another host."""
        default = f"/v1/messages/batches/{quote(batch_id, safe='')}/results"
        url = batch.get("results_url")
        if not isinstance(url, str) or not url:
            return default
        mine, theirs = urlsplit(self.provider.base_url), urlsplit(url)
        if (mine.scheme, mine.netloc) != (theirs.scheme, theirs.netloc):
            return default
        prefix = mine.path.rstrip("/")
        path = theirs.path + (f"?{theirs.query}" if theirs.query else "")
        if prefix and path.startswith(prefix + "/"):
            path = path[len(prefix):]
        return path

    async def results(self, batch_id: str, batch: dict[str, Any]) -> dict[str, Outcome]:
        raw, _ = await self.control(
            self._results_path(batch_id, batch), timeout_s=_DOWNLOAD_TIMEOUT_S
        )
        out: dict[str, Outcome] = {}
        for line in _jsonl(raw):
            cid = line["custom_id"]
            out[cid] = self._outcome(cid, batch_id, line.get("result"))
        return out

    def _outcome(self, cid: str, batch_id: str, result: Any) -> Outcome:
        kind = result.get("type") if isinstance(result, dict) else None
        who = {"custom_id": cid, "batch_id": batch_id, **self.who()}
        if kind == "succeeded" and isinstance(result, dict):
            return self.parse(cid, batch_id, result.get("message"), None)
        if kind == "errored" and isinstance(result, dict):
            err = result.get("error")
            rid = err.get("request_id") if isinstance(err, dict) else None
            return self.item_error(cid, batch_id, err, rid if isinstance(rid, str) else None)
        if kind == "expired":
            return BatchItemExpired(
                f"batch item {cid} expired: the batch ended (24 h) before it ran",
                error_type="expired",
                **who,
            )
        if kind == "canceled":
            return BatchItemCanceled(
                f"batch item {cid} was canceled before it ran", error_type="canceled", **who
            )
        return BatchItemError(
            f"batch item {cid}: unknown result type {kind!r}", error_type=str(kind), **who
        )


class _OpenAIBatches(_Api):
    """OpenAI Batch: upload the JSONL of ``{custom_id, method, url, body}`` lines as a
    ``purpose=batch`` file, create the batch on it, poll, then read the output and error
    files (``output_file_id``, ``error_file_id``)."""

    _TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

    def __init__(self, provider: _http.HTTPProvider, endpoint: str) -> None:
        super().__init__(provider)
        self.endpoint = endpoint

    async def submit(self, items: list[tuple[str, dict[str, Any]]]) -> dict[str, Any]:
        lines = [
            json.dumps(
                {"custom_id": cid, "method": "POST", "url": self.endpoint, "body": body},
                ensure_ascii=False,
                separators=(",", ":"),
            )
            for cid, body in items
        ]
        data = ("\n".join(lines) + "\n").encode()
        upload = await self.control_json(
            "/v1/files",
            "POST",
            files={"file": ("alloy_nb_batch.jsonl", data, "application/jsonl")},
            data={"purpose": "batch"},
            timeout_s=_DOWNLOAD_TIMEOUT_S,
        )
        file_id = upload.get("id")
        if not isinstance(file_id, str) or not file_id:
            raise BatchFailed(f"the file upload reply has no id: {str(upload)[:200]!r}",
                              **self.who())
        body = {"input_file_id": file_id, "endpoint": self.endpoint, "completion_window": "24h"}
        return await self.control_json("/v1/batches", "POST", body=body)

    async def retrieve(self, batch_id: str) -> dict[str, Any]:
        return await self.control_json(f"/v1/batches/{quote(batch_id, safe='')}")

    async def cancel(self, batch_id: str) -> None:
        await self.control(f"/v1/batches/{quote(batch_id, safe='')}/cancel", "POST")

    def status(self, batch: dict[str, Any]) -> str:
        return str(batch.get("status") or "unknown")

    def terminal(self, batch: dict[str, Any]) -> bool:
        return batch.get("status") in self._TERMINAL

    def counts(self, batch: dict[str, Any], total: int) -> dict[str, int]:
        c = batch.get("request_counts") or {}
        done, failed = _int(c.get("completed")), _int(c.get("failed"))
        return {
            "succeeded": done,
            "errored": failed,
            "processing": max(0, (_int(c.get("total")) or total) - done - failed),
        }

    async def results(self, batch_id: str, batch: dict[str, Any]) -> dict[str, Outcome]:
        if batch.get("status") == "failed":
            raise BatchFailed(
                f"OpenAI batch {batch_id} failed: {_batch_errors(batch)}",
                batch_id=batch_id,
                **self.who(),
            )
        out: dict[str, Outcome] = {}
        # errors first, so a line in the output file wins over one for the same item
        for key in ("error_file_id", "output_file_id"):
            file_id = batch.get(key)
            if not isinstance(file_id, str) or not file_id:
                continue
            raw, _ = await self.control(
                f"/v1/files/{quote(file_id, safe='')}/content", timeout_s=_DOWNLOAD_TIMEOUT_S
            )
            for line in _jsonl(raw):
                out[line["custom_id"]] = self._outcome(line["custom_id"], batch_id, line)
        return out

    def _outcome(self, cid: str, batch_id: str, line: dict[str, Any]) -> Outcome:
        who = {"custom_id": cid, "batch_id": batch_id, **self.who()}
        error, response = line.get("error"), line.get("response")
        if isinstance(error, dict) and error:
            code = error.get("code")
            message = error.get("message") or code or "no message"
            if code == "batch_expired":
                return BatchItemExpired(
                    f"batch item {cid} expired: {message}", error_type=code, **who
                )
            if code == "batch_cancelled":
                return BatchItemCanceled(
                    f"batch item {cid} was cancelled: {message}", error_type=code, **who
                )
            return self.item_error(cid, batch_id, {"error": error}, None)
        if not isinstance(response, dict):
            return BatchItemError(
                f"batch item {cid}: a result line with neither response nor error",
                error_type="malformed_result",
                **who,
            )
        status = response.get("status_code")
        rid = response.get("request_id") if isinstance(response.get("request_id"), str) else None
        body = response.get("body")
        if isinstance(status, int) and not isinstance(status, bool) and status >= 400:
            return self.item_error(cid, batch_id, body, rid, status_code=status)
        return self.parse(cid, batch_id, body, rid)

    def missing(self, batch_id: str, batch: dict[str, Any], cid: str, index: int) -> Outcome:
        who = {"custom_id": cid, "batch_id": batch_id, **self.who()}
        if batch.get("status") == "expired":
            return BatchItemExpired(
                f"batch item {index} ({cid}) expired: the batch's 24 h window closed first",
                error_type="batch_expired",
                **who,
            )
        if batch.get("status") == "cancelled":
            return BatchItemCanceled(
                f"batch item {index} ({cid}) was cancelled before it ran",
                error_type="batch_cancelled",
                **who,
            )
        return super().missing(batch_id, batch, cid, index)


def _batch_errors(batch: Mapping[str, Any]) -> str:
    errors = batch.get("errors")
    data = errors.get("data") if isinstance(errors, dict) else None
    parts = []
    for e in data if isinstance(data, list) else ():
        if isinstance(e, dict):
            where = f" (line {e['line']})" if isinstance(e.get("line"), int) else ""
            parts.append(f"{e.get('code') or 'error'}: {e.get('message') or ''}{where}")
    return "; ".join(parts[:5]) or "no reason given"
