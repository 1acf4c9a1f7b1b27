"""Anthropic Messages: request translation, reply parsing (whole and streamed) and the
stream's failure modes, over real HTTP on loopback."""

from __future__ import annotations

import asyncio
import json
import re

import pytest

from alloy_nb.errors import ConfigError, ProviderError, StreamError
from alloy_nb.messages import (
    ImageBlock,
    Message,
    RawBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    assistant,
    user,
)
from alloy_nb.providers import Anthropic, ProviderRequest
from alloy_nb.testing import FakeProviderServer, reply

from .conftest import call, req

KEY = "test-key-anthropic-5d1c"
TOOLS = [
    ToolDefinition(
        name="add",
        description="Add two integers.",
        input_schema={"type": "object", "properties": {"a": {"type": "integer"}}},
    )
]


def body(p: Anthropic, request: ProviderRequest, stream: bool = False) -> dict:
    return p.build_body(request, stream=stream)


# ----------------------------------------------------------------- request


def test_body_basics() -> None:
    p = Anthropic(api_key=KEY, model="claude-x")
    b = body(p, req(user("one"), assistant("two"), user("three"), system="Be brief.", tools=TOOLS))
    assert b["model"] == "claude-x" and b["max_tokens"] == 4096
    assert b["system"] == "Be brief."
    assert b["messages"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    assert b["tools"] == [
        {
            "name": "add",
            "description": "Add two integers.",
            "input_schema": {"type": "object", "properties": {"a": {"type": "integer"}}},
        }
    ]
    assert "stream" not in b and "thinking" not in b
    assert body(p, req(), stream=True)["stream"] is True
    assert "system" not in body(p, req()) and "tools" not in body(p, req())


def test_tool_round_trip_blocks() -> None:
    p = Anthropic(api_key=KEY)
    history = [
        user("add 1 and 2"),
        assistant(
            [
                ThinkingBlock(thinking="hmm", signature="sig=="),
                RawBlock(type="redacted_thinking", data="opaque", origin="anthropic"),
                TextBlock(text="Let me add."),
                ToolUseBlock(id="toolu_1", name="add", input={"a": 1, "b": 2}),
                ToolUseBlock(id="toolu_2", name="add", input={"a": 3}),
            ]
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="toolu_1", content="3"),
                ToolResultBlock(tool_use_id="toolu_2", content="boom", is_error=True),
            ],
        ),
    ]
    msgs = body(p, req(*history))["messages"]
    assert msgs[1]["content"] == [
        {"type": "thinking", "thinking": "hmm", "signature": "sig=="},
        {"type": "redacted_thinking", "data": "opaque"},
        {"type": "text", "text": "Let me add."},
        {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {"a": 1, "b": 2}},
        {"type": "tool_use", "id": "toolu_2", "name": "add", "input": {"a": 3}},
    ]
    assert msgs[2] == {
        "role": "user",
        "content": [
            {"type": "tool_result", "tool_use_id": "toolu_1", "content": "3"},
            {"type": "tool_result", "tool_use_id": "toolu_2", "content": "boom", "is_error": True},
        ],
    }


def test_foreign_and_empty_blocks_are_not_sent() -> None:
    p = Anthropic(api_key=KEY)
    msg = assistant(
        [
            ThinkingBlock(thinking="deepseek reasoning"),  # unsigned: another vendor's
            RawBlock(type="reasoning", id="rs_1", origin="openai-responses"),
            TextBlock(text=""),
            TextBlock(text="ok"),
        ]
    )
    assert body(p, req(user("q"), msg))["messages"][1]["content"] == [
        {"type": "text", "text": "ok"}
    ]
    empty = assistant([ThinkingBlock(thinking="x")])
    assert len(body(p, req(user("q"), empty, user("again")))["messages"]) == 2


def test_images_and_server_tool_blocks() -> None:
    p = Anthropic(api_key=KEY)
    msgs = body(
        p,
        req(
            user([TextBlock(text="what is this"), ImageBlock(mime_type="image/png", data="iVBO")]),
            assistant(
                [
                    ServerToolUseBlock(id="srvtoolu_1", name="code_execution", input={"code": "1"}),
                    RawBlock(
                        type="code_execution_tool_result",
                        tool_use_id="srvtoolu_1",
                        content={"type": "code_execution_result", "stdout": "1"},
                    ),
                ]
            ),
        ),
    )["messages"]
    assert msgs[0]["content"][1] == {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": "iVBO"},
    }
    assert [b["type"] for b in msgs[1]["content"]] == [
        "server_tool_use",
        "code_execution_tool_result",
    ]


