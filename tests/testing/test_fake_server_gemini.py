"""FakeProviderServer speaking Gemini, read with plain httpx (not our provider): the shapes
the recordings in shared/fixtures/gemini show."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from alloy_nb.testing import FakeProviderServer, Usage, reply

GEN = "/v1beta/models/gemini-2.5-flash:generateContent"
STREAM = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"
BODY = {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}


@pytest.fixture
def srv() -> Iterator[FakeProviderServer]:
    with FakeProviderServer() as server:
        yield server


def chunks(body: bytes) -> list[dict[str, Any]]:
    frames = body.split(b"\r\n\r\n")
    assert frames[-1] == b""  # every frame ends in CRLF CRLF, as pydantic-ai recorded
    out = []
    for frame in frames[:-1]:
        assert frame.startswith(b"data: ") and b"\n" not in frame  # no event: lines
        out.append(json.loads(frame[6:]))
    return out


def test_json_reply_text_and_usage(srv: FakeProviderServer) -> None:
    srv.add(reply.text("Hello", usage=Usage(10, 8, cache_read_tokens=4, reasoning_tokens=3)))
    r = httpx.post(srv.url + GEN, json=BODY)
    assert r.status_code == 200 and r.headers["content-type"].startswith("application/json")
    data = r.json()
    (cand,) = data["candidates"]
    assert cand["content"] == {"parts": [{"text": "Hello"}], "role": "model"}
    assert cand["finishReason"] == "STOP" and data["modelVersion"] == "gemini-2.5-flash"
    assert data["responseId"]
    assert data["usageMetadata"] == {
        "promptTokenCount": 14,  # includes the cached tokens
        "candidatesTokenCount": 5,  # excludes thinking
        "totalTokenCount": 22,
        "cachedContentTokenCount": 4,
        "promptTokensDetails": [{"modality": "TEXT", "tokenCount": 14}],
        "thoughtsTokenCount": 3,
    }
    assert srv.requests[0].path.endswith(":generateContent")


def test_stream_is_deltas_with_cumulative_usage_and_no_done(srv: FakeProviderServer) -> None:
    srv.add(reply.thinking("Pondering deeply", reply.text("The answer is 42.")))
    r = httpx.post(srv.url + STREAM, json=BODY)
    assert r.headers["content-type"] == "text/event-stream"
    cs = chunks(r.content)
    assert b"[DONE]" not in r.content
    parts = [c["candidates"][0]["content"]["parts"][0] for c in cs]
    thoughts = [p["text"] for p in parts if p.get("thought")]
    texts = [p["text"] for p in parts if not p.get("thought")]
    assert "".join(thoughts) == "Pondering deeply" and len(thoughts) > 1
    assert "".join(texts) == "The answer is 42." and len(texts) > 2
    assert parts.index({"text": thoughts[-1], "thought": True}) < len(thoughts)  # thoughts first
    assert parts[-1]["text"] == "" and parts[-1]["thoughtSignature"]  # trailing signed chunk
    finishes = [c["candidates"][0].get("finishReason") for c in cs]
    assert finishes[-1] == "STOP" and not any(finishes[:-1])
    assert "candidatesTokenCount" not in cs[0]["usageMetadata"]  # early chunks lack it
    assert len({c["responseId"] for c in cs}) == 1


def test_function_calls_stop_without_a_tool_use_reason(srv: FakeProviderServer) -> None:
    srv.add(reply.tool_calls(("get", {"q": 1}), ("get", {"q": 2}, "ab12cd34")))
    data = httpx.post(srv.url + GEN, json=BODY).json()
    cand = data["candidates"][0]
    assert cand["finishReason"] == "STOP"
    first, second = cand["content"]["parts"]
    assert first["functionCall"] == {"name": "get", "args": {"q": 1}}  # no id (2.5 models)
    assert first["thoughtSignature"] and "thoughtSignature" not in second  # first call only
    assert second["functionCall"]["id"] == "ab12cd34"


def test_errors_are_google_rpc_bodies(srv: FakeProviderServer) -> None:
    srv.add(
        reply.status(400, message="API key not valid.", error_type="API_KEY_INVALID"),
        reply.status(429, retry_after=34.4),
        reply.status(503),
    )
    bad = httpx.post(srv.url + GEN, json=BODY)
    err = bad.json()["error"]
    assert (bad.status_code, err["code"], err["status"]) == (400, 400, "INVALID_ARGUMENT")
    assert err["details"][0]["reason"] == "API_KEY_INVALID"
    limited = httpx.post(srv.url + STREAM, json=BODY)  # a failing stream answers JSON
    assert limited.status_code == 429 and "retry-after" not in limited.headers
    details = limited.json()["error"]["details"]
    retry_info = {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "34.4s"}
    assert details[-1] == retry_info
    busy = httpx.post(srv.url + GEN, json=BODY)
    assert busy.json()["error"]["status"] == "UNAVAILABLE"


def test_refusal_has_no_parts_and_error_event_has_no_finish(srv: FakeProviderServer) -> None:
    srv.add(reply.text("", stop="refusal"), reply.error_event("so far ", message="Internal"))
    cand = httpx.post(srv.url + GEN, json=BODY).json()["candidates"][0]
    assert cand["finishReason"] == "SAFETY" and "parts" not in cand["content"]
    cs = chunks(httpx.post(srv.url + STREAM, json=BODY).content)
    assert cs[-1] == {"error": {"code": 500, "message": "Internal", "status": "INTERNAL"}}
    assert not any(c["candidates"][0].get("finishReason") for c in cs[:-1])


def test_exhausted_script_answers_a_gemini_error(srv: FakeProviderServer) -> None:
    r = httpx.post(srv.url + GEN, json=BODY)
    assert r.status_code == 500 and "script exhausted" in r.json()["error"]["message"]
