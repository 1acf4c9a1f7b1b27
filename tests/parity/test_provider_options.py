"""Provider additions of reference 0.9 (spec §5.3-5.5, §10), checked on the wire through
the loopback FakeProviderServer and against a real recorded Anthropic cache exchange:
``Anthropic(cache=True)`` (conformance L153), ``OpenAICompat(extra_body=...)`` and media a
provider cannot take (L154, M165)."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from alloy_nb import Session, model_metadata
from alloy_nb.errors import ConfigError
from alloy_nb.messages import ImageBlock, Message, RawBlock, TextBlock, user
from alloy_nb.providers import Anthropic, OpenAI, OpenAICompat, ProviderRequest
from alloy_nb.providers.base import Completion
from alloy_nb.testing import FIXTURES_DIR, FakeProviderServer, load_fixture, reply
from alloy_nb.testing.wire import Usage as WireUsage

KEY = "test-key-provider-options"
TOOLS = [{"name": "echo", "description": "Echo", "input_schema": {"type": "object"}},
         {"name": "read", "description": "Read", "input_schema": {"type": "object"}}]


def _complete(provider: Any, request: ProviderRequest, stream: bool = False) -> Completion:
    async def go() -> Completion:
        if stream:
            return await provider.stream(request, lambda k, t: None)
        return await provider.complete(request)

    return asyncio.run(go())


def _request(messages: list[Message], system: str | None = "Be brief.") -> ProviderRequest:
    return ProviderRequest.model_validate(
        {"messages": messages, "system": system, "tools": TOOLS})


# ------------------------------------------------------------------ Anthropic cache


def test_conformance_v09_anthropic_cache_marks_system_last_tool_and_last_message() -> None:
    history = [user("first question"), Message(role="assistant", content="an answer"),
               user("second question")]
    with FakeProviderServer([reply.text("ok"), reply.text("ok")]) as server:
        _complete(Anthropic(api_key=KEY, base_url=server.url, cache=True), _request(history))
        _complete(Anthropic(api_key=KEY, base_url=server.url), _request(history))
        cached, plain = (json.loads(r.body) for r in server.requests)
    eph = {"type": "ephemeral"}
    assert cached["system"] == [{"type": "text", "text": "Be brief.", "cache_control": eph}]
    assert [t.get("cache_control") for t in cached["tools"]] == [None, eph]
    assert cached["messages"][-1]["content"] == [
        {"type": "text", "text": "second question", "cache_control": eph}]
    assert "cache_control" not in json.dumps(cached["messages"][:-1])
    # without cache=True nothing changes on the wire
    assert plain["system"] == "Be brief." and "cache_control" not in json.dumps(plain)


def test_conformance_v09_anthropic_cache_breakpoint_skips_thinking_and_code_tool() -> None:
    from alloy_nb.messages import ThinkingBlock, ToolResultBlock, ToolUseBlock

    history = [user("go"), Message(role="assistant", content=[
        ThinkingBlock(thinking="hmm", signature="sig"),
        ToolUseBlock(id="toolu_1", name="echo", input={"text": "x"})]),
        Message(role="user", content=[ToolResultBlock(tool_use_id="toolu_1", content="x")])]
    provider = Anthropic(api_key=KEY, cache=True, code_execution=True)
    body = provider.build_body(_request(history, system=None), stream=False)
    assert "system" not in body
    assert body["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}
    assert [t.get("cache_control") for t in body["tools"]] == [
        None, {"type": "ephemeral"}, None]  # the last of *our* tools, not code execution
    only_thinking = Anthropic(api_key=KEY, cache=True).build_body(_request(
        [user("q"), Message(role="assistant", content=[
            ThinkingBlock(thinking="t", signature="s")])], system=None), stream=False)
    assert "cache_control" not in json.dumps(only_thinking["messages"])
    with pytest.raises(ConfigError, match="cache must be True or False"):
        Anthropic(api_key=KEY, cache="yes")  # type: ignore[arg-type]


def test_conformance_L153_cache_tokens_from_a_recorded_exchange_show_in_usage_and_cost(
) -> None:
    """The real recording (pydantic-ai's test_anthropic_cache_real_api): two turns of one
    conversation; the second reads 1 111 cached tokens and writes 418."""
    exchanges = load_fixture(
        FIXTURES_DIR / "pydantic-ai/anthropic/test_anthropic/test_anthropic_cache_real_api.yaml")
    first_prompt = exchanges[0].request_json["messages"][0]["content"][0]["text"]
    second_prompt = exchanges[1].request_json["messages"][2]["content"][0]["text"]
    with FakeProviderServer([ex.as_reply() for ex in exchanges]) as server:
        provider = Anthropic(api_key=KEY, base_url=server.url, model="claude-sonnet-4-5",
                             cache=True)
        session = Session(provider=provider, system_prompt="You are a helpful assistant.")
        first = session.chat(first_prompt)
        second = session.chat(second_prompt)
        sent = [json.loads(r.body) for r in server.requests]
    u = second.run_usage
    assert (u.input_tokens, u.output_tokens, u.cache_read_input_tokens,
            u.cache_creation_input_tokens) == (3, 33, 1111, 418)
    assert first.run_usage.cache_read_input_tokens == 1111
    info = model_metadata.lookup("claude-sonnet-4-5")
    expected_cents = (3 * info.input_price + 33 * info.output_price
                      + 1111 * info.cache_read_price + 418 * info.cache_write_price) / 1e4
    assert u.priced and u.estimated_cost_cents == pytest.approx(expected_cents)
    assert session.usage.cache_read_input_tokens == 2222
    assert sent[1]["system"][0]["cache_control"] == {"type": "ephemeral"}
    assert sent[1]["messages"][-1]["content"][-1]["cache_control"] == {"type": "ephemeral"}


def test_conformance_L153_streamed_cache_usage_is_counted() -> None:
    usage = WireUsage(input_tokens=5, output_tokens=7, cache_read_tokens=900,
                      cache_write_tokens=40)
    with FakeProviderServer([reply.text("cached", usage=usage)]) as server:
        c = _complete(Anthropic(api_key=KEY, base_url=server.url, cache=True),
                      _request([user("hi")]), stream=True)
    assert (c.usage.cache_read_input_tokens, c.usage.cache_creation_input_tokens) == (900, 40)


# ------------------------------------------------------------------ OpenAICompat extra_body


def test_conformance_v09_extra_body_is_merged_last_and_may_override() -> None:
    extra = {"temperature": 0.2, "max_tokens": 77, "provider": {"order": ["groq"]}}
    with FakeProviderServer([reply.text("ok"), reply.text("ok")]) as server:
        p = OpenAICompat(api_key=KEY, model="m", base_url=server.url, max_output_tokens=10,
                         extra_body=extra)
        _complete(p, _request([user("hi")]))
        _complete(p, _request([user("hi")]), stream=True)
        plain, streamed = (json.loads(r.body) for r in server.requests)
    assert plain["temperature"] == 0.2 and plain["provider"] == {"order": ["groq"]}
    assert plain["max_tokens"] == 77  # overrides our max_output_tokens
    assert plain["messages"][0] == {"role": "system", "content": "Be brief."}
    assert streamed["stream"] is True and streamed["temperature"] == 0.2
    extra["temperature"] = 1.5  # the provider kept its own copy
    assert p.build_body(_request([user("x")]), stream=False)["temperature"] == 0.2


def test_conformance_v09_extra_body_works_with_presets_and_rejects_non_dicts() -> None:
    p = OpenAICompat.openrouter("x-ai/grok-4-fast", api_key=KEY,
                                extra_body={"reasoning": {"effort": "low"}})
    assert p.build_body(_request([user("x")]), stream=False)["reasoning"] == {"effort": "low"}
    with pytest.raises(ConfigError, match="extra_body must be a dict"):
        OpenAICompat(api_key=KEY, model="m", base_url="http://127.0.0.1:1",
                     extra_body=[("a", 1)])  # type: ignore[arg-type]


# ------------------------------------------------------------------ unsupported media


def _media_message() -> Message:
    return Message(role="user", content=[
        TextBlock(text="what is in these?"),
        ImageBlock(mime_type="image/png", data="iVBORw0KGgo="),
        {"type": "audio", "mime_type": "audio/wav", "data": "UklGRg=="},
        {"type": "video", "mime_type": "video/mp4", "data": "AAAA"},
        {"type": "document", "mime_type": "application/pdf", "uri": "https://x/y.pdf"},
    ])


def test_media_blocks_are_kept_as_raw_blocks() -> None:
    kinds = [type(b).__name__ for b in _media_message().content]
    assert kinds == ["TextBlock", "ImageBlock", "RawBlock", "RawBlock", "RawBlock"]


@pytest.mark.parametrize(("make", "label"), [
    (lambda url: Anthropic(api_key=KEY, base_url=url), "Anthropic"),
    (lambda url: OpenAI(api_key=KEY, base_url=url), "OpenAI"),
    (lambda url: OpenAICompat(api_key=KEY, model="m", base_url=url), "OpenAICompat"),
])
def test_conformance_L154_M165_unsupported_media_becomes_a_text_note(
    make: Any, label: str
) -> None:
    with FakeProviderServer([reply.text("I see an image")]) as server:
        c = _complete(make(server.url), _request([_media_message()]))
        body = server.requests[0].body.decode()
    assert c.message.text == "I see an image"  # the request was accepted
    for kind in ("audio", "video", "document"):
        assert f"[Unsupported media type for {label} provider: {kind}]" in body
    assert "iVBORw0KGgo=" in body  # the image itself still goes
    assert "UklGRg==" not in body  # the audio bytes do not


def test_anthropic_native_document_block_passes_through() -> None:
    doc = RawBlock.model_validate({"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}})
    body = Anthropic(api_key=KEY).build_body(
        _request([Message(role="user", content=[TextBlock(text="summarise"), doc])]),
        stream=False)
    assert body["messages"][0]["content"][1] == {"type": "document", "source": {
        "type": "base64", "media_type": "application/pdf", "data": "JVBERi0="}}
