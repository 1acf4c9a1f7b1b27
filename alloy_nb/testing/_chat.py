"""Chat Completions: the completion JSON and `data:` chunk stream for a scripted reply.

Shapes follow OpenAI's own recordings in `shared/fixtures/*/openai-chat/` (role chunk first,
tool calls by index with id and name only in their first delta, a `choices: []` usage chunk
only with stream_options.include_usage, then `[DONE]`). Vendor variants are not imitated
here; replay their fixtures with `reply.raw`. HTTP errors are built by `server.py`.
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
    json_body,
    now,
    ok,
    pieces,
    sse,
    stop_of,
    text_of,
    token,
)

_FINISH = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "tool_use": "tool_calls",
    "max_tokens": "length",
    "refusal": "content_filter",
    "pause_turn": "stop",
}


def _c_usage(u: Usage) -> dict[str, Any]:
    p = u.input_tokens + u.cache_read_tokens + u.cache_write_tokens
    return {
        "prompt_tokens": p,
        "completion_tokens": u.output_tokens,
        "total_tokens": p + u.output_tokens,
        "prompt_tokens_details": {"cached_tokens": u.cache_read_tokens, "audio_tokens": 0},
        "completion_tokens_details": {
            "reasoning_tokens": u.reasoning_tokens,
            "audio_tokens": 0,
            "accepted_prediction_tokens": 0,
            "rejected_prediction_tokens": 0,
        },
    }


class _Chunks:
    """Builds `chat.completion.chunk` frames sharing one id, as OpenAI streams them."""

    def __init__(self, ctx: Context, r: Reply | None) -> None:
        self.include_usage = (ctx.body.get("stream_options") or {}).get("include_usage") is True
        self.base = {
            "id": "chatcmpl-" + token(29),
            "object": "chat.completion.chunk",
            "created": now(),
            "model": ctx.model(r),
            "service_tier": "default",
            "system_fingerprint": "fp_fake",
        }

    def __call__(
        self,
        delta: dict[str, Any] | None,
        finish: str | None = None,
        usage: dict[str, Any] | None = None,
    ) -> bytes:
        choices = (
            []
            if delta is None
            else [{"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}]
        )
        extra = {"usage": usage} if self.include_usage or usage else {}
        return sse(None, {**self.base, "choices": choices, **extra})


def _calls(r: Reply) -> list[dict[str, Any]]:
    return [
        {
            "id": c.id or "call_" + token(24),
            "type": "function",
            "function": {"name": c.name, "arguments": args_json(c)},
        }
        for c in r.tool_calls
    ]


def _reasoning(r: Reply, ctx: Context) -> str | None:
    """Thinking goes out under `ctx.chat_reasoning_field` (DeepSeek's name by default)."""
    t = r.thinking
    return t.text if ctx.chat_reasoning_field and t is not None and not t.redacted else None


def render_reply(r: Reply, ctx: Context) -> Rendered:
    """A chat.completion body, or its chunk stream."""
    u, finish, text = r.usage or ctx.default_usage, _FINISH.get(stop_of(r), "stop"), text_of(r)
    calls, reasoning, chunk = _calls(r), _reasoning(r, ctx), _Chunks(ctx, r)
    if not ctx.stream:
        msg: dict[str, Any] = {"role": "assistant", "content": text, "refusal": None}
        msg["annotations"] = []
        if reasoning is not None and ctx.chat_reasoning_field:
            msg[ctx.chat_reasoning_field] = reasoning
        if calls:
            msg["tool_calls"] = calls
        choice = {"index": 0, "message": msg, "logprobs": None, "finish_reason": finish}
        body = {**chunk.base, "object": "chat.completion", "choices": [choice]}
        return ok(ctx, [json_body({**body, "usage": _c_usage(u)}, pretty=True)])
    first = {"role": "assistant", "content": "" if text is not None else None, "refusal": None}
    events = [chunk(first)]
    if reasoning is not None and ctx.chat_reasoning_field:
        events += [chunk({ctx.chat_reasoning_field: p}) for p in pieces(reasoning)]
    events += [chunk({"content": p}) for p in pieces(text or "")]
    for i, call in enumerate(calls):
        opening = {"index": i, **call, "function": {**call["function"], "arguments": ""}}
        events.append(chunk({"tool_calls": [opening]}))
        events += [
            chunk({"tool_calls": [{"index": i, "function": {"arguments": p}}]})
            for p in pieces(call["function"]["arguments"])
        ]
    events.append(chunk({}, finish))
    if chunk.include_usage:
        events.append(chunk(None, usage=_c_usage(u)))
    events.append(b"data: [DONE]\n\n")
    return ok(ctx, events)


def render_error_event(e: ErrorEvent, ctx: Context) -> Rendered:
    """Streamed text, then Groq's recorded `event: error` frame and no `[DONE]`."""
    error = {"message": e.message or SERVER_ERROR, "type": e.error_type or "server_error"}
    chunk = _Chunks(ctx, None)
    events = [chunk({"role": "assistant", "content": "", "refusal": None})]
    events += [chunk({"content": p}) for p in pieces(e.text)]
    events.append(sse("error", {"error": {**error, "code": None}}))
    return ok(ctx, events)
