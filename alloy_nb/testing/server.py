"""FakeProviderServer: a real loopback HTTP server that answers from a script of replies.

It owns sockets, chunked streaming, timing and faults; bodies and SSE events come from
`_anthropic.py`, `_responses.py`, `_chat.py` and `_gemini.py`, error bodies from `wire.py`.
Pure stdlib, in a background thread, so it never touches the caller's (or Jupyter's) loop.
"""

from __future__ import annotations

import contextlib
import json
import random
import socket
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import cycle
from types import TracebackType
from typing import Any
from urllib.parse import urlsplit

from alloy_nb.testing import _anthropic, _batch, _chat, _gemini, _responses
from alloy_nb.testing.wire import (
    Context,
    CutOff,
    Delay,
    Entry,
    ErrorEvent,
    Malformed,
    Protocol,
    Raw,
    Rendered,
    Reply,
    Status,
    Usage,
    content_type,
    error_body,
    request_id_headers,
)

__all__ = ["FakeProviderServer", "RecordedRequest", "protocol_for"]

_REPLIES: dict[Protocol, Callable[[Reply, Context], Rendered]] = {
    "anthropic": _anthropic.render_reply,
    "openai-responses": _responses.render_reply,
    "openai-chat": _chat.render_reply,
    "gemini": _gemini.render_reply,
}
_ERROR_EVENTS: dict[Protocol, Callable[[ErrorEvent, Context], Rendered]] = {
    "anthropic": _anthropic.render_error_event,
    "openai-responses": _responses.render_error_event,
    "openai-chat": _chat.render_error_event,
    "gemini": _gemini.render_error_event,
}
_FRAMING = {"transfer-encoding", "content-length", "connection", "keep-alive"}
_NO_RETRY = {"x-should-retry": "false"}  # the server's own failures must not be retried
_A_STATUS_OF = {"overloaded_error": 529, "api_error": 500, "rate_limit_error": 429}


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the server saw it; `json` is None when the body is not JSON."""

    method: str
    path: str
    query: str
    headers: dict[str, str]
    body: bytes
    json: Any = field(default=None, repr=False)


def protocol_for(path: str) -> Protocol | None:
    """Pick the protocol from the URL path, as a base_url plus endpoint would produce it."""
    p = path.rstrip("/")
    if p.endswith("/chat/completions"):
        return "openai-chat"
    if p.endswith("/responses"):
        return "openai-responses"
    if p.endswith("/messages"):
        return "anthropic"
    if p.endswith((":generateContent", ":streamGenerateContent")):
        return "gemini"
    return None


def _status(s: Status, ctx: Context) -> Rendered:
    if ctx.protocol == "gemini":
        return _gemini.render_status(s, ctx)
    headers = {**content_type(False), **request_id_headers(ctx.protocol)}
    if s.retry_after is not None:
        ra = s.retry_after
        whole = isinstance(ra, float) and ra.is_integer()
        headers["retry-after"] = str(int(ra)) if whole else str(ra)
    if s.retry_after_ms is not None:
        headers["retry-after-ms"] = str(s.retry_after_ms)
    if s.code == 401 and ctx.protocol != "anthropic":
        headers["www-authenticate"] = 'Bearer realm="OpenAI API"'
    headers.update({k.lower(): v for k, v in s.headers.items()})
    body = error_body(
        ctx.protocol,
        s.code,
        message=s.message,
        error_type=s.error_type,
        error_code=s.error_code,
        request_id=headers.get("request-id"),
    )
    return Rendered(s.code, headers, [body], False)


def _render(entry: Entry, ctx: Context) -> Rendered:
    """Apply fault wrappers around the protocol renderers."""
    if isinstance(entry, Delay):
        r = _render(entry.of, ctx)
        between = entry.between_events or r.between
        return replace(r, delay=r.delay + entry.seconds, between=between)
    if isinstance(entry, CutOff):
        r = _render(entry.of, ctx)
        if r.stream:
            return replace(r, chunks=r.chunks[: entry.after_events], cut=True)
        body = b"".join(r.chunks)
        return replace(r, chunks=[body[: len(body) // 2]], declared_length=len(body), cut=True)
    if isinstance(entry, Malformed):
        r = _render(entry.of, ctx)
        if not r.stream:  # a JSON body that stops halfway, with a matching Content-Length
            body = b"".join(r.chunks)
            return replace(r, chunks=[body[: len(body) // 2]], declared_length=None)
        at = min(max(entry.at, 0), len(r.chunks))
        return replace(r, chunks=[*r.chunks[:at], _bad_frame(r.chunks, at), *r.chunks[at:]])
    if isinstance(entry, Raw):
        headers = {k.lower(): v for k, v in entry.headers.items() if k.lower() not in _FRAMING}
        if entry.chunk_sizes is None:
            return Rendered(entry.status, headers, [entry.body], False)
        return Rendered(entry.status, headers, _split(entry), True)
    if isinstance(entry, Status):
        return _status(entry, ctx)
    if isinstance(entry, ErrorEvent):
        if ctx.stream or ctx.protocol == "openai-responses":
            return _ERROR_EVENTS[ctx.protocol](entry, ctx)
        # Without a stream the failure can only be an HTTP error.
        et = entry.error_type or ("overloaded_error" if ctx.protocol == "anthropic" else None)
        code = _A_STATUS_OF.get(et or "", 500)
        return _status(Status(code, message=entry.message, error_type=et), ctx)
    return _REPLIES[ctx.protocol](entry, ctx)


def _leaf(entry: Entry) -> Entry:
    """The entry inside any fault wrappers."""
    while isinstance(entry, (CutOff, Malformed, Delay)):
        entry = entry.of
    return entry


def _bad_frame(chunks: list[bytes], at: int) -> bytes:
    """An unparseable data line, under the same `event:` name as its neighbour."""
    near = chunks[at] if at < len(chunks) else (chunks[-1] if chunks else b"")
    event = near.split(b"\n", 1)[0] + b"\n" if near.startswith(b"event:") else b""
    return event + b'data: {"type": "malformed", "oops\n\n'


def _split(raw: Raw) -> list[bytes]:
    """Cut a body at arbitrary byte boundaries (mid-UTF-8 and mid-line included)."""
    body, sizes = raw.body, raw.chunk_sizes
    if sizes == "random":
        rng = random.Random(raw.seed)
        lengths: Iterable[int] = iter(lambda: rng.randint(1, 64), 0)
    elif isinstance(sizes, int):
        lengths = cycle([sizes])
    else:
        lengths = cycle(list(sizes or [len(body)]))
    out, i = [], 0
    for n in lengths:
        if i >= len(body):
            break
        if n <= 0:
            raise ValueError(f"chunk sizes must be positive, got {n}")
        out.append(body[i : i + n])
        i += n
    return out


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # chunked streams, so a cut-off is visible to the client
    disable_nagle_algorithm = True  # each event leaves at once, not 40 ms later
    server: _HTTPServer

    def log_message(self, format: str, *args: Any) -> None:
        """Stay quiet: notebook cells and pytest output are not the place for access logs."""

    def do_POST(self) -> None:
        body = self._read_body()
        headers = {k.lower(): v for k, v in self.headers.items()}
        plan = self.server.fake._answer(self.command, self.path, headers, body)
        try:
            self._write(plan)
        except (BrokenPipeError, ConnectionResetError, ConnectionAbortedError):
            self.close_connection = True  # the client hung up: nothing left to do

    do_GET = do_PUT = do_PATCH = do_DELETE = do_POST

    def _read_body(self) -> bytes:
        if self.headers.get("transfer-encoding", "").lower() != "chunked":
            return self.rfile.read(int(self.headers.get("content-length") or 0))
        data = b""
        while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
            data += self.rfile.read(size)
            self.rfile.readline()
        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
            pass  # trailers
        return data

    def _write(self, plan: Rendered) -> None:
        delay = plan.delay + self.server.fake.latency
        if delay > 0:
            time.sleep(delay)
        self.send_response_only(plan.status)
        for name, value in plan.headers.items():
            self.send_header(name, value)
        if plan.stream:
            self.send_header("Transfer-Encoding", "chunked")
        else:
            length = plan.declared_length
            self.send_header("Content-Length", str(length or sum(map(len, plan.chunks))))
        self.end_headers()
        for i, chunk in enumerate(c for c in plan.chunks if c):
            if i and plan.between > 0:
                time.sleep(plan.between)
            self.wfile.write(b"%X\r\n%s\r\n" % (len(chunk), chunk) if plan.stream else chunk)
            self.wfile.flush()
        if plan.cut:
            self.close_connection = True  # no terminating chunk: the body is incomplete
        elif plan.stream:
            self.wfile.write(b"0\r\n\r\n")


class _HTTPServer(ThreadingHTTPServer):
    """Tracks open connections so stop() can end idle keep-alive ones at once."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 256  # listen backlog: many clients connect at once (alloy.map)

    def __init__(self, address: tuple[str, int], fake: FakeProviderServer) -> None:
        super().__init__(address, _Handler)
        self.fake = fake
        self._open: set[socket.socket] = set()
        self._open_lock = threading.Lock()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._open_lock:
            self._open.add(request)
        super().process_request(request, client_address)

    def shutdown_request(self, request: Any) -> None:
        with self._open_lock:
            self._open.discard(request)
        super().shutdown_request(request)

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Keep tracebacks out of notebook cells: a vanished client is normal, the rest is kept."""
        exc = sys.exc_info()[1]
        if isinstance(exc, Exception) and not isinstance(exc, OSError):
            self.fake.errors.append(exc)

    def close_connections(self) -> None:
        with self._open_lock:
            sockets = list(self._open)
        for sock in sockets:
            with contextlib.suppress(OSError):  # already gone
                sock.shutdown(socket.SHUT_RDWR)


class FakeProviderServer:
    """A scripted Anthropic / OpenAI Responses / Chat Completions / Gemini server on 127.0.0.1.

    Each request pops the next script entry (`reply.*`); the path picks the protocol and
    `"stream": true` (Gemini: `:streamGenerateContent`) picks SSE. With an empty script it
    answers 500 "script exhausted".
    The vendors' batch endpoints are served from `srv.batches` (scripted with its `plan`).
    """

    def __init__(
        self,
        script: Iterable[Entry] = (),
        *,
        usage: tuple[int, int] | Usage = (10, 5),
        chat_reasoning_field: str | None = "reasoning_content",
        host: str = "127.0.0.1",
        port: int = 0,
        latency: float = 0.0,
    ) -> None:
        self.latency = latency  # seconds added before every response (benchmarks)
        self.requests: list[RecordedRequest] = []
        self.errors: list[Exception] = []
        self._script: deque[Entry] = deque(script)
        self._usage = usage if isinstance(usage, Usage) else Usage(*usage)
        self._reasoning_field = chat_reasoning_field
        self.batches = _batch.FakeBatches(self._usage, chat_reasoning_field)
        """The vendors' batch endpoints (Message Batches, OpenAI Files + Batch); see _batch."""
        self._address = (host, port)
        self._lock = threading.Lock()
        self._httpd: _HTTPServer | None = None
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Base URL such as http://127.0.0.1:54321 (append /v1 for OpenAI clients)."""
        if self._httpd is None:
            raise RuntimeError("FakeProviderServer is not running; call start() or use `with`")
        host, port = self._httpd.server_address[:2]
        return f"http://{host!s}:{port}"

    @property
    def remaining(self) -> int:
        """Script entries not yet served."""
        with self._lock:
            return len(self._script)

    def add(self, *replies: Entry) -> FakeProviderServer:
        """Append entries to the script; returns the server for chaining."""
        with self._lock:
            self._script.extend(replies)
        return self

    def start(self) -> FakeProviderServer:
        """Bind an ephemeral port and serve from a daemon thread."""
        if self._httpd is not None:
            raise RuntimeError("FakeProviderServer is already running")
        self._httpd = _HTTPServer(self._address, self)
        self._thread = threading.Thread(
            target=self._httpd.serve_forever,
            kwargs={"poll_interval": 0.02},  # how long stop() may wait
            name=f"FakeProviderServer:{self._httpd.server_address[1]}",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close every open connection; safe to call twice."""
        httpd, self._httpd = self._httpd, None
        if httpd is None:
            return
        httpd.shutdown()
        httpd.close_connections()
        httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self) -> FakeProviderServer:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def __repr__(self) -> str:
        where = self.url if self._httpd is not None else "stopped"
        return f"<FakeProviderServer {where} requests={len(self.requests)} left={self.remaining}>"

    def _answer(self, method: str, target: str, headers: dict[str, str], body: bytes) -> Rendered:
        """Record the request, pop the next entry and render it (never raises)."""
        url = urlsplit(target)
        try:
            parsed = json.loads(body) if body else None
        except ValueError:
            parsed = None
        if _batch.FakeBatches.handles(url.path):
            with self._lock:
                self.requests.append(
                    RecordedRequest(method, url.path, url.query, headers, body, parsed)
                )
            try:
                return self.batches.answer(method, url.path, headers, body, parsed)
            except Exception as exc:  # a bug in the fake must not kill the handler thread
                self.errors.append(exc)
                return self._failure(Context("openai-chat", {}), 500, f"batch endpoint: {exc}")
        protocol = protocol_for(url.path)
        with self._lock:
            self.requests.append(
                RecordedRequest(method, url.path, url.query, headers, body, parsed)
            )
            number = len(self.requests)
            usable = self._script and (protocol or isinstance(_leaf(self._script[0]), Raw))
            entry = self._script.popleft() if usable else None
        ctx = Context(
            protocol or "openai-chat",
            parsed if isinstance(parsed, dict) else {},
            self._usage,
            self._reasoning_field,
            url.path,
        )
        if entry is None:
            why = (
                f"script exhausted: request #{number} ({method} {url.path}) has no scripted "
                "reply; add more with srv.add(...)"
                if protocol
                else f"no protocol at {method} {url.path}; use /v1/messages, /v1/responses, "
                ".../chat/completions or .../models/M:generateContent"
            )
            return self._failure(ctx, 500 if protocol else 404, why)
        try:
            return _render(entry, ctx)
        except Exception as exc:  # a bad script entry must not kill the handler thread
            self.errors.append(exc)
            return self._failure(ctx, 500, f"could not render {entry!r}: {exc}")

    @staticmethod
    def _failure(ctx: Context, code: int, why: str) -> Rendered:
        message = f"FakeProviderServer {why}"
        body = error_body(ctx.protocol, code, message=message, error_type="fake_server_error")
        headers = {**content_type(False), **_NO_RETRY}
        return Rendered(code, headers, [body], False)
