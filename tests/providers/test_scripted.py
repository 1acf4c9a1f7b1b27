"""The Scripted provider (spec §5.6, conformance Q189–Q192)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import pytest

from alloy_nb.errors import ProviderError, RateLimitError, ScriptExhausted
from alloy_nb.messages import Message, TextBlock, ThinkingBlock, ToolUseBlock, user
from alloy_nb.providers.base import Completion, ProviderRequest
from alloy_nb.providers.scripted import Scripted
from alloy_nb.usage import Usage

REQ = ProviderRequest(messages=[user("hi")])


def complete(p: Scripted, request: ProviderRequest = REQ) -> Completion:
    return asyncio.run(p.complete(request))


def stream(p: Scripted) -> tuple[Completion, list[tuple[str, str]]]:
    deltas: list[tuple[str, str]] = []

    async def go() -> Completion:
        return await p.stream(REQ, lambda kind, text: deltas.append((kind, text)))

    return asyncio.run(go()), deltas


def test_q189_text_reply_shape() -> None:
    c = complete(Scripted(["Hello"]))
    assert c.stop_reason == "end_turn"
    assert c.message == Message(role="assistant", content="Hello")
    assert (c.usage.input_tokens, c.usage.output_tokens) == (10, 5)
    assert c.model == "scripted"


def test_q189_tool_calls_keep_the_given_calls() -> None:
    entry = Scripted.tool_calls(("add", {"a": 1, "b": 2}, "call_1"), ("echo", {"text": "x"}))
    c = complete(Scripted([entry]))
    assert c.stop_reason == "tool_use"
    first, second = c.message.tool_calls
    assert (first.id, first.name, first.input) == ("call_1", "add", {"a": 1, "b": 2})
    assert second.name == "echo" and second.id.startswith("call_")
    with pytest.raises(ValueError, match="at least one"):
        Scripted.tool_calls()


def test_q189_errors_are_raised_as_given() -> None:
    err = RateLimitError("HTTP 429: slow down", status_code=429)
    with pytest.raises(RateLimitError) as info:
        complete(Scripted([Scripted.error(err)]))
    assert info.value is err
    with pytest.raises(ProviderError, match=r"^rate limited$") as plain:
        complete(Scripted([Scripted.error("rate limited")]))
    assert not plain.value.retryable


def test_q190_replies_in_order_then_exhausted() -> None:
    p = Scripted(["one", "two"])
    assert complete(p).message.text == "one"
    assert p.replies_left == 1
    assert complete(p, ProviderRequest(messages=[user("anything at all")])).message.text == "two"
    with pytest.raises(ScriptExhausted, match=r"no more replies \(used 2 of 2\)"):
        complete(p)
    assert len(p.calls) == 3 and p.calls[1].messages[0].text == "anything at all"


def test_q191_stream_chunks_and_same_response() -> None:
    c, deltas = stream(Scripted(["Hi!"], chunk_size=1))
    assert deltas == [("text", "H"), ("text", "i"), ("text", "!")]
    assert c == complete(Scripted(["Hi!"]))


def test_default_chunks_are_small() -> None:
    _, deltas = stream(Scripted(["Hello, world"]))
    assert "".join(t for _, t in deltas) == "Hello, world"
    assert all(1 <= len(t) <= 5 for _, t in deltas) and len(deltas) > 1


def test_q191_no_chunks_for_tool_use_and_shared_queue() -> None:
    p = Scripted([Scripted.tool_calls(("echo", {})), "after"])
    _, deltas = stream(p)
    assert deltas == []
    assert complete(p).message.text == "after"  # complete and stream share one queue


def test_reply_builder_with_thinking_text_and_calls() -> None:
    entry = Scripted.reply("Let me add.", thinking="2 numbers", tool_calls=[("add", {"a": 1})],
                           usage=(3, 4))
    c, deltas = stream(Scripted([entry], chunk_size=100))
    assert deltas == [("thinking", "2 numbers"), ("text", "Let me add.")]
    kinds = [type(b) for b in c.message.content]
    assert kinds == [ThinkingBlock, TextBlock, ToolUseBlock]
    assert c.stop_reason == "tool_use" and c.usage == Usage(input_tokens=3, output_tokens=4)


def test_completion_entries_are_played_verbatim() -> None:
    verbatim = Completion(stop_reason="end_turn", message=Message(role="assistant", content="v"),
                          model="custom", request_id="req_1")
    assert complete(Scripted([verbatim])) == verbatim


def test_delay_is_cancellable() -> None:
    p = Scripted([Scripted.delay(0.05, "late"), Scripted.delay(30, "never")])
    t0 = time.monotonic()
    assert complete(p).message.text == "late"
    assert time.monotonic() - t0 >= 0.04

    async def cancel_it() -> None:
        task = asyncio.create_task(p.complete(REQ))
        await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    t0 = time.monotonic()
    asyncio.run(cancel_it())
    assert time.monotonic() - t0 < 5


def test_thinking_then_error() -> None:
    p = Scripted([Scripted.thinking_then_error("hmm", RateLimitError("429", status_code=429))])
    deltas: list[Any] = []

    async def go() -> None:
        await p.stream(REQ, lambda kind, text: deltas.append((kind, text)))

    with pytest.raises(RateLimitError):
        asyncio.run(go())
    assert deltas == [("thinking", "hmm")]


def test_custom_model_usage_push_and_repr() -> None:
    p = Scripted("solo", model="claude-sonnet-4-6", usage=(1, 2))
    p.push("extra")
    assert p.replies_left == 2 and "replies_left=2" in repr(p)
    c = complete(p)
    assert c.model == "claude-sonnet-4-6" and c.usage.output_tokens == 2
    assert p.describe()["replies_left"] == 1


def test_unplayable_entry_is_a_type_error() -> None:
    with pytest.raises(TypeError, match="cannot play"):
        complete(Scripted([42]))
