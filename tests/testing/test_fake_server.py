"""FakeProviderServer over real loopback HTTP with plain httpx: protocols, faults, replay."""

from __future__ import annotations

import ast
import asyncio
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import alloy_nb.testing
from alloy_nb.testing import FakeProviderServer, ToolCall, Usage, iter_fixtures, reply

ANTHROPIC, RESPONSES, CHAT = "/v1/messages", "/v1/responses", "/v1/chat/completions"


@pytest.fixture(scope="module")
def client() -> Iterator[httpx.Client]:
    """One client for the module: building one costs ~0.1 s of SSL setup."""
    with httpx.Client(timeout=5) as c:
        yield c


@pytest.fixture
def srv() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def frames(body: bytes) -> list[tuple[str | None, str]]:
    """(event, data) per SSE frame; good enough for the server's own LF framing."""
    out = []
    for block in body.decode().split("\n\n"):
        if not block.strip():
            continue
        event, data = None, []
        for line in block.split("\n"):
            if line.startswith("event: "):
                event = line[7:]
            elif line.startswith("data: "):
                data.append(line[6:])
        out.append((event, "\n".join(data)))
    return out


def events(body: bytes) -> list[dict[str, Any]]:
    return [json.loads(d) for _, d in frames(body) if d != "[DONE]"]


def post(client: httpx.Client, srv: FakeProviderServer, path: str, **body: Any) -> httpx.Response:
    return client.post(srv.url + path, json={"model": "m-1", **body})


# -- Anthropic -------------------------------------------------------------------------------


def test_anthropic_stream_text(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.text("Hello there"))
    r = post(client, srv, ANTHROPIC, stream=True, max_tokens=10, messages=[])
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/event-stream")
    assert r.headers["request-id"].startswith("req_")
    fs = frames(r.content)
    assert all(ev == json.loads(d)["type"] for ev, d in fs)  # event name == data.type
    kinds = [ev for ev, _ in fs]
    assert kinds[:3] == ["message_start", "content_block_start", "ping"]
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    evs = events(r.content)
    deltas = [e["delta"]["text"] for e in evs if e["type"] == "content_block_delta"]
    assert len(deltas) == 3 and "".join(deltas) == "Hello there"
    start, delta = evs[0]["message"], evs[-2]
    assert start["id"].startswith("msg_01") and start["model"] == "m-1"
    assert start["usage"]["input_tokens"] == 10 and start["usage"]["output_tokens"] == 1
    assert delta["delta"] == {"stop_reason": "end_turn", "stop_sequence": None}
    assert delta["usage"]["output_tokens"] == 5


def test_anthropic_json_tool_calls_and_usage(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(
        reply.tool_calls(("add", {"a": 1, "b": 2}), ("mul", {"x": 3}), text="Sure", usage=(7, 3))
    )
    msg = post(client, srv, ANTHROPIC, max_tokens=10, messages=[]).json()
    assert msg["type"] == "message" and msg["stop_reason"] == "tool_use"
    text, add, mul = msg["content"]
    assert text == {"type": "text", "text": "Sure"}
    assert add["type"] == "tool_use" and add["id"].startswith("toolu_01") and add["name"] == "add"
    assert add["input"] == {"a": 1, "b": 2} and mul["input"] == {"x": 3}
    assert add["id"] != mul["id"]
    assert msg["usage"]["input_tokens"] == 7 and msg["usage"]["output_tokens"] == 3


def test_anthropic_stream_tool_call_and_thinking(
    client: httpx.Client, srv: FakeProviderServer
) -> None:
    srv.add(reply.thinking("Let me add.", then=reply.tool_calls(("add", {"a": 1}, "toolu_X"))))
    evs = events(post(client, srv, ANTHROPIC, stream=True, messages=[]).content)
    starts = [e["content_block"] for e in evs if e["type"] == "content_block_start"]
    assert starts[0] == {"type": "thinking", "thinking": "", "signature": ""}
    assert starts[1] == {"type": "tool_use", "id": "toolu_X", "name": "add", "input": {}}
    deltas = [e["delta"] for e in evs if e["type"] == "content_block_delta"]
    thinking = "".join(d.get("thinking", "") for d in deltas)
    assert thinking == "Let me add."
    assert sum(d["type"] == "signature_delta" for d in deltas) == 1
    partial = [d["partial_json"] for d in deltas if d["type"] == "input_json_delta"]
    assert partial[0] == "" and json.loads("".join(partial)) == {"a": 1}
    assert evs[-2]["delta"]["stop_reason"] == "tool_use"


# -- OpenAI Responses ------------------------------------------------------------------------


def test_responses_stream_text(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.text("pong pong", usage=Usage(20, 4, cache_read_tokens=6)))
    r = post(client, srv, RESPONSES, stream=True, input="hi")
    assert r.headers["x-request-id"].startswith("req_")
    evs = events(r.content)
    kinds = [e["type"] for e in evs]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-4:] == [
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e["sequence_number"] for e in evs] == list(range(len(evs)))
    deltas = [e["delta"] for e in evs if e["type"] == "response.output_text.delta"]
    assert len(deltas) == 3 and "".join(deltas) == "pong pong"
    done = evs[-1]["response"]
    assert done["id"].startswith("resp_") and done["status"] == "completed"
    assert done["output"][0]["content"][0]["text"] == "pong pong"
    assert done["usage"] == {
        "input_tokens": 26,
        "input_tokens_details": {"cached_tokens": 6},
        "output_tokens": 4,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": 30,
    }


