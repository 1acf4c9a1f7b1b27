"""HTTP failures become typed errors that name provider, model, status and request id, carry
the vendor's message, and never the API key; keys, clients, timeouts and cancellation."""

from __future__ import annotations

import asyncio
import gc
import json
import socket
import time
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime

import httpx
import pytest

from alloy_nb.errors import (
    AuthenticationError,
    BadRequestError,
    ConfigError,
    OverloadedError,
    ProviderConnectionError,
    ProviderError,
    RateLimitError,
    StreamError,
)
from alloy_nb.messages import user
from alloy_nb.providers import (
    Anthropic,
    OpenAI,
    OpenAICompat,
    ProviderRequest,
    _transport,
)
from alloy_nb.providers._vendor_errors import error_from_payload, retry_after, status_error
from alloy_nb.testing import FakeProviderServer, reply

KEY = "test-key-7f3a9c2e1b"
REQ = ProviderRequest(messages=[user("hi")])


def call(secret: str | None = KEY) -> _transport.Call:
    return _transport.Call("acme", "m-1", "http://127.0.0.1:1/v1/x", {}, secret)


def providers(url: str) -> list:
    return [
        Anthropic(api_key=KEY, base_url=url),
        OpenAI(api_key=KEY, base_url=url),
        OpenAICompat(api_key=KEY, model="m", base_url=url),
    ]


def run_call(provider, stream: bool = False, request: ProviderRequest = REQ):
    async def go():
        if stream:
            return await provider.stream(request, lambda k, t: None)
        return await provider.complete(request)

    return asyncio.run(go())


# ----------------------------------------------------------------- status -> class


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, BadRequestError),
        (401, AuthenticationError),
        (403, AuthenticationError),
        (404, BadRequestError),
        (408, OverloadedError),
        (413, BadRequestError),
        (422, BadRequestError),
        (429, RateLimitError),
        (500, OverloadedError),
        (502, OverloadedError),
        (503, OverloadedError),
        (529, OverloadedError),
    ],
)
def test_status_maps_to_class(status: int, cls: type) -> None:
    err = status_error(call(), status, {"request-id": "req_1"}, b"{}")
    assert type(err) is cls
    assert err.status_code == status
    assert err.retryable == (cls in (RateLimitError, OverloadedError))
    text = str(err)
    for part in ("provider=acme", "model=m-1", f"status={status}", "request_id=req_1"):
        assert part in text


def test_quota_exhausted_429_is_not_retried() -> None:
    body = json.dumps(
        {"error": {"message": "You exceeded your quota", "type": "insufficient_quota"}}
    )
    err = status_error(call(), 429, {}, body.encode())
    assert isinstance(err, BadRequestError) and not err.retryable
    assert "insufficient_quota" in str(err)


def test_x_should_retry_overrides_the_status_rule_but_not_for_auth() -> None:
    # wire-protocols 5: the server's x-should-retry header wins over the status rule
    assert not status_error(call(), 529, {"x-should-retry": "false"}, b"{}").retryable
    assert status_error(call(), 409, {"x-should-retry": "true"}, b"{}").retryable
    assert status_error(call(), 500, {"x-should-retry": "maybe"}, b"{}").retryable
    assert not status_error(call(), 401, {"x-should-retry": "true"}, b"{}").retryable
    assert not status_error(call(), 400, {}, b"{}").retryable


@pytest.mark.parametrize(
    ("body", "expect"),
    [
        (  # Anthropic
            {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}},
            "overloaded_error: Overloaded",
        ),
        (  # OpenAI
            {"error": {"message": "Bad temp", "type": "invalid_request_error", "code": "x"}},
            "invalid_request_error/x: Bad temp",
        ),
        (  # Gemini: a JSON array
            [{"error": {"code": 400, "message": "Bad arg", "status": "INVALID_ARGUMENT"}}],
            "400/INVALID_ARGUMENT: Bad arg",
        ),
        ({"error": "Incorrect API key provided: xai-…"}, "Incorrect API key provided"),  # xAI
        ({"detail": "Not Found"}, "Not Found"),  # FastAPI-style proxies
        (  # OpenRouter: upstream detail in metadata.raw
            {
                "error": {
                    "code": 429,
                    "message": "Provider returned error",
                    "metadata": {"raw": "slow down"},
                }
            },
            "429: Provider returned error (slow down)",
        ),
    ],
)
def test_vendor_message_shapes(body, expect: str) -> None:
    err = status_error(call(), 400, {}, json.dumps(body).encode())
    assert expect in str(err)


def test_plain_text_and_empty_bodies() -> None:
    assert "HTTP 502 Bad Gateway" in str(status_error(call(), 502, {}, b"Bad Gateway"))
    assert "(empty body)" in str(status_error(call(), 500, {}, b""))
    long = status_error(call(), 500, {}, b"x" * 5000)
    assert len(long.message) < 600 and len(long.body) <= 2000


def test_request_id_from_headers_or_body() -> None:
    assert status_error(call(), 500, {"x-request-id": "abc"}, b"").request_id == "abc"
    body = b'{"type":"error","error":{"type":"api_error","message":"x"},"request_id":"req_9"}'
    assert status_error(call(), 500, {}, body).request_id == "req_9"


