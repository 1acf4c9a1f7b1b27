"""The two vendors' batch wire protocols behind ``_vendor.abatch_complete``: Anthropic
Message Batches and OpenAI Batch (files + batches), each reduced to submit / retrieve /
cancel / results, with control requests retried like model calls. Item bodies come from the
provider's own ``build_body`` and answers go through its own parser.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit

from alloy_nb.agent.retry import backoff_s, is_retryable
from alloy_nb.errors import (
    BatchFailed,
    BatchItemCanceled,
    BatchItemError,
    BatchItemExpired,
    ConfigError,
    ProviderError,
)
from alloy_nb.providers._template import HTTPProvider
from alloy_nb.providers._transport import Call, send
from alloy_nb.providers._vendor_errors import error_from_payload, status_error
from alloy_nb.providers.base import Completion, Provider

__all__ = [
    "BATCH_PRICE_FACTOR", "AnthropicBatches", "OpenAIBatches", "Outcome", "VendorApi", "api_for",
]

#: Both vendors bill batch tokens at half the list price.
BATCH_PRICE_FACTOR = 0.5

log = logging.getLogger("alloy_nb")

_CONTROL_RETRIES = 5
_BACKOFF_MS = 500
_CONTROL_TIMEOUT_S = 60.0
_DOWNLOAD_TIMEOUT_S = 600.0
_SUPPORTED = (
    "Anthropic (Message Batches), OpenAI (Responses, via the Batch API) and OpenAICompat "
    "(Chat Completions, on servers with OpenAI's Batch API)"
)

T = TypeVar("T")
Outcome = Completion | ProviderError


def api_for(provider: Provider) -> VendorApi:
    """The batch protocol of ``provider``'s API, or a ConfigError naming the ones there are."""
    from alloy_nb.providers.anthropic import Anthropic
    from alloy_nb.providers.openai import OpenAI
    from alloy_nb.providers.openai_compat import OpenAICompat

    if isinstance(provider, Anthropic):
        return AnthropicBatches(provider)
    if isinstance(provider, OpenAI):
        return OpenAIBatches(provider, "/v1/responses")
    if isinstance(provider, OpenAICompat):
        return OpenAIBatches(provider, "/v1/chat/completions")
    raise ConfigError(
        f"mode='batch' is not available for the {type(provider).__name__} provider; "
        f"batch mode supports {_SUPPORTED}"
    )


class VendorApi:
    """What the run needs from a vendor; the HTTP plumbing shared by both lives here."""

    max_items = 50_000
    max_bytes = 190_000_000  # under both vendors' limits, with room for the envelope

    def __init__(self, provider: HTTPProvider) -> None:
        self.provider = provider

    def who(self) -> dict[str, Any]:
        return {"provider": self.provider.name, "model": self.provider.model}

    def call(self, path: str) -> Call:
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
        return await _retrying(lambda: send(call, method, timeout_s=timeout_s, **kw))

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
        """A vendor error object (any of the shapes ``_vendor_errors`` reads) as a BatchItemError,
        retryable when the vendor's type or the status says transient."""
        call = self.call("")
        err: ProviderError
        if status_code is not None:
            raw = json.dumps(payload).encode()
            err = status_error(call, status_code, {}, raw)
        else:
            err = error_from_payload(call, payload, request_id, where="from the vendor")
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
            return self.provider.parse_reply(self.call(""), body, request_id)
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


class AnthropicBatches(VendorApi):
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


class OpenAIBatches(VendorApi):
    """OpenAI Batch: upload the JSONL of ``{custom_id, method, url, body}`` lines as a
    ``purpose=batch`` file, create the batch on it, poll, then read the output and error
    files (``output_file_id``, ``error_file_id``)."""

    _TERMINAL = frozenset({"completed", "failed", "expired", "cancelled"})

    def __init__(self, provider: HTTPProvider, endpoint: str) -> None:
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
