"""Google Gemini's native API (``models/{model}:generateContent`` and
``:streamGenerateContent?alt=sse``), streaming and not.

Translates our messages to ``contents``/``parts`` and the reply back, nothing more: retries
live in ``agent/retry.py``, HTTP plumbing in ``_transport.py``, status mapping in
``_vendor_errors.py``. Unlike the
OpenAI-compatible endpoint (``OpenAICompat.gemini``), this keeps thought signatures on the
part they came with, code-execution parts and grounding verbatim, and exact usage.

How Gemini parts live in our blocks (so a model turn goes back exactly as it came):
text → ``TextBlock``; ``thought`` text → ``ThinkingBlock``; ``functionCall`` → ``ToolUseBlock``
(the vendor's id when it sent one, else a local id starting ``alloy-gemini-``, never sent);
any other part (``executableCode``, ``codeExecutionResult``, ``inlineData`` …) → a
``RawBlock`` of type ``gemini.part`` holding the part verbatim. A ``thoughtSignature`` on a
text, thought or call part becomes a ``gemini.signature`` RawBlock right after that block;
candidate grounding metadata a ``gemini.grounding`` RawBlock (kept, never sent back).
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping, Sequence
from typing import Any
from urllib.parse import quote

from alloy_nb.errors import (
    AuthenticationError,
    ConfigError,
    ProviderHTTPError,
    StreamError,
    TransientStreamError,
)
from alloy_nb.messages import (
    ContentBlock,
    ImageBlock,
    Message,
    RawBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from alloy_nb.providers._sse import SSEEvent
from alloy_nb.providers._template import HTTPProvider, check_max_output_tokens
from alloy_nb.providers._transport import ApiKey, Call, EventStream, open_stream
from alloy_nb.providers._vendor_errors import error_from_payload, tool_arguments, unexpected_reply
from alloy_nb.providers.base import Completion, DeltaKind, OnDelta, ProviderRequest
from alloy_nb.usage import Usage

__all__ = ["Gemini"]

ORIGIN = "gemini"  # marks RawBlocks that only this protocol may be sent back
DEFAULT_BASE_URL = "https://generativelanguage.googleapis.com"
PART = "gemini.part"
SIGNATURE = "gemini.signature"
GROUNDING = "gemini.grounding"
LOCAL_ID = "alloy-gemini-"  # prefix of call ids we made up (the vendor sent none)

_DATA_KEYS = ("text", "functionCall")  # the part kinds mapped to our own blocks
# Candidate endings that mean "the answer was withheld" (a result, not an error).
_POLICY = {
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "MODEL_ARMOR",
    "LANGUAGE",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
}
_TEXT_KEYS = frozenset({"text", "thought", "thoughtSignature"})  # a plain (thought) text part
_CANDIDATE_META = ("groundingMetadata", "urlContextMetadata", "citationMetadata")
_STREAM_META = (*_CANDIDATE_META, "finishMessage")
_NO_TOOL_USE = {"MAX_TOKENS", *_POLICY}  # calls cut off or filtered never run
_RETRY_DELAY = re.compile(r'"retryDelay"\s*:\s*"(\d+(?:\.\d+)?)s"')


class Gemini(HTTPProvider):
    """Gemini models through Google's native Developer API (AI Studio keys).

    The key comes from ``api_key``, ``GEMINI_API_KEY`` or ``GOOGLE_API_KEY`` and travels in
    the ``x-goog-api-key`` header, never in the URL. ``thinking`` is sent as
    ``generationConfig.thinkingConfig`` (e.g. ``{"thinkingBudget": 1024, "includeThoughts":
    True}`` or ``{"thinkingLevel": "low"}``); ``generation_config`` adds any other
    generationConfig field; ``code_execution`` / ``google_search`` add Google's built-in tools,
    whose parts and grounding are kept verbatim.
    """

    name = "gemini"
    auth_scheme = "x-goog-api-key"

    def __init__(
        self,
        api_key: str | None = None,
        model: str = "gemini-2.5-flash",
        base_url: str | None = None,
        max_output_tokens: int | None = None,
        thinking: Mapping[str, Any] | None = None,
        generation_config: Mapping[str, Any] | None = None,
        safety_settings: Sequence[Mapping[str, Any]] | None = None,
        code_execution: bool = False,
        google_search: bool = False,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        if max_output_tokens is not None:
            check_max_output_tokens(max_output_tokens)
        for label, value in (("thinking", thinking), ("generation_config", generation_config)):
            if value is not None and not isinstance(value, Mapping):
                raise ConfigError(f"{label} must be a dict, got {value!r}")
        if not isinstance(model, str) or not model.strip():
            raise ConfigError(f"model must be a non-empty string, got {model!r}")
        model = model.strip().removeprefix("models/")
        self.max_output_tokens = max_output_tokens
        self.thinking = dict(thinking) if thinking is not None else None
        self.generation_config = dict(generation_config or {})
        self.safety_settings = [dict(s) for s in safety_settings or ()]
        self.code_execution = bool(code_execution)
        self.google_search = bool(google_search)
        key = ApiKey(api_key, ("GEMINI_API_KEY", "GOOGLE_API_KEY"))
        root = (base_url or DEFAULT_BASE_URL).rstrip("/")
        if not re.search(r"/v1(?:alpha|beta)?\d*$", root):
            root += "/v1beta"
        path = f"/models/{quote(model, safe='-._')}"
        super().__init__(model, root, path + ":generateContent", key, headers or {})
        self.base_url = (base_url or DEFAULT_BASE_URL).rstrip("/")
        self._stream_url = root + path + ":streamGenerateContent?alt=sse"

    def __repr__(self) -> str:
        return f"Gemini(model={self.model!r}, base_url={self.base_url!r})"

    # ----------------------------------------------------------------- requests

    def build_body(self, request: ProviderRequest, *, stream: bool) -> dict[str, Any]:
        """The generateContent body for ``request`` (the same for both endpoints)."""
        body: dict[str, Any] = {"contents": _contents(request.messages, self.model)}
        if request.system:
            body["systemInstruction"] = {"parts": [{"text": request.system}]}
        tools: list[dict[str, Any]] = []
        if request.tools:
            tools.append({"functionDeclarations": [_declaration(t) for t in request.tools]})
        if self.code_execution:
            tools.append({"codeExecution": {}})
        if self.google_search:
            tools.append({"googleSearch": {}})
        if tools:
            body["tools"] = tools
        config = dict(self.generation_config)
        if self.max_output_tokens is not None:
            config["maxOutputTokens"] = self.max_output_tokens
        if self.thinking is not None:
            config["thinkingConfig"] = dict(self.thinking)
        if config:
            body["generationConfig"] = config
        if self.safety_settings:
            body["safetySettings"] = [dict(s) for s in self.safety_settings]
        return body

    def _endpoint(self, stream: bool) -> str:
        return self._stream_url if stream else self._url

    def refine_error(self, err: ProviderHTTPError) -> ProviderHTTPError:
        return _refine_http_error(err)

    async def stream(self, request: ProviderRequest, on_delta: OnDelta) -> Completion:
        """The template's, except that a JSON array of chunks (the endpoint answering
        without ``alt=sse``) is read chunk by chunk, so its deltas are still seen."""
        call = self._call(stream=True)
        body = self.build_body(request, stream=True)
        with self._refined():
            async with open_stream(call, body, request.timeout_s) as events:
                if events.is_sse:
                    return await self._consume(events, on_delta)
                data = await events.json()
                if not isinstance(data, list):
                    return self.parse_reply(call, data, events.request_id)
                acc = _Accumulator(events, on_delta, self.model)
                for chunk in data:
                    acc.feed_chunk(chunk)
                return acc.result()

    def parse_reply(self, call: Call, data: Any, request_id: str | None) -> Completion:
        if isinstance(data, list):  # streamGenerateContent without alt=sse
            acc = _ChunkMerger(call, request_id, self.model)
            for chunk in data:
                acc.add(chunk)
            return acc.completion()
        return _completion(call, data, request_id, self.model)

    def new_accumulator(self, events: EventStream, on_delta: OnDelta) -> _Accumulator:
        return _Accumulator(events, on_delta, self.model)


# --------------------------------------------------------------------- errors


def _refine_http_error(err: ProviderHTTPError) -> ProviderHTTPError:
    """Gemini's own readings of an HTTP error: a bad key is a 400 (made an
    AuthenticationError) and a 429's wait is in ``RetryInfo.retryDelay`` (a per-day quota
    will not clear by waiting). A too-long prompt is already a PromptTooLongError: the shared
    status mapping (``providers/_overflow``) knows Gemini's wording."""
    body = err.body or ""
    if err.status_code == 400 and "API_KEY_INVALID" in body:
        return AuthenticationError(
            err.message,
            status_code=err.status_code,
            body=body,
            retry_after=err.retry_after,
            provider=err.provider,
            model=err.model,
            request_id=err.request_id,
        )
    if err.retry_after is None and (m := _RETRY_DELAY.search(body)):
        err.retry_after = float(m[1])
    if err.status_code == 429 and "PerDay" in body:
        # a daily quota: another try within the run cannot succeed
        err.override_retryable(False, reason="per-day quota exhausted")
    return err


