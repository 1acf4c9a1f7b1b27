"""OpenAI Responses API provider (``POST /v1/responses``), streaming and not.

Translates our messages to Responses input items and the response back, nothing more.
Chat Completions (and the vendors that copy it) is ``openai_compat.py``; HTTP plumbing
and error mapping are ``_transport.py`` and ``_vendor_errors.py``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from alloy_nb.errors import ConfigError, ProviderError
from alloy_nb.messages import (
    ContentBlock,
    ImageBlock,
    Message,
    RawBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from alloy_nb.providers._media import unsupported_media
from alloy_nb.providers._sse import SSEEvent
from alloy_nb.providers._template import HTTPProvider, check_max_output_tokens
from alloy_nb.providers._transport import ApiKey, Call, EventStream
from alloy_nb.providers._vendor_errors import error_from_payload, tool_arguments, unexpected_reply
from alloy_nb.providers.base import Completion, OnDelta, ProviderRequest
from alloy_nb.usage import Usage

__all__ = ["OpenAI"]

ORIGIN = "openai-responses"  # marks RawBlocks (reasoning items) only this protocol takes back
_RAW_ITEMS = {"reasoning"}
_THINKING_DELTAS = {
    "response.reasoning_summary_text.delta",
    "response.reasoning_text.delta",
}
_TEXT_DELTAS = {"response.output_text.delta", "response.refusal.delta"}


class OpenAI(HTTPProvider):
    """OpenAI models through the Responses API (also xAI's, via ``base_url``).

    Reasoning items are kept (as RawBlocks) and sent back with the next request, as the API
    asks. ``store=False`` keeps nothing on OpenAI's side; the reasoning then travels
    encrypted (``include: ["reasoning.encrypted_content"]``).
    """

    name = "openai"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "gpt-5.4",
        base_url: str = "https://api.openai.com",
        max_output_tokens: int | None = None,
        reasoning: Mapping[str, Any] | None = None,
        store: bool | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if max_output_tokens is not None:
            check_max_output_tokens(max_output_tokens)
        if reasoning is not None and not isinstance(reasoning, Mapping):
            raise ConfigError(
                f'reasoning must be a dict like {{"effort": "low"}}, got {reasoning!r}'
            )
        self.max_output_tokens = max_output_tokens
        self.reasoning = dict(reasoning) if reasoning is not None else None
        self.store = store
        key = ApiKey(api_key, ("OPENAI_API_KEY",))
        super().__init__(model, base_url, "/v1/responses", key, headers or {})

    def __repr__(self) -> str:
        return f"OpenAI(model={self.model!r}, base_url={self.base_url!r})"

    def build_body(self, request: ProviderRequest, *, stream: bool) -> dict[str, Any]:
        """The Responses request body for ``request`` (shared by complete and stream)."""
        items: list[dict[str, Any]] = []
        for msg in request.messages:
            items.extend(_wire_items(msg))
        body: dict[str, Any] = {"model": self.model, "input": items}
        if request.system:
            body["instructions"] = request.system
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "name": t.name,
                    "description": t.description,
                    "parameters": t.input_schema,
                }
                for t in request.tools
            ]
        if self.max_output_tokens is not None:
            body["max_output_tokens"] = self.max_output_tokens
        if self.reasoning is not None:
            body["reasoning"] = self.reasoning
        if self.store is not None:
            body["store"] = self.store
            if not self.store:
                body["include"] = ["reasoning.encrypted_content"]
        if stream:
            body["stream"] = True
        return body

    def parse_reply(self, call: Call, data: Any, request_id: str | None) -> Completion:
        return _completion(call, data, request_id)

    def new_accumulator(self, events: EventStream, on_delta: OnDelta) -> _Accumulator:
        return _Accumulator(events, on_delta)


# --------------------------------------------------------------------- ours -> wire


def _wire_items(msg: Message) -> list[dict[str, Any]]:
    """One message becomes several input items, in block order (a reasoning item must stay
    right before the item that followed it)."""
    items: list[dict[str, Any]] = []
    if msg.role == "user":
        parts: list[dict[str, Any]] = []
        for b in msg.content:
            if isinstance(b, ToolResultBlock):
                items.append(
                    {"type": "function_call_output", "call_id": b.tool_use_id, "output": b.content}
                )
            elif isinstance(b, TextBlock):
                if b.text:
                    parts.append({"type": "input_text", "text": b.text})
            elif isinstance(b, ImageBlock):
                parts.append(
                    {"type": "input_image", "image_url": f"data:{b.mime_type};base64,{b.data}"}
                )
            elif (note := unsupported_media("OpenAI", b)) is not None:
                parts.append({"type": "input_text", "text": note})
            elif not _foreign(b):
                raise ConfigError(f"cannot send a {type(b).__name__} in a user message to OpenAI")
        if parts:
            content: Any = parts[0]["text"] if len(parts) == 1 and "text" in parts[0] else parts
            items.append({"role": "user", "content": content})
        return items
    for b in msg.content:
        if isinstance(b, TextBlock):
            if b.text:
                items.append({"role": "assistant", "content": b.text})
        elif isinstance(b, ToolUseBlock):
            items.append(
                {
                    "type": "function_call",
                    "call_id": b.id,
                    "name": b.name,
                    "arguments": json.dumps(b.input, ensure_ascii=False),
                }
            )
        elif isinstance(b, RawBlock):
            raw = b.model_dump()
            origin = raw.pop("origin", None)
            if origin == ORIGIN or (origin is None and b.type in _RAW_ITEMS):
                items.append(raw)
        elif not _foreign(b):
            raise ConfigError(f"cannot send a {type(b).__name__} in an assistant message to OpenAI")
    return items


def _foreign(b: ContentBlock) -> bool:
    """Blocks from other vendors' replies, which this API has no place for: dropped."""
    return isinstance(b, (ThinkingBlock, ServerToolUseBlock, RawBlock))


# --------------------------------------------------------------------- wire -> ours


def _completion(call: Call, resp: Any, request_id: str | None) -> Completion:
    """Turn a Responses ``response`` object (received whole, or the one carried by the
    terminal stream event) into a Completion."""
    if not isinstance(resp, dict) or "output" not in resp:
        if isinstance(resp, dict) and resp.get("error"):
            raise error_from_payload(call, resp, request_id, where="in response")
        raise unexpected_reply(call, "Responses", resp, request_id)
    status = resp.get("status")
    if status == "failed" or resp.get("error"):
        raise error_from_payload(
            call, {"error": resp.get("error")}, request_id, where="response.failed"
        )
    incomplete = status == "incomplete"
    raw_stop = (
        ((resp.get("incomplete_details") or {}).get("reason") or "incomplete")
        if incomplete
        else status
    )
    blocks: list[ContentBlock] = []
    for item in resp["output"] or ():
        t = item.get("type")
        if t == "message":
            for part in item.get("content") or ():
                pt = part.get("type")
                if pt == "output_text":
                    if part.get("text"):
                        blocks.append(TextBlock(text=part["text"]))
                elif pt == "refusal":
                    blocks.append(TextBlock(text=part.get("refusal") or "(refused)"))
                    raw_stop = "refusal"
                else:
                    raise _unsupported(call, f"message content part {pt!r}", request_id)
        elif t == "function_call":
            blocks.append(
                ToolUseBlock(
                    id=item.get("call_id") or item["id"],
                    name=item["name"],
                    input=_arguments(call, item, request_id, lenient=incomplete),
                )
            )
        elif t in _RAW_ITEMS or isinstance(t, str):
            # reasoning, and any item type we do not know (web_search_call, newer ones):
            # kept verbatim and sent back as it came, like Anthropic's unknown blocks
            blocks.append(RawBlock(**{**item, "origin": ORIGIN}))
        else:
            raise _unsupported(call, f"output item {t!r}", request_id)
    usage = resp.get("usage") or {}
    cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
    has_tools = not incomplete and any(isinstance(b, ToolUseBlock) for b in blocks)
    return Completion(
        stop_reason="tool_use" if has_tools else "end_turn",
        message=Message(role="assistant", content=blocks),
        usage=Usage(
            input_tokens=max(0, int(usage.get("input_tokens") or 0) - cached),
            output_tokens=int(usage.get("output_tokens") or 0),
            cache_read_input_tokens=cached,
        ),
        request_id=request_id or resp.get("id"),
        model=resp.get("model") or call.model,
        raw_stop_reason=raw_stop,
    )


def _arguments(
    call: Call, item: dict[str, Any], request_id: str | None, *, lenient: bool
) -> dict[str, Any]:
    raw = item.get("arguments")
    if raw is None or raw == "":
        return {}
    # an incomplete response may cut arguments off; that call never runs
    return tool_arguments(call, item.get("name"), raw, request_id, lenient=lenient)


def _unsupported(call: Call, what: str, request_id: str | None) -> ProviderError:
    return ProviderError(
        f"OpenAI Responses sent an unsupported {what}",
        provider=call.provider,
        model=call.model,
        request_id=request_id,
    )


class _Accumulator:
    """Hands text and reasoning deltas to ``on_delta``; the terminal event's ``response``
    is the authoritative reply (items seen in ``output_item.done`` back it up)."""

    def __init__(self, events: EventStream, on_delta: OnDelta) -> None:
        self.events = events
        self.on_delta = on_delta
        self.items: dict[int, dict[str, Any]] = {}
        self.final: dict[str, Any] | None = None

    def partial_usage(self) -> Usage:
        """Responses reports usage only in the terminal event (a failed response has it)."""
        usage = (self.final or {}).get("usage") or {}
        cached = int((usage.get("input_tokens_details") or {}).get("cached_tokens") or 0)
        return Usage(input_tokens=max(0, int(usage.get("input_tokens") or 0) - cached),
                     output_tokens=int(usage.get("output_tokens") or 0),
                     cache_read_input_tokens=cached)

    def feed(self, ev: SSEEvent) -> None:
        if ev.data.strip() == "[DONE]":  # OpenRouter ends its Responses streams with it
            return
        try:
            data = json.loads(ev.data)
            kind = data.get("type") or ev.event
        except (ValueError, AttributeError):
            # from None: the decode error holds the raw event; malformed() quotes it scrubbed
            raise self.events.malformed(ev) from None
        if kind in _TEXT_DELTAS:
            if data.get("delta"):
                self.on_delta("text", data["delta"])
        elif kind in _THINKING_DELTAS:
            if data.get("delta"):
                self.on_delta("thinking", data["delta"])
        elif kind == "response.output_item.done":
            item = data.get("item")
            if isinstance(item, dict):
                self.items[int(data.get("output_index", len(self.items)))] = item
        elif kind in ("response.completed", "response.incomplete", "response.failed"):
            resp = data.get("response")
            if not isinstance(resp, dict):
                raise self.events.malformed(ev)
            self.final = resp
        elif kind == "error":
            raise error_from_payload(self.events.call, data, self.events.request_id)

    def result(self) -> Completion:
        if self.final is None:
            raise self.events.truncated("response.completed")
        resp = self.final
        if not resp.get("output") and self.items:
            resp = {**resp, "output": [self.items[i] for i in sorted(self.items)]}
        return _completion(self.events.call, resp, self.events.request_id)
