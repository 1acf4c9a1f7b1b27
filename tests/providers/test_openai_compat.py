"""Chat Completions and the Compat flags: request shape, tool-call assembly from deltas,
end-of-stream rules, presets, over real HTTP on loopback."""

from __future__ import annotations

import json

import pytest

from alloy_nb.errors import ConfigError, StreamError
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
from alloy_nb.providers import Compat, OpenAICompat
from alloy_nb.testing import FakeProviderServer, Usage, reply

from .conftest import call, req

KEY = "test-key-compat-41ee"
TOOLS = [ToolDefinition(name="add", description="Add.")]
URL = "http://127.0.0.1:9"


def make(url: str = URL, **kw) -> OpenAICompat:
    kw.setdefault("model", "m")
    return OpenAICompat(api_key=KEY, base_url=url, **kw)


# ----------------------------------------------------------------- request


def test_body_basics() -> None:
    b = make(max_output_tokens=64).build_body(
        req(user("one"), assistant("two"), system="Be brief.", tools=TOOLS), stream=True
    )
    assert b["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "one"},
        {"role": "assistant", "content": "two"},
    ]
    assert b["tools"] == [
        {
            "type": "function",
            "function": {
                "name": "add",
                "description": "Add.",
                "parameters": {"type": "object", "properties": {}},
            },
        }
    ]
    assert b["max_tokens"] == 64
    assert b["stream"] is True and b["stream_options"] == {"include_usage": True}
    quiet = make(
        compat=Compat(
            supports_stream_options=False,
            max_tokens_field="max_completion_tokens",
            system_role="developer",
        ),
        max_output_tokens=5,
    )
    b2 = quiet.build_body(req(system="S"), stream=True)
    assert "stream_options" not in b2 and b2["max_completion_tokens"] == 5
    assert b2["messages"][0]["role"] == "developer"
    assert "max_tokens" not in make().build_body(req(), stream=False)


def test_tool_history_and_reasoning_field() -> None:
    history = [
        user([TextBlock(text="look"), ImageBlock(mime_type="image/png", data="iVBO")]),
        assistant(
            [
                ThinkingBlock(thinking="let me add"),
                ToolUseBlock(id="call_1", name="add", input={"a": 1}),
                ToolUseBlock(id="call_2", name="add", input={}),
            ]
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="call_1", content="1"),
                ToolResultBlock(tool_use_id="call_2", content="x", is_error=True),
            ],
        ),
    ]
    plain = make().build_body(req(*history), stream=False)["messages"]
    assert plain[0]["content"][1] == {
        "type": "image_url",
        "image_url": {"url": "data:image/png;base64,iVBO"},
    }
    assert plain[1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {
                "id": "call_1",
                "type": "function",
                "function": {"name": "add", "arguments": '{"a": 1}'},
            },
            {"id": "call_2", "type": "function", "function": {"name": "add", "arguments": "{}"}},
        ],
    }
    assert plain[2:] == [
        {"role": "tool", "tool_call_id": "call_1", "content": "1"},
        {"role": "tool", "tool_call_id": "call_2", "content": "x"},
    ]
    ds = OpenAICompat.deepseek("deepseek-reasoner", api_key=KEY).build_body(
        req(*history), stream=False
    )
    assert ds["messages"][1]["reasoning_content"] == "let me add"


def test_mistral_ids_are_mapped_consistently() -> None:
    history = [
        user("q"),
        assistant(
            [
                ToolUseBlock(id="toolu_01ABCdef", name="add"),
                ToolUseBlock(id="pcZFHqej8", name="add"),
            ]
        ),
        Message(
            role="user",
            content=[
                ToolResultBlock(tool_use_id="toolu_01ABCdef", content="1"),
                ToolResultBlock(tool_use_id="pcZFHqej8", content="2"),
            ],
        ),
    ]
    msgs = OpenAICompat.mistral("mistral-large-latest", api_key=KEY).build_body(
        req(*history), stream=False
    )["messages"]
    mapped, kept = (c["id"] for c in msgs[1]["tool_calls"])
    assert kept == "pcZFHqej8"
    assert len(mapped) == 9 and mapped.isalnum() and mapped != "toolu_01A"
    assert [m["tool_call_id"] for m in msgs[2:]] == [mapped, kept]


