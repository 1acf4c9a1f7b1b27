"""Context compaction (interface stub; the full implementation is owned by the session work).

The loop calls ``maybe_compact`` at the start of every turn; it returns None when the
history fits, or a ``CompactionOutcome`` with the shorter history.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alloy_nb.messages import Message
from alloy_nb.providers.base import Provider
from alloy_nb.usage import Usage

__all__ = ["Compaction", "CompactionOutcome", "estimate_tokens", "maybe_compact"]


class Compaction(BaseModel):
    model_config = ConfigDict(arbitrary_types_allowed=True)

    reserve_tokens: int | None = None
    keep_recent_tokens: int | None = None
    fallback: Literal["truncate", "error"] = "truncate"
    enabled: bool = True
    on_compaction: Callable[[Any], Any] | None = None


class CompactionOutcome(BaseModel):
    messages: list[Message]
    before_tokens: int
    after_tokens: int
    method: Literal["summary", "truncation"]
    removed_messages: int = 0
    usage: Usage = Field(default_factory=Usage)
    summary: str | None = None


def estimate_tokens(messages: Sequence[Message], system: str | None = None) -> int:
    chars = len(system or "") + sum(len(b.model_dump_json()) for m in messages for b in m.content)
    return chars // 4


async def maybe_compact(
    messages: Sequence[Message],
    *,
    settings: Compaction,
    max_tokens: int,
    provider: Provider,
    system: str | None = None,
) -> CompactionOutcome | None:
    return None
