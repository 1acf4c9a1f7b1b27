"""OpenAI Responses: input items, instructions, reasoning round-trip, usage accounting and
the terminal events, over real HTTP on loopback."""

from __future__ import annotations

import json

import pytest

from alloy_nb.errors import ConfigError, ProviderError, StreamError
from alloy_nb.messages import (
    ImageBlock,
    Message,
    RawBlock,
    TextBlock,
    ThinkingBlock,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
    assistant,
    user,
)
from alloy_nb.providers import OpenAI
from alloy_nb.testing import FakeProviderServer, Usage, reply

from .conftest import call, req

KEY = "test-key-openai-88b2"
TOOLS = [
    ToolDefinition(
        name="add", description="Add.", input_schema={"type": "object", "properties": {}}
    )
]


def test_body_basics() -> None:
    p = OpenAI(api_key=KEY, model="gpt-x", max_output_tokens=100, reasoning={"effort": "low"})
    b = p.build_body(
        req(user("one"), assistant("two"), user("three"), system="Be brief.", tools=TOOLS),
        stream=False,
    )
    assert b["model"] == "gpt-x" and b["instructions"] == "Be brief."
    assert b["input"] == [
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
        {"role": "user", "content": "three"},
    ]
    assert b["tools"] == [
        {
            "type": "function",
            "name": "add",
            "description": "Add.",
            "parameters": {"type": "object", "properties": {}},
        }
    ]
    assert b["max_output_tokens"] == 100 and b["reasoning"] == {"effort": "low"}
    assert "stream" not in b and "store" not in b
    plain = OpenAI(api_key=KEY).build_body(req(), stream=True)
    assert plain["stream"] is True
    assert "instructions" not in plain and "max_output_tokens" not in plain


def test_store_false_asks_for_encrypted_reasoning() -> None:
    b = OpenAI(api_key=KEY, store=False).build_body(req(), stream=False)
    assert b["store"] is False and b["include"] == ["reasoning.encrypted_content"]


def test_tool_flow_items_keep_block_order() -> None:
    reasoning = RawBlock(
        type="reasoning", id="rs_1", summary=[], encrypted_content="gAAA", origin="openai-responses"
    )
    history = [
        user("add"),
        assistant(
            [
                reasoning,
                ToolUseBlock(id="call_1", name="add", input={"a": 1}),
                ToolUseBlock(id="call_2", name="add", input={}),
            ]
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="call_1", content="1"),
                ToolResultBlock(tool_use_id="call_2", content="err", is_error=True),
            ],
        ),
    ]
    items = OpenAI(api_key=KEY).build_body(req(*history), stream=False)["input"]
    assert items[1:] == [
        {"type": "reasoning", "id": "rs_1", "summary": [], "encrypted_content": "gAAA"},
        {"type": "function_call", "call_id": "call_1", "name": "add", "arguments": '{"a": 1}'},
        {"type": "function_call", "call_id": "call_2", "name": "add", "arguments": "{}"},
        {"type": "function_call_output", "call_id": "call_1", "output": "1"},
        {"type": "function_call_output", "call_id": "call_2", "output": "err"},
    ]


def test_images_and_foreign_blocks() -> None:
    items = OpenAI(api_key=KEY).build_body(
        req(
            user([TextBlock(text="see"), ImageBlock(mime_type="image/jpeg", data="/9j/")]),
            assistant(
                [
                    ThinkingBlock(thinking="anthropic's", signature="s"),
                    RawBlock(type="redacted_thinking", data="x", origin="anthropic"),
                    TextBlock(text="a cat"),
                ]
            ),
        ),
        stream=False,
    )["input"]
    assert items == [
        {
            "role": "user",
            "content": [
                {"type": "input_text", "text": "see"},
                {"type": "input_image", "image_url": "data:image/jpeg;base64,/9j/"},
            ],
        },
        {"role": "assistant", "content": "a cat"},
    ]


