"""Script entries for the fake server (`reply.*`) and the wire primitives they render to.

Entries are protocol-neutral; `_anthropic.py`, `_responses.py` and `_chat.py` turn them into
each vendor's exact bodies and SSE events; `server.py` owns sockets, timing and faults.
"""

from __future__ import annotations

import base64
import hashlib
import json
import random
import string
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any, Literal, TypeAlias

Protocol = Literal["anthropic", "openai-responses", "openai-chat", "gemini"]
PIECE = 4  # characters per streamed text delta: several deltas even for short answers
SERVER_ERROR = "The server had an error while processing your request. Sorry about that!"


@dataclass(frozen=True)
class Usage:
    """Token counts; `input_tokens` is the uncached prompt (each vendor's totals are derived)."""

    input_tokens: int = 10
    output_tokens: int = 5
    cache_read_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0


@dataclass(frozen=True)
class ToolCall:
    """One tool call; `arguments` as a str is sent verbatim (handy for invalid JSON)."""

    name: str
    arguments: Mapping[str, Any] | str = field(default_factory=dict)
    id: str | None = None


@dataclass(frozen=True)
class Thinking:
    """Anthropic thinking block (or redacted_thinking); reasoning item/field elsewhere."""

    text: str
    signature: str | None = None
    redacted: bool = False


@dataclass(frozen=True)
class Reply:
    """A successful model answer, rendered per protocol; `stop` is Anthropic's vocabulary."""

    text: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    thinking: Thinking | None = None
    usage: Usage | None = None
    stop: str | None = None
    model: str | None = None


@dataclass(frozen=True)
class Status:
    """An HTTP error with the vendor's error JSON and optional retry headers."""

    code: int
    retry_after: float | str | None = None
    retry_after_ms: int | None = None
    message: str | None = None
    error_type: str | None = None
    error_code: str | None = None
    headers: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class ErrorEvent:
    """HTTP 200, then an in-stream failure (Anthropic `error`, `response.failed`, Groq-style)."""

    text: str = ""
    error_type: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class CutOff:
    """Send `after_events` events (half the body if not streaming), then drop the connection."""

    after_events: int
    of: Entry


@dataclass(frozen=True)
class Malformed:
    """Insert an unparseable `data:` line before event `at` (truncate a JSON body)."""

    of: Entry
    at: int = 1


@dataclass(frozen=True)
class Delay:
    """Wait `seconds` before the first byte and `between_events` between events."""

    seconds: float
    of: Entry
    between_events: float = 0.0


@dataclass(frozen=True)
class Raw:
    """Exactly these bytes; `chunk_sizes` splits them into separately flushed HTTP chunks."""

    status: int
    headers: Mapping[str, str]
    body: bytes
    chunk_sizes: Literal["random"] | int | Sequence[int] | None = None
    seed: int | None = None


Entry: TypeAlias = "Reply | Status | ErrorEvent | CutOff | Malformed | Delay | Raw"
UsageLike: TypeAlias = "tuple[int, int] | Usage | None"
CallLike: TypeAlias = "ToolCall | tuple[str, Any] | tuple[str, Any, str]"


def _usage(u: UsageLike) -> Usage | None:
    return Usage(*u) if isinstance(u, tuple) else u


def _call(c: CallLike) -> ToolCall:
    if isinstance(c, ToolCall):
        return c
    args = c[1] if c[1] is not None else {}
    return ToolCall(c[0], args, c[2] if len(c) > 2 else None)


