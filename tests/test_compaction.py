"""Compaction: token estimate (spec §6.1, conformance H), trigger, summary, fallback."""

from __future__ import annotations

import asyncio

import pytest

from alloy_nb.compaction import (
    MESSAGE_OVERHEAD,
    SUMMARY_PREFIX,
    SUMMARY_SYSTEM,
    Compaction,
    CompactionError,
    estimate_tokens,
    maybe_compact,
)
from alloy_nb.errors import ProviderError
from alloy_nb.messages import (
    ImageBlock,
    Message,
    RawBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    assistant,
    repair_history,
    tool_results,
    user,
)
from alloy_nb.providers.scripted import Scripted


def _history(n_pairs: int, result_chars: int = 400) -> list[Message]:
    """user prompt, then (assistant tool_use + user tool_result, assistant text) blocks."""
    msgs = [user("Please analyse the project.")]
    for i in range(n_pairs):
        call = ToolUseBlock(id=f"call_{i}", name="read", input={"path": f"f{i}.py"})
        msgs.append(assistant([TextBlock(text=f"Reading file {i}."), call]))
        result = ToolResultBlock(tool_use_id=f"call_{i}", content="x" * result_chars)
        msgs.append(tool_results([result]))
        if i % 3 == 2:
            msgs.append(assistant(f"Notes on step {i}: " + "y" * 300))
            msgs.append(user(f"continue with step {i + 1}"))
    return msgs


def _assert_pairs_intact(msgs: list[Message]) -> None:
    """Every tool_use is answered in the very next message, and nothing else was changed."""
    assert repair_history(msgs) == msgs
    for i, m in enumerate(msgs):
        ids = [b.id for b in m.content if isinstance(b, ToolUseBlock)]
        if ids:
            answered = [b.tool_use_id for b in msgs[i + 1].tool_result_blocks]
            assert answered == ids


def _run(coro):
    return asyncio.run(coro)


def _compact(msgs, max_tokens, provider=None, *, force=False, **settings):
    """One ``maybe_compact`` call with ``Compaction(**settings)``."""
    provider = provider if provider is not None else Scripted([])
    return _run(maybe_compact(msgs, settings=Compaction(**settings), max_tokens=max_tokens,
                              provider=provider, force=force))


# --- token estimate (H124, H126, H127, H128-equivalent) -------------------------------


def test_estimate_reference_numbers():  # H124
    assert estimate_tokens([]) == 0
    assert estimate_tokens([user("a" * 40), assistant("b" * 80)]) == 30
    assert estimate_tokens([user("x" * 200)]) == 50
    assert estimate_tokens([user("hello")]) == 1
    call = ToolUseBlock(id="1", name="read", input={"path": "a.py"})
    blocks = assistant([TextBlock(text="let me look"), call])
    assert estimate_tokens([blocks]) > 0
    result = tool_results([ToolResultBlock(tool_use_id="1", content="z" * 80)])
    assert estimate_tokens([result]) >= 20


def test_estimate_media_and_thinking():  # H126, H127
    img = user([ImageBlock(mime_type="image/png", data="AAAA")])
    audio = user([RawBlock(type="audio", mime_type="audio/wav", data="AA")])
    video = user([RawBlock(type="video", mime_type="video/mp4", data="AA")])
    assert estimate_tokens([img]) == 1000
    assert estimate_tokens([video]) >= estimate_tokens([audio]) > 0
    assert estimate_tokens([assistant([ThinkingBlock(thinking="t" * 400)])]) >= 100
    assert estimate_tokens([assistant([ThinkingBlock(thinking="")])]) == 0


def test_estimate_system_and_overhead():
    msgs = [user("a" * 40), assistant("b" * 40)]
    assert estimate_tokens(msgs, system="s" * 400) == 120
    assert estimate_tokens(msgs, message_overhead=MESSAGE_OVERHEAD) == 20 + 2 * MESSAGE_OVERHEAD


