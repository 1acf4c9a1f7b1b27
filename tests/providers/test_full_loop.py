"""The whole loop (tool call -> tool -> answer) through each real provider against the fake
server, streaming and not; every injected fault ends in a typed error or a successful retry,
always with a history that a follow-up run can continue from."""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

import pytest

from alloy_nb.api import arun, astream
from alloy_nb.errors import AgentError
from alloy_nb.providers import Anthropic, Gemini, OpenAI, OpenAICompat, _transport
from alloy_nb.providers.base import Provider
from alloy_nb.result import Result
from alloy_nb.testing import FakeProviderServer, reply

KEY = "test-key-loop-93aa"
KINDS = ["anthropic", "openai", "openai-compat", "gemini"]


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def make(kind: str, url: str, **kw: Any) -> Provider:
    if kind == "anthropic":
        return Anthropic(api_key=KEY, base_url=url, **kw)
    if kind == "openai":
        return OpenAI(api_key=KEY, base_url=url, **kw)
    if kind == "gemini":
        return Gemini(api_key=KEY, base_url=url, **kw)
    return OpenAICompat(api_key=KEY, model="m", base_url=url, **kw)


def run(prompt: str | None, provider: Provider, stream: bool, **kw: Any) -> Result:
    kw.setdefault("tools", [add])
    kw.setdefault("retry_backoff_ms", 1)

    async def go() -> Result:
        if stream:
            return await astream(prompt, lambda chunk: None, provider=provider, **kw)
        return await arun(prompt, provider=provider, **kw)

    return asyncio.run(go())


def failed(prompt: str, provider: Provider, stream: bool, **kw: Any) -> Result:
    with pytest.raises(AgentError) as exc:
        run(prompt, provider, stream, **kw)
    result = exc.value.result
    assert result.status == "error" and result.error
    assert KEY not in str(result.error) and KEY not in result.model_dump_json()
    return result


def continues(result: Result, srv: FakeProviderServer, provider: Provider, stream: bool) -> None:
    """A follow-up run on the failed run's history succeeds: the history is valid."""
    srv.add(reply.text("back on track"))
    again = run("go on", provider, stream, messages=result.messages)
    assert again.text == "back on track"


def sent_messages(kind: str, request_json: dict) -> str:
    key = {"anthropic": "messages", "openai": "input", "openai-compat": "messages"}.get(
        kind, "contents"
    )
    return json.dumps(request_json[key])


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_tool_call_then_answer_then_follow_up(kind: str, stream: bool) -> None:
    script = [reply.tool_calls(("add", {"a": 1, "b": 2}), text="Adding."), reply.text("It is 3.")]
    with FakeProviderServer(script) as srv:
        p = make(kind, srv.url)
        chunks: list[str] = []

        async def go() -> Result:
            if stream:
                return await astream("1+2?", chunks.append, provider=p, tools=[add])
            return await arun("1+2?", provider=p, tools=[add])

        result = asyncio.run(go())
        assert result.status == "completed" and result.text == "It is 3."
        assert [(c.name, c.input, c.error) for c in result.tool_calls] == [
            ("add", {"a": 1, "b": 2}, None)
        ]
        assert result.turns == 2 and [m.role for m in result.messages] == [
            "user",
            "assistant",
            "user",
            "assistant",
        ]
        assert result.usage.input_tokens == 20 and result.usage.output_tokens == 10
        if stream:
            assert "".join(chunks) == "Adding.It is 3."
        second = sent_messages(kind, srv.requests[1].json)
        call_id = result.tool_calls[0].id
        assert '"3"' in second  # the tool result went back, with its call's id
        # (Gemini: no id when the vendor sent none; its id otherwise)
        assert call_id in second or (kind == "gemini" and call_id.startswith("alloy-gemini-"))
        continues(result, srv, p, stream)
        third = sent_messages(kind, srv.requests[2].json)
        assert "It is 3." in third and "go on" in third
        if kind == "gemini":  # the endpoint, not the body, says "stream"
            assert srv.requests[0].path.endswith(":streamGenerateContent") is stream
        else:
            assert srv.requests[0].json.get("stream", False) is stream