def test_presets() -> None:
    expect = {
        "ollama": ("http://localhost:11434/v1/chat/completions", None),
        "openrouter": ("https://openrouter.ai/api/v1/chat/completions", "OPENROUTER_API_KEY"),
        "gemini": (
            "https://generativelanguage.googleapis.com/v1beta/openai/chat/completions",
            "GEMINI_API_KEY",
        ),
        "xai": ("https://api.x.ai/v1/chat/completions", "XAI_API_KEY"),
        "deepseek": ("https://api.deepseek.com/chat/completions", "DEEPSEEK_API_KEY"),
        "mistral": ("https://api.mistral.ai/v1/chat/completions", "MISTRAL_API_KEY"),
        "groq": ("https://api.groq.com/openai/v1/chat/completions", "GROQ_API_KEY"),
        "together": ("https://api.together.xyz/v1/chat/completions", "TOGETHER_API_KEY"),
    }
    for name, (url, env) in expect.items():
        p = getattr(OpenAICompat, name)("some-model")
        assert p._url == url, name
        assert (p._key.env[0] if p._key.env else None) == env
        assert p.model == "some-model"
    assert OpenAICompat.ollama().model == "llama3.2"
    assert OpenAICompat.gemini("g")._key.env == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert OpenAICompat.mistral("m").compat.mistral_tool_ids
    assert OpenAICompat.deepseek("d").compat.reasoning_field == "reasoning_content"
    assert not OpenAICompat.groq("g").compat.requires_done_marker  # finish_reason suffices
    assert OpenAICompat.openrouter("o").compat.finish_reason_optional
    custom = OpenAICompat.groq("g", compat=Compat(), base_url="http://127.0.0.1:1")
    assert custom.compat == Compat() and custom._url == "http://127.0.0.1:1/v1/chat/completions"