class Replies:
    """Builders for script entries; use the `reply` instance: `reply.text("Hi")`."""

    @staticmethod
    def text(
        text: str,
        *,
        usage: UsageLike = None,
        thinking: str | None = None,
        stop: str | None = None,
        model: str | None = None,
    ) -> Reply:
        """A text answer (streamed in ~4-character deltas)."""
        th = Thinking(thinking) if thinking is not None else None
        return Reply(text=text, thinking=th, usage=_usage(usage), stop=stop, model=model)

    @staticmethod
    def tool_calls(
        *calls: CallLike,
        text: str | None = None,
        usage: UsageLike = None,
        thinking: str | None = None,
        stop: str | None = None,
        model: str | None = None,
    ) -> Reply:
        """One reply with one or more tool calls: `("name", {args})` or `("name", args, id)`."""
        if not calls:
            raise ValueError("reply.tool_calls() needs at least one (name, arguments) call")
        th = Thinking(thinking) if thinking is not None else None
        return Reply(
            text=text,
            tool_calls=tuple(_call(c) for c in calls),
            thinking=th,
            usage=_usage(usage),
            stop=stop,
            model=model,
        )

    @staticmethod
    def thinking(
        text: str,
        then: Reply | None = None,
        *,
        signature: str | None = None,
        redacted: bool = False,
    ) -> Reply:
        """Put a thinking block (with signature) in front of `then` (default: empty text)."""
        if then is not None and not isinstance(then, Reply):
            raise TypeError("reply.thinking(then=...) takes a reply.text/tool_calls Reply")
        return replace(then or Reply(), thinking=Thinking(text, signature, redacted))

    @staticmethod
    def status(
        code: int,
        *,
        retry_after: float | str | None = None,
        retry_after_ms: int | None = None,
        message: str | None = None,
        error_type: str | None = None,
        error_code: str | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> Status:
        """An HTTP error (429, 500, 529, 401, …) with the vendor's JSON error body."""
        return Status(
            code, retry_after, retry_after_ms, message, error_type, error_code, dict(headers or {})
        )

    @staticmethod
    def cut_off(after_events: int, of: Entry) -> CutOff:
        """Stream `after_events` events of `of`, then close the connection abruptly."""
        return CutOff(after_events, of)

    @staticmethod
    def malformed(of: Entry, at: int = 1) -> Malformed:
        """Inject an unparseable `data:` line before event number `at` of `of`."""
        return Malformed(of, at)

    @staticmethod
    def delay(seconds: float, of: Entry, *, between_events: float = 0.0) -> Delay:
        """Delay the first byte by `seconds` and each later event by `between_events`."""
        return Delay(seconds, of, between_events)

    @staticmethod
    def error_event(
        text: str = "", *, error_type: str | None = None, message: str | None = None
    ) -> ErrorEvent:
        """HTTP 200, optional text deltas, then the protocol's in-stream error."""
        return ErrorEvent(text, error_type, message)

    @staticmethod
    def raw(
        status: int,
        headers: Mapping[str, str] | None,
        body: bytes | str,
        *,
        chunk_sizes: Literal["random"] | int | Sequence[int] | None = None,
        seed: int | None = None,
    ) -> Raw:
        """Serve exactly `body` (e.g. a recorded fixture), optionally re-chunked."""
        data = body.encode() if isinstance(body, str) else bytes(body)
        return Raw(status, dict(headers or {}), data, chunk_sizes, seed)


reply = Replies()


@dataclass
class Rendered:
    """What goes on the wire: chunks are SSE frames when streaming, else one JSON body."""

    status: int
    headers: dict[str, str]
    chunks: list[bytes]
    stream: bool
    delay: float = 0.0
    between: float = 0.0
    cut: bool = False
    declared_length: int | None = None


@dataclass
class Context:
    """The request being answered plus server-wide defaults."""

    protocol: Protocol
    body: dict[str, Any]
    default_usage: Usage = field(default_factory=Usage)
    chat_reasoning_field: str | None = "reasoning_content"
    path: str = ""

    @property
    def stream(self) -> bool:
        """Only a literal `"stream": true` streams, as with the real APIs (Gemini: the
        `:streamGenerateContent` endpoint)."""
        if self.protocol == "gemini":
            return self.path.endswith(":streamGenerateContent")
        return self.body.get("stream") is True

    def model(self, r: Reply | None = None) -> str:
        """The reply's model, else the request's (the APIs echo it back)."""
        return (r.model if r and r.model else None) or str(self.body.get("model") or "fake-model")


_RNG = random.Random()
_ALNUM = string.ascii_letters + string.digits


def token(n: int, alphabet: str = _ALNUM) -> str:
    """A random id suffix; ids are unique per response, like the vendors'."""
    return "".join(_RNG.choices(alphabet, k=n))


def hex_token(n: int) -> str:
    """A random lower-case hex id suffix (OpenAI `resp_`/`msg_`/`fc_` ids)."""
    return token(n, "0123456789abcdef")


def compact(obj: Any) -> str:
    """JSON without spaces, as both vendors put it in SSE `data:` lines."""
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False)


def pieces(s: str, n: int = PIECE) -> list[str]:
    """Split text into streaming deltas (`[]` for empty text: no delta at all)."""
    return [s[i : i + n] for i in range(0, len(s), n)]


