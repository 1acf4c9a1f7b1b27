"""Chat Completions provider for OpenAI and the many servers that copy its protocol.

Vendor differences are typed flags on ``Compat``, filled in by preset classmethods
(``OpenAICompat.groq(...)`` …); no vendor name is tested anywhere else. The Responses API is
``openai.py``; HTTP plumbing and error mapping are ``_transport.py`` and ``_vendor_errors.py``.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from alloy_nb.errors import ConfigError, StreamError
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

__all__ = ["Compat", "OpenAICompat"]

ORIGIN = "openai-chat"
_EXTRA = "openai_chat.extra_content"  # RawBlock type carrying vendor extras (Gemini signatures)
_REASONING_FIELDS = ("reasoning_content", "reasoning")
_NOT_TOOL_USE = {"length", "content_filter"}  # tool calls cut off or filtered never run


class Compat(BaseModel):
    """How one vendor's Chat Completions differs from OpenAI's. Every flag is typed and
    documented; presets on ``OpenAICompat`` fill them in."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    requires_done_marker: bool = False
    """True: EOF without ``data: [DONE]`` is a cut-off stream, for servers that need the strict
    form. False (default, as the official SDKs): EOF after a finish_reason is a normal end;
    only a stream that closes with no finish_reason is a cut-off."""
    finish_reason_optional: bool = False
    """Some OpenRouter upstreams never send a finish_reason; with no [DONE] either, EOF after
    any content then counts as a normal end."""
    usage_in_late_chunk: bool = True
    """Usage comes in a chunk after the finish chunk (OpenAI's ``choices: []`` chunk). False:
    usage rides the finish chunk. Descriptive only: a stream that closes after its finish
    chunk is complete either way (its usage is then whatever was reported)."""
    supports_stream_options: bool = True
    """Send ``stream_options: {"include_usage": true}`` when streaming."""
    null_arguments_ok: bool = True
    """``"arguments": null`` (or ``""``) means ``{}``; False treats it as a malformed reply."""
    max_tokens_field: Literal["max_tokens", "max_completion_tokens"] = "max_tokens"
    """Which field carries ``max_output_tokens`` (OpenAI's o-series reject ``max_tokens``)."""
    reasoning_field: Literal["reasoning_content", "reasoning"] | None = None
    """Field in which reasoning is sent back on assistant messages (DeepSeek wants it within a
    tool loop); None never sends it. Reasoning is *read* from either field regardless."""
    system_role: Literal["system", "developer"] = "system"
    """Role of the system prompt message."""
    mistral_tool_ids: bool = False
    """Mistral accepts only 9-character alphanumeric tool-call ids; others are mapped to one,
    deterministically, when sent."""


_PRESETS: dict[str, tuple[str, str, tuple[str, ...], Compat]] = {
    # name: (base_url, chat_path, key env vars, compat)
    "ollama": ("http://localhost:11434", "/v1/chat/completions", (), Compat()),
    "openrouter": (
        "https://openrouter.ai/api",
        "/v1/chat/completions",
        ("OPENROUTER_API_KEY",),
        Compat(finish_reason_optional=True),
    ),
    "gemini": (
        "https://generativelanguage.googleapis.com/v1beta/openai",
        "/chat/completions",
        ("GEMINI_API_KEY", "GOOGLE_API_KEY"),
        Compat(),
    ),
    "xai": ("https://api.x.ai", "/v1/chat/completions", ("XAI_API_KEY",), Compat()),
    "deepseek": (
        "https://api.deepseek.com",
        "/chat/completions",
        ("DEEPSEEK_API_KEY",),
        Compat(reasoning_field="reasoning_content", usage_in_late_chunk=False),
    ),
    "mistral": (
        "https://api.mistral.ai",
        "/v1/chat/completions",
        ("MISTRAL_API_KEY",),
        Compat(supports_stream_options=False, usage_in_late_chunk=False, mistral_tool_ids=True),
    ),
    "groq": (
        "https://api.groq.com/openai",
        "/v1/chat/completions",
        ("GROQ_API_KEY",),
        Compat(usage_in_late_chunk=False),  # [DONE] is missing only after an error event
    ),
    "together": (
        "https://api.together.xyz",
        "/v1/chat/completions",
        ("TOGETHER_API_KEY",),
        Compat(),
    ),
}
PRESETS = tuple(_PRESETS)