def test_retry_after_forms() -> None:
    assert retry_after({"retry-after-ms": "1500", "retry-after": "9"}) == 1.5
    assert retry_after({"retry-after": "4"}) == 4.0
    assert retry_after({"retry-after": "0.5"}) == 0.5
    when = datetime.now(timezone.utc) + timedelta(seconds=30)
    got = retry_after({"retry-after": format_datetime(when, usegmt=True)})
    assert got is not None and 25 < got <= 30
    past = datetime.now(timezone.utc) - timedelta(seconds=30)
    assert retry_after({"retry-after": format_datetime(past, usegmt=True)}) == 0.0
    assert retry_after({"retry-after": "soon"}) is None
    assert retry_after({}) is None


def test_key_is_scrubbed_from_message_and_body() -> None:
    body = json.dumps({"error": {"message": f"Incorrect API key provided: {KEY}.", "type": "x"}})
    err = status_error(call(), 401, {}, body.encode())
    assert KEY not in str(err) and KEY not in err.body and KEY not in repr(err)
    assert "[redacted]" in str(err)


def test_in_stream_error_payloads_classify_by_type_or_code() -> None:
    c = call()
    anthropic = {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    assert error_from_payload(c, anthropic, "r").retryable
    invalid = {"type": "error", "error": {"type": "invalid_request_error", "message": "no"}}
    assert not error_from_payload(c, invalid, "r").retryable
    openrouter = {"error": {"code": 502, "message": "upstream died"}, "choices": []}
    assert error_from_payload(c, openrouter, None).retryable
    assert not error_from_payload(c, {"error": {"code": 400, "message": "x"}}, None).retryable
    responses = {"type": "error", "code": "server_error", "message": "boom"}
    err = error_from_payload(c, responses, "r")
    assert isinstance(err, StreamError) and err.retryable and "boom" in str(err)


# ----------------------------------------------------------------- over real HTTP


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("index", [0, 1, 2])
def test_http_statuses_over_loopback(index: int, stream: bool) -> None:
    script = [
        reply.status(429, retry_after=3),
        reply.status(529 if index == 0 else 503),
        reply.status(401),
        reply.status(400, message="max_tokens: too large"),
        reply.status(429, retry_after_ms=250),
    ]
    with FakeProviderServer(script) as srv:
        p = providers(srv.url)[index]
        with pytest.raises(RateLimitError) as e429:
            run_call(p, stream)
        assert e429.value.retry_after == 3.0 and e429.value.request_id
        with pytest.raises(OverloadedError):
            run_call(p, stream)
        with pytest.raises(AuthenticationError):
            run_call(p, stream)
        with pytest.raises(BadRequestError, match="max_tokens: too large"):
            run_call(p, stream)
        with pytest.raises(RateLimitError) as ems:
            run_call(p, stream)
        assert ems.value.retry_after == 0.25
    for r in srv.requests:
        assert KEY in json.dumps(r.headers)  # the key was sent ...


def test_key_never_in_errors_or_reprs() -> None:
    body = json.dumps({"error": {"message": f"bad key {KEY}", "type": "invalid_request_error"}})
    script = [reply.raw(401, {"content-type": "application/json"}, body)] * 3
    with FakeProviderServer(script) as srv:
        for p in providers(srv.url):
            assert KEY not in repr(p) and KEY not in str(p.describe())
            with pytest.raises(AuthenticationError) as exc:
                run_call(p)
            err = exc.value
            for text in (str(err), repr(err), err.body, err.message, str(err.__cause__)):
                assert KEY not in text


def test_missing_key_is_a_config_error_naming_the_variable_without_a_request() -> None:
    with FakeProviderServer([reply.text("never")]) as srv:
        cases = [
            (Anthropic(base_url=srv.url), "ANTHROPIC_API_KEY"),
            (OpenAI(base_url=srv.url), "OPENAI_API_KEY"),
            (OpenAICompat(model="m", base_url=srv.url), "OPENAI_API_KEY"),
            (OpenAICompat.gemini("g", base_url=srv.url), "GEMINI_API_KEY or GOOGLE_API_KEY"),
            (OpenAICompat.groq("g", base_url=srv.url), "GROQ_API_KEY"),
        ]
        for p, env in cases:
            with pytest.raises(ConfigError, match=env) as exc:
                run_call(p)
            # like every provider error, it names the provider and the model
            assert f"provider={p.name}" in str(exc.value) and f"model={p.model}" in str(exc.value)
            # also a ProviderError, so the loop ends the run with this message as data
            assert isinstance(exc.value, ProviderError) and not exc.value.retryable
        assert srv.requests == []


def test_key_is_read_from_the_environment_at_request_time(monkeypatch) -> None:
    with FakeProviderServer([reply.text("a"), reply.text("b")]) as srv:
        p = Anthropic(base_url=srv.url)  # configured before the key exists
        monkeypatch.setenv("ANTHROPIC_API_KEY", KEY)
        assert run_call(p).message.text == "a"
        q = OpenAICompat.gemini("g", base_url=srv.url, chat_path="/v1/chat/completions")
        monkeypatch.setenv("GOOGLE_API_KEY", KEY + "g")
        assert run_call(q).message.text == "b"
    assert srv.requests[0].headers["x-api-key"] == KEY
    assert srv.requests[1].headers["authorization"] == f"Bearer {KEY}g"


def test_ollama_needs_no_key() -> None:
    with FakeProviderServer([reply.text("local")]) as srv:
        p = OpenAICompat.ollama("llama3.2", base_url=srv.url)
        assert run_call(p).message.text == "local"
    assert "authorization" not in srv.requests[0].headers


def _refused_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.mark.parametrize("stream", [False, True])
def test_connection_refused_is_a_connection_error(stream: bool) -> None:
    url = f"http://127.0.0.1:{_refused_port()}"
    for p in providers(url):
        with pytest.raises(ProviderConnectionError) as exc:
            run_call(p, stream)
        assert exc.value.retryable and "127.0.0.1" in str(exc.value)


@pytest.mark.parametrize("stream", [False, True])
def test_read_timeout_from_request_timeout_s(stream: bool) -> None:
    with FakeProviderServer([reply.delay(3, reply.text("late"))]) as srv:
        p = Anthropic(api_key=KEY, base_url=srv.url)
        t0 = time.monotonic()
        with pytest.raises(ProviderConnectionError, match="Timeout"):
            run_call(p, stream, ProviderRequest(messages=[user("hi")], timeout_s=0.3))
        assert time.monotonic() - t0 < 2


def test_gzip_bodies_are_decoded() -> None:
    import gzip

    body = json.dumps(
        {
            "type": "message",
            "content": [{"type": "text", "text": "zipped"}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 1, "output_tokens": 1},
        }
    ).encode()
    headers = {"content-type": "application/json", "content-encoding": "gzip"}
    with FakeProviderServer([reply.raw(200, headers, gzip.compress(body))]) as srv:
        assert run_call(Anthropic(api_key=KEY, base_url=srv.url)).message.text == "zipped"


def test_non_json_200_is_a_stream_error() -> None:
    with (
        FakeProviderServer([reply.raw(200, {"content-type": "text/html"}, "<html>")]) as srv,
        pytest.raises(StreamError, match="not JSON"),
    ):
        run_call(OpenAI(api_key=KEY, base_url=srv.url))


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize("base_url", ["127.0.0.1:9", "http://"])
def test_bad_base_url_is_a_config_error(base_url: str, stream: bool) -> None:
    with pytest.raises(ConfigError, match="base_url") as exc:
        run_call(Anthropic(api_key=KEY, base_url=base_url), stream)
    assert isinstance(exc.value, ProviderError) and not exc.value.retryable


# ----------------------------------------------------------------- client lifecycle


def test_one_client_per_loop_closed_when_asyncio_run_ends() -> None:
    seen: list[httpx.AsyncClient] = []

    async def go() -> None:
        a = await _transport._client()
        b = await _transport._client()
        assert a is b
        seen.append(a)

    asyncio.run(go())
    asyncio.run(go())
    assert seen[0] is not seen[1]
    assert all(c.is_closed for c in seen)
    gc.collect()
    # other loops (the private loop thread of earlier tests) may hold their own client
    assert not any(entry.client in seen for entry in list(_transport._clients.values()))


def test_cancelling_a_stream_closes_the_connection_at_once() -> None:
    slow = reply.delay(0, reply.text("x" * 400), between_events=0.2)  # ~20 s of events
    with FakeProviderServer([slow]) as srv:
        p = Anthropic(api_key=KEY, base_url=srv.url)

        async def go() -> float:
            got = asyncio.Event()
            task = asyncio.create_task(p.stream(REQ, lambda k, t: got.set()))
            await asyncio.wait_for(got.wait(), 5)
            t0 = time.monotonic()
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
            elapsed = time.monotonic() - t0
            pool = (await _transport._client())._transport._pool  # type: ignore[attr-defined]
            assert pool.connections == []  # the half-read connection was closed, not pooled
            return elapsed

        assert asyncio.run(go()) < 0.5


def test_concurrent_requests_on_one_loop_share_the_client() -> None:
    slow = [reply.delay(0.05, reply.text(f"answer {i}"), between_events=0.01) for i in range(6)]
    with FakeProviderServer(slow) as srv:

        async def go() -> list[str]:
            clients: list[httpx.AsyncClient] = []

            async def one(p, stream: bool) -> str:
                clients.append(await _transport._client())
                if stream:
                    c = await p.stream(REQ, lambda k, t: None)
                else:
                    c = await p.complete(REQ)
                return c.message.text

            jobs = [one(p, s) for p in providers(srv.url) for s in (False, True)]
            texts = await asyncio.gather(*jobs)
            assert all(c is clients[0] for c in clients) and not clients[0].is_closed
            return sorted(texts)

        assert asyncio.run(go()) == sorted(f"answer {i}" for i in range(6))
