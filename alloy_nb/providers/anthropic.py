"""Anthropic Messages API provider (``POST /v1/messages``), streaming and not.

Translates our messages to the Messages wire format and the reply back, nothing more:
retries live in ``agent/retry.py``, HTTP plumbing in ``_transport.py``, error mapping in
``_vendor_errors.py``, the request template in ``_template.py``.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Mapping
from typing import Any, ClassVar

from alloy_nb.errors import ConfigError
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
from alloy_nb.providers.base import Completion, DeltaKind, OnDelta, ProviderRequest
from alloy_nb.usage import Usage

__all__ = ["Anthropic"]

ORIGIN = "anthropic"  # marks RawBlocks that only this protocol may be sent back
API_VERSION = "2023-06-01"
CODE_EXECUTION_TOOL = {"type": "code_execution_20250825", "name": "code_execution"}
CODE_EXECUTION_BETA = "code-execution-2025-08-25"

# Blocks we keep verbatim (RawBlock) so they round-trip unchanged: redacted thinking and the
# results of tools Anthropic runs itself (any "*_tool_result").
_ID_OK = re.compile(r"[A-Za-z0-9_-]+")
_ID_BAD = re.compile(r"[^A-Za-z0-9_-]")
_RAW_TYPES = {"redacted_thinking", "container_upload", "mcp_tool_use", "mcp_tool_result"}


class Anthropic(HTTPProvider):
    """Claude through the Messages API.

    ``thinking={"type": "enabled", "budget_tokens": N}`` turns on extended thinking (its
    blocks, signatures and redacted blocks are sent back unchanged); ``code_execution=True``
    adds Anthropic's code-execution server tool and its beta header. ``cache=True`` turns
    on prompt caching: ``cache_control`` breakpoints on the system prompt (sent as a
    block), the last tool and the newest message, so each turn of a loop reads the
    previous turns from the cache; cache reads and writes show in ``Usage`` and its cost.
    """

    name = "anthropic"
    auth_scheme = "x-api-key"
    base_headers: ClassVar[Mapping[str, str]] = {
        "anthropic-version": API_VERSION,
        "content-type": "application/json",
    }

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "claude-sonnet-4-6",
        base_url: str = "https://api.anthropic.com",
        max_output_tokens: int = 4096,
        thinking: Mapping[str, Any] | None = None,
        code_execution: bool = False,
        headers: Mapping[str, str] | None = None,
        cache: bool = False,
    ) -> None:
        check_max_output_tokens(max_output_tokens)
        if not isinstance(cache, bool):
            raise ConfigError(f"cache must be True or False, got {cache!r}")
        self.cache = cache
        self.max_output_tokens = max_output_tokens
        self.thinking = _check_thinking(thinking, max_output_tokens)
        self.code_execution = bool(code_execution)
        key = ApiKey(api_key, ("ANTHROPIC_API_KEY",))
        extra = _merge_headers(headers or {}, self.code_execution)
        super().__init__(model, base_url, "/v1/messages", key, extra)

    def __repr__(self) -> str:
        return f"Anthropic(model={self.model!r}, base_url={self.base_url!r})"

    # ----------------------------------------------------------------- requests

    def build_body(self, request: ProviderRequest, *, stream: bool) -> dict[str, Any]:
        """The Messages request body for ``request`` (shared by complete and stream)."""
        body: dict[str, Any] = {
            "model": self.model,
            "max_tokens": self.max_output_tokens,
            "messages": [m for m in map(_wire_message, request.messages) if m is not None],
        }
        if request.system:
            body["system"] = request.system
        tools: list[dict[str, Any]] = [
            {"name": t.name, "description": t.description, "input_schema": t.input_schema}
            for t in request.tools
        ]
        if self.cache:
            _cache_breakpoints(body, tools)
        if self.code_execution:
            tools.append(dict(CODE_EXECUTION_TOOL))
        if tools:
            body["tools"] = tools
        if self.thinking is not None:
            body["thinking"] = dict(self.thinking)
        if stream:
            body["stream"] = True
        return body

    def parse_reply(self, call: Call, data: Any, request_id: str | None) -> Completion:
        return _completion(call, data, request_id)

    def new_accumulator(self, events: EventStream, on_delta: OnDelta) -> _Accumulator:
        return _Accumulator(events, on_delta)


# --------------------------------------------------------------------- config helpers


def _check_thinking(thinking: Mapping[str, Any] | None, max_tokens: int) -> dict[str, Any] | None:
    if thinking is None:
        return None
    if not isinstance(thinking, Mapping) or "type" not in thinking:
        raise ConfigError(
            'thinking must be a dict like {"type": "enabled", "budget_tokens": 2048}, '
            f"got {thinking!r}"
        )
    if thinking["type"] == "enabled":
        budget = thinking.get("budget_tokens")
        if not isinstance(budget, int) or isinstance(budget, bool) or budget < 1:
            raise ConfigError(f"thinking requires a positive integer budget_tokens, got {budget!r}")
        if budget >= max_tokens:
            raise ConfigError(
                f"thinking budget_tokens ({budget}) must be below max_output_tokens ({max_tokens})"
            )
    return dict(thinking)


_EPHEMERAL = {"type": "ephemeral"}
_CACHEABLE = {"text", "image", "document", "tool_use", "tool_result"}


def _cache_breakpoints(body: dict[str, Any], tools: list[dict[str, Any]]) -> None:
    """Mark the ends of the three stable prefixes (tools, system, history) as cacheable:
    three of the four breakpoints Anthropic allows (reference 0.9 ``cache: true``)."""
    if tools:
        tools[-1]["cache_control"] = dict(_EPHEMERAL)
    if "system" in body:
        body["system"] = [
            {"type": "text", "text": body["system"], "cache_control": dict(_EPHEMERAL)}
        ]
    if not body["messages"]:
        return
    last = body["messages"][-1]
    content = last["content"]
    if isinstance(content, str):
        last["content"] = [{"type": "text", "text": content, "cache_control": dict(_EPHEMERAL)}]
        return
    for block in reversed(content):  # thinking blocks cannot carry a breakpoint
        if block.get("type") in _CACHEABLE:
            block["cache_control"] = dict(_EPHEMERAL)
            return


def _merge_headers(headers: Mapping[str, str], code_execution: bool) -> dict[str, str]:
    """Caller headers, with every ``anthropic-beta`` value (and the code-execution beta)
    merged into one comma-separated header: caller betas first, duplicates dropped."""
    out: dict[str, str] = {}
    betas: list[str] = []
    for name, value in headers.items():
        if name.lower() == "anthropic-beta":
            betas += [v.strip() for v in str(value).split(",")]
        else:
            out[name] = value
    if code_execution:
        betas.append(CODE_EXECUTION_BETA)
    merged = list(dict.fromkeys(b for b in betas if b))
    if merged:
        out["anthropic-beta"] = ",".join(merged)
    return out


# --------------------------------------------------------------------- ours -> wire


def _wire_message(msg: Message) -> dict[str, Any] | None:
    if len(msg.content) == 1 and isinstance(msg.content[0], TextBlock):
        text = msg.content[0].text
        return {"role": msg.role, "content": text} if text else None
    blocks = [w for w in map(_wire_block, msg.content) if w is not None]
    return {"role": msg.role, "content": blocks} if blocks else None


def _wire_block(b: ContentBlock) -> dict[str, Any] | None:
    if isinstance(b, TextBlock):
        return {"type": "text", "text": b.text} if b.text else None  # the API rejects ""
    if isinstance(b, ToolUseBlock):
        return {"type": "tool_use", "id": _wire_id(b.id), "name": b.name, "input": b.input}
    if isinstance(b, ToolResultBlock):
        out: dict[str, Any] = {
            "type": "tool_result",
            "tool_use_id": _wire_id(b.tool_use_id),
            "content": b.content,
        }
        if b.is_error:
            out["is_error"] = True
        return out
    if isinstance(b, ThinkingBlock):
        # Unsigned thinking came from another vendor; Anthropic would reject it.
        if not b.signature:
            return None
        return {"type": "thinking", "thinking": b.thinking, "signature": b.signature}
    if isinstance(b, ServerToolUseBlock):
        return {"type": "server_tool_use", "id": b.id, "name": b.name, "input": b.input}
    if isinstance(b, ImageBlock):
        return {
            "type": "image",
            "source": {"type": "base64", "media_type": b.mime_type, "data": b.data},
        }
    if isinstance(b, RawBlock):
        raw = b.model_dump()
        origin = raw.pop("origin", None)
        if origin == ORIGIN or (origin is None and _is_raw_type(b.type)):
            return raw
        if origin is None and b.type == "document" and isinstance(raw.get("source"), dict):
            return raw  # already in Messages form ({"type": "document", "source": {...}})
        note = unsupported_media("Anthropic", b) if origin is None else None
        if note is not None:
            return {"type": "text", "text": note}
        return None  # another protocol's opaque item (e.g. an OpenAI reasoning item)
    raise ConfigError(f"cannot send a {type(b).__name__} to Anthropic")


def _wire_id(call_id: str) -> str:
    """Anthropic accepts only ``[A-Za-z0-9_-]+`` tool ids; calls made by other vendors
    (``functions.f:0``, ``llm_version:0``, ``""``) are mapped, stably, to such an id."""
    if _ID_OK.fullmatch(call_id):
        return call_id
    digest = hashlib.sha256(call_id.encode()).hexdigest()[:12]
    return f"toolu_{_ID_BAD.sub('_', call_id)[:40]}_{digest}"


def _is_raw_type(t: str) -> bool:
    return t in _RAW_TYPES or t.endswith("_tool_result")


# --------------------------------------------------------------------- wire -> ours


def _completion(call: Call, data: Any, request_id: str | None) -> Completion:
    """Turn a Messages ``message`` object (received whole or rebuilt from a stream)
    into a Completion."""
    if not isinstance(data, dict) or data.get("type") == "error" or "content" not in data:
        if isinstance(data, dict) and "error" in data:
            raise error_from_payload(call, data, request_id, where="in response")
        raise unexpected_reply(call, "Messages", data, request_id)
    blocks = [
        b for b in (_block(call, raw, request_id) for raw in data["content"] or ()) if b is not None
    ]
    raw_stop = data.get("stop_reason")
    has_tools = any(isinstance(b, ToolUseBlock) for b in blocks)
    return Completion(
        stop_reason="tool_use" if raw_stop == "tool_use" and has_tools else "end_turn",
        message=Message(role="assistant", content=blocks),
        usage=_usage(data.get("usage") or {}),
        request_id=request_id or data.get("id"),
        model=data.get("model") or call.model,
        raw_stop_reason=raw_stop,
    )


def _usage(usage: Any) -> Usage:
    return Usage(
        input_tokens=int(usage.get("input_tokens") or 0),
        output_tokens=int(usage.get("output_tokens") or 0),
        cache_read_input_tokens=int(usage.get("cache_read_input_tokens") or 0),
        cache_creation_input_tokens=int(usage.get("cache_creation_input_tokens") or 0),
    )


def _block(call: Call, b: Any, request_id: str | None) -> ContentBlock | None:
    if not isinstance(b, dict):
        raise unexpected_reply(call, "Messages content block", b, request_id)
    t = b.get("type")
    if t == "text":
        return TextBlock(text=b["text"]) if b.get("text") else None
    if t == "tool_use":
        return ToolUseBlock(id=b["id"], name=b["name"], input=b.get("input") or {})
    if t == "thinking":
        return ThinkingBlock(thinking=b.get("thinking") or "", signature=b.get("signature") or None)
    if t == "server_tool_use":
        return ServerToolUseBlock(id=b["id"], name=b["name"], input=b.get("input") or {})
    if isinstance(t, str) and t:
        # redacted thinking, server tool results and block types newer than this module:
        # kept verbatim (marked as ours) so they go back to Anthropic unchanged
        return RawBlock(**{**b, "origin": ORIGIN})
    raise unexpected_reply(call, "Messages content block", b, request_id)


class _Accumulator:
    """Rebuilds the ``message`` object from stream events, handing text and thinking deltas
    to ``on_delta`` as they arrive. Tool input JSON is parsed once, at the end."""

    def __init__(self, events: EventStream, on_delta: OnDelta) -> None:
        self.events = events
        self.on_delta = on_delta
        self.message: dict[str, Any] | None = None
        self.blocks: dict[int, dict[str, Any]] = {}
        self.parts: dict[int, list[str]] = {}  # text / thinking / partial_json fragments
        self.stopped: set[int] = set()
        self.usage: dict[str, Any] = {}
        self.stop_reason: str | None = None
        self.done = False

    def partial_usage(self) -> Usage:
        return _usage(self.usage)

    def feed(self, ev: SSEEvent) -> None:
        try:
            data = json.loads(ev.data)
            kind = data.get("type") or ev.event
        except (ValueError, AttributeError):
            # from None: the decode error holds the raw event; malformed() quotes it scrubbed
            raise self.events.malformed(ev) from None
        emit = None
        try:
            if kind == "content_block_delta":
                emit = self._delta(data["index"], data["delta"])
            elif kind == "content_block_start":
                i = data["index"]
                self.blocks[i] = dict(data["content_block"])
                self.parts[i] = []
            elif kind == "content_block_stop":
                self.stopped.add(data["index"])
            elif kind == "message_start":
                self.message = data["message"]
                self.usage = dict(self.message.get("usage") or {})
            elif kind == "message_delta":
                self.stop_reason = (data.get("delta") or {}).get("stop_reason") or self.stop_reason
                for k, v in (data.get("usage") or {}).items():
                    if v is not None:
                        self.usage[k] = v
            elif kind == "message_stop":
                self.done = True
            elif kind == "error":
                raise error_from_payload(self.events.call, data, self.events.request_id)
            # "ping" and event types added after this was written are ignored, as Anthropic asks
        except (KeyError, TypeError):
            # from None: the decode error holds the raw event; malformed() quotes it scrubbed
            raise self.events.malformed(ev) from None
        if emit is not None and emit[1]:
            self.on_delta(*emit)  # outside the try: the callback's own errors stay its own

    def _delta(self, i: int, delta: dict[str, Any]) -> tuple[DeltaKind, str] | None:
        t = delta["type"]
        if t == "text_delta":
            text = delta["text"]
            self.parts[i].append(text)
            return ("text", text)
        if t == "input_json_delta":
            self.parts[i].append(delta["partial_json"])
        elif t == "thinking_delta":
            text = delta["thinking"]
            self.parts[i].append(text)
            return ("thinking", text)
        elif t == "signature_delta":
            self.blocks[i]["signature"] = delta["signature"]
        # citations_delta and delta types newer than this module are ignored, as Anthropic
        # asks of clients (the block itself still arrives whole in content_block_start)
        return None

    def result(self) -> Completion:
        if self.message is None or not (self.done or self.stop_reason):
            raise self.events.truncated("message_stop")
        content = []
        for i in sorted(self.blocks):
            block, parts = self.blocks[i], self.parts[i]
            t = block.get("type")
            if t == "text":
                block["text"] = block.get("text", "") + "".join(parts)
            elif t == "thinking":
                block["thinking"] = block.get("thinking", "") + "".join(parts)
            elif t in ("tool_use", "server_tool_use") and i in self.stopped:
                block["input"] = self._tool_input(block, "".join(parts))
            # a tool block that never stopped (max_tokens cut it) keeps its empty start input
            content.append(block)
        message = {
            **self.message,
            "content": content,
            "stop_reason": self.stop_reason,
            "usage": self.usage,
        }
        return _completion(self.events.call, message, self.events.request_id)

    def _tool_input(self, block: dict[str, Any], text: str) -> dict[str, Any]:
        if not text.strip():
            return block.get("input") or {}
        return tool_arguments(
            self.events.call,
            block.get("name"),
            text,
            self.events.request_id,
            lenient=self.stop_reason == "max_tokens",  # cut off mid-arguments: keep it un-runnable
        )
