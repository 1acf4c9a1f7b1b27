"""Context compaction: keep a history inside the model's window.

The loop calls ``maybe_compact`` at the start of every turn (and emits the event, runs
``on_compaction``); this module only decides, summarises through the provider protocol and,
when that fails, truncates. Cuts fall only between groups, so a tool call and its results
are never separated.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alloy_nb._tokens import MESSAGE_OVERHEAD, estimate_tokens, message_tokens
from alloy_nb.errors import CompactionError
from alloy_nb.messages import (
    ImageBlock,
    Message,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    repair_history,
    user,
)
from alloy_nb.providers.base import Provider, ProviderRequest
from alloy_nb.usage import Usage

__all__ = [
    "MESSAGE_OVERHEAD",
    "SUMMARY_PREFIX",
    "SUMMARY_SYSTEM",
    "Compaction",
    "CompactionError",
    "CompactionOutcome",
    "estimate_tokens",
    "maybe_compact",
]

log = logging.getLogger("alloy_nb")

SUMMARY_PREFIX = "[Conversation summary]\n"
SUMMARY_SYSTEM = (
    "You write handoff summaries of agent conversations. Another instance of the assistant "
    "will continue the work from your summary alone, so be concrete and complete: the user's "
    "goal and constraints, what has been done (files, commands, tool results that matter), "
    "key decisions and why, open problems, and the next steps. If the transcript starts "
    "with a previous summary, fold it in: the new summary replaces it. Write plain text, no "
    "preamble."
)


class Compaction(BaseModel):
    """When and how to compact. ``None`` budgets are derived from ``max_tokens``.

    Derived defaults (port decision, spec §6.4, the pi-agent numbers Alloy follows):
    ``reserve_tokens = min(16_384, max_tokens // 4)`` and
    ``keep_recent_tokens = min(20_000, max_tokens // 4)`` — for a 200k window compaction
    starts above 183 616 estimated tokens and keeps the newest ~20k verbatim.
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    reserve_tokens: int | None = Field(default=None, ge=0)
    keep_recent_tokens: int | None = Field(default=None, ge=0)
    fallback: Literal["truncate", "error"] = "truncate"
    enabled: bool = True
    on_compaction: Callable[[Any], Any] | None = None

    def budgets(self, max_tokens: int) -> tuple[int, int]:
        """``(reserve_tokens, keep_recent_tokens)`` for this context budget."""
        reserve = self.reserve_tokens
        keep = self.keep_recent_tokens
        if reserve is None:
            reserve = min(16_384, max_tokens // 4)
        if keep is None:
            keep = min(20_000, max_tokens // 4)
        return reserve, keep


class CompactionOutcome(BaseModel):
    """What one compaction did; ``usage`` is the summary call's cost (loop adds it)."""

    messages: list[Message]
    before_tokens: int
    after_tokens: int
    method: Literal["summary", "truncation"]
    removed_messages: int = 0
    usage: Usage = Field(default_factory=Usage)
    summary: str | None = None
    fallback_reason: str | None = None


def is_summary(m: Message) -> bool:
    """True for the synthetic summary message a previous compaction inserted."""
    first = m.content[0] if m.content else None
    return m.role == "user" and isinstance(first, TextBlock) and first.text.startswith(
        SUMMARY_PREFIX
    )


async def maybe_compact(
    messages: Sequence[Message],
    *,
    settings: Compaction,
    max_tokens: int,
    provider: Provider,
    system: str | None = None,
    force: bool = False,
) -> CompactionOutcome | None:
    """Compact when the estimate exceeds ``max_tokens − reserve_tokens`` (or ``force``).

    Keeps the first user message and a recent window of about ``keep_recent_tokens``,
    replacing what lies between with one ``[Conversation summary]`` user message written
    by ``provider`` (a previous summary is folded in, never stacked). If summarising fails
    the history is truncated instead, or ``CompactionError`` is raised when
    ``fallback="error"``. Returns None when nothing needed (or could) change; the returned
    history always passes ``repair_history`` unchanged.
    """
    if not settings.enabled or not messages:
        return None
    reserve, keep_recent = settings.budgets(max_tokens)
    limit = max(max_tokens - reserve, 1)
    msgs = list(messages)
    costs = [message_tokens(m) + MESSAGE_OVERHEAD for m in msgs]
    fixed = len(system) // 4 if system else 0
    before = fixed + sum(costs)
    if before <= limit and not force:
        return None
    repaired = repair_history(msgs)
    if repaired != msgs:
        msgs = repaired
        costs = [message_tokens(m) + MESSAGE_OVERHEAD for m in msgs]
    plan = _plan(msgs, costs, keep_recent)
    target = limit - fixed
    summary_text: str | None = None
    usage = Usage()
    reason: str | None = None
    out: list[Message] | None = None
    if plan.middle_start < plan.recent_start:
        try:
            summary_text, usage = await _summarise(
                msgs[plan.middle_start : plan.recent_start], provider, target
            )
        except Exception as exc:  # any failure: fall back (CancelledError still propagates)
            reason = f"{type(exc).__name__}: {exc}"
            if settings.fallback == "error":
                raise CompactionError(f"compaction failed: {reason}") from exc
            log.warning("compaction summary failed (%s); truncating instead", reason)
        else:
            head = msgs[: plan.middle_start]
            summary_msg = user(SUMMARY_PREFIX + summary_text)
            summary_cost = message_tokens(summary_msg) + MESSAGE_OVERHEAD
            room = max(target - sum(costs[: plan.middle_start]) - sum(costs[plan.recent_start :]),
                       target // 2)
            if summary_cost > room:  # a summary must shrink the history, not outgrow it
                reason = (f"the summary is too long ({summary_cost} tokens; "
                          f"the budget leaves {room})")
                if settings.fallback == "error":
                    raise CompactionError(f"compaction failed: {reason}")
                log.warning("compaction summary rejected (%s); truncating instead", reason)
                summary_text = None  # the call's usage stays: it was spent
            else:
                out = [*head, summary_msg, *msgs[plan.recent_start :]]
                new_costs = [
                    *costs[: plan.middle_start],
                    summary_cost,
                    *costs[plan.recent_start :],
                ]
                if sum(new_costs) > target:  # recent window alone is too big: trim it too
                    out = _truncate(out, new_costs, len(head) + 1, len(head) + 1, target)
    if out is None:
        out = _truncate(msgs, costs, plan.middle_start, plan.recent_start, target)
    if out == list(messages):
        return None
    after = estimate_tokens(out, system, message_overhead=MESSAGE_OVERHEAD)
    return CompactionOutcome(
        messages=out,
        before_tokens=before,
        after_tokens=after,
        method="truncation" if summary_text is None else "summary",
        removed_messages=max(len(messages) - len(out), 0),
        usage=usage,
        summary=summary_text,
        fallback_reason=reason,
    )


async def _summarise(
    middle: Sequence[Message], provider: Provider, budget_tokens: int
) -> tuple[str, Usage]:
    """Ask the provider for a handoff summary of ``middle``; empty text is a failure."""
    transcript = _render(middle, max_chars=max(8_000, budget_tokens * 3))
    prompt = (
        "Summarise this conversation so far for a handoff. Transcript:\n\n"
        f"{transcript}\n\nWrite the handoff summary now."
    )
    completion = await provider.complete(
        ProviderRequest(messages=[user(prompt)], system=SUMMARY_SYSTEM)
    )
    text = completion.message.text.strip()
    if not text:
        raise ValueError("the provider returned an empty summary")
    return text, completion.usage


# --- cutting at group boundaries -----------------------------------------------------------

COMPACTED = "[compacted]"
_KEEP_CHARS = 200  # 0.7.4: long assistant text and thinking keep their first 200 chars
_NOTE_COST = 32  # room for the "messages were removed" note


def _is_results(m: Message) -> bool:
    """A user message answering tool calls: it belongs to the group before it."""
    return m.role == "user" and any(isinstance(b, ToolResultBlock) for b in m.content)


def _group_starts(msgs: Sequence[Message], start: int = 0) -> list[int]:
    """Indices where a cut may fall: before any message that is not a tool-result message."""
    starts = [i for i in range(start, len(msgs)) if not _is_results(msgs[i])]
    if not starts or starts[0] != start:
        starts.insert(0, start)
    return starts


@dataclass(frozen=True)
class _Plan:
    middle_start: int  # 1 when the first message is kept, else 0
    recent_start: int  # first message of the verbatim recent window (a group start)


def _plan(msgs: Sequence[Message], costs: Sequence[int], keep_recent: int) -> _Plan:
    """Keep the first user message (if small) and as many newest groups as fit."""
    first = msgs[0]
    keep_first = (
        len(msgs) > 1
        and first.role == "user"
        and not _is_results(first)
        and not is_summary(first)
        and costs[0] <= keep_recent
    )
    middle_start = 1 if keep_first else 0
    starts = _group_starts(msgs, middle_start)
    recent_start = starts[-1]  # the newest group is always kept, whatever its size
    used = sum(costs[recent_start:])
    for g in reversed(starts[:-1]):
        group = sum(costs[g:recent_start])
        if used + group > keep_recent:
            break
        used += group
        recent_start = g
    return _Plan(middle_start, recent_start)


def _shrink(m: Message) -> Message:
    """0.7.4 truncation of one message: results → "[compacted]", long text cut, signed
    thinking dropped (providers reject altered signatures), images replaced by a note."""
    out: list[Any] = []
    changed = False
    for b in m.content:
        new: Any = b
        if isinstance(b, ToolResultBlock) and b.content != COMPACTED:
            new = b.model_copy(update={"content": COMPACTED})
        elif isinstance(b, ThinkingBlock) and b.signature:
            changed = True  # dropped: a signed block cannot be altered
            continue
        elif isinstance(b, ThinkingBlock) and len(b.thinking) > _KEEP_CHARS + 3:
            new = b.model_copy(update={"thinking": b.thinking[:_KEEP_CHARS] + "..."})
        elif (isinstance(b, TextBlock) and m.role == "assistant"
              and len(b.text) > _KEEP_CHARS + 3):
            new = TextBlock(text=b.text[:_KEEP_CHARS] + "...")
        elif isinstance(b, ImageBlock):
            new = TextBlock(text="[image]")
        else:
            out.append(b)
            continue
        changed = True
        out.append(new)
    if not changed:
        return m
    return Message(role=m.role, content=out or [TextBlock(text=COMPACTED)])


def _truncate(
    msgs: Sequence[Message],
    costs: Sequence[int],
    middle_start: int,
    recent_start: int,
    target: int,
) -> list[Message]:
    """Provider-free fallback, mildest step first: shrink the middle, drop its oldest
    groups, shrink the recent window, drop its oldest groups. The head (first message
    and summary) and the newest group always stay."""
    head = list(msgs[:middle_start])
    body = list(msgs[middle_start:])
    bcost = list(costs[middle_start:])
    total = sum(costs[:middle_start]) + sum(bcost)
    mid_end = recent_start - middle_start

    def shrink(lo: int, hi: int) -> None:
        nonlocal total
        for i in range(lo, hi):
            small = _shrink(body[i])
            if small is not body[i]:
                body[i] = small
                new = message_tokens(small) + MESSAGE_OVERHEAD
                total += new - bcost[i]
                bcost[i] = new

    starts = _group_starts(body)
    gi = 0  # groups before starts[gi] are dropped

    def drop(until: int) -> None:
        nonlocal total, gi
        while total > target - _NOTE_COST and gi + 1 < len(starts) and starts[gi + 1] <= until:
            total -= sum(bcost[starts[gi] : starts[gi + 1]])
            gi += 1

    shrink(0, mid_end)
    drop(mid_end)
    if total > target:
        shrink(starts[gi], starts[-1])
        drop(starts[-1])
    dropped = starts[gi]
    kept = body[dropped:]
    if dropped:
        note = f"{COMPACTED} {dropped} earlier messages were removed to fit the context window."
        kept.insert(0, user(note))
    return head + kept


# --- rendering the part to summarise ----------------------------------------------------


def _clip(text: str, n: int) -> str:
    if len(text) <= n:
        return text
    half = n // 2
    return f"{text[:half]} [...{len(text) - n} chars...] {text[-half:]}"


def _render_message(m: Message) -> str:
    if is_summary(m):
        return "Previous summary:\n" + m.text[len(SUMMARY_PREFIX) :]
    lines = ["Tool results:" if _is_results(m) else f"{m.role.capitalize()}:"]
    for b in m.content:
        if isinstance(b, TextBlock):
            lines.append(_clip(b.text, 4_000))
        elif isinstance(b, ToolUseBlock | ServerToolUseBlock):
            lines.append(f"[tool call {b.name} {_clip(json.dumps(b.input), 1_000)}]")
        elif isinstance(b, ToolResultBlock):
            flag = " (error)" if b.is_error else ""
            lines.append(f"[tool result{flag}: {_clip(b.content, 2_000)}]")
        elif isinstance(b, ThinkingBlock):
            continue
        else:
            lines.append(f"[{b.type}]")
    return "\n".join(lines)


def _render(middle: Sequence[Message], max_chars: int) -> str:
    """Plain-text transcript; when too long, older messages (not summaries) are left out."""
    parts = [_render_message(m) for m in middle]
    if sum(len(p) + 2 for p in parts) <= max_chars:
        return "\n\n".join(parts)
    keep_flags = [is_summary(m) for m in middle]
    used = sum(len(p) + 2 for p, k in zip(parts, keep_flags, strict=True) if k)
    for i in range(len(parts) - 1, -1, -1):
        if not keep_flags[i] and used + len(parts[i]) + 2 <= max_chars:
            keep_flags[i] = True
            used += len(parts[i]) + 2
        elif not keep_flags[i]:
            break
    omitted = keep_flags.count(False)
    kept = [p for p, k in zip(parts, keep_flags, strict=True) if k]
    return f"[... {omitted} earlier messages omitted ...]\n\n" + "\n\n".join(kept)