# --------------------------------------------------------------------- ours -> wire


def _contents(messages: Sequence[Message], model: str) -> list[dict[str, Any]]:
    """``contents``: one entry per turn, roles ``user``/``model``, adjacent turns of the same
    role merged (the API wants them alternating)."""
    names: dict[str, str] = {}  # call id -> tool name, for functionResponse
    out: list[dict[str, Any]] = []
    for msg in messages:
        if msg.role == "assistant":
            role, parts = "model", _model_parts(msg.content, model, names)
        else:
            role, parts = "user", _user_parts(msg.content, names)
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    return out


def _model_parts(
    blocks: Sequence[ContentBlock], model: str, names: dict[str, str]
) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for i, b in enumerate(blocks):
        part: dict[str, Any] | None = None
        nxt = blocks[i + 1] if i + 1 < len(blocks) else None
        sig = _signature(nxt, model)
        if isinstance(b, TextBlock):
            part = {"text": b.text} if b.text else None
        elif isinstance(b, ThinkingBlock):
            # only Gemini's own signed thoughts go back (replaying thoughts is optional)
            part = {"text": b.thinking, "thought": True} if sig else None
        elif isinstance(b, ToolUseBlock):
            names[b.id] = b.name
            fc: dict[str, Any] = {"name": b.name, "args": dict(b.input)}
            if not b.id.startswith(LOCAL_ID):
                fc["id"] = b.id
            part = {"functionCall": fc}
        elif isinstance(b, ImageBlock):
            part = {"inlineData": {"mimeType": b.mime_type, "data": b.data}}
        elif isinstance(b, RawBlock):
            part = _raw_part(b)
        # ServerToolUseBlock and other vendors' RawBlocks have no Gemini equivalent: dropped
        if part is not None:
            if sig and "thoughtSignature" not in part:
                part["thoughtSignature"] = sig
            parts.append(part)
    return parts