class OpenAICompat(HTTPProvider):
    """Any Chat Completions endpoint: ``base_url`` + ``chat_path``, quirks in ``compat``.

    A reply that carries tool calls is treated as tool use whatever its finish_reason
    (Ollama and OpenRouter upstreams send ``"stop"`` or nothing), except ``length`` and
    ``content_filter``, where the calls may be cut off. ``extra_body`` (a dict) is merged
    last into every request body, so it may add vendor fields or override ours.
    """

    name = "openai-compat"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "",
        base_url: str | None = None,
        chat_path: str = "/v1/chat/completions",
        compat: Compat | None = None,
        api_key_env: str | Sequence[str] | None = "OPENAI_API_KEY",
        max_output_tokens: int | None = None,
        headers: Mapping[str, str] | None = None,
        extra_body: Mapping[str, Any] | None = None,
    ) -> None:
        if not model:
            raise ConfigError("OpenAICompat needs a model name")
        if extra_body is not None and not isinstance(extra_body, Mapping):
            raise ConfigError(
                f"extra_body must be a dict of request fields, got {type(extra_body).__name__}"
            )
        self.extra_body = copy.deepcopy(dict(extra_body or {}))
        base_url = base_url or os.environ.get("OPENAI_BASE_URL")
        if not base_url:
            raise ConfigError("OpenAICompat needs base_url= (or the OPENAI_BASE_URL variable)")
        if max_output_tokens is not None:
            check_max_output_tokens(max_output_tokens)
        envs = (api_key_env,) if isinstance(api_key_env, str) else tuple(api_key_env or ())
        self.chat_path = chat_path
        self.compat = compat or Compat()
        self.max_output_tokens = max_output_tokens
        key = ApiKey(api_key, envs, required=bool(envs))
        super().__init__(model, base_url, chat_path, key, headers or {})

    def __repr__(self) -> str:
        return f"OpenAICompat(model={self.model!r}, base_url={self.base_url!r})"

    # ----------------------------------------------------------------- presets

    @classmethod
    def _preset(cls, preset: str, model: str, **kw: Any) -> OpenAICompat:
        base_url, chat_path, envs, compat = _PRESETS[preset]
        kw.setdefault("base_url", base_url)
        kw.setdefault("chat_path", chat_path)
        kw.setdefault("compat", compat)
        kw.setdefault("api_key_env", envs or None)
        return cls(model=model, **kw)

    @classmethod
    def ollama(cls, model: str = "llama3.2", **kw: Any) -> OpenAICompat:
        """A local Ollama server (no key needed; pass ``api_key`` for Ollama's cloud)."""
        return cls._preset("ollama", model, **kw)

    @classmethod
    def openrouter(cls, model: str, **kw: Any) -> OpenAICompat:
        """OpenRouter (``OPENROUTER_API_KEY``)."""
        return cls._preset("openrouter", model, **kw)

    @classmethod
    def gemini(cls, model: str, **kw: Any) -> OpenAICompat:
        """Google Gemini's OpenAI-compatible endpoint (``GEMINI_API_KEY`` or ``GOOGLE_API_KEY``)."""
        return cls._preset("gemini", model, **kw)

    @classmethod
    def xai(cls, model: str, **kw: Any) -> OpenAICompat:
        """xAI Grok (``XAI_API_KEY``)."""
        return cls._preset("xai", model, **kw)

    @classmethod
    def deepseek(cls, model: str, **kw: Any) -> OpenAICompat:
        """DeepSeek (``DEEPSEEK_API_KEY``); reasoning is sent back within tool loops."""
        return cls._preset("deepseek", model, **kw)

    @classmethod
    def mistral(cls, model: str, **kw: Any) -> OpenAICompat:
        """Mistral (``MISTRAL_API_KEY``)."""
        return cls._preset("mistral", model, **kw)

    @classmethod
    def groq(cls, model: str, **kw: Any) -> OpenAICompat:
        """Groq (``GROQ_API_KEY``)."""
        return cls._preset("groq", model, **kw)

    @classmethod
    def together(cls, model: str, **kw: Any) -> OpenAICompat:
        """Together AI (``TOGETHER_API_KEY``)."""
        return cls._preset("together", model, **kw)

    # ----------------------------------------------------------------- requests

    def build_body(self, request: ProviderRequest, *, stream: bool) -> dict[str, Any]:
        """The Chat Completions request body (shared by complete and stream)."""
        c = self.compat
        messages: list[dict[str, Any]] = []
        if request.system:
            messages.append({"role": c.system_role, "content": request.system})
        for msg in request.messages:
            messages.extend(_wire_messages(msg, c))
        body: dict[str, Any] = {"model": self.model, "messages": messages}
        if request.tools:
            body["tools"] = [
                {
                    "type": "function",
                    "function": {
                        "name": t.name,
                        "description": t.description,
                        "parameters": t.input_schema,
                    },
                }
                for t in request.tools
            ]
        if self.max_output_tokens is not None:
            body[c.max_tokens_field] = self.max_output_tokens
        if stream:
            body["stream"] = True
            if c.supports_stream_options:
                body["stream_options"] = {"include_usage": True}
        if self.extra_body:  # reference 0.9: merged last, so it may override any field
            body.update(copy.deepcopy(self.extra_body))
        return body

    def parse_reply(self, call: Call, data: Any, request_id: str | None) -> Completion:
        return _from_body(call, self.compat, data, request_id)

    def new_accumulator(self, events: EventStream, on_delta: OnDelta) -> _Accumulator:
        return _Accumulator(events, self.compat, on_delta)


