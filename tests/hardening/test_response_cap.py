"""Finding 12 (issue 9): response bodies are capped in the HTTP transport; past the cap the
call ends with ResponseTooLargeError (typed, not retried) instead of reading on."""

from __future__ import annotations

import json

import pytest

import alloy_nb as alloy
from alloy_nb.errors import AgentError, ResponseTooLargeError, StreamError
from alloy_nb.providers import OpenAICompat
from alloy_nb.providers._transport import DEFAULT_MAX_RESPONSE_BYTES
from alloy_nb.testing import FakeProviderServer, reply

KEY = "sk-test-0000000000000000"


def _chat(url: str) -> OpenAICompat:
    return OpenAICompat(api_key=KEY, base_url=url, model="m")


def _big_json(n: int) -> str:
    body = {"id": "x", "object": "chat.completion", "model": "m", "choices": [
        {"index": 0, "finish_reason": "stop",
         "message": {"role": "assistant", "content": "a" * n}}]}
    return json.dumps(body)


def test_finding12_twenty_megabyte_body_is_refused_by_default() -> None:
    assert DEFAULT_MAX_RESPONSE_BYTES < 20 * 1024 * 1024
    raw = reply.raw(200, {"content-type": "application/json"}, _big_json(20 * 1024 * 1024))
    with FakeProviderServer([raw]) as srv, pytest.raises(AgentError) as info:
        alloy.run("hi", provider=_chat(srv.url), max_retries=0)
    assert "max_response_bytes" in (info.value.result.error or "")


def test_finding12_cap_is_an_option_and_the_error_is_typed() -> None:
    import asyncio

    from alloy_nb.messages import user
    from alloy_nb.providers.base import ProviderRequest

    raw = reply.raw(200, {"content-type": "application/json"}, _big_json(300_000))
    with FakeProviderServer([raw, raw]) as srv:
        provider = _chat(srv.url)
        provider.max_response_bytes = 100_000
        request = ProviderRequest(messages=[user("hi")])
        with pytest.raises(ResponseTooLargeError) as info:
            asyncio.run(provider.complete(request))
        assert isinstance(info.value, StreamError) and not info.value.retryable
        provider.max_response_bytes = 1_000_000
        assert asyncio.run(provider.complete(request)).message.text == "a" * 300_000


def test_finding12_streams_are_capped_too() -> None:
    chunk = json.dumps({"id": "c", "object": "chat.completion.chunk", "model": "m",
                        "choices": [{"index": 0, "delta": {"content": "b" * 1000},
                                     "finish_reason": None}]})
    body = f"data: {chunk}\n\n" * 200  # ~220 KB, never finishing
    raw = reply.raw(200, {"content-type": "text/event-stream"}, body, chunk_sizes=4096)
    with FakeProviderServer([raw]) as srv:
        provider = _chat(srv.url)
        provider.max_response_bytes = 10_000  # streams may carry 8x: 80 KB
        with pytest.raises(AgentError) as info:
            alloy.stream("hi", lambda _c: None, provider=provider, max_retries=0)
    assert "max_response_bytes" in (info.value.result.error or "")
