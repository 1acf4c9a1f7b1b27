"""The wire: one httpx client per event loop, API keys and auth headers, and the three ways
a provider talks to its vendor (``post_json``, ``open_stream``, ``send``) with the cap on how
much of a reply is read.

The only module that builds clients or puts a key into a header. What a failed response means
is ``_vendor_errors.py``'s business; SSE framing lives in ``_sse.py``.
"""

from __future__ import annotations

import asyncio
import functools
import json
import os
import ssl
import weakref
from collections import deque
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
from pydantic import SecretStr

from alloy_nb._version import __version__
from alloy_nb.errors import (
    ProviderConfigError,
    ResponseTooLargeError,
    StreamError,
    TransientStreamError,
)
from alloy_nb.providers._sse import SSEDecoder, SSEEvent
from alloy_nb.providers._vendor_errors import (
    map_exception,
    request_id_of,
    status_error,
    trim,
    who,
)

__all__ = [
    "DEFAULT_MAX_RESPONSE_BYTES",
    "DEFAULT_TIMEOUT_S",
    "ApiKey",
    "Call",
    "EventStream",
    "auth_headers",
    "open_stream",
    "post_json",
    "send",
]

DEFAULT_TIMEOUT_S = 600.0
#: Largest whole (JSON) reply read; past it the call ends with ResponseTooLargeError. A
#: stream may carry ``_STREAM_FACTOR`` times as much: SSE repeats its framing for every few
#: tokens (~250 bytes per chat chunk). Per provider: ``provider.max_response_bytes = n``.
DEFAULT_MAX_RESPONSE_BYTES = 16 * 1024 * 1024
_STREAM_FACTOR = 8
_MAX_ERROR_BODY = 1024 * 1024  # error bodies past this are cut, not refused
_CONNECT_TIMEOUT_S = 10.0
_USER_AGENT = f"alloy_nb/{__version__}"


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
            rid = request_id_of(resp.headers)
            if resp.status_code >= 400:
                raw = await _read_capped(call, resp, rid, error_body=True)
                raise status_error(call, resp.status_code, resp.headers, raw)
            content = await _read_capped(call, resp, rid)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # from None: httpx's exception carries the request, key header and all
        raise map_exception(call, exc) from None
    try:
        return json.loads(content), rid
    except (ValueError, RecursionError):  # from None: its doc is the raw, unscrubbed body
        text = content.decode("utf-8", "replace")
        raise StreamError(
            call.scrub(f"response is not JSON: {trim(text)!r}"), **who(call, rid)
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
        # from None: httpx's exception carries the request, key header and all
        raise map_exception(call, exc) from None
    if resp.status_code >= 400:
        raise status_error(call, resp.status_code, resp.headers, resp.content)
    return resp.content, request_id_of(resp.headers)


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
        **who(call, rid),
    )


class EventStream:
    """The SSE events of one streaming response, read as they arrive.

    ``is_sse`` is False when a server answered a streaming request with plain JSON; the
    provider then reads ``await json()`` and parses it as a non-streamed reply.
    """

    def __init__(self, call: Call, resp: httpx.Response) -> None:
        self.call = call
        self.request_id = request_id_of(resp.headers)
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
                # from None: httpx's exception carries the request, key header and all
                raise map_exception(self.call, exc, self.request_id) from None
            self._bytes += len(chunk)
            if self._bytes > self.call.max_bytes * _STREAM_FACTOR:
                raise _too_large(self.call, self.request_id, self._bytes, stream=True)
            self._pending.extend(self._decoder.feed(chunk))
        return self._pending.popleft()

    async def json(self) -> Any:
        try:
            raw = await _read_capped(self.call, self._resp, self.request_id)
        except httpx.HTTPError as exc:
            # from None: httpx's exception carries the request, key header and all
            raise map_exception(self.call, exc, self.request_id) from None
        try:
            return json.loads(raw)
        except (ValueError, RecursionError):  # from None: its doc is the raw, unscrubbed body
            raise StreamError(
                self.call.scrub(
                    f"response is neither SSE nor JSON: {trim(raw.decode('utf-8', 'replace'))!r}"
                ),
                **who(self.call, self.request_id),
            ) from None

    def truncated(self, what: str) -> StreamError:
        """The stream ended before its terminal event; worth a retry (nothing was wrong
        with the request)."""
        return TransientStreamError(
            f"stream ended before {what} (connection cut off?)", **who(self.call, self.request_id)
        )

    def malformed(self, event: SSEEvent) -> StreamError:
        return StreamError(
            self.call.scrub(f"malformed stream event {event.event!r}: {trim(event.data)!r}"),
            **who(self.call, self.request_id),
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
                raw = await _read_capped(call, resp, request_id_of(resp.headers), error_body=True)
                raise status_error(call, resp.status_code, resp.headers, raw)
            yield EventStream(call, resp)
    except (httpx.HTTPError, httpx.InvalidURL) as exc:
        # from None: httpx's exception carries the request, key header and all
        raise map_exception(call, exc) from None

