"""HTTP plumbing shared by the providers: one httpx client per event loop, API keys and auth
headers, the translation of HTTP statuses and httpx exceptions into ``errors.py``, and
``HTTPProvider``, the request template (post or stream, then parse) they all follow.

The only module that builds clients or puts a key into a header. What request and response
bodies mean is each provider module's business; SSE framing lives in ``_sse.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import re
import ssl
import weakref
from abc import abstractmethod
from collections import deque
from collections.abc import AsyncIterator, Iterator, Mapping
from contextlib import asynccontextmanager, contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar, Protocol

import httpx
from pydantic import SecretStr

from alloy_nb._version import __version__
from alloy_nb.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    OverloadedError,
    PromptTooLongError,
    ProviderConfigError,
    ProviderConnectionError,
    ProviderError,
    ProviderHTTPError,
    RateLimitError,
    ResponseTooLargeError,
    StreamError,
)
from alloy_nb.providers._overflow import is_prompt_too_long
from alloy_nb.providers._sse import SSEDecoder, SSEEvent
from alloy_nb.providers.base import (
    Completion,
    OnDelta,
    Provider,
    ProviderRequest,
    report_lost_usage,
)
from alloy_nb.usage import Usage

__all__ = [
    "ApiKey",
    "Call",
    "EventStream",
    "HTTPProvider",
    "ProviderConfigError",
    "auth_headers",
    "check_max_output_tokens",
    "error_from_payload",
    "open_stream",
    "post_json",
    "retry_after",
    "send",
    "status_error",
    "tool_arguments",
    "unexpected_reply",
]

DEFAULT_TIMEOUT_S = 600.0
#: Largest whole (JSON) reply read; past it the call ends with ResponseTooLargeError. A
#: stream may carry ``_STREAM_FACTOR`` times as much: SSE repeats its framing for every few
#: tokens (~250 bytes per chat chunk). Per provider: ``provider.max_response_bytes = n``.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_STREAM_FACTOR = 8
_MAX_ERROR_BODY = 1024 * 1024  # error bodies past this are cut, not refused
_CONNECT_TIMEOUT_S = 10.0
_MAX_MESSAGE = 500
_USER_AGENT = f"alloy_nb/{__version__}"

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


# --------------------------------------------------------------------------- keys


class ApiKey:
    """An API key given explicitly or read from the environment *at request time*.

    Reading late lets ``%alloy provider anthropic:…`` be configured before the key is set.
    The value lives in a ``SecretStr``; neither ``repr`` nor ``str`` shows it.
    """

    __slots__ = ("_value", "env", "required")

    def __init__(self, value: str | None, env: tuple[str, ...] = (), *, required: bool = True):
        self._value = SecretStr(value) if value else None
        self.env = env
        self.required = required

    def get(self, provider: str, model: str | None = None) -> str | None:
        """The key, or a ProviderConfigError naming the variable to set (before any request)."""
        if self._value is not None:
            return self._value.get_secret_value()
        for name in self.env:
            if os.environ.get(name):
                return os.environ[name]
        if not self.required:
            return None
        where = " or ".join(self.env) if self.env else "the api_key argument"
        raise ProviderConfigError(
            f"no API key for {provider}: set {where} (or pass api_key=...)",
            provider=provider,
            model=model,
        )

    def __repr__(self) -> str:
        return f"ApiKey(set={self._value is not None}, env={self.env!r})"


def auth_headers(style: str, key: str | None) -> dict[str, str]:
    """``style`` is ``"x-api-key"`` (Anthropic), ``"x-goog-api-key"`` (Gemini) or ``"bearer"``
    (OpenAI and compatibles)."""
    if not key:
        return {}
    if style == "x-api-key":
        return {"x-api-key": key}
    if style == "x-goog-api-key":  # Gemini: the key never goes into the URL
        return {"x-goog-api-key": key}
    return {"authorization": f"Bearer {key}"}


@dataclass(frozen=True, slots=True)
class Call:
    """Everything needed to send one request and to describe its failure without the key."""

    provider: str
    model: str
    url: str
    headers: dict[str, str] = field(repr=False)
    secret: str | None = field(default=None, repr=False)
    max_bytes: int = DEFAULT_MAX_RESPONSE_BYTES

    def scrub(self, text: str) -> str:
        """Last line of defence: never let the key into a message or stored body."""
        if self.secret and len(self.secret) >= 4 and self.secret in text:
            text = text.replace(self.secret, "[redacted]")
        return text


# --------------------------------------------------------------------------- client


class _LoopClient:
    __slots__ = ("client", "keeper")

    def __init__(self, client: httpx.AsyncClient, keeper: AsyncIterator[None]) -> None:
        self.client = client
        self.keeper = keeper


_clients: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, _LoopClient] = (
    weakref.WeakKeyDictionary()
)


async def _keep(loop: asyncio.AbstractEventLoop, client: httpx.AsyncClient) -> AsyncIterator[None]:
    """Parks until the loop shuts down: ``asyncio.run`` closes every live async generator
    (``loop.shutdown_asyncgens``) before closing the loop, so the client closes with it."""
    try:
        yield
    finally:
        entry = _clients.get(loop)
        if entry is not None and entry.client is client:
            del _clients[loop]
        await client.aclose()


@functools.cache
def _ssl_context() -> ssl.SSLContext:
    """Built once per process: loading the CA bundle costs tens of milliseconds, and a run
    driven by ``asyncio.run`` would otherwise pay it for every new event loop."""
    return httpx.create_ssl_context()


async def _client() -> httpx.AsyncClient:
    loop = asyncio.get_running_loop()
    entry = _clients.get(loop)
    if entry is not None and not entry.client.is_closed:
        return entry.client
    client = httpx.AsyncClient(
        timeout=httpx.Timeout(DEFAULT_TIMEOUT_S, connect=_CONNECT_TIMEOUT_S),
        headers={"user-agent": _USER_AGENT},
        follow_redirects=False,
        verify=_ssl_context(),
    )
    keeper = _keep(loop, client)
    _clients[loop] = _LoopClient(client, keeper)
    await keeper.__anext__()  # registers it with the loop's async-generator hooks
    return client


def _timeout(timeout_s: float | None) -> httpx.Timeout:
    t = timeout_s if timeout_s and timeout_s > 0 else DEFAULT_TIMEOUT_S
    return httpx.Timeout(t, connect=min(_CONNECT_TIMEOUT_S, t))


def _encode(body: Mapping[str, Any]) -> bytes:
    return json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()


# --------------------------------------------------------------------------- requests


async def post_json(
    call: Call, body: Mapping[str, Any], timeout_s: float | None
) -> tuple[Any, str | None]:
    """POST and return the decoded JSON reply and its request id; errors are typed."""
    client = await _client()
    try:
        async with client.stream(
            "POST", call.url, content=_encode(body), headers=call.headers,
            timeout=_timeout(timeout_s),
        ) as resp:
            rid = _request_id(resp.headers)
            if resp.status_code >= 400:
                raw = await _read_capped(call, resp, rid, error_body=True)
                raise status_error(call, resp.status_code, resp.headers, raw)
            content = await _read_capped(call, resp, rid)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _map_exception(call, exc) from None
    try:
        return json.loads(content), rid
    except (ValueError, RecursionError):
        text = content.decode("utf-8", "replace")
        raise StreamError(
            call.scrub(f"response is not JSON: {_trim(text)!r}"), **_who(call, rid)
        ) from None


async def send(
    call: Call,
    method: str,
    *,
    body: Mapping[str, Any] | None = None,
    files: Mapping[str, tuple[str, bytes, str]] | None = None,
    data: Mapping[str, str] | None = None,
    timeout_s: float | None = None,
) -> tuple[bytes, str | None]:
    """Any other request (a GET, a multipart upload with ``files``/``data``) with the same
    error mapping as ``post_json``; returns the raw body and the request id."""
    client = await _client()
    headers = call.headers
    if files is not None:  # httpx writes the multipart content-type itself
        headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
    try:
        resp = await client.request(
            method,
            call.url,
            content=_encode(body) if body is not None else None,
            files=files,
            data=data,
            headers=headers,
            timeout=_timeout(timeout_s),
        )
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _map_exception(call, exc) from None
    if resp.status_code >= 400:
        raise status_error(call, resp.status_code, resp.headers, resp.content)
    return resp.content, _request_id(resp.headers)


async def _read_capped(
    call: Call, resp: httpx.Response, rid: str | None, *, error_body: bool = False
) -> bytes:
    """The body, refusing (or, for an error body, cutting) it past ``call.max_bytes``."""
    limit = min(call.max_bytes, _MAX_ERROR_BODY) if error_body else call.max_bytes
    declared = resp.headers.get("content-length", "")
    if not error_body and declared.isdigit() and int(declared) > limit:
        raise _too_large(call, rid, int(declared))
    buf = bytearray()
    async for chunk in resp.aiter_bytes():
        buf += chunk
        if len(buf) > limit:
            if error_body:
                return bytes(buf[:limit])
            raise _too_large(call, rid, len(buf))
    return bytes(buf)


def _too_large(
    call: Call, rid: str | None, seen: int, *, stream: bool = False
) -> ResponseTooLargeError:
    limit = f"{_STREAM_FACTOR} × " if stream else ""
    return ResponseTooLargeError(
        f"response larger than {limit}max_response_bytes={call.max_bytes:,} (at least "
        f"{seen:,} bytes); reading stopped (raise provider.max_response_bytes if expected)",
        **_who(call, rid),
    )


class EventStream:
    """The SSE events of one streaming response, read as they arrive.

    ``is_sse`` is False when a server answered a streaming request with plain JSON; the
    provider then reads ``await json()`` and parses it as a non-streamed reply.
    """

    def __init__(self, call: Call, resp: httpx.Response) -> None:
        self.call = call
        self.request_id = _request_id(resp.headers)
        ctype = resp.headers.get("content-type", "")
        self.is_sse = "json" not in ctype or "event-stream" in ctype
        self._resp = resp
        self._chunks = resp.aiter_bytes().__aiter__()
        self._decoder = SSEDecoder()
        self._pending: deque[SSEEvent] = deque()
        self._eof = False
        self._bytes = 0

    def __aiter__(self) -> EventStream:
        return self

    async def __anext__(self) -> SSEEvent:
        while not self._pending:
            if self._eof:
                raise StopAsyncIteration
            try:
                chunk = await self._chunks.__anext__()
            except StopAsyncIteration:
                self._eof = True
                self._pending.extend(self._decoder.close())
                continue
            except httpx.HTTPError as exc:
                raise _map_exception(self.call, exc, self.request_id) from None
            self._bytes += len(chunk)
            if self._bytes > self.call.max_bytes * _STREAM_FACTOR:
                raise _too_large(self.call, self.request_id, self._bytes, stream=True)
            self._pending.extend(self._decoder.feed(chunk))
        return self._pending.popleft()

    async def json(self) -> Any:
        try:
            raw = await _read_capped(self.call, self._resp, self.request_id)
        except httpx.HTTPError as exc:
            raise _map_exception(self.call, exc, self.request_id) from None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):
            raise StreamError(
                self.call.scrub(
                    f"response is neither SSE nor JSON: {_trim(raw.decode('utf-8', 'replace'))!r}"
                ),
                **_who(self.call, self.request_id),
            ) from None

    def truncated(self, what: str) -> StreamError:
        """The stream ended before its terminal event; worth a retry (nothing was wrong
        with the request)."""
        return StreamError(
            f"stream ended before {what} (connection cut off?)",
            retryable=True,
            **_who(self.call, self.request_id),
        )

    def malformed(self, event: SSEEvent) -> StreamError:
        return StreamError(
            self.call.scrub(f"malformed stream event {event.event!r}: {_trim(event.data)!r}"),
            **_who(self.call, self.request_id),
        )


@asynccontextmanager
async def open_stream(
    call: Call, body: Mapping[str, Any], timeout_s: float | None
) -> AsyncIterator[EventStream]:
    """POST and yield the response's events. Leaving the block (including by cancellation
    of the awaiting task) closes the HTTP stream at once."""
    client = await _client()
    try:
        async with client.stream(
            "POST",
            call.url,
            content=_encode(body),
            headers=call.headers,
            timeout=_timeout(timeout_s),
        ) as resp:
            if resp.status_code >= 400:
                raw = await _read_capped(call, resp, _request_id(resp.headers), error_body=True)
                raise status_error(call, resp.status_code, resp.headers, raw)
            yield EventStream(call, resp)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        raise _map_exception(call, exc) from None


# --------------------------------------------------------------------------- providers


def check_max_output_tokens(value: Any) -> None:
    """A ConfigError at construction unless ``value`` is a positive integer."""
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"max_output_tokens must be a positive integer, got {value!r}")


class Accumulator(Protocol):
    """Rebuilds one streamed reply from its events, handing deltas on as they arrive."""

    def feed(self, event: SSEEvent) -> None: ...

    def result(self) -> Completion: ...

    # Optional: ``partial_usage() -> Usage``, the usage the vendor reported so far (kept,
    # via report_lost_usage, when the reply never completes).


class HTTPProvider(Provider):
    """What every HTTP provider does the same way: ``complete`` posts the body and parses
    the JSON reply; ``stream`` feeds the SSE events to an accumulator, or parses the reply
    as a whole when the server answered with plain JSON.

    Subclasses pass their endpoint, key and extra headers to ``__init__`` and supply the
    translation: ``build_body``, ``_parse`` and ``_accumulator``.
    """

    supports_streaming = True
    auth_scheme: ClassVar[str] = "bearer"
    """How the key is sent: ``"x-api-key"`` or ``"bearer"`` (see ``auth_headers``)."""
    base_headers: ClassVar[Mapping[str, str]] = {"content-type": "application/json"}
    """Sent first; the caller's headers may override them, the auth header comes last."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """Largest reply read; set it on an instance to change it (ResponseTooLargeError past it)."""

    def __init__(
        self, model: str, base_url: str, path: str, key: ApiKey, headers: Mapping[str, str]
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1") and path.startswith("/v1/"):
            path = path[3:]  # base URLs (OPENAI_BASE_URL above all) often end in /v1 already
        self._url = self.base_url + (path if path.startswith("/") else "/" + path)
        self._key = key
        self._headers = dict(headers)

    def missing_key(self) -> tuple[str, ...]:
        """The environment variables one of which must be set before a request can be
        sent; empty when a key is at hand (given, or in the environment) or none is needed.
        Lets a front end fail at configuration time instead of at the first request."""
        try:
            self._key.get(self.name, self.model)
        except ProviderConfigError:
            return self._key.env or ("api_key",)
        return ()

    def _call(self) -> Call:
        key = self._key.get(self.name, self.model)
        headers = {**self.base_headers, **self._headers, **auth_headers(self.auth_scheme, key)}
        return Call(self.name, self.model, self._url, headers, key, self.max_response_bytes)

    @abstractmethod
    def build_body(self, request: ProviderRequest, *, stream: bool) -> dict[str, Any]:
        """The request body for ``request`` (shared by complete and stream)."""

    @abstractmethod
    def _parse(self, call: Call, data: Any, request_id: str | None) -> Completion:
        """A whole (non-streamed) JSON reply as a Completion."""

    @abstractmethod
    def _accumulator(self, events: EventStream, on_delta: OnDelta) -> Accumulator:
        """A fresh accumulator for one streamed reply."""

    async def complete(self, request: ProviderRequest) -> Completion:
        call = self._call()
        data, rid = await post_json(call, self.build_body(request, stream=False), request.timeout_s)
        with _hostile(call, rid):
            return self._parse(call, data, rid)

    async def stream(self, request: ProviderRequest, on_delta: OnDelta) -> Completion:
        call = self._call()
        body = self.build_body(request, stream=True)
        async with open_stream(call, body, request.timeout_s) as events:
            if not events.is_sse:
                data = await events.json()
                with _hostile(call, events.request_id):
                    return self._parse(call, data, events.request_id)
            return await self._consume(events, on_delta)

    async def _consume(self, events: EventStream, on_delta: OnDelta) -> Completion:
        """Feed one stream's events to a fresh accumulator and return its Completion."""

        def checked(kind: Any, text: Any) -> None:  # a non-text delta is a malformed event
            if not isinstance(text, str):
                raise TypeError(f"{kind} delta is a {type(text).__name__}, not text")
            try:
                on_delta(kind, text)
            except Exception as exc:  # the callback's own error: not a malformed event
                raise _CallbackFailed(exc) from None

        acc = self._accumulator(events, checked)
        try:
            try:
                with _hostile(events.call, events.request_id):
                    async for event in events:
                        acc.feed(event)
                    return acc.result()
            except _CallbackFailed as failed:
                raise failed.error  # noqa: B904 - the callback's exception, as it was raised
        except BaseException:  # cancelled or failed: the tokens reported were billed
            report_lost_usage(_partial_usage(acc))
            raise


class _CallbackFailed(Exception):
    """Carries an ``on_delta`` exception past ``_hostile`` untouched."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


@contextmanager
def _hostile(call: Call, request_id: str | None) -> Iterator[None]:
    """A reply whose JSON has the right syntax but the wrong shapes (a list where an object
    belongs, ``"abc"`` for a token count) is a StreamError, whatever the parser tripped on."""
    try:
        yield
    except ProviderError:
        raise
    except (AttributeError, TypeError, ValueError, KeyError, IndexError, OverflowError,
            RecursionError) as exc:
        raise StreamError(
            call.scrub(f"malformed reply from {call.provider}: {type(exc).__name__}: "
                       f"{_trim(str(exc), 200)}"),
            **_who(call, request_id),
        ) from exc


def _partial_usage(acc: Accumulator) -> Usage:
    partial = getattr(acc, "partial_usage", None)
    try:
        usage = partial() if callable(partial) else None
    except Exception:  # garbage usage in a broken stream: nothing to keep
        return Usage()
    return usage if isinstance(usage, Usage) else Usage()


# --------------------------------------------------------------------------- errors


def _who(call: Call, request_id: str | None) -> dict[str, Any]:
    return {"provider": call.provider, "model": call.model, "request_id": request_id}


def _request_id(headers: Mapping[str, str]) -> str | None:
    return headers.get("request-id") or headers.get("x-request-id")


def _trim(text: str, limit: int = _MAX_MESSAGE) -> str:
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
        msg = f"{msg} ({_trim(raw, 200)})"
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
    body = _trim(msg) if msg else _trim(text) or "(empty body)"
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
    rid = _request_id(headers)
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
        body=call.scrub(_trim(text, 2000)),
        retry_after=retry_after(headers),
        **_who(call, rid),
    )
    # The server's own verdict overrides the status rule (Anthropic and OpenAI send it),
    # except that a key the server refused is never worth another try.
    should = (headers.get("x-should-retry") or "").strip().lower()
    if should in ("true", "false") and cls is not AuthenticationError:
        err.retryable = should == "true"
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
            body=call.scrub(_trim(json.dumps(payload), 2000)), **_who(call, request_id),
        )
    err, _ = _error_object(payload)
    status = err.get("status_code") or err.get("code")
    transient = bool(labels & _TRANSIENT) or (
        isinstance(status, int)
        and not isinstance(status, bool)
        and (status >= 500 or status == 429)
    )
    return StreamError(
        call.scrub(f"error {where}: {detail}"), retryable=transient, **_who(call, request_id)
    )


def unexpected_reply(call: Call, api: str, data: Any, request_id: str | None) -> StreamError:
    """A 200 reply whose body is not the ``api``'s reply object (nor an error object)."""
    return StreamError(
        call.scrub(f"unexpected {api} reply: {str(data)[:300]!r}"), **_who(call, request_id)
    )


def tool_arguments(
    call: Call, name: Any, raw: Any, request_id: str | None, *, lenient: bool
) -> dict[str, Any]:
    """A tool call's arguments (the object itself or its JSON text) as a dict. Anything else
    is a retryable StreamError, or ``{}`` when ``lenient`` (the reply was cut off mid-arguments,
    so the call never runs). What an empty value means is each protocol's business."""
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
    raise StreamError(
        f"model sent invalid JSON arguments for tool {name!r}",
        retryable=True,
        **_who(call, request_id),
    )


def _map_exception(call: Call, exc: Exception, request_id: str | None = None) -> ProviderError:
    """httpx failures: transport trouble is a (retryable) ProviderConnectionError."""
    what = call.scrub(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
    if isinstance(exc, (httpx.TimeoutException, httpx.NetworkError, httpx.RemoteProtocolError)):
        return ProviderConnectionError(
            f"connection to {_origin(call.url)} failed: {what}", **_who(call, request_id)
        )
    if isinstance(exc, httpx.DecodingError):
        return StreamError(f"could not decode the response: {what}", **_who(call, request_id))
    if isinstance(exc, (httpx.UnsupportedProtocol, httpx.InvalidURL)):
        return ProviderConfigError(
            f"bad base_url for {call.provider}: {call.url!r} ({what})", **_who(call, request_id)
        )
    return ProviderConnectionError(f"HTTP request failed: {what}", **_who(call, request_id))


def _origin(url: str) -> str:
    m = re.match(r"^[a-z]+://[^/?#]+", url)
    return m.group(0) if m else url