# --------------------------------------------------------------------- ours -> wire


def _wire_messages(msg: Message, c: Compat) -> list[dict[str, Any]]:
    wire_id = _mistral_id if c.mistral_tool_ids else str
    out: list[dict[str, Any]] = []
    if msg.role == "user":
        parts: list[dict[str, Any]] = []
        for b in msg.content:
            if isinstance(b, ToolResultBlock):
                out.append(
                    {"role": "tool", "tool_call_id": wire_id(b.tool_use_id), "content": b.content}
                )
            elif isinstance(b, TextBlock):
                if b.text:
                    parts.append({"type": "text", "text": b.text})
            elif isinstance(b, ImageBlock):
                url = f"data:{b.mime_type};base64,{b.data}"
                parts.append({"type": "image_url", "image_url": {"url": url}})
            elif (note := unsupported_media("OpenAICompat", b)) is not None:
                parts.append({"type": "text", "text": note})
            elif not isinstance(b, (ThinkingBlock, ServerToolUseBlock, RawBlock)):
                raise ConfigError(f"cannot send a {type(b).__name__} in a user message")
        if parts:
            single = len(parts) == 1 and parts[0]["type"] == "text"
            out.append({"role": "user", "content": parts[0]["text"] if single else parts})
        return out
    texts: list[str] = []
    thinking: list[str] = []
    calls: list[dict[str, Any]] = []
    extras: list[RawBlock] = []
    for b in msg.content:
        if isinstance(b, TextBlock):
            texts.append(b.text)
        elif isinstance(b, ToolUseBlock):
            calls.append(
                {
                    "id": wire_id(b.id),
                    "type": "function",
                    "function": {
                        "name": b.name,
                        "arguments": json.dumps(b.input, ensure_ascii=False),
                    },
                }
            )
        elif isinstance(b, ThinkingBlock):
            thinking.append(b.thinking)
        elif isinstance(b, RawBlock):
            if b.type == _EXTRA and (b.model_extra or {}).get("origin") == ORIGIN:
                extras.append(b)
        elif not isinstance(b, ServerToolUseBlock):
            raise ConfigError(f"cannot send a {type(b).__name__} in an assistant message")
    text = "\n".join(t for t in texts if t)
    if not text and not calls:
        return out  # a reply with nothing the protocol can carry
    wire: dict[str, Any] = {"role": "assistant", "content": text or None}
    if calls:
        wire["tool_calls"] = calls
    if c.reasoning_field and any(thinking):
        wire[c.reasoning_field] = "".join(thinking)
    for x in extras:  # vendor extras (Gemini thought signatures) go back where they came from
        fields = x.model_extra or {}
        target = fields.get("target")
        extra = fields.get("extra_content")
        if target == "message":
            wire["extra_content"] = extra
        else:
            for call in calls:
                if call["id"] == wire_id(str(target)):
                    call["extra_content"] = extra
    out.append(wire)
    return out


def _mistral_id(call_id: str) -> str:
    """Mistral validates ids as 9 alphanumerics: keep those, map others stably."""
    if re.fullmatch(r"[A-Za-z0-9]{9}", call_id):
        return call_id
    return hashlib.sha256(call_id.encode()).hexdigest()[:9]


# --------------------------------------------------------------------- wire -> ours