def test_responses_stream_parallel_function_calls(
    client: httpx.Client, srv: FakeProviderServer
) -> None:
    srv.add(reply.tool_calls(("f", {"_person": "Joe"}), ("f", {"_person": "Hadley"})))
    evs = events(post(client, srv, RESPONSES, stream=True, input="hi").content)
    added = [e for e in evs if e["type"] == "response.output_item.added"]
    assert [e["output_index"] for e in added] == [0, 1]
    for k, person in enumerate(["Joe", "Hadley"]):
        item = added[k]["item"]
        assert item["type"] == "function_call" and item["arguments"] == ""
        assert item["id"].startswith("fc_") and item["call_id"].startswith("call_")
        args = "".join(
            e["delta"]
            for e in evs
            if e["type"] == "response.function_call_arguments.delta" and e["output_index"] == k
        )
        assert json.loads(args) == {"_person": person}
    done = [e for e in evs if e["type"] == "response.function_call_arguments.done"]
    assert json.loads(done[1]["arguments"]) == {"_person": "Hadley"}


def test_responses_json_with_reasoning(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.text("42", thinking="think", stop="max_tokens"))
    body = post(client, srv, RESPONSES, input="hi", include=["reasoning.encrypted_content"]).json()
    assert body["object"] == "response" and body["status"] == "incomplete"
    assert body["incomplete_details"] == {"reason": "max_output_tokens"}
    reasoning, message = body["output"]
    assert reasoning["type"] == "reasoning" and reasoning["id"].startswith("rs_")
    assert reasoning["summary"] == [{"type": "summary_text", "text": "think"}]
    assert reasoning["encrypted_content"]
    assert message["type"] == "message" and message["content"][0]["text"] == "42"


# -- Chat Completions ------------------------------------------------------------------------


def test_chat_stream_text_with_usage_chunk(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.text("Hello!", thinking="hm"))
    r = post(client, srv, CHAT, stream=True, stream_options={"include_usage": True}, messages=[])
    fs = frames(r.content)
    assert fs[-1] == (None, "[DONE]") and all(ev is None for ev, _ in fs)
    chunks = events(r.content)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert len({c["id"] for c in chunks}) == 1 and chunks[0]["id"].startswith("chatcmpl-")
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert "".join(d.get("content") or "" for d in deltas) == "Hello!"
    assert "".join(d.get("reasoning_content", "") for d in deltas) == "hm"
    assert chunks[-2]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["prompt_tokens"] == 10
    assert chunks[-1]["usage"]["completion_tokens"] == 5


def test_chat_stream_tool_calls_by_index(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.tool_calls(("a", {"x": 1}), ToolCall("b", '{"y": 2}', id="call_fixed")))
    chunks = events(post(client, srv, CHAT, stream=True, messages=[]).content)
    assert all("usage" not in c for c in chunks)  # no include_usage: no usage at all
    calls = [tc for c in chunks for tc in c["choices"][0]["delta"].get("tool_calls", [])]
    firsts = [tc for tc in calls if "id" in tc]
    assert [tc["index"] for tc in firsts] == [0, 1]
    assert firsts[0]["id"].startswith("call_") and firsts[1]["id"] == "call_fixed"
    assert firsts[1]["function"] == {"name": "b", "arguments": ""}
    args = [
        "".join(tc["function"]["arguments"] for tc in calls if tc["index"] == i) for i in (0, 1)
    ]
    assert json.loads(args[0]) == {"x": 1} and args[1] == '{"y": 2}'
    assert chunks[-1]["choices"][0]["finish_reason"] == "tool_calls"


