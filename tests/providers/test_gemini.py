"""Native Gemini: request translation (contents, signatures, call ids, the schema subset),
reply parsing (whole and streamed) and Gemini's error readings, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import contextlib
import json
from enum import Enum
from typing import Any, Literal, Optional

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from alloy_nb.api import arun
from alloy_nb.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    OverloadedError,
    PromptTooLongError,
    ProviderConfigError,
    ProviderError,
    RateLimitError,
    StreamError,
)
from alloy_nb.messages import (
    ImageBlock,
    RawBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    assistant,
    tool_results,
    user,
)
from alloy_nb.model_metadata import lookup
from alloy_nb.providers import Gemini, ProviderRequest
from alloy_nb.providers.gemini import gemini_schema
from alloy_nb.testing import FakeProviderServer, Usage, reply
from alloy_nb.tools.function import as_tool

from .conftest import call, req

KEY = "test-key-gemini-91be"
SIG = "c2lnbmF0dXJlLW9uZQ=="


def body(p: Gemini, request: ProviderRequest) -> dict[str, Any]:
    return p.build_body(request, stream=False)


def raw(status: int, obj: Any, *, stream: bool = False) -> Any:
    if stream:
        frames = b"".join(b"data: " + json.dumps(c).encode() + b"\r\n\r\n" for c in obj)
        return reply.raw(status, {"content-type": "text/event-stream"}, frames)
    return reply.raw(status, {"content-type": "application/json; charset=UTF-8"}, json.dumps(obj))


# ----------------------------------------------------------------- configuration


def test_endpoints_key_header_and_repr(monkeypatch: pytest.MonkeyPatch) -> None:
    p = Gemini(api_key=KEY, model="models/gemini-2.5-flash")
    assert p.model == "gemini-2.5-flash"
    assert p._url == (
        "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    )
    assert p._stream_url.endswith("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
    assert KEY not in repr(p) and KEY not in str(p.describe())
    assert Gemini(base_url="http://h:1/v1beta/").base_url == "http://h:1/v1beta"
    assert Gemini(base_url="http://h:1/v1beta")._url.startswith("http://h:1/v1beta/models/")
    with pytest.raises(ConfigError):
        Gemini(thinking="high")  # type: ignore[arg-type]
    with pytest.raises(ConfigError):
        Gemini(max_output_tokens=0)


@pytest.mark.parametrize("stream", [False, True])
def test_key_in_header_never_in_url_and_env_fallbacks(
    monkeypatch: pytest.MonkeyPatch, stream: bool
) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.setenv("GOOGLE_API_KEY", "test-google-key-4444")
    with FakeProviderServer([reply.text("a"), reply.text("b")]) as srv:
        p = Gemini(base_url=srv.url)
        call(p, req(), stream)
        monkeypatch.setenv("GEMINI_API_KEY", "test-gemini-key-5555")  # wins over GOOGLE_
        call(p, req(), stream)
    first, second = srv.requests
    assert first.headers["x-goog-api-key"] == "test-google-key-4444"
    assert second.headers["x-goog-api-key"] == "test-gemini-key-5555"
    for r in srv.requests:
        assert "key" not in r.query and "authorization" not in r.headers
        assert r.query == ("alt=sse" if stream else "")


def test_missing_key_names_both_variables(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("GEMINI_API_KEY", raising=False)
    monkeypatch.delenv("GOOGLE_API_KEY", raising=False)
    with pytest.raises(ProviderConfigError, match="GEMINI_API_KEY or GOOGLE_API_KEY"):
        asyncio.run(Gemini().complete(req()))


# ----------------------------------------------------------------- request


def test_body_roles_system_config_and_tools() -> None:
    p = Gemini(
        api_key=KEY,
        max_output_tokens=256,
        thinking={"thinkingBudget": 1024, "includeThoughts": True},
        generation_config={"temperature": 0.2},
        safety_settings=[{"category": "HARM_CATEGORY_HARASSMENT", "threshold": "BLOCK_NONE"}],
        code_execution=True,
        google_search=True,
    )
    tools = [
        ToolDefinition(name="now", description="The time."),
        ToolDefinition(
            name="add",
            description="Add.",
            input_schema={"type": "object", "properties": {"a": {"type": "integer"}}},
        ),
    ]
    b = body(p, req(user("one"), assistant("two"), user("three"), system="Be brief.", tools=tools))
    assert b["contents"] == [
        {"role": "user", "parts": [{"text": "one"}]},
        {"role": "model", "parts": [{"text": "two"}]},
        {"role": "user", "parts": [{"text": "three"}]},
    ]
    assert b["systemInstruction"] == {"parts": [{"text": "Be brief."}]}
    assert b["tools"] == [
        {
            "functionDeclarations": [
                {"name": "now", "description": "The time."},  # no arguments: no parameters
                {
                    "name": "add",
                    "description": "Add.",
                    "parameters": {"type": "OBJECT", "properties": {"a": {"type": "INTEGER"}}},
                },
            ]
        },
        {"codeExecution": {}},
        {"googleSearch": {}},
    ]
    assert b["generationConfig"] == {
        "temperature": 0.2,
        "maxOutputTokens": 256,
        "thinkingConfig": {"thinkingBudget": 1024, "includeThoughts": True},
    }
    assert b["safetySettings"][0]["threshold"] == "BLOCK_NONE"
    plain = body(Gemini(api_key=KEY), req())
    assert set(plain) == {"contents"}  # nothing we were not asked for
    assert p.build_body(req(), stream=True) == body(p, req())  # the endpoint says "stream"


def test_history_translation_ids_signatures_and_foreign_blocks() -> None:
    p = Gemini(api_key=KEY, model="gemini-3-flash-preview")
    sig = RawBlock(
        type="gemini.signature", origin="gemini", thoughtSignature=SIG, model=p.model
    )
    other_model_sig = RawBlock(
        type="gemini.signature", origin="gemini", thoughtSignature="b3RoZXI=", model="gemini-x"
    )
    code = {"executableCode": {"language": "PYTHON", "code": "1+1"}, "thoughtSignature": "Y29kZQ=="}
    history = [
        user([TextBlock(text="look"), ImageBlock(mime_type="image/png", data="aGk=")]),
        assistant(
            [
                ThinkingBlock(thinking="from claude", signature="anthropic-sig"),  # foreign
                ThinkingBlock(thinking="mine"),  # unsigned thought: optional, not sent
                TextBlock(text="Calling."),
                sig,
                ToolUseBlock(id="v3ndor1d", name="add", input={"a": 1}),
                other_model_sig,  # another model's signature is dropped
                ToolUseBlock(id="alloy-gemini-0123456789abcdef", name="add", input={"a": 2}),
                RawBlock(type="gemini.part", origin="gemini", part=code),
                RawBlock(type="gemini.grounding", origin="gemini", groundingMetadata={}),
                RawBlock(type="reasoning", origin="openai-responses", summary=[]),
                ServerToolUseBlock(id="srv_1", name="code_execution", input={}),
            ]
        ),
        tool_results(
            [
                ToolResultBlock(tool_use_id="v3ndor1d", content="2"),
                ToolResultBlock(
                    tool_use_id="alloy-gemini-0123456789abcdef", content="boom", is_error=True
                ),
            ]
        ),
        user("and now?"),
    ]
    b = body(p, req(*history))
    assert b["contents"] == [
        {
            "role": "user",
            "parts": [{"text": "look"}, {"inlineData": {"mimeType": "image/png", "data": "aGk="}}],
        },
        {
            "role": "model",
            "parts": [
                {"text": "Calling.", "thoughtSignature": SIG},
                {"functionCall": {"name": "add", "args": {"a": 1}, "id": "v3ndor1d"}},
                {"functionCall": {"name": "add", "args": {"a": 2}}},  # our id is never sent
                code,
            ],
        },
        {  # results and the next user text merge into one user turn (turns alternate)
            "role": "user",
            "parts": [
                {
                    "functionResponse": {
                        "name": "add",
                        "response": {"result": "2"},
                        "id": "v3ndor1d",
                    }
                },
                {"functionResponse": {"name": "add", "response": {"error": "boom"}}},
                {"text": "and now?"},
            ],
        },
    ]


# ----------------------------------------------------------------- JSON schema subset


class Color(str, Enum):
    RED = "red"
    BLUE = "blue"


class Leaf(BaseModel):
    value: str = Field(description="The leaf's value.")
    weight: float | None = None


class Node(BaseModel):
    name: str
    children: list[Node] = Field(default_factory=list)  # recursive


class Order(BaseModel):
    """An order with nested models."""

    id: int = Field(ge=1)
    color: Color
    kind: Literal["a", "b"] = "a"
    leaves: list[Leaf]
    best: Optional[Leaf] = None  # noqa: UP045 - the Optional spelling pydantic also sees
    tree: Node
    extra: dict[str, int] = Field(default_factory=dict)
    either: int | str = 0


_ALLOWED = {
    "type", "format", "description", "nullable", "enum", "properties", "required", "items",
    "anyOf", "minItems", "maxItems", "minimum", "maximum", "minLength", "maxLength",
}  # fmt: skip


def _walk(s: Any) -> list[dict[str, Any]]:
    out = [s]
    for v in (s.get("properties") or {}).values():
        out += _walk(v)
    if "items" in s:
        out += _walk(s["items"])
    for a in s.get("anyOf") or ():
        out += _walk(a)
    return out


def test_schema_of_nested_pydantic_models_fits_the_subset() -> None:
    g = gemini_schema(Order.model_json_schema())
    for node in _walk(g):
        assert set(node) <= _ALLOWED, set(node) - _ALLOWED
        assert node.get("type") in (None, "OBJECT", "STRING", "NUMBER", "INTEGER", "BOOLEAN",
                                    "ARRAY")  # fmt: skip
    assert "$defs" not in json.dumps(g) and "$ref" not in json.dumps(g)
    props = g["properties"]
    assert g["type"] == "OBJECT"
    assert set(g["required"]) == {"id", "color", "leaves", "tree"}
    assert props["id"] == {"type": "INTEGER", "minimum": 1}
    assert props["color"] == {"type": "STRING", "enum": ["red", "blue"]}
    assert props["kind"] == {"type": "STRING", "enum": ["a", "b"]}
    leaf = props["leaves"]["items"]
    assert leaf["properties"]["value"] == {"type": "STRING", "description": "The leaf's value."}
    assert leaf["properties"]["weight"] == {"type": "NUMBER", "nullable": True}
    assert props["best"]["nullable"] is True and props["best"]["type"] == "OBJECT"
    assert props["best"]["properties"]["value"]["type"] == "STRING"  # $ref inlined
    tree = props["tree"]
    assert tree["properties"]["children"]["items"] == {"type": "OBJECT"}  # recursion ends
    assert props["extra"] == {"type": "OBJECT"}  # additionalProperties dropped
    assert props["either"] == {"anyOf": [{"type": "INTEGER"}, {"type": "STRING"}]}


def test_tool_from_a_function_with_pydantic_arguments_declares_the_subset() -> None:
    def place(order: Order, note: str | None = None) -> str:
        """Place an order."""
        return "ok"

    tool = as_tool(place)
    definition = ToolDefinition(
        name=tool.name, description=tool.description, input_schema=tool.input_schema
    )
    b = body(Gemini(api_key=KEY), req(tools=[definition]))
    params = b["tools"][0]["functionDeclarations"][0]["parameters"]
    assert params["properties"]["order"]["properties"]["tree"]["type"] == "OBJECT"
    assert params["properties"]["note"] == {"type": "STRING", "nullable": True}
    assert "$" not in json.dumps(params)


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.fixed_dictionaries(
            {},
            optional={
                "type": st.sampled_from(["string", "integer", "object", "array", "null", "x"]),
                "enum": st.lists(st.one_of(st.text(max_size=3), st.integers(), st.none())),
                "$ref": st.sampled_from(["#/$defs/A", "#/$defs/missing", 7]),
                "format": st.text(max_size=6),
                "additionalProperties": st.booleans(),
            },
        ),
        lambda kids: st.one_of(
            st.fixed_dictionaries({"properties": st.dictionaries(st.text(max_size=3), kids)}),
            st.fixed_dictionaries({"items": kids}),
            st.fixed_dictionaries({"anyOf": st.lists(kids, max_size=3)}),
            st.fixed_dictionaries({"allOf": st.lists(kids, min_size=1, max_size=1)}),
        ),
        max_leaves=12,
    )
)
def test_schema_conversion_never_fails_and_stays_in_the_subset(schema: dict[str, Any]) -> None:
    recursive = {"type": "object", "properties": {"a": {"$ref": "#/$defs/A"}}}
    schema = {**schema, "$defs": {"A": recursive}}
    g = gemini_schema(schema)
    for node in _walk(g):
        assert set(node) <= _ALLOWED
        assert all(isinstance(v, str) for v in node.get("enum", []))
    json.dumps(g)


# ----------------------------------------------------------------- replies


@pytest.mark.parametrize("stream", [False, True])
def test_text_with_thinking_and_signature(stream: bool) -> None:
    answer = reply.thinking("Let me think about ü.", reply.text("Hello wörld, how are you?"))
    with FakeProviderServer([answer], usage=Usage(12, 30, reasoning_tokens=20)) as srv:
        c, deltas = call(Gemini(api_key=KEY, base_url=srv.url), req(), stream)
    blocks = c.message.content
    assert isinstance(blocks[0], ThinkingBlock) and blocks[0].thinking == "Let me think about ü."
    assert isinstance(blocks[1], TextBlock) and blocks[1].text == "Hello wörld, how are you?"
    assert isinstance(blocks[2], RawBlock) and blocks[2].type == "gemini.signature"
    # streamed, the signature came on a trailing empty text chunk: it signs the text before it
    assert (blocks[2].model_extra or {})["thoughtSignature"]
    assert len(blocks) == 3
    assert c.stop_reason == "end_turn" and c.raw_stop_reason == "STOP"
    assert (c.usage.input_tokens, c.usage.output_tokens) == (12, 30)  # thinking is output
    assert c.model == "gemini-2.5-flash" and c.request_id
    if stream:
        assert "".join(t for k, t in deltas if k == "text") == "Hello wörld, how are you?"
        assert "".join(t for k, t in deltas if k == "thinking") == "Let me think about ü."
        assert len(deltas) > 5


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_calls_signature_on_the_first_and_round_trip(stream: bool) -> None:
    script = [
        reply.tool_calls(("add", {"a": 1}), ("add", {"a": 2}, "idB")),
        reply.text("3"),
    ]
    with FakeProviderServer(script) as srv:
        p = Gemini(api_key=KEY, base_url=srv.url)
        c, _ = call(p, req(), stream)
        assert c.stop_reason == "tool_use" and c.raw_stop_reason == "STOP"
        first, sig, second = c.message.content
        assert isinstance(first, ToolUseBlock) and first.id.startswith("alloy-gemini-")
        assert isinstance(sig, RawBlock) and sig.type == "gemini.signature"
        assert isinstance(second, ToolUseBlock) and second.id == "idB"
        results = tool_results(
            [
                ToolResultBlock(tool_use_id=first.id, content="1"),
                ToolResultBlock(tool_use_id=second.id, content="2"),
            ]
        )
        call(p, req(user("go"), c.message, results), stream)
    answered = srv.requests[1].json["contents"]
    model_parts = answered[1]["parts"]
    recorded_sig = (sig.model_extra or {})["thoughtSignature"]
    assert model_parts == [
        {"functionCall": {"name": "add", "args": {"a": 1}}, "thoughtSignature": recorded_sig},
        {"functionCall": {"name": "add", "args": {"a": 2}, "id": "idB"}},
    ]
    assert answered[2] == {
        "role": "user",
        "parts": [
            {"functionResponse": {"name": "add", "response": {"result": "1"}}},
            {"functionResponse": {"name": "add", "response": {"result": "2"}, "id": "idB"}},
        ],
    }


@pytest.mark.parametrize("stream", [False, True])
def test_max_tokens_and_safety_are_results(stream: bool) -> None:
    script = [
        reply.tool_calls(("add", {"a": 1}), text="Cut", stop="max_tokens"),
        reply.text("", stop="refusal"),
    ]
    with FakeProviderServer(script) as srv:
        p = Gemini(api_key=KEY, base_url=srv.url)
        cut, _ = call(p, req(), stream)
        blocked, _ = call(p, req(), stream)
    assert cut.raw_stop_reason == "MAX_TOKENS" and cut.stop_reason == "end_turn"  # never run
    assert blocked.raw_stop_reason == "SAFETY" and blocked.stop_reason == "end_turn"
    assert blocked.message.content == []


@pytest.mark.parametrize("stream", [False, True])
def test_prompt_block_and_malformed_call_are_typed_errors(stream: bool) -> None:
    block = {
        "promptFeedback": {"blockReason": "SAFETY", "blockReasonMessage": "unsafe prompt"},
        "usageMetadata": {"promptTokenCount": 7, "totalTokenCount": 7},
    }
    malformed = {
        "candidates": [
            {"content": {}, "finishReason": "MALFORMED_FUNCTION_CALL", "finishMessage": "bad"}
        ]
    }
    with FakeProviderServer(
        [raw(200, [block] if stream else block, stream=stream),
         raw(200, [malformed] if stream else malformed, stream=stream)]
    ) as srv:  # fmt: skip
        p = Gemini(api_key=KEY, base_url=srv.url)
        with pytest.raises(StreamError, match=r"blocked the prompt.*SAFETY.*unsafe prompt") as e1:
            call(p, req(), stream)
        assert not e1.value.retryable
        with pytest.raises(StreamError, match="malformed function call: bad") as e2:
            call(p, req(), stream)
        assert e2.value.retryable


def test_vertex_streamed_call_arguments_are_assembled() -> None:
    def chunk(part: dict[str, Any], **extra: Any) -> dict[str, Any]:
        return {"candidates": [{"content": {"role": "model", "parts": [part]}, **extra}]}

    frames = [
        chunk({"functionCall": {"name": "read", "willContinue": True}, "thoughtSignature": SIG}),
        chunk({"functionCall": {"partialArgs": [
            {"jsonPath": "$.path", "stringValue": "/tm", "willContinue": True}],
            "willContinue": True}}),
        chunk({"functionCall": {"partialArgs": [
            {"jsonPath": "$.path", "stringValue": "p/x"},
            {"jsonPath": "$.opts.n", "numberValue": 3}], "willContinue": True}}),
        chunk({"functionCall": {}}),
        chunk({"text": ""}, finishReason="STOP"),
    ]  # fmt: skip
    with FakeProviderServer([raw(200, frames, stream=True)]) as srv:
        c, _ = call(Gemini(api_key=KEY, base_url=srv.url), req(), True)
    tool, sig = c.message.content
    assert isinstance(tool, ToolUseBlock) and tool.name == "read"
    assert tool.input == {"path": "/tmp/x", "opts": {"n": 3}}
    assert isinstance(sig, RawBlock) and (sig.model_extra or {})["thoughtSignature"] == SIG
    assert c.stop_reason == "tool_use"


def test_usage_from_the_last_chunk_cache_and_tool_tokens() -> None:
    usage = [
        {"promptTokenCount": 15, "totalTokenCount": 15},
        {"promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 5,
         "thoughtsTokenCount": 7, "toolUsePromptTokenCount": 11, "totalTokenCount": 123},
    ]  # fmt: skip
    frames = [
        {"candidates": [{"content": {"parts": [{"text": "a"}]}}], "usageMetadata": usage[0]},
        {"candidates": [{"content": {"parts": [{"text": "b"}]}, "finishReason": "STOP"}],
         "usageMetadata": usage[1], "modelVersion": "gemini-2.5-flash"},
    ]  # fmt: skip
    with FakeProviderServer([raw(200, frames, stream=True)]) as srv:
        c, _ = call(Gemini(api_key=KEY, base_url=srv.url), req(), True)
    assert c.message.text == "ab"
    u = c.usage
    assert (u.input_tokens, u.cache_read_input_tokens, u.output_tokens) == (40 + 11, 60, 12)
    assert u.cache_creation_input_tokens == 0


def test_catalog_prices_apply_with_cache_reads_priced() -> None:
    usage = Usage(input_tokens=1000, output_tokens=200, cache_read_tokens=4000, reasoning_tokens=50)
    with FakeProviderServer([reply.text("hi")], usage=usage) as srv:
        p = Gemini(api_key=KEY, base_url=srv.url, model="gemini-2.5-flash")
        result = asyncio.run(arun("hi", provider=p))
    info = lookup("gemini-2.5-flash")
    assert info is not None and info.cache_read_price == 0.03
    u = result.usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_input_tokens) == (1000, 200, 4000)
    want = (1000 * 0.30 + 200 * 2.50 + 4000 * 0.03) * 100 / 1_000_000
    assert u.priced and u.estimated_cost_cents == pytest.approx(want)


# ----------------------------------------------------------------- errors


@pytest.mark.parametrize("stream", [False, True])
def test_error_statuses(stream: bool) -> None:
    script = [
        reply.status(400, message="API key not valid. Please pass a valid API key.",
                     error_type="API_KEY_INVALID"),
        reply.status(429, retry_after=34.4),
        reply.status(503),
        reply.status(500),
        reply.status(404, message="models/nope is not found"),
        reply.status(400, message="The input token count (1200000) exceeds the maximum number "
                     "of tokens allowed (1048576)."),
    ]  # fmt: skip
    with FakeProviderServer(script) as srv:
        p = Gemini(api_key=KEY, base_url=srv.url)
        errors = []
        for _ in script:
            with pytest.raises(ProviderError) as info:
                call(p, req(), stream)
            errors.append(info.value)
    bad_key, limited, unavailable, internal, missing, too_long = errors
    assert type(bad_key) is AuthenticationError and not bad_key.retryable
    assert "API key not valid" in str(bad_key)
    assert type(limited) is RateLimitError and limited.retryable
    assert limited.retry_after == pytest.approx(34.4)  # RetryInfo.retryDelay in the body
    assert type(unavailable) is OverloadedError and unavailable.retryable
    assert type(internal) is OverloadedError and internal.retryable
    assert type(missing) is BadRequestError and "NOT_FOUND" in str(missing)
    assert type(too_long) is PromptTooLongError and "exceeds the maximum" in str(too_long)
    for e in errors:
        assert KEY not in str(e) and KEY not in getattr(e, "body", "")


def test_a_daily_quota_429_is_not_retried() -> None:
    daily = {
        "error": {"code": 429, "message": "Quota exceeded", "status": "RESOURCE_EXHAUSTED",
                  "details": [{"@type": "type.googleapis.com/google.rpc.QuotaFailure",
                               "violations": [{"quotaId": "GenerateRequestsPerDayPerProject"}]},
                              {"@type": "type.googleapis.com/google.rpc.RetryInfo",
                               "retryDelay": "5s"}]}
    }  # fmt: skip
    with FakeProviderServer([raw(429, daily)]) as srv, pytest.raises(RateLimitError) as info:
        call(Gemini(api_key=KEY, base_url=srv.url), req(), False)
    assert not info.value.retryable and info.value.retry_after == 5.0


@pytest.mark.parametrize("stream", [False, True])
def test_stream_faults(stream: bool) -> None:
    script = [
        reply.cut_off(2, reply.text("a long answer that will be cut")),
        reply.malformed(reply.text("hello there"), at=1),
        reply.error_event("partial ", message="Internal error encountered."),
    ]
    with FakeProviderServer(script) as srv:
        p = Gemini(api_key=KEY, base_url=srv.url)
        with pytest.raises(ProviderError) as cut:
            call(p, req(), stream)
        assert cut.value.retryable
        with pytest.raises(StreamError):
            call(p, req(), stream)
        with pytest.raises(ProviderError, match="Internal error encountered") as err:
            call(p, req(), stream)
        assert err.value.retryable


def test_stream_without_a_finish_reason_is_cut_off() -> None:
    frames = [{"candidates": [{"content": {"parts": [{"text": "half"}]}}]}]
    srv = FakeProviderServer([raw(200, frames, stream=True)])
    with srv, pytest.raises(StreamError, match="finishReason") as info:
        call(Gemini(api_key=KEY, base_url=srv.url), req(), True)
    assert info.value.retryable


def test_json_array_stream_without_alt_sse_is_read() -> None:
    chunks = [
        {"candidates": [{"content": {"parts": [{"text": "Sc"}]}}]},
        {"candidates": [{"content": {"parts": [{"text": "oop"}]}, "finishReason": "STOP"}]},
    ]
    with FakeProviderServer([raw(200, chunks)]) as srv:
        c, deltas = call(Gemini(api_key=KEY, base_url=srv.url), req(), True)
    assert c.message.text == "Scoop" and [t for _, t in deltas] == ["Sc", "oop"]


@pytest.mark.parametrize("stream", [False, True])
def test_call_arguments_that_are_not_an_object_are_a_retryable_error(stream: bool) -> None:
    srv = FakeProviderServer([reply.tool_calls(("add", '"not an object"'))])
    with srv, pytest.raises(StreamError, match="invalid JSON arguments for tool 'add'") as info:
        call(Gemini(api_key=KEY, base_url=srv.url), req(), stream)
    assert info.value.retryable


@pytest.mark.parametrize("stream", [False, True])
def test_the_loop_waits_as_long_as_retry_info_says(stream: bool) -> None:
    """A 429 whose body's RetryInfo says 0.25s: the run waits that long, then succeeds."""
    events: list[dict[str, Any]] = []
    with FakeProviderServer([reply.status(429, retry_after=0.25), reply.text("ok")]) as srv:
        p = Gemini(api_key=KEY, base_url=srv.url)
        if stream:
            from alloy_nb.api import astream

            result = asyncio.run(astream("hi", lambda c: None, provider=p, on_event=events.append))
        else:
            result = asyncio.run(arun("hi", provider=p, on_event=events.append))
    (retry,) = [e for e in events if e["event"] == "retry"]
    assert retry["payload"]["delay_ms"] == 250  # no retry-after header: the body said so
    assert retry["payload"]["error_type"] == "RateLimitError"
    assert result.text == "ok"


