"""Prompt-too-long recovery (reference 0.10, spec §6.4/§10): every HTTP provider maps the
vendor's context-window error to ``PromptTooLongError`` (a ``BadRequestError``), and the
loop force-compacts the history and retries the turn once.

No recording of such an error exists in the fixtures, so the vendors' documented bodies
are served byte for byte by the loopback FakeProviderServer; every *recorded* error body
must keep its old class (the detection is narrow).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest

from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.compaction import SUMMARY_PREFIX
from alloy_nb.errors import BadRequestError, PromptTooLongError, RateLimitError
from alloy_nb.events import Event
from alloy_nb.messages import Message, assistant, repair_history, user
from alloy_nb.providers import Anthropic, OpenAI, OpenAICompat, ProviderRequest
from alloy_nb.providers._overflow import is_prompt_too_long
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState
from alloy_nb.testing import FakeProviderServer, iter_fixtures, reply

KEY = "test-key-prompt-too-long"
JSON = {"content-type": "application/json"}

# The vendors' bodies (API docs and issue reports quoting them verbatim).
ANTHROPIC = {"type": "error", "error": {"type": "invalid_request_error",
             "message": "prompt is too long: 219898 tokens > 200000 maximum"},
             "request_id": "req_011CVjxiYzEFcAQC4Fk87zw2"}
ANTHROPIC_WITH_MAX = {"type": "error", "error": {"type": "invalid_request_error",
                      "message": "input length and `max_tokens` exceed context limit: "
                                 "189136 + 20000 > 204648, decrease input length or "
                                 "`max_tokens` and try again"}}
OPENAI_CHAT = {"error": {"message": "This model's maximum context length is 128000 tokens. "
               "However, your messages resulted in 130512 tokens. Please reduce the length "
               "of the messages.", "type": "invalid_request_error", "param": "messages",
               "code": "context_length_exceeded"}}
OPENAI_RESPONSES = {"error": {"message": "Your input exceeds the context window of this "
                    "model. Please adjust your input and try again.",
                    "type": "invalid_request_error", "param": "input",
                    "code": "context_length_exceeded"}}
OPENROUTER = {"error": {"message": "This endpoint's maximum context length is 32768 tokens. "
              "However, you requested about 42832 tokens (42832 of text input). Please "
              "reduce the length of either one, or use the \"middle-out\" transform to "
              "compress your prompt automatically.", "code": 400}}
MISTRAL = {"object": "error", "message": "Prompt contains 40321 tokens and 0 draft tokens, "
           "too large for model with 32768 maximum context length",
           "type": "invalid_request_error", "param": None, "code": None}
XAI = {"code": "Client specified an invalid argument", "error": "This model's maximum "
       "prompt length is 131072 but the request contains 150000 tokens."}
LLAMA_CPP = {"error": {"code": 400, "message": "the request exceeds the available context "
             "size, try increasing it", "type": "exceed_context_size_error"}}
GEMINI = [{"error": {"code": 400, "message": "The input token count (1200000) exceeds the "
           "maximum number of tokens allowed (1048576).", "status": "INVALID_ARGUMENT"}}]

OVERFLOWS = [ANTHROPIC, ANTHROPIC_WITH_MAX, OPENAI_CHAT, OPENAI_RESPONSES, OPENROUTER,
             MISTRAL, XAI, LLAMA_CPP, GEMINI]
NOT_OVERFLOWS = [
    {"type": "error", "error": {"type": "invalid_request_error", "message": "max_tokens: "
     "100000 > 64000, which is the maximum allowed number of output tokens for "
     "claude-sonnet-4-6"}},
    {"error": {"message": "Invalid 'temperature': decimal below minimum value.",
               "type": "invalid_request_error", "code": "decimal_below_min_value"}},
    {"error": {"code": 400, "message": "Token limit reached"}},  # OpenRouter after `length`
]


@pytest.mark.parametrize("body", OVERFLOWS, ids=lambda b: json.dumps(b)[:50])
def test_conformance_v010_vendor_overflow_bodies_are_detected(body: Any) -> None:
    assert is_prompt_too_long(400, json.dumps(body).encode())
    assert is_prompt_too_long(None, body)  # also as a decoded in-stream payload
    assert not is_prompt_too_long(429, json.dumps(body))  # a rate limit is never a window
    assert not is_prompt_too_long(500, json.dumps(body))


@pytest.mark.parametrize("body", NOT_OVERFLOWS, ids=lambda b: json.dumps(b)[:50])
def test_conformance_v010_other_bad_requests_are_not_overflows(body: Any) -> None:
    assert not is_prompt_too_long(400, json.dumps(body))


def test_conformance_v010_no_recorded_error_body_is_taken_for_an_overflow() -> None:
    seen = 0
    for _path, exchanges in iter_fixtures():
        for ex in exchanges:
            if ex.status >= 400:
                seen += 1
                assert not is_prompt_too_long(ex.status, ex.body), _path
    assert seen >= 8  # the recorded 400/401/404/429 bodies


def test_conformance_v010_plain_text_bodies() -> None:
    assert is_prompt_too_long(413, "Prompt is too long for this model")
    assert not is_prompt_too_long(400, "Bad Request")


# ------------------------------------------------------------------ providers over HTTP


def _make(kind: str, url: str) -> Any:
    if kind == "anthropic":
        return Anthropic(api_key=KEY, base_url=url)
    if kind == "openai":
        return OpenAI(api_key=KEY, base_url=url)
    return OpenAICompat(api_key=KEY, model="m", base_url=url)


def _call(provider: Any, stream: bool) -> Any:
    request = ProviderRequest(messages=[user("hi")])

    async def go() -> Any:
        if stream:
            return await provider.stream(request, lambda k, t: None)
        return await provider.complete(request)

    return asyncio.run(go())


@pytest.mark.parametrize("stream", [False, True])
@pytest.mark.parametrize(("kind", "body"), [
    ("anthropic", ANTHROPIC), ("anthropic", ANTHROPIC_WITH_MAX),
    ("openai", OPENAI_RESPONSES), ("compat", OPENAI_CHAT), ("compat", OPENROUTER),
    ("compat", MISTRAL), ("compat", XAI), ("compat", LLAMA_CPP),
    ("compat", GEMINI),  # Gemini's OpenAI-compatible endpoint answers with a JSON array
])
def test_conformance_v010_providers_raise_prompt_too_long(
    kind: str, body: Any, stream: bool
) -> None:
    with FakeProviderServer([reply.raw(400, JSON, json.dumps(body))]) as server, \
            pytest.raises(PromptTooLongError) as info:
        _call(_make(kind, server.url), stream)
    err = info.value
    assert isinstance(err, BadRequestError) and err.status_code == 400
    assert not err.retryable and KEY not in str(err)


def test_conformance_v010_responses_overflow_inside_the_stream() -> None:
    """Responses may report the overflow as an ``error`` event after HTTP 200."""
    event = {"type": "error", "sequence_number": 2, "error": {
        "type": "invalid_request_error", "code": "context_length_exceeded",
        "message": "Your input exceeds the context window of this model. Please adjust "
                   "your input and try again.", "param": "input"}}
    body = ("event: response.created\ndata: "
            + json.dumps({"type": "response.created", "sequence_number": 0, "response": {
                "id": "resp_1", "object": "response", "status": "in_progress",
                "output": []}})
            + "\n\nevent: error\ndata: " + json.dumps(event) + "\n\n")
    sse = {"content-type": "text/event-stream"}
    with FakeProviderServer([reply.raw(200, sse, body)]) as server, \
            pytest.raises(PromptTooLongError, match="context window"):
        _call(_make("openai", server.url), stream=True)


def test_conformance_v010_a_429_about_size_stays_a_rate_limit() -> None:
    body = {"error": {"message": "Request too large for gpt-4o in organization org-x on "
                      "tokens per min (TPM): Limit 30000, Requested 50000.",
                      "type": "tokens", "code": "rate_limit_exceeded"}}
    with FakeProviderServer([reply.raw(429, JSON, json.dumps(body))]) as server, \
            pytest.raises(RateLimitError):
        _call(_make("compat", server.url), stream=False)


# ------------------------------------------------------------------ the loop recovers


def _history(turns: int = 6) -> list[Message]:
    msgs: list[Message] = []
    for i in range(turns):
        msgs += [user(f"question {i} " + "x" * 400), assistant(f"answer {i} " + "y" * 400)]
    return [*msgs, user("and now?")]


def _too_long() -> PromptTooLongError:
    return PromptTooLongError("HTTP 400 invalid_request_error: prompt is too long: "
                              "219898 tokens > 200000 maximum", status_code=400)


def _run(provider: Scripted, messages: list[Message], events: list[Event],
         **options: Any) -> AgentState:
    config = AgentConfig.from_options(provider=provider, retry_backoff_ms=1, **options)
    state = AgentState(messages=list(messages))
    asyncio.run(run_loop(config, state, new_emitter(config, state, listeners=[events.append])))
    return state


def test_conformance_v010_prompt_too_long_force_compacts_and_retries_once() -> None:
    provider = Scripted([Scripted.error(_too_long()), "SUMMARY of the work so far",
                         "the answer"])
    events: list[Event] = []
    history = _history()
    state = _run(provider, history, events)
    assert (state.status, state.last_assistant_text) == ("completed", "the answer")
    assert state.turn == 1 and len(provider.calls) == 3  # failed call, summary, retry
    retried = provider.calls[2].messages
    assert len(retried) < len(history) and any(
        m.content and getattr(m.content[0], "text", "").startswith(SUMMARY_PREFIX)
        for m in retried)
    (compaction,) = [e for e in events if e.event == "compaction"]
    assert compaction.payload["forced"] is True
    assert not [e for e in events if e.event == "error"]
    assert state.usage.input_tokens == 20  # summary + answer; the refused call cost nothing


def test_conformance_v010_second_prompt_too_long_ends_the_run_with_error() -> None:
    provider = Scripted([Scripted.error(_too_long()), "SUMMARY", Scripted.error(_too_long()),
                         "never used"])
    events: list[Event] = []
    state = _run(provider, _history(), events)
    assert state.status == "error" and "prompt is too long" in (state.error or "")
    assert provider.replies_left == 1  # retried exactly once
    assert repair_history(state.messages) == state.messages  # a valid history
    assert [e.payload["type"] for e in events if e.event == "error"] == ["PromptTooLongError"]


def test_conformance_v010_nothing_to_compact_fails_at_once() -> None:
    provider = Scripted([Scripted.error(_too_long()), "never used"])
    state = _run(provider, [user("one huge prompt " + "z" * 2000)], [])
    assert state.status == "error" and "prompt is too long" in (state.error or "")
    assert len(provider.calls) == 1


def test_conformance_v010_prompt_too_long_over_http_end_to_end() -> None:
    """A real Anthropic provider on loopback: 400 overflow, then the summary, then the
    answer; the retried request is shorter than the refused one."""
    script = [reply.raw(400, JSON, json.dumps(ANTHROPIC)), reply.text("SUMMARY"),
              reply.text("recovered")]
    with FakeProviderServer(script) as server:
        provider = Anthropic(api_key=KEY, base_url=server.url, model="claude-sonnet-4-6")
        config = AgentConfig.from_options(provider=provider, retry_backoff_ms=1)
        state = AgentState(messages=_history())
        asyncio.run(run_loop(config, state, new_emitter(config, state)))
        sizes = [len(r.body) for r in server.requests]
    assert state.status == "completed" and state.last_assistant_text == "recovered"
    assert len(sizes) == 3 and sizes[2] < sizes[0]


# ------------------------------------------------------------------ untrusted input

from hypothesis import given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


@settings(max_examples=300, deadline=None)
@given(status=st.none() | st.integers(-1, 700), body=st.binary(max_size=300) | _json)
def test_conformance_v010_detection_never_raises_on_arbitrary_bodies(
    status: int | None, body: Any
) -> None:
    out = is_prompt_too_long(status, body)
    assert isinstance(out, bool)
    if status is not None and not 400 <= status < 500:
        assert out is False


@settings(max_examples=100, deadline=None)
@given(prefix=st.text(max_size=40), suffix=st.text(max_size=40))
def test_conformance_v010_detection_finds_the_phrase_anywhere(prefix: str, suffix: str) -> None:
    body = {"error": {"message": prefix + "prompt is too long: 5 tokens > 4 maximum" + suffix}}
    assert is_prompt_too_long(400, json.dumps(body))


def test_conformance_v010_absurdly_nested_body_is_not_an_error() -> None:
    assert is_prompt_too_long(400, "[" * 100_000) is False
