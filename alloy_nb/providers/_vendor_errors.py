"""Vendor error mapping: an HTTP status and body, an error payload sent after HTTP 200, or an
httpx exception, turned into the most specific class of ``errors.py`` (with ``Retry-After``
and the vendor's ``x-should-retry`` verdict). The prompt-too-long reading is
``_overflow.py``'s.

Pure functions of what the vendor sent: no I/O, no client.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import TYPE_CHECKING, Any

import httpx

from alloy_nb.errors import (
    AuthenticationError,
    BadRequestError,
    OverloadedError,
    PromptTooLongError,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    RateLimitError,
    StreamError,
    TransientStreamError,
)
from alloy_nb.providers._overflow import is_prompt_too_long

if TYPE_CHECKING:
    from alloy_nb.providers._transport import Call

__all__ = [
    "error_from_payload",
    "map_exception",
    "request_id_of",
    "retry_after",
    "status_error",
    "tool_arguments",
    "trim",
    "unexpected_reply",
    "who",
]

_MAX_MESSAGE = 500

# Error types/codes that say "try again" (in-stream errors carry no HTTP status) and 429
# codes that say "you are out of money", which no retry can fix.
_TRANSIENT = {
    "overloaded_error",
    "api_error",
    "server_error",
    "rate_limit_error",
    "rate_limit_exceeded",
    "server_is_overloaded",
    "slow_down",
    "timeout_error",
    "service_unavailable",
}
_NO_QUOTA = {
    "insufficient_quota",
    "enforced_spend_limit_reached",
    "credit_balance_exhausted",
    "billing_hard_limit_reached",
    "monthly_spend_limit_exceeded",
    "project_spend_limit_exceeded",
}


def who(call: Call, request_id: str | None) -> dict[str, Any]:
    return {"provider": call.provider, "model": call.model, "request_id": request_id}


def request_id_of(headers: Mapping[str, str]) -> str | None:
    return headers.get("request-id") or headers.get("x-request-id")


def trim(text: str, limit: int = _MAX_MESSAGE) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds to wait: ``retry-after-ms`` (ms), else ``retry-after`` (seconds or HTTP date)."""
    raw = headers.get("retry-after-ms")
    if raw:
        try:
            ms = float(raw)
        except ValueError:
            pass
        else:
            if ms >= 0:
                return ms / 1000
    raw = headers.get("retry-after")
    if not raw:
        return None
    try:
        s = float(raw)
        return s if s >= 0 else None
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(raw)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return max(0.0, (when - datetime.now(timezone.utc)).total_seconds())


def _error_object(payload: Any) -> tuple[dict[str, Any], str | None]:
    """Find the vendor's error object in any of the shapes seen: ``{"error": {...}}``,
    ``[{"error": {...}}]`` (Gemini), ``{"error": "text"}`` (xAI), ``{"detail": ...}``."""
    if isinstance(payload, list) and payload:
        payload = payload[0]
    if not isinstance(payload, dict):
        return {}, None
    err = payload.get("error", payload)
    if isinstance(err, str):
        return {}, err
    if not isinstance(err, dict):
        return {}, None
    msg = err.get("message") or err.get("detail") or payload.get("detail")
    if isinstance(msg, (list, dict)):
        msg = json.dumps(msg)
    raw = (err.get("metadata") or {}).get("raw") if isinstance(err.get("metadata"), dict) else None
    if msg and isinstance(raw, str) and raw and raw not in msg:
        msg = f"{msg} ({trim(raw, 200)})"
    return err, str(msg) if msg else None


def _labels(err: Mapping[str, Any]) -> list[str]:
    out: list[str] = []
    for key in ("type", "code", "status"):
        v = err.get(key)
        # Anthropic wraps every error in type "error": not a label worth showing
        ok = isinstance(v, (str, int)) and not isinstance(v, bool) and v != "error"
        if ok and str(v) not in out:
            out.append(str(v))
    return out


def _describe(payload: Any, text: str) -> tuple[str, set[str]]:
    err, msg = _error_object(payload)
    labels = _labels(err)
    head = "/".join(labels)
    body = trim(msg) if msg else trim(text) or "(empty body)"
    return (f"{head}: {body}" if head else body), set(labels)