def args_json(c: ToolCall) -> str:
    """Tool arguments as the JSON string OpenAI sends (strings pass through untouched)."""
    return c.arguments if isinstance(c.arguments, str) else compact(dict(c.arguments))


def signature(t: Thinking) -> str:
    """A stable opaque thinking signature, so replays can be compared byte for byte."""
    if t.signature is not None:
        return t.signature
    return base64.b64encode(hashlib.sha512(t.text.encode()).digest()).decode()


def sse(event: str | None, data: Any) -> bytes:
    """One SSE frame; `event=None` gives a bare `data:` frame (Chat Completions)."""
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else compact(data)
    return f"{head}data: {payload}\n\n".encode()


def json_body(obj: Any, *, pretty: bool = False) -> bytes:
    """A JSON body as the vendor formats it (OpenAI pretty-prints, Anthropic does not)."""
    return (json.dumps(obj, indent=2, ensure_ascii=False) if pretty else compact(obj)).encode()


def request_id_headers(protocol: Protocol) -> dict[str, str]:
    """The per-response request id header each vendor sends."""
    if protocol == "anthropic":
        return {"request-id": "req_011C" + token(20)}
    return {"x-request-id": "req_" + hex_token(32), "openai-version": "2020-10-01"}


def content_type(stream: bool) -> dict[str, str]:
    """Content type for an SSE stream or a JSON body."""
    return {"content-type": "text/event-stream; charset=utf-8" if stream else "application/json"}


def now() -> int:
    """Unix seconds, as the vendors' `created`/`created_at` fields carry."""
    return int(time.time())


def ok(ctx: Context, chunks: list[bytes]) -> Rendered:
    """A 200 answer: SSE frames if the request asked to stream, else one JSON body."""
    headers = {**content_type(ctx.stream), **request_id_headers(ctx.protocol)}
    return Rendered(200, headers, chunks, ctx.stream)


def text_of(r: Reply) -> str | None:
    """The answer's text; with neither text nor tool calls it is an empty text answer."""
    return "" if r.text is None and not r.tool_calls else r.text


def stop_of(r: Reply) -> str:
    """The stop reason in Anthropic's vocabulary; each renderer maps it to its own."""
    return r.stop or ("tool_use" if r.tool_calls else "end_turn")


_A_ERRORS = {
    400: ("invalid_request_error", "Invalid request"),
    401: ("authentication_error", "invalid x-api-key"),
    402: ("billing_error", "Your credit balance is too low to access the Anthropic API."),
    403: ("permission_error", "Your API key does not have permission to use this resource."),
    404: ("not_found_error", "Not found"),
    413: ("request_too_large", "Request exceeds the maximum allowed number of bytes."),
    429: ("rate_limit_error", "This request would exceed the rate limit for your organization."),
    500: ("api_error", "Internal server error"),
    504: ("timeout_error", "Request timed out"),
    529: ("overloaded_error", "Overloaded"),
}
_O_ERRORS: dict[int, tuple[str, str | None, str]] = {
    400: ("invalid_request_error", None, "Invalid request."),
    401: ("invalid_request_error", "invalid_api_key", "Incorrect API key provided: sk-fake."),
    403: ("invalid_request_error", "unsupported_country_region_territory", "Not supported"),
    404: ("invalid_request_error", "model_not_found", "The model does not exist."),
    429: ("requests", "rate_limit_exceeded", "Rate limit reached for requests."),
    500: ("server_error", None, SERVER_ERROR),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


def error_body(
    protocol: Protocol,
    code: int,
    *,
    message: str | None = None,
    error_type: str | None = None,
    error_code: str | None = None,
    request_id: str | None = None,
) -> bytes:
    """The vendor's JSON error body for an HTTP status (Anthropic, OpenAI or Gemini shape)."""
    if protocol == "gemini":
        from alloy_nb.testing._gemini import error_body as gemini_error_body

        return gemini_error_body(code, message=message, reason=error_type)
    if protocol == "anthropic":
        default = ("api_error", "Internal server error") if code >= 500 else _A_ERRORS[400]
        t, m = _A_ERRORS.get(code, default)
        error = {"type": error_type or t, "message": message or m}
        rid = request_id or "req_011C" + token(20)
        return json_body({"type": "error", "error": error, "request_id": rid})
    ot, oc, om = _O_ERRORS.get(code) or _O_ERRORS[500 if code >= 500 else 400]
    fields = {"message": message or om, "type": error_type or ot}
    return json_body({"error": {**fields, "param": None, "code": error_code or oc}}, pretty=True)