def test_thinking_option() -> None:
    p = Anthropic(api_key=KEY, thinking={"type": "enabled", "budget_tokens": 2048})
    assert body(p, req())["thinking"] == {"type": "enabled", "budget_tokens": 2048}
    for bad in ({"type": "enabled"}, {"type": "enabled", "budget_tokens": 0}, "yes", {}):
        with pytest.raises(ConfigError, match="thinking"):
            Anthropic(api_key=KEY, thinking=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="below max_output_tokens"):
        Anthropic(
            api_key=KEY, thinking={"type": "enabled", "budget_tokens": 5000}, max_output_tokens=4096
        )
    assert body(Anthropic(api_key=KEY, thinking={"type": "adaptive"}), req())["thinking"] == {
        "type": "adaptive"
    }


def test_code_execution_tool_and_one_merged_beta_header() -> None:
    with FakeProviderServer([reply.text("ok"), reply.text("ok")]) as srv:
        p = Anthropic(
            api_key=KEY,
            base_url=srv.url,
            code_execution=True,
            headers={"anthropic-beta": "context-1m-2025-08-07, code-execution-2025-08-25"},
        )
        call(p, req(tools=TOOLS), False)
        call(Anthropic(api_key=KEY, base_url=srv.url), req(tools=TOOLS), False)
    with_ce, without = srv.requests
    assert with_ce.json["tools"][-1] == {
        "type": "code_execution_20250825",
        "name": "code_execution",
    }
    assert len(with_ce.json["tools"]) == 2
    assert with_ce.headers["anthropic-beta"] == "context-1m-2025-08-07,code-execution-2025-08-25"
    assert len(without.json["tools"]) == 1 and "anthropic-beta" not in without.headers


def test_headers_and_path() -> None:
    with FakeProviderServer([reply.text("ok"), reply.text("ok")]) as srv:
        call(Anthropic(api_key=KEY, base_url=srv.url + "/"), req(), False)
        call(Anthropic(api_key=KEY, base_url=srv.url + "/v1"), req(), False)
    r = srv.requests[0]
    assert [q.path for q in srv.requests] == ["/v1/messages", "/v1/messages"]
    assert r.headers["x-api-key"] == KEY
    assert r.headers["anthropic-version"] == "2023-06-01"
    assert r.headers["content-type"] == "application/json"
    assert "authorization" not in r.headers


def test_repr_hides_the_key() -> None:
    p = Anthropic(api_key=KEY)
    assert KEY not in repr(p) and KEY not in repr(vars(p))


# ----------------------------------------------------------------- replies


@pytest.mark.parametrize("stream", [False, True])
def test_text_reply(stream: bool) -> None:
    with FakeProviderServer([reply.text("Hello world!", usage=(10, 5))]) as srv:
        c, deltas = call(Anthropic(api_key=KEY, base_url=srv.url), req(), stream)
    assert c.stop_reason == "end_turn" and c.raw_stop_reason == "end_turn"
    assert c.message == assistant("Hello world!")
    assert (c.usage.input_tokens, c.usage.output_tokens) == (10, 5)
    assert c.request_id and c.request_id.startswith("req_")
    if stream:
        assert len(deltas) > 1 and all(k == "text" for k, _ in deltas)
        assert "".join(t for _, t in deltas) == "Hello world!"


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls(stream: bool) -> None:
    r = reply.tool_calls(
        ("add", {"a": 1, "b": 2}), ("add", {"a": 3, "b": {"nested": [4]}}), text="On it."
    )
    with FakeProviderServer([r]) as srv:
        c, deltas = call(Anthropic(api_key=KEY, base_url=srv.url), req(tools=TOOLS), stream)
    assert c.stop_reason == "tool_use"
    [text, t1, t2] = c.message.content
    assert text == TextBlock(text="On it.")
    assert (t1.name, t1.input) == ("add", {"a": 1, "b": 2})
    assert t2.input == {"a": 3, "b": {"nested": [4]}}
    assert t1.id != t2.id and t1.id.startswith("toolu_")
    assert [k for k, _ in deltas] == (["text"] * len(deltas))


