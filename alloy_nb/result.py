"""The outcome of one run: final text, full history, usage, executed tool calls, status."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from alloy_nb.messages import Message
from alloy_nb.usage import Usage

__all__ = ["Result", "Status", "ToolCall"]

Status = Literal["completed", "max_turns", "budget_exceeded", "halted", "error", "cancelled"]
OK_STATUSES: frozenset[str] = frozenset({"completed", "max_turns", "budget_exceeded"})


class ToolCall(BaseModel):
    """Metadata of one executed (or blocked, or crashed) tool call."""

    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)
    duration_ms: int = 0
    error: str | None = None
    correlation_id: str | None = None
    start_event_seq: int | None = None
    end_event_seq: int | None = None
    structured_data: Any = None
    wait_ms: int = 0  # time spent waiting for a person (approval), not in duration_ms


class Result(BaseModel):
    model_config = ConfigDict(extra="allow")

    text: str | None = None
    messages: list[Message] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    tool_calls: list[ToolCall] = Field(default_factory=list)
    status: Status = "completed"
    turns: int = 0
    error: str | None = None
    request_id: str | None = None
    model: str | None = None
    output: Any = None  # output_type: the validated value of the final_result call

    def __getitem__(self, key: str) -> Any:
        return getattr(self, key)

    @property
    def ok(self) -> bool:
        return self.status in OK_STATUSES

    def _repr_markdown_(self) -> str:
        parts = [self.text or "*(no text)*", "", "---"]
        if self.output is not None:
            shown = repr(self.output)
            shown = shown if len(shown) <= 2000 else shown[:1997] + "..."
            parts[1:1] = ["", f"**output** `{shown}`"]
        calls = ", ".join(f"`{c.name}`" + (" ⚠" if c.error else "") for c in self.tool_calls)
        meta = [
            f"**status** {self.status}",
            f"**turns** {self.turns}",
            f"**tokens** {self.usage.input_tokens:,} in / {self.usage.output_tokens:,} out",
            f"**cost** {self.usage.cost_label}",
        ]
        if self.model:
            meta.insert(0, f"**model** `{self.model}`")
        parts.append(" · ".join(meta))
        if calls:
            parts.append(f"**tools** {calls}")
        if self.error:
            parts.append(f"**error** {self.error}")
        return "\n".join(parts)

    def __repr__(self) -> str:
        text = self.text if self.text is None or len(self.text) < 60 else self.text[:57] + "..."
        return (
            f"Result(status={self.status!r}, turns={self.turns}, text={json.dumps(text)}, "
            f"messages={len(self.messages)}, tool_calls={len(self.tool_calls)}, "
            f"usage={self.usage.input_tokens}/{self.usage.output_tokens})"
        )
