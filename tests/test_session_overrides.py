"""Per-request options on chat/achat/stream_chat/astream_chat: they apply to that request
only; the session's config and any other request (even one queued behind it) never see them."""

from __future__ import annotations

import asyncio

import pytest

from alloy_nb.errors import ConfigError
from alloy_nb.providers.scripted import Scripted
from alloy_nb.session import Session
from alloy_nb.tools import tool


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_overrides_apply_to_one_request_and_never_to_a_concurrent_one() -> None:
    own = Scripted(["plain answer"])
    other = Scripted([Scripted.delay(0.2, "overridden answer")], model="other-model")
    session = Session(provider=own, system_prompt="session prompt", max_turns=7)
    before = session.config

    async def main() -> tuple[str, str]:
        first = asyncio.create_task(session.achat(
            "cell one", provider=other, tools=[add], system_prompt="cell prompt", max_turns=2))
        await asyncio.sleep(0.05)  # cell one is running on `other` now
        assert session.current_request_id is not None
        assert session.config is before and session.model == before.model
        second = asyncio.create_task(session.achat("cell two"))  # waits for cell one
        a, b = await asyncio.gather(first, second)
        return a.text, b.text

    assert asyncio.run(main()) == ("overridden answer", "plain answer")
    (seen_by_first,), (seen_by_second,) = other.calls, own.calls
    assert seen_by_first.system == "cell prompt"
    assert [t.name for t in seen_by_first.tools] == ["add"]
    assert seen_by_second.system == "session prompt" and seen_by_second.tools == []
    assert session.config is before  # nothing to undo: it was never changed
    assert session.config.max_turns == 7


def test_streaming_and_blocking_variants_take_the_same_overrides() -> None:
    own = Scripted(["a", "b"])
    session = Session(provider=own)
    chunks: list[str] = []
    session.stream_chat("one", chunks.append, system_prompt="streamed")
    session.chat("two", system_prompt="blocking")
    assert [c.system for c in own.calls] == ["streamed", "blocking"]
    assert session.config.system_prompt is None and chunks == ["a"]


def test_a_bad_override_fails_in_the_caller_and_changes_nothing() -> None:
    session = Session(provider=Scripted(["never"]))
    with pytest.raises(ConfigError):
        session.chat("hi", max_turns=-1)
    with pytest.raises(ConfigError):
        session.chat("hi", provider="no-such-prefix:model")
    assert session.messages == [] and session.history == []