def test_url_and_auth_header() -> None:
    with FakeProviderServer([reply.text("a"), reply.text("b")]) as srv:
        call(OpenAI(api_key=KEY, base_url=srv.url), req(), False)
        call(OpenAI(api_key=KEY, base_url=srv.url + "/v1"), req(), False)
    assert [r.path for r in srv.requests] == ["/v1/responses", "/v1/responses"]
    assert srv.requests[0].headers["authorization"] == f"Bearer {KEY}"


def test_bad_options() -> None:
    with pytest.raises(ConfigError):
        OpenAI(api_key=KEY, max_output_tokens=0)
    with pytest.raises(ConfigError):
        OpenAI(api_key=KEY, reasoning="high")  # type: ignore[arg-type]


@pytest.mark.parametrize("stream", [False, True])
def test_text_reply_and_cached_usage(stream: bool) -> None:
    u = Usage(input_tokens=8, output_tokens=5, cache_read_tokens=4012, reasoning_tokens=2)
    with FakeProviderServer([reply.text("Hello world!", usage=u)]) as srv:
        c, deltas = call(OpenAI(api_key=KEY, base_url=srv.url), req(), stream)
    assert c.message == assistant("Hello world!")
    assert c.stop_reason == "end_turn" and c.raw_stop_reason == "completed"
    assert (c.usage.input_tokens, c.usage.cache_read_input_tokens, c.usage.output_tokens) == (
        8,
        4012,
        5,
    )
    assert c.request_id
    if stream:
        assert len(deltas) > 1 and "".join(t for _, t in deltas) == "Hello world!"


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_function_calls(stream: bool) -> None:
    r = reply.tool_calls(("add", {"a": 1}, "call_A"), ("add", {"a": 2}, "call_B"), text="Sure.")
    with FakeProviderServer([r]) as srv:
        c, deltas = call(OpenAI(api_key=KEY, base_url=srv.url), req(tools=TOOLS), stream)
    assert c.stop_reason == "tool_use"
    assert c.message.content == [
        TextBlock(text="Sure."),
        ToolUseBlock(id="call_A", name="add", input={"a": 1}),
        ToolUseBlock(id="call_B", name="add", input={"a": 2}),
    ]
    assert all(k == "text" for k, _ in deltas)


@pytest.mark.parametrize("stream", [False, True])
def test_reasoning_is_kept_and_sent_back(stream: bool) -> None:
    r = reply.thinking("Think: add them.", reply.tool_calls(("add", {"a": 1}, "call_R")))
    with FakeProviderServer([r, reply.text("3")]) as srv:
        p = OpenAI(api_key=KEY, base_url=srv.url, store=False)
        c, deltas = call(p, req(tools=TOOLS), stream)
        result = Message(role="user", content=[ToolResultBlock(tool_use_id="call_R", content="3")])
        c2, _ = call(p, req(user("hi"), c.message, result, tools=TOOLS), stream)
    rs = c.message.content[0]
    assert isinstance(rs, RawBlock) and rs.type == "reasoning"
    if stream:
        assert "".join(t for k, t in deltas if k == "thinking") == "Think: add them."
    sent = srv.requests[1].json["input"]
    assert [i.get("type", i.get("role")) for i in sent] == [
        "user",
        "reasoning",
        "function_call",
        "function_call_output",
    ]
    assert sent[1]["encrypted_content"].startswith("gAAAAAB") and "origin" not in sent[1]
    assert c2.message.text == "3"


@pytest.mark.parametrize("stream", [False, True])
def test_incomplete_is_end_turn_with_the_reason(stream: bool) -> None:
    with FakeProviderServer([reply.text("cut", stop="max_tokens")]) as srv:
        c, _ = call(OpenAI(api_key=KEY, base_url=srv.url), req(), stream)
    assert c.stop_reason == "end_turn" and c.raw_stop_reason == "max_output_tokens"