@pytest.mark.parametrize("stream", [False, True])
def test_thinking_with_signature_and_redacted(stream: bool) -> None:
    script = [
        reply.thinking("Let me think about it.", reply.text("42"), signature="SIG"),
        reply.thinking("", reply.text("ok"), redacted=True),
    ]
    with FakeProviderServer(script) as srv:
        p = Anthropic(
            api_key=KEY, base_url=srv.url, thinking={"type": "enabled", "budget_tokens": 1024}
        )
        c, deltas = call(p, req(), stream)
        c2, _ = call(p, req(), stream)
    assert c.message.content[0] == ThinkingBlock(thinking="Let me think about it.", signature="SIG")
    assert c.message.text == "42"
    if stream:
        assert "".join(t for k, t in deltas if k == "thinking") == "Let me think about it."
        assert "".join(t for k, t in deltas if k == "text") == "42"
    redacted = c2.message.content[0]
    assert isinstance(redacted, RawBlock) and redacted.type == "redacted_thinking"
    # both go back verbatim on the next request
    wire = p.build_body(req(user("q"), c.message, user("q2"), c2.message), stream=False)["messages"]
    assert wire[1]["content"][0] == {
        "type": "thinking",
        "thinking": "Let me think about it.",
        "signature": "SIG",
    }
    assert (
        wire[3]["content"][0]["type"] == "redacted_thinking"
        and "origin" not in wire[3]["content"][0]
    )


@pytest.mark.parametrize("stream", [False, True])
def test_cache_usage_and_other_stop_reasons(stream: bool) -> None:
    from alloy_nb.testing import Usage

    u = Usage(input_tokens=3, output_tokens=7, cache_read_tokens=1111, cache_write_tokens=418)
    with FakeProviderServer([reply.text("x", usage=u, stop="max_tokens")]) as srv:
        c, _ = call(Anthropic(api_key=KEY, base_url=srv.url), req(), stream)
    assert c.usage.model_dump(
        include={
            "input_tokens",
            "output_tokens",
            "cache_read_input_tokens",
            "cache_creation_input_tokens",
        }
    ) == {
        "input_tokens": 3,
        "output_tokens": 7,
        "cache_read_input_tokens": 1111,
        "cache_creation_input_tokens": 418,
    }
    assert c.stop_reason == "end_turn" and c.raw_stop_reason == "max_tokens"


def _sse(*events: dict) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


_START = {
    "type": "message_start",
    "message": {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [],
        "stop_reason": None,
        "usage": {"input_tokens": 5, "output_tokens": 1, "cache_read_input_tokens": 2},
    },
}
_SSE = {"content-type": "text/event-stream"}


def stream_raw(text: str):
    with FakeProviderServer([reply.raw(200, _SSE, text, chunk_sizes="random", seed=3)]) as srv:
        return call(Anthropic(api_key=KEY, base_url=srv.url), req(), True)


def test_message_delta_usage_overwrites_with_latest_non_null() -> None:
    text = _sse(
        _START,
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "hi"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 9, "input_tokens": 6, "cache_read_input_tokens": None},
        },
        {"type": "message_stop"},
    )
    c, _ = stream_raw(text)
    assert (c.usage.input_tokens, c.usage.output_tokens, c.usage.cache_read_input_tokens) == (
        6,
        9,
        2,
    )
    assert c.model == "claude-x"


def test_error_event_after_200_is_a_stream_error() -> None:
    with (
        FakeProviderServer([reply.error_event("partial ", error_type="overloaded_error")]) as srv,
        pytest.raises(StreamError, match="overloaded") as exc,
    ):
        call(Anthropic(api_key=KEY, base_url=srv.url), req(), True)
    assert exc.value.retryable
    bad = {"type": "error", "error": {"type": "invalid_request_error", "message": "nope"}}
    with pytest.raises(StreamError, match="nope") as exc2:
        stream_raw(_sse(_START, bad))
    assert not exc2.value.retryable


def test_cut_off_stream_is_a_retryable_error() -> None:
    with (
        FakeProviderServer([reply.cut_off(3, reply.text("Hello there, friend"))]) as srv,
        pytest.raises((StreamError, ProviderError)) as exc,
    ):
        call(Anthropic(api_key=KEY, base_url=srv.url), req(), True)
    assert exc.value.retryable
    with pytest.raises(StreamError, match="message_stop") as exc2:  # clean EOF, no stop
        stream_raw(_sse(_START))
    assert exc2.value.retryable


def test_malformed_event_is_a_stream_error() -> None:
    with (
        FakeProviderServer([reply.malformed(reply.text("hello"), at=2)]) as srv,
        pytest.raises(StreamError, match="malformed") as exc,
    ):
        call(Anthropic(api_key=KEY, base_url=srv.url), req(), True)
    assert not exc.value.retryable
    delta_before_start = {
        "type": "content_block_delta",
        "index": 3,
        "delta": {"type": "text_delta", "text": "x"},
    }
    with pytest.raises(StreamError, match="malformed"):
        stream_raw(_sse(_START, delta_before_start))