def test_chat_json_and_any_chat_path(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.tool_calls(("a", {}), text=None, thinking="why"))
    body = post(client, srv, "/api/openai/v1/chat/completions", messages=[]).json()
    assert body["object"] == "chat.completion"
    choice = body["choices"][0]
    assert choice["finish_reason"] == "tool_calls"
    assert choice["message"]["content"] is None and choice["message"]["reasoning_content"] == "why"
    call = choice["message"]["tool_calls"][0]
    assert call["type"] == "function" and call["function"] == {"name": "a", "arguments": "{}"}
    assert body["usage"]["total_tokens"] == 15


# -- HTTP errors -----------------------------------------------------------------------------


def test_429_headers_and_bodies_per_protocol(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.status(429, retry_after=1), reply.status(429, retry_after_ms=250))
    r = post(client, srv, ANTHROPIC, stream=True, messages=[])
    assert r.status_code == 429 and r.headers["retry-after"] == "1"
    assert r.headers["content-type"] == "application/json"  # JSON even for a stream request
    body = r.json()
    assert body["type"] == "error" and body["error"]["type"] == "rate_limit_error"
    assert body["request_id"] == r.headers["request-id"]
    r = post(client, srv, CHAT, messages=[])
    assert r.status_code == 429 and r.headers["retry-after-ms"] == "250"
    assert "retry-after" not in r.headers
    assert r.json()["error"]["code"] == "rate_limit_exceeded"


@pytest.mark.parametrize(
    ("code", "path", "error_type"),
    [
        (500, ANTHROPIC, "api_error"),
        (529, ANTHROPIC, "overloaded_error"),
        (401, ANTHROPIC, "authentication_error"),
        (500, RESPONSES, "server_error"),
        (401, RESPONSES, "invalid_request_error"),
    ],
)
def test_status_error_bodies(
    client: httpx.Client, srv: FakeProviderServer, code: int, path: str, error_type: str
) -> None:
    srv.add(reply.status(code))
    r = post(client, srv, path, stream=True)
    assert r.status_code == code
    assert r.json()["error"]["type"] == error_type
    if code == 529:
        assert r.json()["error"]["message"] == "Overloaded"
    if code == 401 and path == RESPONSES:
        assert r.json()["error"]["code"] == "invalid_api_key"
        assert r.headers["www-authenticate"] == 'Bearer realm="OpenAI API"'


def test_error_events_after_200(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.error_event("Hi"), reply.error_event(), reply.error_event("x"))
    srv.add(reply.error_event())
    evs = events(post(client, srv, ANTHROPIC, stream=True).content)
    assert evs[0]["type"] == "message_start" and "message_stop" not in str(evs)
    assert evs[-1] == {
        "type": "error",
        "error": {"type": "overloaded_error", "message": "Overloaded"},
    }
    evs = events(post(client, srv, RESPONSES, stream=True).content)
    assert evs[-1]["type"] == "response.failed" and evs[-1]["response"]["status"] == "failed"
    assert evs[-1]["response"]["error"]["code"] == "server_error"
    r = post(client, srv, CHAT, stream=True)
    fs = frames(r.content)
    assert r.status_code == 200 and fs[-1][0] == "error" and "[DONE]" not in r.text
    assert (
        post(client, srv, ANTHROPIC).status_code == 529
    )  # no stream: only an HTTP error can say it


# -- Faults on the connection ----------------------------------------------------------------


def test_cut_off_stream_is_a_read_error(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.cut_off(after_events=3, of=reply.text("Hello there, world")))
    got = []
    with (
        pytest.raises(httpx.RemoteProtocolError),
        client.stream("POST", srv.url + ANTHROPIC, json={"stream": True}) as r,
    ):
        assert r.status_code == 200
        got.extend(r.iter_lines())
    assert sum(line.startswith("event: ") for line in got) == 3
    assert "message_stop" not in "\n".join(got)


def test_cut_off_json_is_incomplete(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.cut_off(1, of=reply.text("Hello")))
    with pytest.raises(httpx.RemoteProtocolError):
        post(client, srv, CHAT)


def test_malformed_data_line(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.malformed(reply.text("Hello"), at=2), reply.malformed(reply.text("Hello")))
    fs = frames(post(client, srv, ANTHROPIC, stream=True).content)
    assert fs[2][0] == fs[3][0] == "ping"  # the bad frame borrows its neighbour's event name
    with pytest.raises(json.JSONDecodeError):
        json.loads(fs[2][1])
    assert sum(1 for _, d in fs if not d.endswith("}")) == 1
    r = post(client, srv, RESPONSES)
    with pytest.raises(json.JSONDecodeError):
        r.json()


def test_delays(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.delay(0.3, of=reply.text("hi")))
    srv.add(reply.delay(0, of=reply.text("abcdefgh"), between_events=0.05))
    t0 = time.monotonic()
    assert post(client, srv, CHAT).status_code == 200
    assert time.monotonic() - t0 >= 0.28
    t0 = time.monotonic()
    stamps = []
    with client.stream("POST", srv.url + CHAT, json={"stream": True}) as r:
        for line in r.iter_lines():
            if line.startswith("data:"):
                stamps.append(time.monotonic() - t0)
    assert len(stamps) == 5 and stamps[-1] - stamps[0] >= 0.15  # 4 gaps of 0.05 s