def test_base_url_from_environment_and_v1_dedupe(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        OpenAICompat(model="m")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://localhost:8000/v1")
    assert OpenAICompat(model="m")._url == "http://localhost:8000/v1/chat/completions"
    with pytest.raises(ConfigError, match="model"):
        OpenAICompat(base_url=URL)
    with pytest.raises(Exception, match="extra"):
        Compat(no_such_flag=True)  # type: ignore[call-arg]


# ----------------------------------------------------------------- replies


@pytest.mark.parametrize("stream", [False, True])
def test_text_reasoning_and_cached_usage(stream: bool) -> None:
    u = Usage(input_tokens=8, output_tokens=5, cache_read_tokens=100)
    with FakeProviderServer([reply.text("Hello world!", thinking="hmm, greet", usage=u)]) as srv:
        c, deltas = call(make(srv.url), req(), stream)
    assert c.message.content == [
        ThinkingBlock(thinking="hmm, greet"),
        TextBlock(text="Hello world!"),
    ]
    assert c.stop_reason == "end_turn" and c.raw_stop_reason == "stop"
    assert (c.usage.input_tokens, c.usage.cache_read_input_tokens, c.usage.output_tokens) == (
        8,
        100,
        5,
    )
    if stream:
        assert "".join(t for k, t in deltas if k == "text") == "Hello world!"
        assert "".join(t for k, t in deltas if k == "thinking") == "hmm, greet"
    assert srv.requests[0].path == "/v1/chat/completions"
    assert srv.requests[0].headers["authorization"] == f"Bearer {KEY}"


@pytest.mark.parametrize("stream", [False, True])
def test_parallel_tool_calls(stream: bool) -> None:
    r = reply.tool_calls(("add", {"a": 1}, "call_A"), ("add", {"a": [2, 3]}, "call_B"))
    with FakeProviderServer([r]) as srv:
        c, deltas = call(make(srv.url), req(tools=TOOLS), stream)
    assert c.stop_reason == "tool_use"
    assert c.message.content == [
        ToolUseBlock(id="call_A", name="add", input={"a": 1}),
        ToolUseBlock(id="call_B", name="add", input={"a": [2, 3]}),
    ]
    assert deltas == []


def chunk(delta: dict, finish: str | None = None, **top) -> dict:
    return {"choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **top}


def sse(*chunks: dict, done: bool = True, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    out = "".join(f"{head if c.get('error') else ''}data: {json.dumps(c)}\n\n" for c in chunks)
    return out + ("data: [DONE]\n\n" if done else "")


def stream_raw(text: str, compat: Compat | None = None):
    raw = reply.raw(200, {"content-type": "text/event-stream"}, text, chunk_sizes="random", seed=7)
    with FakeProviderServer([raw]) as srv:
        return call(make(srv.url, compat=compat), req(tools=TOOLS), True)


USAGE = {"prompt_tokens": 10, "completion_tokens": 4, "total_tokens": 14}


def test_tool_call_deltas_assembled_by_index() -> None:
    text = sse(
        chunk({"role": "assistant", "content": None}),
        chunk(
            {
                "tool_calls": [
                    {
                        "index": 0,
                        "id": "call_1",
                        "type": "function",
                        "function": {"name": "add", "arguments": ""},
                    }
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a"'}}]}),
        chunk(
            {
                "tool_calls": [
                    {"index": 1, "id": "call_2", "function": {"name": "add", "arguments": "{}"}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": ": 1}"}}]}),
        chunk({}, "tool_calls"),
        {"choices": [], "usage": USAGE},
    )
    c, _ = stream_raw(text)
    assert c.message.content == [
        ToolUseBlock(id="call_1", name="add", input={"a": 1}),
        ToolUseBlock(id="call_2", name="add", input={}),
    ]
    assert (c.usage.input_tokens, c.usage.output_tokens) == (10, 4)


def test_tool_calls_come_out_in_index_order_whatever_order_they_start_in() -> None:
    # spec 5.5: tool blocks sorted by index
    text = sse(
        chunk({"tool_calls": [{"index": 1, "id": "call_b", "function": {"name": "write"}}]}),
        chunk({"tool_calls": [{"index": 0, "id": "call_a", "function": {"name": "read"}}]}),
        chunk({"tool_calls": [{"index": 1, "function": {"arguments": "{}"}}]}),
        chunk({}, "tool_calls"),
        {"choices": [], "usage": USAGE},
    )
    c, _ = stream_raw(text)
    assert [b.name for b in c.message.tool_calls] == ["read", "write"]


def test_repeated_id_and_name_are_not_concatenated_and_stop_still_means_tool_use() -> None:
    # OpenRouter/Kimi repeats id+name in every delta; Ollama says "stop" with tool calls.
    d = {"index": 0, "id": "0", "type": "function", "function": {"name": "llm_version"}}
    text = sse(
        chunk({"tool_calls": [{**d, "function": {**d["function"], "arguments": ""}}]}),
        chunk({"tool_calls": [{**d, "function": {**d["function"], "arguments": "{}"}}]}),
        chunk({}, "stop", usage=USAGE),
    )
    c, _ = stream_raw(text)
    assert c.message.content == [ToolUseBlock(id="0", name="llm_version", input={})]
    assert c.stop_reason == "tool_use" and c.raw_stop_reason == "stop"


def test_tool_calls_cut_by_length_do_not_run() -> None:
    text = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "add", "arguments": '{"a": 1'}}
                ]
            }
        ),
        chunk({}, "length", usage=USAGE),
    )
    c, _ = stream_raw(text)
    assert c.stop_reason == "end_turn" and c.raw_stop_reason == "length"
    assert c.message.tool_calls[0].input == {}


def test_missing_index_empty_id_and_null_arguments() -> None:
    text = sse(
        chunk({"tool_calls": [{"id": "", "function": {"name": "add", "arguments": None}}]}),
        chunk({}, "tool_calls", usage=USAGE),
    )
    c, _ = stream_raw(text)
    [tc] = c.message.tool_calls
    assert tc.id.startswith("call_") and tc.input == {} and tc.name == "add"
    with pytest.raises(StreamError, match="null arguments"):
        stream_raw(text, Compat(null_arguments_ok=False))


def test_arguments_sent_as_an_object() -> None:
    text = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "add", "arguments": {"a": 1}}}
                ]
            }
        ),
        chunk({}, "tool_calls", usage=USAGE),
    )
    assert stream_raw(text)[0].message.tool_calls[0].input == {"a": 1}


def test_invalid_arguments_are_a_retryable_error() -> None:
    text = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c", "function": {"name": "add", "arguments": "{oops"}}
                ]
            }
        ),
        chunk({}, "tool_calls", usage=USAGE),
    )
    with pytest.raises(StreamError, match="invalid JSON") as exc:
        stream_raw(text)
    assert exc.value.retryable


def test_done_marker_rules() -> None:
    finished = sse(chunk({"content": "hi"}), chunk({}, "stop", usage=USAGE), done=False)
    with pytest.raises(StreamError, match="DONE") as exc:
        stream_raw(finished, Compat(requires_done_marker=True))  # the strict form, on request
    assert exc.value.retryable
    assert stream_raw(finished)[0].message.text == "hi"  # default: finish_reason suffices
    with pytest.raises(StreamError, match="finish_reason"):
        stream_raw(sse(chunk({"content": "hi"}), done=False))  # a cut-off stays one
    lenient = Compat(requires_done_marker=False, usage_in_late_chunk=False)
    assert stream_raw(finished, lenient)[0].message.text == "hi"
    unfinished = sse(chunk({"content": "hi"}), done=False)
    with pytest.raises(StreamError):
        stream_raw(unfinished, lenient)
    assert (
        stream_raw(unfinished, lenient.model_copy(update={"finish_reason_optional": True}))[
            0
        ].message.text
        == "hi"
    )
    # EOF right after the finish chunk (before OpenAI's late usage chunk) is complete too
    no_usage = sse(chunk({"content": "hi"}), chunk({}, "stop"), done=False)
    assert stream_raw(no_usage, Compat(requires_done_marker=False))[0].message.text == "hi"
    assert stream_raw(no_usage, lenient)[0].message.text == "hi"