def test_invalid_tool_json_is_a_retryable_error_unless_cut_by_max_tokens() -> None:
    bad = reply.tool_calls(("add", '{"a": 1,'))
    with FakeProviderServer([bad]) as srv, pytest.raises(StreamError, match="invalid JSON") as exc:
        call(Anthropic(api_key=KEY, base_url=srv.url), req(tools=TOOLS), True)
    assert exc.value.retryable
    cut = reply.tool_calls(("add", '{"a": 1,'), stop="max_tokens")
    with FakeProviderServer([cut]) as srv:
        c, _ = call(Anthropic(api_key=KEY, base_url=srv.url), req(tools=TOOLS), True)
    assert c.stop_reason == "end_turn" and c.raw_stop_reason == "max_tokens"
    assert c.message.tool_calls[0].input == {}


def test_unknown_block_types_are_kept_verbatim_and_unknown_events_ignored() -> None:
    # spec 5.3: block types this module does not know are kept with their keys, and go back
    # to Anthropic unchanged; a future delta type must not sink the whole reply either
    weird = {
        "type": "message",
        "content": [{"type": "hologram", "data": "?"}, {"type": "text", "text": "hi"}],
        "stop_reason": "end_turn",
        "usage": {},
    }
    with FakeProviderServer(
        [reply.raw(200, {"content-type": "application/json"}, json.dumps(weird))]
    ) as srv:
        c, _ = call(Anthropic(api_key=KEY, base_url=srv.url), req(), False)
    raw = c.message.content[0]
    assert isinstance(raw, RawBlock) and raw.type == "hologram" and c.message.text == "hi"
    sent = body(Anthropic(api_key=KEY), req(user("q"), c.message, user("more")))
    assert sent["messages"][1]["content"][0] == {"type": "hologram", "data": "?"}
    text = _sse(
        _START,
        {"type": "future_event", "x": 1},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "future_delta", "x": 1}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "ok"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 1},
        },
        {"type": "message_stop"},
    )
    c, _ = stream_raw(text)
    assert c.message.content == [TextBlock(text="ok")] and c.stop_reason == "end_turn"


def test_tool_ids_from_other_vendors_are_mapped_to_ids_anthropic_accepts() -> None:
    # Kimi/OpenRouter ids ("functions.add:0") reach Anthropic after a model switch; the API
    # only takes [A-Za-z0-9_-]+ and the call and its result must still match.
    hist = [
        user("q"),
        assistant([ToolUseBlock(id="functions.add:0", name="add", input={})]),
        Message(role="user", content=[ToolResultBlock(tool_use_id="functions.add:0", content="1")]),
        assistant([ToolUseBlock(id="toolu_01Ab-c_9", name="add", input={})]),
        Message(role="user", content=[ToolResultBlock(tool_use_id="toolu_01Ab-c_9", content="2")]),
    ]
    msgs = body(Anthropic(api_key=KEY), req(*hist))["messages"]
    mapped = msgs[1]["content"][0]["id"]
    assert re.fullmatch(r"[A-Za-z0-9_-]+", mapped)
    assert msgs[2]["content"][0]["tool_use_id"] == mapped
    assert mapped == body(Anthropic(api_key=KEY), req(*hist))["messages"][1]["content"][0]["id"]
    assert msgs[3]["content"][0]["id"] == "toolu_01Ab-c_9"  # valid ids are left alone
    assert msgs[4]["content"][0]["tool_use_id"] == "toolu_01Ab-c_9"


def test_stream_answered_with_json_is_parsed_as_a_whole_reply() -> None:
    whole = {
        "type": "message",
        "content": [{"type": "text", "text": "not streamed"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 1, "output_tokens": 2},
    }
    with FakeProviderServer(
        [reply.raw(200, {"content-type": "application/json"}, json.dumps(whole))]
    ) as srv:
        c, deltas = call(Anthropic(api_key=KEY, base_url=srv.url), req(), True)
    assert c.message.text == "not streamed" and deltas == []


def test_on_delta_errors_are_not_mistaken_for_malformed_events() -> None:
    with FakeProviderServer([reply.text("hello")]) as srv:
        p = Anthropic(api_key=KEY, base_url=srv.url)

        def boom(kind: str, text: str) -> None:
            raise KeyError("from the callback")

        async def go():
            return await p.stream(req(), boom)

        with pytest.raises(KeyError, match="from the callback"):
            asyncio.run(go())
