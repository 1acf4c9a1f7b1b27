"""Gemini generateContent: the response JSON and the `:streamGenerateContent?alt=sse` chunk
stream for a scripted reply, and Google's error bodies.

Shapes follow the recordings in `shared/fixtures/gemini/`: every chunk is a whole
GenerateContentResponse whose parts are deltas, usage is cumulative (early chunks lack
`candidatesTokenCount`), `data:` frames end in `\\r\\n\\r\\n` with no `event:` lines and no
`[DONE]`, and the last chunk carries `finishReason`. Function calls end with `STOP` and carry
no id unless the script gives one; a thought signature rides the first call, or a trailing
empty text chunk after the answer (as gemini-3 sends them). An error after HTTP 200 is not
recorded for Gemini: `render_error_event` sends a chunk holding the usual `{"error": …}` body.
"""

from __future__ import annotations

import base64
import hashlib
from typing import Any

from alloy_nb.testing.wire import (
    Context,
    ErrorEvent,
    Rendered,
    Reply,
    Status,
    Usage,
    compact,
    json_body,
    pieces,
    stop_of,
    text_of,
    token,
)

_FINISH = {
    "end_turn": "STOP",
    "tool_use": "STOP",  # Gemini has no tool-use finish reason
    "stop_sequence": "STOP",
    "pause_turn": "STOP",
    "max_tokens": "MAX_TOKENS",
    "refusal": "SAFETY",
}
_RPC = {
    400: ("INVALID_ARGUMENT", "Request contains an invalid argument."),
    401: ("UNAUTHENTICATED", "Request had invalid authentication credentials."),
    403: ("PERMISSION_DENIED", "Method doesn't allow unregistered callers."),
    404: ("NOT_FOUND", "models/unknown is not found for API version v1beta."),
    429: ("RESOURCE_EXHAUSTED", "You exceeded your current quota, please check your plan."),
    500: ("INTERNAL", "An internal error has occurred. Please retry or report."),
    503: ("UNAVAILABLE", "The model is overloaded. Please try again later."),
    504: ("DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
}
_TYPE = "type.googleapis.com/google.rpc."


def model_of(ctx: Context, r: Reply | None = None) -> str:
    """The reply's model, else the one named in the path (`/v1beta/models/{model}:...`)."""
    if r is not None and r.model:
        return r.model
    tail = ctx.path.rsplit("/models/", 1)[-1]
    return tail.split(":", 1)[0] or "fake-model"


def _signature(seed: str) -> str:
    """A stable opaque thought signature, so a replay can be compared byte for byte."""
    return base64.b64encode(hashlib.sha256(b"sig:" + seed.encode()).digest()).decode()


def _g_usage(u: Usage, *, candidates: int | None) -> dict[str, Any]:
    prompt = u.input_tokens + u.cache_read_tokens
    thoughts = u.reasoning_tokens
    out: dict[str, Any] = {"promptTokenCount": prompt}
    if candidates is not None:
        out["candidatesTokenCount"] = candidates
    out["totalTokenCount"] = prompt + (candidates or 0) + thoughts
    if u.cache_read_tokens:
        out["cachedContentTokenCount"] = u.cache_read_tokens
    out["promptTokensDetails"] = [{"modality": "TEXT", "tokenCount": prompt}]
    if thoughts:
        out["thoughtsTokenCount"] = thoughts
    return out


def _call_parts(r: Reply) -> list[dict[str, Any]]:
    parts = []
    for i, c in enumerate(r.tool_calls):
        fc: dict[str, Any] = {"name": c.name, "args": c.arguments}
        if c.id:
            fc["id"] = c.id
        part: dict[str, Any] = {"functionCall": fc}
        if i == 0:  # only the first of parallel calls is signed
            part["thoughtSignature"] = _signature(c.name + compact(c.arguments))
        parts.append(part)
    return parts


def _response(
    ctx: Context, r: Reply | None, rid: str, parts: list[dict[str, Any]] | None, **extra: Any
) -> dict[str, Any]:
    cand: dict[str, Any] = {}
    if parts is not None:
        cand["content"] = {"parts": parts, "role": "model"}
    cand.update(extra.pop("candidate", {}))
    cand["index"] = 0
    return {
        "candidates": [cand],
        **extra,
        "modelVersion": model_of(ctx, r),
        "responseId": rid,
    }


def _frame(obj: Any) -> bytes:
    return b"data: " + compact(obj).encode() + b"\r\n\r\n"


def _ok(ctx: Context, chunks: list[bytes]) -> Rendered:
    ctype = "text/event-stream" if ctx.stream else "application/json; charset=UTF-8"
    headers = {"content-type": ctype, "server": "scaffolding on HTTPServer2", "vary": "Origin"}
    return Rendered(200, headers, chunks, ctx.stream)


def render_reply(r: Reply, ctx: Context) -> Rendered:
    """A GenerateContentResponse, or its SSE chunk stream."""
    u, finish, text = r.usage or ctx.default_usage, _FINISH.get(stop_of(r), "STOP"), text_of(r)
    rid = token(22)
    thought = r.thinking.text if r.thinking is not None and not r.thinking.redacted else None
    signed_text = text and thought is not None and not r.tool_calls
    out_tokens = max(0, u.output_tokens - u.reasoning_tokens)
    done = {
        "candidate": {"finishReason": finish},
        "usageMetadata": _g_usage(u, candidates=out_tokens or None),
    }
    if finish == "SAFETY":  # a withheld answer: no content parts at all
        cand = {"content": {"role": "model"}, "finishReason": "SAFETY", "index": 0}
        body = {**_response(ctx, r, rid, None), "candidates": [cand]}
        body["usageMetadata"] = _g_usage(u, candidates=None)
        return _ok(ctx, [_frame(body) if ctx.stream else json_body(body, pretty=True)])
    if not ctx.stream:
        parts: list[dict[str, Any]] = []
        if thought is not None:
            parts.append({"text": thought, "thought": True})
        if text:
            part: dict[str, Any] = {"text": text}
            if signed_text:
                part["thoughtSignature"] = _signature(text)
            parts.append(part)
        parts += _call_parts(r)
        body = _response(ctx, r, rid, parts, **done)
        return _ok(ctx, [json_body(body, pretty=True)])
    chunks: list[bytes] = []
    early = {"usageMetadata": _g_usage(u, candidates=None)}
    for p in pieces(thought or ""):
        chunks.append(_frame(_response(ctx, r, rid, [{"text": p, "thought": True}], **early)))
    for sent, p in enumerate(pieces(text or ""), 1):
        running = {"usageMetadata": _g_usage(u, candidates=min(sent, out_tokens) or None)}
        chunks.append(_frame(_response(ctx, r, rid, [{"text": p}], **running)))
    for part in _call_parts(r):
        chunks.append(_frame(_response(ctx, r, rid, [part], **early)))
    last: dict[str, Any] = {"text": ""}
    if signed_text:
        last["thoughtSignature"] = _signature(text or "")
    chunks.append(_frame(_response(ctx, r, rid, [last], **done)))
    return _ok(ctx, chunks)


def render_error_event(e: ErrorEvent, ctx: Context) -> Rendered:
    """Streamed text, then a chunk with Google's error object (and no finishReason)."""
    rid = token(22)
    chunks = [_frame(_response(ctx, None, rid, [{"text": p}])) for p in pieces(e.text)]
    err = {"code": 500, "message": e.message or _RPC[500][1], "status": "INTERNAL"}
    if e.error_type:
        err["status"] = e.error_type
    chunks.append(_frame({"error": err}))
    return _ok(ctx, chunks)


def error_body(
    code: int,
    *,
    message: str | None = None,
    reason: str | None = None,
    retry_delay: float | None = None,
) -> bytes:
    """`{"error": {code, message, status, details}}`; `reason` adds an ErrorInfo (e.g.
    `API_KEY_INVALID`, which Google sends with a 400), `retry_delay` a RetryInfo."""
    status, default = _RPC.get(code) or _RPC[500 if code >= 500 else 400]
    error: dict[str, Any] = {"code": code, "message": message or default, "status": status}
    details: list[dict[str, Any]] = []
    if reason:
        details.append({"@type": _TYPE + "ErrorInfo", "reason": reason, "domain": "googleapis.com"})
    if retry_delay is not None:
        if code == 429:
            quota = {"quotaId": "GenerateRequestsPerMinutePerProjectPerModel-FreeTier"}
            details.append({"@type": _TYPE + "QuotaFailure", "violations": [quota]})
        details.append({"@type": _TYPE + "RetryInfo", "retryDelay": f"{retry_delay:g}s"})
    if details:
        error["details"] = details
    return json_body({"error": error}, pretty=True)


def render_status(s: Status, ctx: Context) -> Rendered:
    """An HTTP error as Google sends it: the wait in the body's RetryInfo, not a header."""
    ra = s.retry_after
    delay = float(ra) if isinstance(ra, int | float) else None
    body = error_body(s.code, message=s.message, reason=s.error_type, retry_delay=delay)
    headers = {"content-type": "application/json; charset=UTF-8"}
    if isinstance(ra, str):  # an explicit header value (an HTTP date) is sent as given
        headers["retry-after"] = ra
    headers.update({k.lower(): v for k, v in s.headers.items()})
    return Rendered(s.code, headers, [body], False)
