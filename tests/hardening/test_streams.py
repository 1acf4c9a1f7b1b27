"""Findings 5, 6, 7 (issue 9), over real HTTP on 127.0.0.1: complete chat streams without
[DONE], Responses streams ending with [DONE] and unknown output items, and the usage of
cancelled or failed streams."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

import alloy_nb as alloy
from alloy_nb.errors import AgentError
from alloy_nb.messages import RawBlock
from alloy_nb.providers import Anthropic, OpenAI, OpenAICompat
from alloy_nb.providers.openai_compat import Compat
from alloy_nb.testing import FakeProviderServer, reply

KEY = "sk-test-0000000000000000"
SSE = {"content-type": "text/event-stream"}


def _data(obj: Any, event: str | None = None) -> str:
    head = f"event: {event}\n" if event else ""
    return f"{head}data: {json.dumps(obj)}\n\n"


def _chat_chunk(delta: dict[str, Any], finish: str | None = None, **extra: Any) -> str:
    return _data({"id": "c1", "object": "chat.completion.chunk", "model": "m",
                  "choices": [{"index": 0, "delta": delta, "finish_reason": finish}], **extra})


_CHAT_USAGE = {"prompt_tokens": 11, "completion_tokens": 3, "total_tokens": 14}


def _chat(url: str, **kw: Any) -> OpenAICompat:
    return OpenAICompat(api_key=KEY, base_url=url, model="m", **kw)


# ---- finding 5 ------------------------------------------------------------------------


def test_finding5_chat_stream_with_finish_reason_and_no_done_is_complete() -> None:
    body = (_chat_chunk({"role": "assistant", "content": "Hel"}) + _chat_chunk({"content": "lo"})
            + _chat_chunk({}, "stop")
            + _data({"id": "c1", "object": "chat.completion.chunk", "model": "m", "choices": [],
                     "usage": _CHAT_USAGE}))
    raw = reply.raw(200, SSE, body, chunk_sizes="random", seed=3)
    with FakeProviderServer([raw]) as srv:
        result = alloy.stream("hi", lambda _c: None, provider=_chat(srv.url), max_retries=0)
    assert result.status == "completed" and result.text == "Hello"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (11, 3)


def test_finding5_chat_stream_without_finish_reason_is_a_cut_off() -> None:
    body = _chat_chunk({"role": "assistant", "content": "Hel"}) + _chat_chunk({"content": "lo"})
    with (
        FakeProviderServer([reply.raw(200, SSE, body, chunk_sizes=7)]) as srv,
        pytest.raises(AgentError) as info,
    ):
        alloy.stream("hi", lambda _c: None, provider=_chat(srv.url), max_retries=0)
    assert info.value.result.status == "error"
    assert "finish_reason" in (info.value.result.error or "")
    # the strict form stays available for servers that need it
    done_less = body + _chat_chunk({}, "stop", usage=_CHAT_USAGE)
    strict = Compat(requires_done_marker=True)
    with (
        FakeProviderServer([reply.raw(200, SSE, done_less, chunk_sizes=9)]) as srv,
        pytest.raises(AgentError, match="DONE"),
    ):
        alloy.stream("hi", lambda _c: None, provider=_chat(srv.url, compat=strict),
                     max_retries=0)


# ---- finding 6 ------------------------------------------------------------------------

_WEB_SEARCH = {"type": "web_search_call", "id": "ws_1", "status": "completed",
               "action": {"type": "search", "query": "weather"}}


def _responses_body(done_marker: bool) -> str:
    message = {"type": "message", "id": "msg_1", "role": "assistant", "status": "completed",
               "content": [{"type": "output_text", "text": "Sunny.", "annotations": []}]}
    response = {"id": "resp_1", "object": "response", "status": "completed", "model": "gpt-x",
                "output": [_WEB_SEARCH, message],
                "usage": {"input_tokens": 20, "output_tokens": 4,
                          "input_tokens_details": {"cached_tokens": 0}}}
    body = (
        _data({"type": "response.created", "response": {**response, "status": "in_progress",
                                                         "output": [], "usage": None}})
        + _data({"type": "response.output_item.done", "output_index": 0, "item": _WEB_SEARCH})
        + _data({"type": "response.output_text.delta", "output_index": 1, "delta": "Sunny."})
        + _data({"type": "response.completed", "response": response})
    )
    return body + ("data: [DONE]\n\n" if done_marker else "")


def test_finding6_responses_stream_ending_with_done_and_unknown_items_kept() -> None:
    with FakeProviderServer([
        reply.raw(200, SSE, _responses_body(True), chunk_sizes="random", seed=5),
        reply.text("second"),
    ]) as srv:
        provider = OpenAI(api_key=KEY, base_url=srv.url, model="gpt-x")
        result = alloy.stream("weather?", lambda _c: None, provider=provider, max_retries=0)
        assert result.status == "completed" and result.text == "Sunny."
        raw = [b for b in result.messages[-1].content if isinstance(b, RawBlock)]
        assert [b.type for b in raw] == ["web_search_call"]
        # the unknown item goes back verbatim with the next request
        again = alloy.run("more", provider=provider, messages=result.messages, max_retries=0)
        assert again.text == "second"
        sent = srv.requests[-1].json["input"]
        assert {k: v for k, v in sent[1].items()} == _WEB_SEARCH


def test_finding6_responses_whole_reply_with_unknown_item() -> None:
    body = json.loads(_responses_body(False).split("data: ")[-1])["response"]
    raw = reply.raw(200, {"content-type": "application/json"}, json.dumps(body))
    with FakeProviderServer([raw]) as srv:
        result = alloy.run("x", provider=OpenAI(api_key=KEY, base_url=srv.url, model="gpt-x"),
                           max_retries=0)
    assert result.text == "Sunny."
    assert any(isinstance(b, RawBlock) and b.type == "web_search_call"
               for b in result.messages[-1].content)


# ---- finding 7 ------------------------------------------------------------------------


def _anthropic_start(input_tokens: int) -> str:
    msg = {"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-6",
           "content": [], "stop_reason": None,
           "usage": {"input_tokens": input_tokens, "output_tokens": 1,
                     "cache_read_input_tokens": 0, "cache_creation_input_tokens": 0}}
    return (_data({"type": "message_start", "message": msg}, "message_start")
            + _data({"type": "content_block_start", "index": 0,
                     "content_block": {"type": "text", "text": ""}}, "content_block_start")
            + _data({"type": "content_block_delta", "index": 0,
                     "delta": {"type": "text_delta", "text": "Partial answer"}},
                    "content_block_delta"))


def test_finding7_failed_stream_keeps_reported_usage() -> None:
    cut = reply.raw(200, SSE, _anthropic_start(1234), chunk_sizes=50)
    with FakeProviderServer([cut]) as srv:
        provider = Anthropic(api_key=KEY, base_url=srv.url, model="claude-sonnet-4-6")
        with pytest.raises(AgentError) as info:
            alloy.stream("hi", lambda _c: None, provider=provider, max_retries=0)
    result = info.value.result
    assert result.status == "error"
    assert result.usage.input_tokens == 1234 and result.usage.output_tokens == 1
    assert result.usage.estimated_cost_cents > 0  # priced: the footer and budget see it


def test_finding7_retried_stream_counts_both_attempts() -> None:
    start = _anthropic_start(1000).split("event: content_block_start")[0]
    cut = reply.raw(200, SSE, start, chunk_sizes=50)  # usage reported, then cut, no text
    with FakeProviderServer([cut, reply.text("ok", usage=(10, 2))]) as srv:
        provider = Anthropic(api_key=KEY, base_url=srv.url, model="claude-sonnet-4-6")
        result = alloy.stream("hi", lambda _c: None, provider=provider, max_retries=1,
                              retry_backoff_ms=1)
    assert result.text == "ok"
    assert (result.usage.input_tokens, result.usage.output_tokens) == (1010, 3)


def _slow(input_tokens: int) -> Any:
    """message_start and a text delta at once, then 30 s of silence before the end."""
    start = _anthropic_start(input_tokens)
    rest = _data({"type": "message_stop"}, "message_stop")
    body = start + rest
    return reply.delay(0, reply.raw(200, SSE, body, chunk_sizes=[len(start.encode()), 10_000]),
                       between_events=30)


def test_finding7_cancelled_stream_keeps_usage_in_result_and_session() -> None:
    slow = _slow(777)

    async def main() -> tuple[Any, Any]:
        with FakeProviderServer([slow]) as srv:
            provider = Anthropic(api_key=KEY, base_url=srv.url, model="claude-sonnet-4-6")
            session = alloy.Session(provider=provider, max_retries=0)
            seen = asyncio.Event()
            task = asyncio.ensure_future(
                session.astream_chat("hi", on_chunk=lambda _c: seen.set()))
            await asyncio.wait_for(seen.wait(), 10)
            task.cancel()
            try:
                result = await task
            except (asyncio.CancelledError, AgentError) as exc:
                result = getattr(exc, "result", None)
            return result, session.usage

    result, usage = asyncio.run(main())
    assert usage.input_tokens == 777 and usage.estimated_cost_cents > 0
    if result is not None:
        assert result.usage.input_tokens == 777


def test_finding7_cancelled_run_result_usage_and_budget() -> None:
    slow = _slow(5000)
    events: list[Any] = []

    async def main() -> None:
        with FakeProviderServer([slow]) as srv:
            provider = Anthropic(api_key=KEY, base_url=srv.url, model="claude-sonnet-4-6")
            task = asyncio.ensure_future(alloy.astream(
                "hi", lambda _c: None, provider=provider, max_retries=0, on_event=events.append))
            while not any(e.event == "text_delta" for e in events):
                await asyncio.sleep(0.02)
            task.cancel()
            with pytest.raises((asyncio.CancelledError, AgentError)):
                await task

    asyncio.run(asyncio.wait_for(main(), 20))
    done = [e for e in events if e.event == "done"][-1]
    assert done.payload["status"] == "cancelled"
    assert done.payload["usage"]["input_tokens"] == 5000


def test_finding7_budget_check_counts_tokens_of_failed_attempts() -> None:
    from alloy_nb.tools import tool

    @tool
    def noop() -> str:
        """Do nothing."""
        return "ok"

    start = _anthropic_start(1_000_000).split("event: content_block_start")[0]
    cut = reply.raw(200, SSE, start, chunk_sizes=64)  # 1M input tokens reported, then cut
    script = [cut, reply.tool_calls(("noop", {}), usage=(10, 2)), reply.text("never")]
    with FakeProviderServer(script) as srv:
        provider = Anthropic(api_key=KEY, base_url=srv.url, model="claude-sonnet-4-6")
        result = alloy.stream("hi", lambda _c: None, provider=provider, tools=[noop],
                              max_retries=1, retry_backoff_ms=1, max_budget_cents=100)
        assert srv.remaining == 1  # the third reply was never asked for
    assert result.status == "budget_exceeded"
    assert result.usage.input_tokens == 1_000_010