def test_estimate_of_10k_messages_is_additive():
    # speed is measured in benchmarks/bench_session.py; here: the cached estimate stays exact
    msgs = _history(3_800)  # > 10k messages
    assert len(msgs) > 10_000
    half = len(msgs) // 2
    whole = estimate_tokens(msgs)
    assert whole == estimate_tokens(msgs[:half]) + estimate_tokens(msgs[half:])
    assert estimate_tokens(msgs) == whole  # second (cached) pass agrees


# --- settings -------------------------------------------------------------------------


def test_default_budgets_derive_from_max_tokens():
    assert Compaction().budgets(200_000) == (16_384, 20_000)
    assert Compaction().budgets(1_000) == (250, 250)
    assert Compaction(reserve_tokens=100, keep_recent_tokens=50).budgets(200_000) == (100, 50)


# --- trigger (H119) -------------------------------------------------------------------


def test_within_budget_returns_none():  # H119
    provider = Scripted([])
    out = _compact([user("hello")], 1_000, provider)
    assert out is None
    assert provider.calls == []


def test_disabled_never_compacts():
    msgs = _history(50)
    out = _compact(msgs, 500, enabled=False)
    assert out is None


def test_trigger_is_max_tokens_minus_reserve():
    msgs = [user("a" * 400), assistant("b" * 400), user("c" * 400)]  # 300 + 12 overhead
    settings = {"reserve_tokens": 100, "keep_recent_tokens": 50}
    assert _compact(msgs, 412, **settings) is None
    out = _compact(msgs, 411, Scripted(["sum"]), **settings)
    assert out is not None


# --- summary path ---------------------------------------------------------------------


def test_summary_of_2000_messages_keeps_tool_pairs():
    msgs = _history(800)
    assert len(msgs) >= 2_000
    summariser = Scripted(["Progress: read 800 files. Next: write the report."])
    settings = Compaction()
    out = _run(maybe_compact(msgs, settings=settings, max_tokens=50_000, provider=summariser))
    assert out is not None and out.method == "summary"
    assert out.messages[0] == msgs[0]  # the first message is kept
    assert out.messages[1].text.startswith(SUMMARY_PREFIX)
    assert "read 800 files" in out.messages[1].text
    assert out.messages[-1] == msgs[-1]
    assert out.after_tokens < out.before_tokens
    assert out.after_tokens <= 50_000 - settings.budgets(50_000)[0]
    assert out.usage.input_tokens == 10  # the summary call's usage, for the loop to add
    _assert_pairs_intact(out.messages)
    # the recent window is verbatim and about keep_recent_tokens big
    recent = out.messages[2:]
    assert recent == msgs[len(msgs) - len(recent):]
    assert estimate_tokens(recent) <= settings.budgets(50_000)[1]
    request = summariser.calls[0]
    assert request.system == SUMMARY_SYSTEM
    assert "read" in request.messages[0].text and request.tools == []


def test_second_compaction_folds_previous_summary():
    msgs = _history(300)
    summariser = Scripted(["first summary", "second summary"])
    first = _compact(msgs, 20_000, summariser)
    grown = first.messages + _history(300)[1:]
    second = _compact(grown, 20_000, summariser)
    summaries = [m for m in second.messages if m.text.startswith(SUMMARY_PREFIX)]
    assert [s.text for s in summaries] == [SUMMARY_PREFIX + "second summary"]
    assert "Previous summary:\nfirst summary" in summariser.calls[1].messages[0].text
    _assert_pairs_intact(second.messages)


def test_summary_never_starts_recent_window_with_tool_results():
    # huge tool results: the recent window must start before the assistant tool_use
    msgs = _history(40, result_chars=4_000)
    out = _compact(msgs, 20_000, Scripted(["s"]), keep_recent_tokens=1_500)
    assert not any(isinstance(b, ToolResultBlock) for b in out.messages[2].content)
    _assert_pairs_intact(out.messages)


# --- truncation fallback (H120, H123) -------------------------------------------------