def _user_parts(blocks: Sequence[ContentBlock], names: Mapping[str, str]) -> list[dict[str, Any]]:
    parts: list[dict[str, Any]] = []
    for b in blocks:
        if isinstance(b, ToolResultBlock):
            key = "error" if b.is_error else "result"  # `response` must be a JSON object
            fr: dict[str, Any] = {
                "name": names.get(b.tool_use_id, "tool"),
                "response": {key: b.content},
            }
            if not b.tool_use_id.startswith(LOCAL_ID):
                fr["id"] = b.tool_use_id
            parts.append({"functionResponse": fr})
        elif isinstance(b, TextBlock):
            if b.text:
                parts.append({"text": b.text})
        elif isinstance(b, ImageBlock):
            parts.append({"inlineData": {"mimeType": b.mime_type, "data": b.data}})
        elif isinstance(b, RawBlock) and (part := _raw_part(b)) is not None:
            parts.append(part)
    return parts


def _raw_part(b: RawBlock) -> dict[str, Any] | None:
    extra = b.model_extra or {}
    if b.type == PART and extra.get("origin") == ORIGIN and isinstance(extra.get("part"), dict):
        part: dict[str, Any] = json.loads(json.dumps(extra["part"]))  # a deep copy: the block
        return part  # stays untouched
    return None


def _signature(b: ContentBlock | None, model: str) -> str | None:
    """The signature a ``gemini.signature`` block carries for the block before it, unless it
    was made by another model (signatures belong to one model)."""
    if not isinstance(b, RawBlock) or b.type != SIGNATURE:
        return None
    extra = b.model_extra or {}
    sig = extra.get("thoughtSignature")
    if extra.get("origin") != ORIGIN or not isinstance(sig, str) or not sig:
        return None
    made_by = extra.get("model")
    return sig if not made_by or made_by == model else None


def _declaration(t: Any) -> dict[str, Any]:
    decl: dict[str, Any] = {"name": t.name, "description": t.description or ""}
    params = gemini_schema(t.input_schema)
    if params.get("properties") or params.get("type") not in (None, "OBJECT"):
        decl["parameters"] = params  # a tool without arguments declares no parameters
    return decl


