"""Cheap token estimate for a message history (reference §6.1): chars // 4 per string.

No tokenizer and no provider call: compaction (``compaction.py``) needs a fast, stable
number every turn, not an exact one. Counts are cached per (immutable) message object.
"""

from __future__ import annotations

import json
import weakref
from collections.abc import Sequence

from alloy_nb.messages import (
    ImageBlock,
    Message,
    RawBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)

__all__ = ["MESSAGE_OVERHEAD", "estimate_tokens", "message_tokens"]

MESSAGE_OVERHEAD = 4  # tokens a provider spends per message on role and framing
_FIXED = {"image": 1000, "audio": 500, "video": 2000, "document": 3000}
_JSON = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False)


def _count(m: Message) -> int:
    n = 0
    for b in m.content:
        if isinstance(b, TextBlock):
            n += len(b.text) // 4
        elif isinstance(b, ToolResultBlock):
            n += len(b.content) // 4
        elif isinstance(b, ToolUseBlock | ServerToolUseBlock):
            n += len(b.name) // 4 + len(_JSON.encode(b.input)) // 4
        elif isinstance(b, ThinkingBlock):
            n += len(b.thinking) // 4
        elif isinstance(b, ImageBlock):
            n += _FIXED["image"]
        elif isinstance(b, RawBlock):
            content = getattr(b, "content", None)
            if b.type == "server_tool_result" and isinstance(content, str):
                n += len(content) // 4
            else:
                n += _FIXED.get(b.type, 0)
    return n


class _Counted(weakref.ref):  # type: ignore[type-arg]  # generic only in typeshed
    """Cache entry: messages are immutable, so a count holds for the message's life."""

    __slots__ = ("key", "tokens")
    key: int
    tokens: int


_COUNTS: dict[int, _Counted] = {}


def _forget(ref: _Counted) -> None:
    if _COUNTS.get(ref.key) is ref:  # the id may already belong to a newer message
        _COUNTS.pop(ref.key, None)


def message_tokens(m: Message) -> int:
    """Spec §6.1 estimate of one message: chars // 4 per text, fixed costs for media.

    Cached per message object, so the per-turn check of a long history stays cheap.
    """
    key = id(m)
    ref = _COUNTS.get(key)
    if ref is not None and ref() is m:
        return ref.tokens
    ref = _Counted(m, _forget)
    ref.key, ref.tokens = key, _count(m)
    _COUNTS[key] = ref
    return ref.tokens


def estimate_tokens(
    messages: Sequence[Message], system: str | None = None, *, message_overhead: int = 0
) -> int:
    """Cheap token estimate (chars // 4 per string, spec §6.1), linear in the history.

    With the default ``message_overhead=0`` the numbers are the reference ones (a 40- and
    an 80-char message → 30); compaction adds ``MESSAGE_OVERHEAD`` per message, which keeps
    histories of many tiny messages from slipping past the budget.
    """
    total = len(system) // 4 if system else 0
    for m in messages:
        total += message_tokens(m) + message_overhead
    return total