@pytest.mark.parametrize("stream", [False, True])
def test_refusal_part_becomes_text(stream: bool) -> None:
    with FakeProviderServer([reply.text("I can't help with that.", stop="refusal")]) as srv:
        c, _ = call(OpenAI(api_key=KEY, base_url=srv.url), req(), stream)
    assert c.message.text == "I can't help with that." and c.raw_stop_reason == "refusal"


@pytest.mark.parametrize("stream", [False, True])
def test_failed_response_is_an_error(stream: bool) -> None:
    script = [
        reply.error_event(error_type="server_error", message="boom"),
        reply.error_event(error_type="invalid_prompt", message="bad prompt"),
    ]
    with FakeProviderServer(script) as srv:
        p = OpenAI(api_key=KEY, base_url=srv.url)
        with pytest.raises(StreamError, match="boom") as e1:
            call(p, req(), stream)
        with pytest.raises(StreamError, match="bad prompt") as e2:
            call(p, req(), stream)
    assert e1.value.retryable and not e2.value.retryable


def _sse(*events: dict) -> str:
    return "".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n" for e in events)


def stream_raw(text: str):
    raw = reply.raw(200, {"content-type": "text/event-stream"}, text, chunk_sizes="random", seed=5)
    with FakeProviderServer([raw]) as srv:
        return call(OpenAI(api_key=KEY, base_url=srv.url), req(), True)


def test_error_event_is_a_stream_error() -> None:
    err = {"type": "error", "code": "rate_limit_exceeded", "message": "slow down", "param": None}
    with pytest.raises(StreamError, match="slow down") as exc:
        stream_raw(_sse({"type": "response.created", "response": {}}, err))
    assert exc.value.retryable


def test_stream_without_terminal_event_is_truncated() -> None:
    delta = {"type": "response.output_text.delta", "delta": "par", "output_index": 0}
    with pytest.raises(StreamError, match=r"response\.completed") as exc:
        stream_raw(_sse({"type": "response.created", "response": {}}, delta))
    assert exc.value.retryable
    with (
        FakeProviderServer([reply.cut_off(4, reply.text("Hello there, world"))]) as srv,
        pytest.raises(ProviderError) as exc2,
    ):
        call(OpenAI(api_key=KEY, base_url=srv.url), req(), True)
        assert exc2.value.retryable


def test_completed_without_output_falls_back_to_done_items() -> None:
    item = {
        "type": "message",
        "id": "msg_1",
        "role": "assistant",
        "content": [{"type": "output_text", "text": "from items"}],
    }
    done = {
        "type": "response.completed",
        "response": {"status": "completed", "output": [], "usage": None},
    }
    c, _ = stream_raw(
        _sse({"type": "response.output_item.done", "output_index": 0, "item": item}, done)
    )
    assert c.message.text == "from items"


def test_invalid_arguments_and_unknown_items() -> None:
    bad_args = reply.tool_calls(("add", "{nope"))
    with (
        FakeProviderServer([bad_args]) as srv,
        pytest.raises(StreamError, match="invalid JSON") as exc,
    ):
        call(OpenAI(api_key=KEY, base_url=srv.url), req(tools=TOOLS), False)
    assert exc.value.retryable
    odd = {"status": "completed", "output": [{"type": "web_search_call", "id": "ws_1"}]}
    raw = reply.raw(200, {"content-type": "application/json"}, json.dumps(odd))
    with FakeProviderServer([raw]) as srv:  # unknown items are kept verbatim (issue 9)
        c, _ = call(OpenAI(api_key=KEY, base_url=srv.url), req(), False)
    assert [b.type for b in c.message.content] == ["web_search_call"]


def test_malformed_event() -> None:
    with (
        FakeProviderServer([reply.malformed(reply.text("hello"), at=3)]) as srv,
        pytest.raises(StreamError, match="malformed"),
    ):
        call(OpenAI(api_key=KEY, base_url=srv.url), req(), True)
