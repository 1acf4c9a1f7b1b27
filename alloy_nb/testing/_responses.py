"""OpenAI Responses: the response object and its SSE event sequence for a scripted reply.

Shapes follow `shared/fixtures/*/openai-responses/` (sequence_number on every event, items
added → deltas → done, the final object on response.completed). HTTP errors are built by
`server.py`; entries live in `wire.py`.
"""

from __future__ import annotations

from typing import Any

from alloy_nb.testing.wire import (
    SERVER_ERROR,
    Context,
    ErrorEvent,
    Rendered,
    Reply,
    Usage,
    args_json,
    hex_token,
    json_body,
    now,
    ok,
    pieces,
    signature,
    sse,
    stop_of,
    text_of,
    token,
)


def _r_usage(u: Usage) -> dict[str, Any]:
    inp = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens  # OpenAI counts cached
    return {
        "input_tokens": inp,
        "input_tokens_details": {"cached_tokens": u.cache_read_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": u.reasoning_tokens},
        "total_tokens": inp + u.output_tokens,
    }


def _r_items(r: Reply, ctx: Context) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    if (t := r.thinking) is not None:
        item: dict[str, Any] = {"id": "rs_" + hex_token(48), "type": "reasoning", "summary": []}
        if not t.redacted:
            item["summary"] = [{"type": "summary_text", "text": t.text}]
        if t.redacted or "reasoning.encrypted_content" in (ctx.body.get("include") or []):
            item["encrypted_content"] = "gAAAAAB" + signature(t)
        items.append(item)
    if (text := text_of(r)) is not None:
        part = (
            {"type": "refusal", "refusal": text}
            if r.stop == "refusal"
            else {"type": "output_text", "annotations": [], "logprobs": [], "text": text}
        )
        items.append(
            {
                "id": "msg_" + hex_token(48),
                "type": "message",
                "status": "completed",
                "content": [part],
                "role": "assistant",
            }
        )
    for c in r.tool_calls:
        items.append(
            {
                "id": "fc_" + hex_token(48),
                "type": "function_call",
                "status": "completed",
                "arguments": args_json(c),
                "call_id": c.id or "call_" + token(24),
                "name": c.name,
            }
        )
    return items


def _r_object(
    ctx: Context,
    r: Reply | None,
    rid: str,
    status: str,
    output: list[Any],
    usage: dict[str, Any] | None,
    **extra: Any,
) -> dict[str, Any]:
    b, reasoning = ctx.body, ctx.body.get("reasoning") or {}
    return {
        "id": rid,
        "object": "response",
        "created_at": now(),
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": None,
        "instructions": b.get("instructions"),
        "max_output_tokens": b.get("max_output_tokens"),
        "model": ctx.model(r),
        "output": output,
        "parallel_tool_calls": b.get("parallel_tool_calls", True),
        "previous_response_id": b.get("previous_response_id"),
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "service_tier": "default",
        "store": b.get("store", True),
        "temperature": b.get("temperature", 1.0),
        "text": {"format": {"type": "text"}, "verbosity": "medium"},
        "tool_choice": b.get("tool_choice", "auto"),
        "tools": b.get("tools", []),
        "top_p": b.get("top_p", 1.0),
        "truncation": "disabled",
        "usage": usage,
        "user": None,
        "metadata": b.get("metadata") or {},
        **extra,
    }


class _Seq:
    """Numbers Responses events in order, as `sequence_number`."""

    def __init__(self) -> None:
        self.n = 0

    def __call__(self, kind: str, **data: Any) -> bytes:
        self.n += 1
        return sse(kind, {"type": kind, **data, "sequence_number": self.n - 1})


def _item_events(ev: _Seq, k: int, item: dict[str, Any]) -> list[bytes]:
    """output_item.added, the item's own deltas, output_item.done."""
    added = {
        "reasoning": {**item, "summary": []},
        "message": {**item, "status": "in_progress", "content": []},
        "function_call": {**item, "status": "in_progress", "arguments": ""},
    }[item["type"]]
    inner = {"reasoning": _reasoning_events, "message": _message_events}.get(
        item["type"], _call_events
    )
    return [
        ev("response.output_item.added", output_index=k, item=added),
        *inner(ev, {"item_id": item["id"], "output_index": k}, item),
        ev("response.output_item.done", output_index=k, item=item),
    ]


def _reasoning_events(ev: _Seq, at: dict[str, Any], item: dict[str, Any]) -> list[bytes]:
    out = []
    for si, part in enumerate(item["summary"]):
        s = {**at, "summary_index": si}
        empty = {"type": "summary_text", "text": ""}
        out.append(ev("response.reasoning_summary_part.added", **s, part=empty))
        out += [
            ev("response.reasoning_summary_text.delta", **s, delta=p) for p in pieces(part["text"])
        ]
        out.append(ev("response.reasoning_summary_text.done", **s, text=part["text"]))
        out.append(ev("response.reasoning_summary_part.done", **s, part=part))
    return out


def _message_events(ev: _Seq, at: dict[str, Any], item: dict[str, Any]) -> list[bytes]:
    part, c = item["content"][0], {**at, "content_index": 0}
    kind = "refusal" if part["type"] == "refusal" else "output_text"
    key = "refusal" if kind == "refusal" else "text"
    out = [ev("response.content_part.added", **c, part={**part, key: ""})]
    extra: dict[str, Any] = {} if kind == "refusal" else {"logprobs": []}
    out += [ev(f"response.{kind}.delta", **c, delta=p, **extra) for p in pieces(part[key])]
    out.append(ev(f"response.{kind}.done", **c, **{key: part[key]}, **extra))
    out.append(ev("response.content_part.done", **c, part=part))
    return out


def _call_events(ev: _Seq, at: dict[str, Any], item: dict[str, Any]) -> list[bytes]:
    args = item["arguments"]
    out = [ev("response.function_call_arguments.delta", **at, delta=p) for p in pieces(args)]
    out.append(ev("response.function_call_arguments.done", **at, arguments=args))
    return out


def render_reply(r: Reply, ctx: Context) -> Rendered:
    """A response object, or created … output items … completed/incomplete events."""
    u, stop, rid = r.usage or ctx.default_usage, stop_of(r), "resp_" + hex_token(48)
    items = _r_items(r, ctx)
    status, incomplete = "completed", None
    if stop == "max_tokens":
        status, incomplete = "incomplete", {"reason": "max_output_tokens"}
    final = _r_object(ctx, r, rid, status, items, _r_usage(u), incomplete_details=incomplete)
    if not ctx.stream:
        return ok(ctx, [json_body(final, pretty=True)])
    ev = _Seq()
    start = _r_object(ctx, r, rid, "in_progress", [], None)
    events = [ev("response.created", response=start), ev("response.in_progress", response=start)]
    for k, item in enumerate(items):
        events += _item_events(ev, k, item)
    events.append(ev(f"response.{status}", response=final))
    return ok(ctx, events)


def render_error_event(e: ErrorEvent, ctx: Context) -> Rendered:
    """A `failed` response: JSON with status failed, or a stream ending in response.failed."""
    error = {"code": e.error_type or "server_error", "message": e.message or SERVER_ERROR}
    rid = "resp_" + hex_token(48)
    failed = _r_object(ctx, None, rid, "failed", [], None, error=error)
    if not ctx.stream:
        return ok(ctx, [json_body(failed, pretty=True)])
    ev = _Seq()
    start = _r_object(ctx, None, rid, "in_progress", [], None)
    events = [ev("response.created", response=start), ev("response.in_progress", response=start)]
    if e.text:  # a message that never completes: drop its *.done events
        events += _item_events(ev, 0, _r_items(Reply(text=e.text), ctx)[0])[:-3]
        ev.n -= 3  # keep sequence_number gap-free
    events.append(ev("response.failed", response=failed))
    return ok(ctx, events)