def test_a_gemini_history_goes_to_other_providers_without_gemini_blocks() -> None:
    """Switching provider mid-conversation: Gemini's signatures, verbatim parts and grounding
    stay behind; text, calls and results travel."""
    from alloy_nb.providers import Anthropic, OpenAI, OpenAICompat

    with FakeProviderServer(
        [reply.thinking("hm", reply.tool_calls(("add", {"a": 1}), text="Adding."))]
    ) as srv:
        c, _ = call(Gemini(api_key=KEY, base_url=srv.url, code_execution=True), req(), False)
    (tool,) = c.message.tool_calls
    assert any(isinstance(b, RawBlock) and b.type == "gemini.signature" for b in c.message.content)
    result = ToolResultBlock(tool_use_id=tool.id, content="1")
    history = [user("q"), c.message, tool_results([result])]
    for p in (Anthropic(api_key=KEY), OpenAI(api_key=KEY),
              OpenAICompat(api_key=KEY, model="m", base_url="http://127.0.0.1:9")):  # fmt: skip
        sent = json.dumps(p.build_body(req(*history), stream=False))
        assert "thoughtSignature" not in sent and "gemini." not in sent and "hm" not in sent
        assert "Adding." in sent and tool.id in sent


# ----------------------------------------------------------------- fuzzing the reply parser