def _from_body(call: Call, c: Compat, data: Any, request_id: str | None) -> Completion:
    """A non-streamed ``chat.completion`` body."""
    if isinstance(data, list) or (isinstance(data, dict) and data.get("error") is not None):
        raise error_from_payload(call, data, request_id, where="in response")
    if not isinstance(data, dict) or not isinstance(data.get("choices"), list):
        raise unexpected_reply(call, "Chat Completions", data, request_id)
    choice = data["choices"][0] if data["choices"] else {}
    return _completion(
        call,
        c,
        choice.get("message") or {},
        choice.get("finish_reason"),
        data.get("usage"),
        request_id or data.get("id"),
        data.get("model"),
    )


def _completion(
    call: Call,
    c: Compat,
    msg: dict[str, Any],
    finish: str | None,
    usage: dict[str, Any] | None,
    request_id: str | None,
    model: str | None,
) -> Completion:
    """The one conversion from an assistant ``message`` (received whole or rebuilt from
    stream deltas) to a Completion."""
    text, reasoning = _content(msg.get("content"))
    for f in _REASONING_FIELDS:
        r = msg.get(f)
        if isinstance(r, str) and r:
            reasoning = reasoning + r
            break
    blocks: list[ContentBlock] = []
    if reasoning:
        blocks.append(ThinkingBlock(thinking=reasoning))
    if text:
        blocks.append(TextBlock(text=text))
    if isinstance(msg.get("extra_content"), dict):
        blocks.append(_extra("message", msg["extra_content"]))
    lenient = finish in _NOT_TOOL_USE
    calls = 0
    for tc in msg.get("tool_calls") or ():
        fn = tc.get("function") or {}
        call_id = tc.get("id") or f"call_{uuid.uuid4().hex[:24]}"
        blocks.append(
            ToolUseBlock(
                id=call_id,
                name=fn.get("name") or "",
                input=_arguments(call, c, fn.get("name"), fn.get("arguments"), request_id, lenient),
            )
        )
        calls += 1
        if isinstance(tc.get("extra_content"), dict):
            blocks.append(_extra(call_id, tc["extra_content"]))
    return Completion(
        stop_reason="tool_use" if calls and not lenient else "end_turn",
        message=Message(role="assistant", content=blocks),
        usage=_usage(usage or {}),
        request_id=request_id,
        model=model or call.model,
        raw_stop_reason=finish,
    )


def _extra(target: str, extra: dict[str, Any]) -> RawBlock:
    return RawBlock(type=_EXTRA, origin=ORIGIN, target=target, extra_content=extra)  # type: ignore[call-arg]


def _content(content: Any) -> tuple[str, str]:
    """(text, reasoning) from a content string or a list of typed parts (Mistral magistral
    sends ``{"type": "thinking", "thinking": [{"type": "text", "text": …}]}`` parts)."""
    if content is None:
        return "", ""
    if isinstance(content, str):
        return content, ""
    text: list[str] = []
    reasoning: list[str] = []
    for part in content if isinstance(content, list) else ():
        if not isinstance(part, dict):
            continue
        if part.get("type") == "thinking":
            inner = part.get("thinking")
            if isinstance(inner, str):
                reasoning.append(inner)
            else:
                reasoning += [p.get("text", "") for p in inner or () if isinstance(p, dict)]
        elif isinstance(part.get("text"), str):
            text.append(part["text"])
    return "".join(text), "".join(reasoning)


def _arguments(
    call: Call,
    c: Compat,
    name: str | None,
    raw: Any,
    request_id: str | None,
    lenient: bool,
) -> dict[str, Any]:
    if raw is None and not c.null_arguments_ok:
        raise StreamError(
            f"tool call {name!r} has null arguments",
            provider=call.provider,
            model=call.model,
            request_id=request_id,
        )
    if raw is None or (isinstance(raw, str) and not raw.strip()):
        return {}
    return tool_arguments(call, name, raw, request_id, lenient=lenient)


def _usage(u: dict[str, Any]) -> Usage:
    """``prompt_tokens`` includes cached tokens: split them out. Output is the larger of
    ``completion_tokens`` and ``total - prompt`` (Gemini hides thinking tokens there)."""
    prompt = int(u.get("prompt_tokens") or 0)
    completion = int(u.get("completion_tokens") or 0)
    details = u.get("prompt_tokens_details") or {}
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    if cached is None:
        cached = u.get("prompt_cache_hit_tokens")  # DeepSeek
    cached = min(int(cached or 0), prompt)
    total = u.get("total_tokens")
    if isinstance(total, int) and total - prompt > completion:
        completion = total - prompt
    return Usage(
        input_tokens=prompt - cached, output_tokens=completion, cache_read_input_tokens=cached
    )