def test_groq_error_event_and_openrouter_error_chunk() -> None:
    groq_error = {
        "error": {
            "message": "Tool call validation failed",
            "type": "invalid_request_error",
            "code": "tool_use_failed",
        }
    }
    groq = f"event: error\ndata: {json.dumps(groq_error)}\n\n"

    with pytest.raises(StreamError, match="tool_use_failed") as e1:
        stream_raw(
            sse(chunk({"content": "x"}), done=False) + groq, Compat(requires_done_marker=False)
        )
    assert not e1.value.retryable
    router = chunk({"content": ""}, error={"code": 502, "message": "upstream died"})
    with pytest.raises(StreamError, match="upstream died") as e2:
        stream_raw(sse(chunk({"content": "x"}), router))
    assert e2.value.retryable
    with (
        FakeProviderServer([reply.error_event("partial", message="boom")]) as srv,
        pytest.raises(StreamError, match="boom"),
    ):
        call(make(srv.url, compat=Compat(requires_done_marker=False)), req(), True)


def test_comments_keepalives_and_list_content() -> None:
    magistral = chunk(
        {"content": [{"type": "thinking", "thinking": [{"type": "text", "text": "Okay"}]}]}
    )
    text = ": OPENROUTER PROCESSING\n\n" + sse(
        magistral, chunk({"content": "Cross."}), chunk({}, "stop", usage=USAGE)
    )
    c, deltas = stream_raw(text)
    assert c.message.content == [ThinkingBlock(thinking="Okay"), TextBlock(text="Cross.")]
    assert deltas == [("thinking", "Okay"), ("text", "Cross.")]


def test_gemini_extra_content_round_trips() -> None:
    sig = {"google": {"thought_signature": "AVSo"}}
    body = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "tool_calls",
                "message": {
                    "role": "assistant",
                    "extra_content": sig,
                    "tool_calls": [
                        {
                            "id": "",
                            "type": "function",
                            "function": {"name": "now", "arguments": "{}"},
                            "extra_content": sig,
                        }
                    ],
                },
            }
        ],
        "usage": {"prompt_tokens": 35, "completion_tokens": 12, "total_tokens": 109},
    }
    raw = reply.raw(200, {"content-type": "application/json"}, json.dumps(body))
    with FakeProviderServer([raw]) as srv:
        c, _ = call(make(srv.url), req(tools=TOOLS), False)
    assert c.usage.output_tokens == 74  # hidden thinking tokens are billed as output
    [tc] = c.message.tool_calls
    extras = [b for b in c.message.content if isinstance(b, RawBlock)]
    assert len(extras) == 2
    wire = make().build_body(req(user("q"), c.message), stream=False)["messages"][1]
    assert wire["extra_content"] == sig
    assert wire["tool_calls"][0]["extra_content"] == sig and wire["tool_calls"][0]["id"] == tc.id


def test_error_body_with_status_200_and_deepseek_cache_fields() -> None:
    raw = reply.raw(
        200, {"content-type": "application/json"}, '{"error": {"message": "nope", "code": 400}}'
    )
    with FakeProviderServer([raw]) as srv, pytest.raises(StreamError, match="nope"):
        call(make(srv.url), req(), False)
    ds = {
        "choices": [
            {
                "index": 0,
                "finish_reason": "stop",
                "message": {"role": "assistant", "content": "ok", "reasoning_content": "r"},
            }
        ],
        "usage": {
            "prompt_tokens": 563,
            "completion_tokens": 116,
            "total_tokens": 679,
            "prompt_cache_hit_tokens": 512,
            "prompt_cache_miss_tokens": 51,
        },
    }
    raw = reply.raw(200, {"content-type": "application/json"}, json.dumps(ds))
    with FakeProviderServer([raw]) as srv:
        c, _ = call(make(srv.url), req(), False)
    assert (c.usage.input_tokens, c.usage.cache_read_input_tokens, c.usage.output_tokens) == (
        51,
        512,
        116,
    )
    assert c.message.content[0] == ThinkingBlock(thinking="r")


def test_repr_hides_the_key() -> None:
    p = make()
    assert KEY not in repr(p) and KEY not in repr(vars(p)) and "m" in repr(p)