def status_error(
    call: Call, status: int, headers: Mapping[str, str], raw: bytes
) -> ProviderHTTPError:
    """Map an HTTP error status to the most specific class of ``errors.py``."""
    text = raw.decode("utf-8", "replace")
    try:
        payload: Any = json.loads(text)
    except ValueError:
        payload = None
    detail, labels = _describe(payload, text)
    rid = request_id_of(headers)
    if rid is None and isinstance(payload, dict) and isinstance(payload.get("request_id"), str):
        rid = payload["request_id"]
    cls: type[ProviderHTTPError]
    if status in (401, 403):
        cls = AuthenticationError
    elif status == 429:
        cls = BadRequestError if labels & _NO_QUOTA else RateLimitError
    elif status >= 500 or status == 408:
        cls = OverloadedError
    else:
        cls = BadRequestError
    if cls is BadRequestError and is_prompt_too_long(status, payload if payload else text):
        cls = PromptTooLongError  # the loop compacts and retries once
    err = cls(
        call.scrub(f"HTTP {status} {detail}"),
        status_code=status,
        body=call.scrub(trim(text, 2000)),
        retry_after=retry_after(headers),
        **who(call, rid),
    )
    # The server's own verdict overrides the status rule (Anthropic and OpenAI send it),
    # except that a key the server refused is never worth another try.
    should = (headers.get("x-should-retry") or "").strip().lower()
    verdict = should == "true"
    if should in ("true", "false") and cls is not AuthenticationError and verdict != cls.retryable:
        err.override_retryable(verdict, reason=f"x-should-retry: {should}")
    return err


def error_from_payload(
    call: Call, payload: Any, request_id: str | None, *, where: str = "in stream"
) -> ProviderError:
    """An error the vendor reported after HTTP 200 (an SSE error event, ``response.failed``,
    an OpenRouter error chunk). Retryable when its type, code or status says transient;
    a context-window overflow is a ``PromptTooLongError`` (reported as status 400)."""
    detail, labels = _describe(payload, json.dumps(payload) if payload is not None else "")
    if is_prompt_too_long(None, payload):
        return PromptTooLongError(
            call.scrub(f"error {where}: {detail}"), status_code=400,
            body=call.scrub(trim(json.dumps(payload), 2000)), **who(call, request_id),
        )
    err, _ = _error_object(payload)
    status = err.get("status_code") or err.get("code")
    transient = bool(labels & _TRANSIENT) or (
        isinstance(status, int)
        and not isinstance(status, bool)
        and (status >= 500 or status == 429)
    )
    cls = TransientStreamError if transient else StreamError
    return cls(call.scrub(f"error {where}: {detail}"), **who(call, request_id))


def unexpected_reply(call: Call, api: str, data: Any, request_id: str | None) -> StreamError:
    """A 200 reply whose body is not the ``api``'s reply object (nor an error object)."""
    return StreamError(
        call.scrub(f"unexpected {api} reply: {str(data)[:300]!r}"), **who(call, request_id)
    )


def tool_arguments(
    call: Call, name: Any, raw: Any, request_id: str | None, *, lenient: bool
) -> dict[str, Any]:
    """A tool call's arguments (the object itself or its JSON text) as a dict. Anything else
    is a TransientStreamError (retried), or ``{}`` when ``lenient`` (the reply was cut off
    mid-arguments, so the call never runs).
    What an empty value means is each protocol's business."""
    if isinstance(raw, dict):
        return raw
    try:
        value = json.loads(raw)
    except (TypeError, ValueError):
        value = None
    if isinstance(value, dict):
        return value
    if lenient:
        return {}
    raise TransientStreamError(
        f"model sent invalid JSON arguments for tool {name!r}", **who(call, request_id)
    )


def map_exception(call: Call, exc: Exception, request_id: str | None = None) -> ProviderError:
    """httpx failures: transport trouble is a (retryable) ProviderConnectionError."""
    what = call.scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
        return ProviderConnectionError(
            f"connection to {_origin(call.url)} failed: {what}", **who(call, request_id)
        )
    if isinstance(exc, httpx.DecodingError):
        return StreamError(f"could not decode the response: {what}", **who(call, request_id))
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return ProviderConfigError(
            f"bad base_url for {call.provider}: {call.url!r} ({what})", **who(call, request_id)
        )
    return ProviderConnectionError(f"HTTP request failed: {what}", **who(call, request_id))


def _origin(url: str) -> str:
    m = re.match(r"^[a-z]+://[^/?#]+", url)
    return m.group(0) if m else url
