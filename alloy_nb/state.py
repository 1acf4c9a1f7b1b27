"""The mutable state of one run: what middleware sees and the loop threads through.

Data only. ``agent/turn.py`` changes it; ``Result`` is the frozen picture of it
that callers get back (``to_result``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from alloy_nb.messages import Message, repair_history
from alloy_nb.result import Result, ToolCall
from alloy_nb.usage import Usage

if TYPE_CHECKING:
    from alloy_nb.agent.config import AgentConfig

__all__ = ["AgentState", "StateStatus"]

StateStatus = Literal[
    "idle", "running", "completed", "max_turns", "budget_exceeded", "halted", "error", "cancelled"
]

_FINAL = frozenset({"completed", "max_turns", "budget_exceeded", "halted", "error", "cancelled"})


@dataclass(eq=False)
class AgentState:
    """Everything a run knows about itself.

    ``config`` is the run's ``AgentConfig`` (set by the loop); ``context`` is the mapping
    tools and middleware share (the loop merges it over ``config.context``). ``turn``
    counts completed provider calls; ``tool_calls`` holds this run's executed calls.
    """

    messages: list[Message] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    turn: int = 0
    usage: Usage = field(default_factory=Usage)
    tool_calls: list[ToolCall] = field(default_factory=list)
    status: StateStatus = "idle"
    error: str | None = None
    config: AgentConfig | None = None
    model: str | None = None
    output: Any = None  # output_type: the validated final_result value

    @property
    def last_assistant_text(self) -> str | None:
        """Newest assistant message's text, ``""`` included; None only without one."""
        for msg in reversed(self.messages):
            if msg.role == "assistant":
                return msg.text
        return None

    def to_result(self, request_id: str | None = None) -> Result:
        """A snapshot as a ``Result``.

        A state that never ran reads as ``completed``; one still ``running`` (an interrupt
        that outran cleanup) reads as ``cancelled``, with a repaired copy of its history.
        """
        status = self.status if self.status in _FINAL else (
            "cancelled" if self.status == "running" else "completed"
        )
        error = self.error
        if status == "cancelled" and error is None:
            error = "cancelled"
        # a run that never reached its cleanup may hold a dangling tool_use: repair a copy
        messages = repair_history(self.messages) if self.status == "running" else self.messages
        return Result(
            text=self.last_assistant_text,
            messages=list(messages),
            usage=self.usage,
            tool_calls=list(self.tool_calls),
            status=status,  # type: ignore[arg-type]
            turns=self.turn,
            error=error,
            request_id=request_id,
            model=self.model,
            output=self.output,
        )

    def __repr__(self) -> str:
        return (
            f"AgentState(status={self.status!r}, turn={self.turn}, "
            f"messages={len(self.messages)}, tool_calls={len(self.tool_calls)})"
        )