# --------------------------------------------------------------------- JSON schema subset

_TYPES = {"object", "string", "number", "integer", "boolean", "array"}
_FORMATS = {
    "STRING": {"enum", "date-time"},
    "INTEGER": {"int32", "int64"},
    "NUMBER": {"float", "double"},
}
_KEEP_NUMBERS = ("minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength")
_MAX_DEPTH = 24


def gemini_schema(schema: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON Schema (as pydantic makes it) in the OpenAPI subset Gemini's ``parameters``
    accepts: ``$ref`` inlined from ``$defs`` (a recursive one ends in a plain OBJECT),
    ``anyOf``/``oneOf`` with ``null`` made ``nullable``, upper-case type names, and every
    keyword outside the subset (``additionalProperties``, ``title``, ``default``, ``const`` …)
    dropped."""
    defs = {**(schema.get("definitions") or {}), **(schema.get("$defs") or {})}
    return _convert(schema, defs, (), 0)


def _convert(s: Any, defs: Mapping[str, Any], seen: tuple[str, ...], depth: int) -> dict[str, Any]:
    if not isinstance(s, Mapping) or depth > _MAX_DEPTH:
        return {}
    if isinstance(ref := s.get("$ref"), str):
        name = ref.rsplit("/", 1)[-1]
        target = defs.get(name)
        if target is None or name in seen:  # unknown or recursive: stop here
            out: dict[str, Any] = {"type": "OBJECT"}
        else:
            out = _convert(target, defs, (*seen, name), depth + 1)
        if isinstance(s.get("description"), str):
            out = {**out, "description": s["description"]}
        return out
    alts = s.get("anyOf") or s.get("oneOf")
    all_of = s.get("allOf")
    if isinstance(all_of, list) and len(all_of) == 1 and not alts:
        merged = {k: v for k, v in s.items() if k != "allOf"}
        return _convert({**all_of[0], **merged}, defs, seen, depth + 1)
    if isinstance(alts, list):
        return _alternatives(s, alts, defs, seen, depth)
    out = {}
    t = s.get("type")
    nullable = False
    if isinstance(t, list):  # ["string", "null"]
        nullable = "null" in t
        rest = [x for x in t if x != "null"]
        t = rest[0] if len(rest) == 1 else None
    if t is None:
        if "properties" in s:
            t = "object"
        elif "items" in s:
            t = "array"
        elif "enum" in s or "const" in s:
            t = "string"
    if isinstance(t, str) and t in _TYPES:
        out["type"] = t.upper()
    if isinstance(s.get("description"), str):
        out["description"] = s["description"]
    if nullable or s.get("nullable") is True:
        out["nullable"] = True
    fmt = s.get("format")
    if isinstance(fmt, str) and fmt in _FORMATS.get(out.get("type", ""), ()):
        out["format"] = fmt
    enum = s.get("enum") if "enum" in s else ([s["const"]] if "const" in s else None)
    if isinstance(enum, list):
        values = [v for v in enum if v is not None]
        if values and all(isinstance(v, str) for v in values):
            out["enum"] = values
            out["type"] = "STRING"
            if None in enum:
                out["nullable"] = True
    for key in _KEEP_NUMBERS:
        v = s.get(key)
        if isinstance(v, int | float) and not isinstance(v, bool):
            out[key] = v
    props = s.get("properties")
    if isinstance(props, Mapping):
        out["properties"] = {str(k): _convert(v, defs, seen, depth + 1) for k, v in props.items()}
        required = [r for r in s.get("required") or () if r in props]
        if required:
            out["required"] = required
    if "items" in s:
        out["items"] = _convert(s["items"], defs, seen, depth + 1)
    return out


def _alternatives(
    s: Mapping[str, Any],
    alts: list[Any],
    defs: Mapping[str, Any],
    seen: tuple[str, ...],
    depth: int,
) -> dict[str, Any]:
    """``anyOf``/``oneOf``: ``X | None`` becomes X with ``nullable``; several real
    alternatives stay an ``anyOf`` of converted schemas."""
    real = [a for a in alts if not (isinstance(a, Mapping) and a.get("type") == "null")]
    nullable = len(real) < len(alts)
    if len(real) == 1:
        out = _convert(real[0], defs, seen, depth + 1)
    else:
        out = {"anyOf": [_convert(a, defs, seen, depth + 1) for a in real]}
    if isinstance(s.get("description"), str):
        out["description"] = s["description"]
    if nullable:
        out["nullable"] = True
    return out


# --------------------------------------------------------------------- wire -> ours


def _local_id() -> str:
    return LOCAL_ID + uuid.uuid4().hex[:16]


def _blocks(
    parts: Sequence[Any], model: str, call: Call, request_id: str | None, *, cut: bool
) -> list[ContentBlock]:
    """Parts (whole, or merged from a stream) as our blocks, each signature right after the
    block of the part it came on. ``cut``: the reply hit MAX_TOKENS (its calls never run)."""
    blocks: list[ContentBlock] = []
    for part in parts:
        if not isinstance(part, dict):
            continue
        sig = part.get("thoughtSignature")
        kind = next((k for k in _DATA_KEYS if k in part), None)
        block: ContentBlock
        if kind == "text" and isinstance(part["text"], str) and part["text"]:
            if part.get("thought"):
                block = ThinkingBlock(thinking=part["text"])
            else:
                block = TextBlock(text=part["text"])
        elif kind == "functionCall" and isinstance(part["functionCall"], dict):
            fc = part["functionCall"]
            args = fc.get("args")
            ident = fc.get("id")
            name = str(fc.get("name") or "")
            block = ToolUseBlock(
                id=ident if isinstance(ident, str) and ident else _local_id(),
                name=name,
                input={}
                if args is None
                else tool_arguments(call, name, args, request_id, lenient=cut),
            )
        elif kind == "text" and not sig:
            continue  # an empty text part says nothing
        else:
            blocks.append(RawBlock(type=PART, **{"origin": ORIGIN, "part": part}))
            continue  # the signature, if any, stays inside the verbatim part
        blocks.append(block)
        if isinstance(sig, str) and sig:
            blocks.append(
                RawBlock(
                    type=SIGNATURE, **{"origin": ORIGIN, "thoughtSignature": sig, "model": model}
                )
            )
    return blocks


def _usage(meta: Any) -> Usage:
    """Input excludes cached tokens (and adds built-in tool input); thinking is output."""
    m = meta if isinstance(meta, dict) else {}

    def n(key: str) -> int:
        v = m.get(key)
        return int(v) if isinstance(v, int | float) and not isinstance(v, bool) else 0

    cached = n("cachedContentTokenCount")
    return Usage(
        input_tokens=max(0, n("promptTokenCount") - cached) + n("toolUsePromptTokenCount"),
        output_tokens=n("candidatesTokenCount") + n("thoughtsTokenCount"),
        cache_read_input_tokens=cached,
    )


def _completion(call: Call, data: Any, request_id: str | None, model: str) -> Completion:
    """A GenerateContentResponse (whole, or rebuilt from a stream) as a Completion."""
    if not isinstance(data, dict):
        raise unexpected_reply(call, "generateContent", data, request_id)
    if "error" in data:
        raise error_from_payload(call, data, request_id, where="in response")
    response_id = data.get("responseId")
    rid = request_id or (response_id if isinstance(response_id, str) else None)
    candidates = data.get("candidates")
    if not candidates:
        feedback = data.get("promptFeedback")
        if isinstance(feedback, dict) and feedback.get("blockReason"):
            raise _prompt_blocked(call, feedback, rid)
        raise unexpected_reply(call, "generateContent", data, rid)
    if not isinstance(candidates, list) or not isinstance(candidates[0], dict):
        raise unexpected_reply(call, "generateContent candidates", candidates, rid)
    cand = candidates[0]
    raw_finish = cand.get("finishReason")
    finish = raw_finish if isinstance(raw_finish, str) else None
    raw_content = cand.get("content")
    content: dict[str, Any] = raw_content if isinstance(raw_content, dict) else {}
    parts = content.get("parts") or []
    if not isinstance(parts, list):
        raise unexpected_reply(call, "generateContent content", content, rid)
    if finish == "MALFORMED_FUNCTION_CALL":
        why = cand.get("finishMessage")
        raise TransientStreamError(
            call.scrub(
                "Gemini produced a malformed function call"
                + (f": {why}" if isinstance(why, str) else "")
            ),
            provider=call.provider,
            model=call.model,
            request_id=rid,
        )
    blocks = _blocks(parts, model, call, rid, cut=finish == "MAX_TOKENS")
    grounding = {k: cand[k] for k in _CANDIDATE_META if k in cand}
    if grounding:
        blocks.append(RawBlock(type=GROUNDING, **{"origin": ORIGIN, **grounding}))
    has_calls = any(isinstance(b, ToolUseBlock) for b in blocks)
    tool_use = has_calls and finish not in _NO_TOOL_USE
    version = data.get("modelVersion")
    return Completion(
        stop_reason="tool_use" if tool_use else "end_turn",
        message=Message(role="assistant", content=blocks),
        usage=_usage(data.get("usageMetadata")),
        request_id=rid,
        model=version if isinstance(version, str) and version else call.model,
        raw_stop_reason=finish,
    )


def _prompt_blocked(
    call: Call, feedback: dict[str, Any], request_id: str | None
) -> StreamError:
    """No candidates and a ``promptFeedback.blockReason``: Gemini refused the prompt itself.
    Not retryable (the same prompt is blocked again)."""
    reason = feedback.get("blockReason")
    detail = feedback.get("blockReasonMessage")
    text = f"Gemini blocked the prompt (blockReason={reason})"
    if isinstance(detail, str) and detail:
        text += f": {detail}"
    return StreamError(
        call.scrub(text),
        provider=call.provider,
        model=call.model,
        request_id=request_id,
    )


class _ChunkMerger:
    """Rebuilds one reply from streamed chunks: consecutive text (and, apart, thought) deltas
    joined into one part, a signature arriving on an empty trailing text part attached to the
    text before it, Vertex's streamed call arguments assembled; usage, finish reason and
    grounding from the last chunk that has them."""

    def __init__(self, call: Call, request_id: str | None, model: str) -> None:
        self.call = call
        self.request_id = request_id
        self.model = model
        self.parts: list[dict[str, Any]] = []
        self._text: list[str] = []  # pieces of the last part's text, while it grows
        self.open_call: dict[str, Any] | None = None  # Vertex: a call whose args are streaming
        self.last: dict[str, Any] = {}
        self.meta: dict[str, Any] = {}
        self.finish: str | None = None
        self.feedback: dict[str, Any] | None = None

    def add(self, chunk: Any) -> list[tuple[DeltaKind, str]]:
        """Merge one chunk; returns the text/thinking deltas it carried."""
        if not isinstance(chunk, dict):
            raise unexpected_reply(self.call, "stream chunk", chunk, self.request_id)
        if "error" in chunk:
            raise error_from_payload(self.call, chunk, self.request_id)
        self.last = chunk
        if isinstance(chunk.get("promptFeedback"), dict):
            self.feedback = chunk["promptFeedback"]
        cands = chunk.get("candidates") or []
        if not isinstance(cands, list) or (cands and not isinstance(cands[0], dict)):
            raise unexpected_reply(self.call, "stream candidates", cands, self.request_id)
        cand = cands[0] if cands else {}
        for k in _STREAM_META:
            if k in cand:
                self.meta[k] = cand[k]  # repeated per chunk: keep the last
        if isinstance(cand.get("finishReason"), str):
            self.finish = cand["finishReason"]
        raw_content = cand.get("content")
        content: dict[str, Any] = raw_content if isinstance(raw_content, dict) else {}
        deltas: list[tuple[DeltaKind, str]] = []
        parts = content.get("parts") or []
        if not isinstance(parts, list):
            raise unexpected_reply(self.call, "stream content", content, self.request_id)
        for part in parts:
            if not isinstance(part, dict):
                raise unexpected_reply(self.call, "stream part", part, self.request_id)
            d = self._part(part)
            if d is not None and d[1]:
                deltas.append(d)
        return deltas

    def _part(self, part: dict[str, Any]) -> tuple[DeltaKind, str] | None:
        fc = part.get("functionCall")
        if isinstance(fc, dict) and self._streamed_call(part, fc):
            return None
        text = part.get("text")
        if not isinstance(text, str) or not part.keys() <= _TEXT_KEYS:
            self._append(dict(part))
            return None
        thought = bool(part.get("thought"))
        sig = part.get("thoughtSignature")
        prev = self.parts[-1] if self.parts else None
        prev_is_text = (
            prev is not None and isinstance(prev.get("text"), str) and prev.keys() <= _TEXT_KEYS
        )
        if (
            prev is not None
            and prev_is_text
            and bool(prev.get("thought")) == thought
            and not (sig and prev.get("thoughtSignature"))
        ):
            self._text.append(text)  # joined once, at the end: no quadratic copying
            if sig:
                prev["thoughtSignature"] = sig
        elif (
            not text
            and sig
            and prev is not None
            and prev_is_text
            and not prev.get("thought")
            and not prev.get("thoughtSignature")
        ):
            prev["thoughtSignature"] = sig  # a trailing empty chunk signs the text before it
        elif text or sig:
            self._append(dict(part))
            self._text = [text]
        return ("thinking" if thought else "text", text)

    def _append(self, part: dict[str, Any]) -> None:
        self._flush()
        self.parts.append(part)

    def _flush(self) -> None:
        """Write the pending text pieces into the last (text) part."""
        if self._text:
            self.parts[-1]["text"] = "".join(self._text)
            self._text = []

    def _streamed_call(self, part: dict[str, Any], fc: dict[str, Any]) -> bool:
        """Vertex's ``willContinue``/``partialArgs`` call streaming; True if consumed."""
        if self.open_call is None:
            if fc.get("willContinue") is True and fc.get("name"):
                call = {"name": fc["name"], "args": {}}
                if fc.get("id"):
                    call["id"] = fc["id"]
                self.open_call = {"functionCall": call}
                if part.get("thoughtSignature"):
                    self.open_call["thoughtSignature"] = part["thoughtSignature"]
                self._append(self.open_call)
                return True
            return False
        args = self.open_call["functionCall"]["args"]
        deltas = fc.get("partialArgs")
        for delta in deltas if isinstance(deltas, list) else ():
            if isinstance(delta, dict):
                _apply_partial_arg(args, delta)
        if not fc or fc.get("willContinue") is not True:
            self.open_call = None  # the empty functionCall {} closes it
        return True

    def completion(self) -> Completion:
        self._flush()
        if self.finish is None:
            if self.feedback and self.feedback.get("blockReason"):
                rid = self.request_id or self.last.get("responseId")
                raise _prompt_blocked(self.call, self.feedback, rid)
            raise TransientStreamError(
                "stream ended before a finishReason (connection cut off?)",
                provider=self.call.provider,
                model=self.call.model,
                request_id=self.request_id,
            )
        cand: dict[str, Any] = {
            "content": {"role": "model", "parts": self.parts},
            "finishReason": self.finish,
            **self.meta,
        }
        data = {k: v for k, v in self.last.items() if k != "candidates"}
        data["candidates"] = [cand]
        return _completion(self.call, data, self.request_id, self.model)


def _apply_partial_arg(args: dict[str, Any], delta: dict[str, Any]) -> None:
    """One ``partialArgs`` entry: ``jsonPath`` ``$.a.b`` names the key; string values arrive
    in pieces and are joined."""
    path = str(delta.get("jsonPath") or "")
    keys = [k for k in path.removeprefix("$").split(".") if k] or [path]
    target = args
    for k in keys[:-1]:
        nxt = target.get(k)
        if not isinstance(nxt, dict):
            nxt = target[k] = {}
        target = nxt
    last = keys[-1]
    if "stringValue" in delta:
        prior = target.get(last)
        target[last] = (prior if isinstance(prior, str) else "") + str(delta["stringValue"])
    elif "numberValue" in delta:
        target[last] = delta["numberValue"]
    elif "boolValue" in delta:
        target[last] = delta["boolValue"]
    elif "nullValue" in delta:
        target[last] = None


class _Accumulator:
    """Feeds SSE events to a ``_ChunkMerger``, handing deltas to ``on_delta`` as they come."""

    def __init__(self, events: EventStream, on_delta: OnDelta, model: str) -> None:
        self.events = events
        self.on_delta = on_delta
        self.merger = _ChunkMerger(events.call, events.request_id, model)

    def partial_usage(self) -> Usage:
        return _usage(self.merger.last.get("usageMetadata"))

    def feed(self, ev: SSEEvent) -> None:
        try:
            chunk = json.loads(ev.data)
        except ValueError:
            # from None: the decode error holds the raw event; malformed() quotes it scrubbed
            raise self.events.malformed(ev) from None
        self.feed_chunk(chunk)

    def feed_chunk(self, chunk: Any) -> None:
        for kind, text in self.merger.add(chunk):
            self.on_delta(kind, text)  # outside the parsing: the callback's errors stay its own

    def result(self) -> Completion:
        return self.merger.completion()