_KEYS = ["candidates", "content", "parts", "text", "thought", "thoughtSignature", "functionCall",
         "name", "args", "id", "willContinue", "partialArgs", "jsonPath", "stringValue",
         "finishReason", "usageMetadata", "promptTokenCount", "cachedContentTokenCount",
         "promptFeedback", "blockReason", "error", "code", "message", "groundingMetadata",
         "modelVersion", "responseId", "executableCode"]  # fmt: skip
_JSON = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False)
    | st.sampled_from(["", "STOP", "MAX_TOKENS", "SAFETY", "x", "$.a"]),
    lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.sampled_from(_KEYS), kids,
                                                              max_size=5),
    max_leaves=25,
)  # fmt: skip


@settings(max_examples=300, deadline=None)
@given(st.one_of(_JSON, st.lists(_JSON, max_size=4)))
def test_any_reply_json_is_a_completion_or_a_typed_error(data: Any) -> None:
    """Whatever JSON comes back (whole, or as stream chunks), parsing ends in a Completion or
    a ProviderError, never a KeyError/TypeError from inside the parser."""
    from alloy_nb.providers.gemini import _ChunkMerger

    p = Gemini(api_key=KEY)
    c = p._call()
    with contextlib.suppress(ProviderError):
        p.parse_reply(c, data, None)
    merger = _ChunkMerger(c, None, p.model)
    try:
        for chunk in data if isinstance(data, list) else [data]:
            merger.add(chunk)
        merger.completion()
    except ProviderError:
        pass


def test_gemini_cut_stream_keeps_the_usage_it_reported() -> None:
    """A Gemini stream cut off after a chunk carrying usageMetadata: the run fails, and the
    tokens Gemini reported are still counted (the shared streaming path of every provider)."""
    import alloy_nb as alloy
    from alloy_nb.errors import AgentError

    chunk = {
        "candidates": [{"content": {"role": "model", "parts": [{"text": "Partial"}]}}],
        "usageMetadata": {"promptTokenCount": 1500, "candidatesTokenCount": 3},
    }
    cut = reply.raw(200, {"content-type": "text/event-stream"},
                    f"data: {json.dumps(chunk)}\r\n\r\n", chunk_sizes=64)
    with FakeProviderServer([cut]) as srv:
        provider = Gemini(api_key=KEY, base_url=srv.url, model="gemini-2.5-flash")
        with pytest.raises(AgentError) as info:
            alloy.stream("hi", lambda _c: None, provider=provider, max_retries=0)
    result = info.value.result
    assert result.status == "error"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1500, 3)
    assert result.usage.estimated_cost_cents > 0