class _Accumulator:
    """Rebuilds the assistant message from chunks: content and reasoning concatenated, tool
    calls assembled by ``index`` (id and name set, never concatenated), the last usage seen."""

    def __init__(self, events: EventStream, c: Compat, on_delta: OnDelta) -> None:
        self.events = events
        self.c = c
        self.on_delta = on_delta
        self.text: list[str] = []
        self.reasoning: list[str] = []
        self.calls: dict[Any, dict[str, Any]] = {}
        self.finish: str | None = None
        self.usage: dict[str, Any] | None = None
        self.model: str | None = None
        self.chunks = 0
        self.done = False

    def partial_usage(self) -> Usage:
        return _usage(self.usage or {})

    def feed(self, ev: SSEEvent) -> None:
        if self.done:
            return
        if ev.data.strip() == "[DONE]":
            self.done = True
            return
        try:
            data = json.loads(ev.data)
        except ValueError:
            # from None: the decode error holds the raw event; malformed() quotes it scrubbed
            raise self.events.malformed(ev) from None
        if not isinstance(data, dict):
            raise self.events.malformed(ev)
        if ev.event == "error" or data.get("error") is not None:
            raise error_from_payload(self.events.call, data, self.events.request_id)
        self.chunks += 1
        self.model = data.get("model") or self.model
        usage = data.get("usage") or (data.get("x_groq") or {}).get("usage")
        if isinstance(usage, dict):
            self.usage = usage
        for choice in data.get("choices") or ():
            if choice.get("index", 0) == 0:
                self._choice(ev, choice)

    def _choice(self, ev: SSEEvent, choice: dict[str, Any]) -> None:
        delta = choice.get("delta") or {}
        text, reasoning = _content(delta.get("content"))
        for f in _REASONING_FIELDS:
            r = delta.get(f)
            if isinstance(r, str) and r:
                reasoning += r
                break
        if reasoning:
            self.reasoning.append(reasoning)
            self.on_delta("thinking", reasoning)
        if text:
            self.text.append(text)
            self.on_delta("text", text)
        for tc in delta.get("tool_calls") or ():
            self._tool_delta(ev, tc)
        if choice.get("finish_reason"):
            self.finish = choice["finish_reason"]

    def _tool_delta(self, ev: SSEEvent, tc: Any) -> None:
        if not isinstance(tc, dict):
            raise self.events.malformed(ev)
        key = tc.get("index")
        if key is None:  # defensive: by id, else a new call
            key = tc.get("id") if tc.get("id") in self.calls else tc.get("id") or len(self.calls)
        slot = self.calls.setdefault(key, {"id": "", "name": "", "args": [], "null": False})
        if tc.get("id"):
            slot["id"] = tc["id"]
        fn = tc.get("function") or {}
        if fn.get("name"):
            slot["name"] = fn["name"]
        args = fn.get("arguments")
        if isinstance(args, str):
            slot["args"].append(args)
        elif isinstance(args, dict):  # a few servers send the object itself
            slot["args"].append(json.dumps(args))
        elif "arguments" in fn and args is None:
            slot["null"] = True
        if isinstance(tc.get("extra_content"), dict):
            slot["extra_content"] = tc["extra_content"]

    def result(self) -> Completion:
        if not self.done:
            c = self.c
            ended = self.finish is not None or (c.finish_reason_optional and self.chunks > 0)
            if c.requires_done_marker or not ended:
                raise self.events.truncated("a finish_reason" if not ended else "data: [DONE]")
        tool_calls = []
        # index order, whatever order the calls' first deltas came in (keys without an index
        # keep their arrival order, after the indexed ones)
        order = sorted(self.calls, key=lambda k: (0, k) if isinstance(k, int) else (1, 0))
        for slot in (self.calls[k] for k in order):
            args: Any = "".join(slot["args"])
            if not args and slot["null"]:
                args = None
            wire = {
                "id": slot["id"],
                "type": "function",
                "function": {"name": slot["name"], "arguments": args},
            }
            if "extra_content" in slot:
                wire["extra_content"] = slot["extra_content"]
            tool_calls.append(wire)
        msg = {
            "role": "assistant",
            "content": "".join(self.text),
            "reasoning": "".join(self.reasoning),
            "tool_calls": tool_calls,
        }
        call = self.events.call
        return _completion(
            call, self.c, msg, self.finish, self.usage, self.events.request_id, self.model
        )