def test_summary_failure_falls_back_to_truncation():
    msgs = _history(800)
    summariser = Scripted([Scripted.error(ProviderError("boom"))])
    out = _compact(msgs, 50_000, summariser)
    assert out is not None and out.method == "truncation"
    assert "boom" in out.fallback_reason
    assert out.messages[0] == msgs[0] and out.messages[-1] == msgs[-1]
    assert out.after_tokens <= 50_000 - Compaction().budgets(50_000)[0]
    _assert_pairs_intact(out.messages)


def test_empty_summary_counts_as_failure():
    msgs = _history(100)
    out = _compact(msgs, 10_000, Scripted(["  "]))
    assert out.method == "truncation" and "empty summary" in out.fallback_reason


def test_fallback_error_raises():
    msgs = _history(800)
    summariser = Scripted([Scripted.error(ProviderError("boom"))])
    with pytest.raises(CompactionError, match="boom"):
        _compact(msgs, 50_000, summariser, fallback="error")


def test_truncation_compacts_middle_tool_result_before_dropping():  # H120
    msgs = [
        user("start"),
        assistant([ToolUseBlock(id="t1", name="read", input={})]),
        tool_results([ToolResultBlock(tool_use_id="t1", content="r" * 1_200)]),
        assistant("m" * 500),
        user("next"),
    ]
    failing = Scripted([Scripted.error("no")])
    out = _compact(msgs, 250, failing, reserve_tokens=0, keep_recent_tokens=5)
    assert len(out.messages) == len(msgs)  # shrinking was enough, nothing dropped
    assert out.messages[2].content[0].content == "[compacted]"
    assert len(out.messages[3].text) <= 203  # H123
    assert out.messages[0] == msgs[0] and out.messages[-1] == msgs[-1]
    _assert_pairs_intact(out.messages)


def test_truncation_drops_oldest_groups_and_signed_thinking():
    msgs = [user("start")]
    for i in range(30):
        msgs.append(assistant([ThinkingBlock(thinking="deep " * 50, signature="sig"),
                               ToolUseBlock(id=f"c{i}", name="read", input={})]))
        msgs.append(tool_results([ToolResultBlock(tool_use_id=f"c{i}", content="r" * 800)]))
        msgs.append(user("p" * 800))
    out = _compact(msgs, 1_000, Scripted([Scripted.error("no")]), fallback="truncate")
    assert out.removed_messages > 0
    assert "earlier messages were removed" in out.messages[1].text
    older = out.messages[2:-3]
    assert not [b for m in older for b in m.content if isinstance(b, ThinkingBlock)]
    assert out.messages[-1] == msgs[-1]  # the newest group is always kept verbatim
    _assert_pairs_intact(out.messages)


def test_force_compacts_within_budget():
    msgs = _history(30)
    out = _compact(msgs, 10**6, Scripted(["forced summary"]), force=True, keep_recent_tokens=100)
    assert out is not None and out.summary == "forced summary"


def test_repairs_invalid_input_before_compacting():
    msgs = _history(100)
    del msgs[2]  # drop a tool_result: the call now dangles
    out = _compact(msgs, 5_000, Scripted(["s"]))
    _assert_pairs_intact(out.messages)


def test_a_summary_too_long_to_help_is_rejected_for_truncation():
    msgs = _history(300)
    limit = 20_000 - Compaction().budgets(20_000)[0]
    out = _compact(msgs, 20_000, Scripted(["S" * 200_000]))
    assert out.method == "truncation" and "summary is too long" in out.fallback_reason
    assert out.summary is None
    assert out.usage.input_tokens > 0  # the rejected call was still paid for
    assert out.after_tokens <= limit < out.before_tokens
    assert not any(m.text.startswith(SUMMARY_PREFIX) for m in out.messages)
    _assert_pairs_intact(out.messages)
    with pytest.raises(CompactionError, match="too long"):
        _compact(msgs, 20_000, Scripted(["S" * 200_000]), fallback="error")