FAULTS_RETRIED = {
    "429 with retry-after": reply.status(429, retry_after_ms=20),
    "529 overloaded": reply.status(529),
    "503": reply.status(503),
    "cut off before any delta": reply.cut_off(1, reply.text("never seen")),
    "error event before any delta": reply.error_event("", error_type="overloaded_error"),
}


@pytest.mark.parametrize("fault", list(FAULTS_RETRIED))
@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_transient_faults_are_retried(kind: str, stream: bool, fault: str) -> None:
    entry = FAULTS_RETRIED[fault]
    if kind == "gemini" and fault.startswith("cut off"):  # every Gemini chunk carries text
        entry = reply.cut_off(0, reply.text("never seen"))
    with FakeProviderServer([entry, reply.text("recovered")]) as srv:
        p = make(kind, srv.url)
        events: list[dict] = []
        result = run("hi", p, stream, on_event=events.append)
        assert result.text == "recovered" and len(srv.requests) == 2
        retries = [e for e in events if e["event"] == "retry"]
        assert len(retries) == 1
        continues(result, srv, p, stream)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_permanent_faults_end_the_run_with_a_typed_error(kind: str, stream: bool) -> None:
    script = [
        reply.status(401),
        reply.status(400, message="bad request here"),
        reply.malformed(reply.text("hello there"), at=2),
    ]
    with FakeProviderServer(script) as srv:
        p = make(kind, srv.url)
        r401 = failed("hi", p, stream)
        assert "AuthenticationError" in r401.error or "401" in r401.error
        r400 = failed("hi", p, stream)
        assert "bad request here" in r400.error
        bad = failed("hi", p, stream)
        assert "malformed" in bad.error or "JSON" in bad.error
        assert len(srv.requests) == 3  # none of them was retried
        continues(bad, srv, p, stream)


@pytest.mark.parametrize("kind", KINDS)
def test_failure_after_streamed_text_is_not_retried(kind: str) -> None:
    script = [reply.cut_off(6, reply.text("a long answer that is cut off midway"))]
    with FakeProviderServer(script) as srv:
        p = make(kind, srv.url)
        result = failed("hi", p, True)
        assert len(srv.requests) == 1
        continues(result, srv, p, True)


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("kind", KINDS)
def test_fault_in_the_middle_of_a_tool_loop_keeps_history_valid(kind: str, stream: bool) -> None:
    script = [reply.tool_calls(("add", {"a": 2, "b": 2})), reply.status(401)]
    with FakeProviderServer(script) as srv:
        p = make(kind, srv.url)
        result = failed("2+2?", p, stream)
        assert [c.name for c in result.tool_calls] == ["add"]
        continues(result, srv, p, stream)


@pytest.mark.parametrize("kind", KINDS)
def test_missing_key_fails_the_run_without_a_request(kind: str) -> None:
    with FakeProviderServer([reply.text("never")]) as srv:
        p = {
            "anthropic": Anthropic(base_url=srv.url),
            "openai": OpenAI(base_url=srv.url),
            "openai-compat": OpenAICompat(model="m", base_url=srv.url),
            "gemini": Gemini(base_url=srv.url),
        }[kind]
        result = failed("hi", p, False)
        env = {"anthropic": "ANTHROPIC_API_KEY", "gemini": "GEMINI_API_KEY"}.get(
            kind, "OPENAI_API_KEY"
        )
        assert env in result.error and srv.requests == []
        assert "bug" not in result.error  # a configuration problem, not a provider crash


@pytest.mark.parametrize("kind", KINDS)
def test_cancelling_a_streaming_run_closes_the_connection_promptly(kind: str) -> None:
    slow = reply.delay(0, reply.text("word " * 200), between_events=0.2)
    with FakeProviderServer([slow]) as srv:
        p = make(kind, srv.url)

        async def go() -> float:
            first = asyncio.Event()
            task = asyncio.create_task(
                astream("talk", lambda chunk: first.set(), provider=p, max_retries=0)
            )
            await asyncio.wait_for(first.wait(), 10)
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises((asyncio.CancelledError, AgentError)):
                await task
            elapsed = time.monotonic() - t0
            pool = (await _transport._client())._transport._pool  # type: ignore[attr-defined]
            assert pool.connections == []  # closed, not parked half-read in the pool
            return elapsed

        assert asyncio.run(go()) < 0.5