# -- Script, recording, lifecycle ------------------------------------------------------------


def test_requests_are_recorded(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.text("a"))
    headers = {"X-Api-Key": "k", "anthropic-version": "2023-06-01"}
    client.post(srv.url + ANTHROPIC + "?beta=true", json={"model": "c", "x": [1]}, headers=headers)
    (req,) = srv.requests
    assert (req.method, req.path, req.query) == ("POST", ANTHROPIC, "beta=true")
    assert req.headers["x-api-key"] == "k" and req.headers["anthropic-version"] == "2023-06-01"
    assert req.json == {"model": "c", "x": [1]}


def test_script_exhausted_and_unknown_path(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.text("only"))
    r = client.post(srv.url + "/v1/nope", json={})
    assert r.status_code == 404 and srv.remaining == 1  # an unknown path consumes nothing
    assert post(client, srv, CHAT).status_code == 200
    r = post(client, srv, CHAT)
    assert r.status_code == 500 and "exhausted" in r.json()["error"]["message"]
    assert r.headers["x-should-retry"] == "false"
    assert len(srv.requests) == 3


def test_bad_entry_answers_500_and_is_kept(client: httpx.Client, srv: FakeProviderServer) -> None:
    srv.add(reply.tool_calls(("f", "{not json")))
    r = post(client, srv, ANTHROPIC)  # non-streaming Anthropic input must be a JSON object
    assert r.status_code == 500 and "could not render" in r.text
    assert isinstance(srv.errors[0], ValueError)


def test_start_stop_and_async_client() -> None:
    server = FakeProviderServer([reply.text("x")], usage=(3, 2)).start()
    try:
        assert repr(server).startswith("<FakeProviderServer http://127.0.0.1:")

        async def call() -> dict[str, Any]:
            async with httpx.AsyncClient() as client:  # keep-alive left open on purpose
                r = await client.post(server.url + CHAT, json={})
                return r.json()

        assert asyncio.run(call())["usage"]["prompt_tokens"] == 3
    finally:
        server.stop()
        server.stop()
    with pytest.raises(RuntimeError):
        _ = server.url


# -- Raw replay ------------------------------------------------------------------------------


def test_raw_random_chunks_are_byte_identical(
    client: httpx.Client, srv: FakeProviderServer
) -> None:
    body = "data: héllo wörld ✓\n\n".encode() * 200
    srv.add(
        reply.raw(
            200,
            {"Content-Type": "text/event-stream", "X-Custom": "1"},
            body,
            chunk_sizes="random",
            seed=7,
        )
    )
    srv.add(reply.raw(201, None, b"abc", chunk_sizes=[1, 2]))
    with client.stream("POST", srv.url + "/anything") as r:
        pieces = list(r.iter_raw())
    assert b"".join(pieces) == body and r.headers["x-custom"] == "1"
    assert r.headers["transfer-encoding"] == "chunked"
    r = client.post(srv.url + CHAT)
    assert (r.status_code, r.content) == (201, b"abc")


def test_every_recorded_exchange_replays_byte_for_byte(client: httpx.Client) -> None:
    exchanges = [ex for _, exs in iter_fixtures() for ex in exs]
    script = [ex.as_reply(chunk_sizes="random", seed=i) for i, ex in enumerate(exchanges)]
    with FakeProviderServer(script) as server:
        for ex in exchanges:
            r = client.request(ex.method, server.url + ex.path, json=ex.request_json)
            assert r.status_code == ex.status, ex.source
            assert r.content == ex.body, ex.source
            assert r.headers.get("content-type") == ex.headers.get("content-type"), ex.source
        assert server.remaining == 0


def test_testing_package_imports_only_itself() -> None:
    """The fake server is an independent witness: no alloy_nb module outside the package."""
    package = Path(alloy_nb.testing.__file__).parent
    for source in package.glob("*.py"):
        if source.name == "helpers.py":  # Alloy.Testing helpers drive the real loop by design
            continue
        for node in ast.walk(ast.parse(source.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            for name in names:
                assert not name.startswith("alloy_nb") or name.startswith("alloy_nb.testing"), (
                    f"{source.name} imports {name}"
                )
                assert name.split(".")[0] in {"alloy_nb", "yaml", "__future__"} or (
                    name.split(".")[0] in __import__("sys").stdlib_module_names
                ), f"{source.name} imports non-stdlib {name}"
