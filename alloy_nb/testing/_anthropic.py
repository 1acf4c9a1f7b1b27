"""Anthropic Messages: the message JSON and the SSE event sequence for a scripted reply.

Shapes follow the recordings in `shared/fixtures/*/anthropic/` (ping after the first block,
one signature_delta per thinking block, partial_json "" first, usage repeated in
message_delta). HTTP errors are built by `server.py`; entries live in `wire.py`.
"""

from __future__ import annotations

import json
from typing import Any, Literal

from alloy_nb.testing.wire import (
    Context,
    ErrorEvent,
    Rendered,
    Reply,
    ToolCall,
    Usage,
    args_json,
    json_body,
    ok,
    pieces,
    signature,
    sse,
    stop_of,
    text_of,
    token,
)

PING = b'event: ping\ndata: {"type": "ping"}\n\n'  # with the spaces the API sends


def _a_usage(u: Usage, phase: Literal["start", "delta", "final"]) -> dict[str, Any]:
    base = {
        "input_tokens": u.input_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cache_read_tokens,
    }
    if phase == "delta":
        return {**base, "output_tokens": u.output_tokens}
    cache = {"ephemeral_5m_input_tokens": u.cache_write_tokens, "ephemeral_1h_input_tokens": 0}
    out = min(1, u.output_tokens) if phase == "start" else u.output_tokens
    return {**base, "cache_creation": cache, "output_tokens": out, "service_tier": "standard"}


def _a_input(c: ToolCall, stream: bool) -> Any:
    if not isinstance(c.arguments, str):
        return dict(c.arguments)
    if stream:
        return {}
    try:
        return json.loads(c.arguments or "{}")
    except ValueError as exc:
        raise ValueError(
            f"Anthropic tool_use input must be JSON in a non-streaming reply: {c.arguments!r}"
        ) from exc


def _a_blocks(r: Reply, stream: bool) -> list[tuple[dict[str, Any], str]]:
    """Content blocks in order, each with the raw string its deltas are cut from."""
    out: list[tuple[dict[str, Any], str]] = []
    if (t := r.thinking) is not None:
        if t.redacted:
            out.append(({"type": "redacted_thinking", "data": signature(t)}, ""))
        else:
            out.append(
                ({"type": "thinking", "thinking": t.text, "signature": signature(t)}, t.text)
            )
    if (text := text_of(r)) is not None:
        out.append(({"type": "text", "text": text}, text))
    for c in r.tool_calls:
        block = {
            "type": "tool_use",
            "id": c.id or "toolu_01" + token(22),
            "name": c.name,
            "input": _a_input(c, stream),
        }
        out.append((block, args_json(c)))
    return out


def _a_block_events(i: int, block: dict[str, Any], raw: str) -> list[bytes]:
    kind = block["type"]
    empty = {
        "text": {"type": "text", "text": ""},
        "thinking": {"type": "thinking", "thinking": "", "signature": ""},
        "tool_use": {**block, "input": {}},
    }.get(kind, block)
    if kind == "text":
        deltas = [{"type": "text_delta", "text": p} for p in pieces(raw)]
    elif kind == "thinking":
        deltas = [{"type": "thinking_delta", "thinking": p} for p in pieces(raw)]
        deltas.append({"type": "signature_delta", "signature": block["signature"]})
    elif kind == "tool_use":
        deltas = [{"type": "input_json_delta", "partial_json": p} for p in ["", *pieces(raw)]]
    else:
        deltas = []
    start = {"type": "content_block_start", "index": i, "content_block": empty}
    events = [sse("content_block_start", start)]
    if i == 0:  # the API pings right after the first block opens
        events.append(PING)
    events += [
        sse("content_block_delta", {"type": "content_block_delta", "index": i, "delta": d})
        for d in deltas
    ]
    events.append(sse("content_block_stop", {"type": "content_block_stop", "index": i}))
    return events


def _a_message(r: Reply | None, ctx: Context) -> dict[str, Any]:
    return {
        "id": "msg_01" + token(22),
        "type": "message",
        "role": "assistant",
        "model": ctx.model(r),
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
    }


def render_reply(r: Reply, ctx: Context) -> Rendered:
    """A message, streamed as message_start … message_stop or as one JSON body."""
    u, stop = r.usage or ctx.default_usage, stop_of(r)
    seq = None
    if stop == "stop_sequence":
        seq = (ctx.body.get("stop_sequences") or ["\n\nHuman:"])[0]
    blocks = _a_blocks(r, ctx.stream)
    msg = _a_message(r, ctx)
    if not ctx.stream:
        final = {
            **msg,
            "content": [b for b, _ in blocks],
            "stop_reason": stop,
            "stop_sequence": seq,
            "usage": _a_usage(u, "final"),
        }
        return ok(ctx, [json_body(final)])
    events = [
        sse(
            "message_start",
            {"type": "message_start", "message": {**msg, "usage": _a_usage(u, "start")}},
        )
    ]
    for i, (block, raw) in enumerate(blocks):
        events += _a_block_events(i, block, raw)
    events.append(
        sse(
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": stop, "stop_sequence": seq},
                "usage": _a_usage(u, "delta"),
            },
        )
    )
    events.append(sse("message_stop", {"type": "message_stop"}))
    return ok(ctx, events)


def render_error_event(e: ErrorEvent, ctx: Context) -> Rendered:
    """HTTP 200, message_start, optional text deltas, then `event: error` (no message_stop)."""
    error = {"type": e.error_type or "overloaded_error", "message": e.message or "Overloaded"}
    start = {**_a_message(None, ctx), "usage": _a_usage(ctx.default_usage, "start")}
    events = [sse("message_start", {"type": "message_start", "message": start})]
    if e.text:  # the block is left open, as when the API fails mid-answer
        events += _a_block_events(0, {"type": "text", "text": e.text}, e.text)[:-1]
    events.append(sse("error", {"type": "error", "error": error}))
    return ok(ctx, events)
