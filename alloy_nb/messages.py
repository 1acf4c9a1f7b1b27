"""Conversation messages and content blocks, and the repair that keeps a history valid.

Providers translate these to and from their wire formats; the loop, the session and the
notebook layer only ever see these models. There is no system role: the system prompt
travels beside the messages.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag, TypeAdapter, field_validator

from alloy_nb.errors import ConfigError

__all__ = [
    "ContentBlock",
    "ImageBlock",
    "Message",
    "Prompt",
    "RawBlock",
    "Role",
    "ServerToolUseBlock",
    "TextBlock",
    "ThinkingBlock",
    "ToolDefinition",
    "ToolResultBlock",
    "ToolUseBlock",
    "assistant",
    "prompt_message",
    "repair_history",
    "tool_results",
    "user",
]

Role = Literal["user", "assistant"]


class _Block(BaseModel):
    model_config = ConfigDict(frozen=True)


class TextBlock(_Block):
    type: Literal["text"] = "text"
    text: str


class ThinkingBlock(_Block):
    """Model reasoning; ``signature`` must be sent back unchanged (Anthropic)."""

    type: Literal["thinking"] = "thinking"
    thinking: str
    signature: str | None = None


class ToolUseBlock(_Block):
    type: Literal["tool_use"] = "tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ServerToolUseBlock(_Block):
    """A tool the provider runs itself (Anthropic code execution)."""

    type: Literal["server_tool_use"] = "server_tool_use"
    id: str
    name: str
    input: dict[str, Any] = Field(default_factory=dict)


class ToolResultBlock(_Block):
    type: Literal["tool_result"] = "tool_result"
    tool_use_id: str
    content: str
    is_error: bool = False


class ImageBlock(_Block):
    type: Literal["image"] = "image"
    mime_type: str
    data: str  # base64


class RawBlock(_Block):
    """A provider block we do not model (redacted thinking, server tool results, reasoning
    items); kept verbatim so it round-trips to the same provider."""

    model_config = ConfigDict(frozen=True, extra="allow")
    type: str


_KNOWN = {"text", "thinking", "tool_use", "server_tool_use", "tool_result", "image"}


def _block_tag(v: Any) -> str:
    t = v.get("type") if isinstance(v, dict) else getattr(v, "type", None)
    return t if t in _KNOWN else "raw"


ContentBlock = Annotated[
    Annotated[TextBlock, Tag("text")]
    | Annotated[ThinkingBlock, Tag("thinking")]
    | Annotated[ToolUseBlock, Tag("tool_use")]
    | Annotated[ServerToolUseBlock, Tag("server_tool_use")]
    | Annotated[ToolResultBlock, Tag("tool_result")]
    | Annotated[ImageBlock, Tag("image")]
    | Annotated[RawBlock, Tag("raw")],
    Discriminator(_block_tag),
]


class Message(BaseModel):
    """One turn of the conversation. String content is stored as a single text block."""

    model_config = ConfigDict(frozen=True)

    role: Role
    content: list[ContentBlock] = Field(default_factory=list)

    @field_validator("content", mode="before")
    @classmethod
    def _text_to_blocks(cls, v: Any) -> Any:
        if isinstance(v, str):
            return [TextBlock(text=v)] if v else []
        return v

    @property
    def text(self) -> str:
        """Text blocks joined by newlines; ``""`` (never None) when there are none."""
        return "\n".join(b.text for b in self.content if isinstance(b, TextBlock))

    @property
    def tool_calls(self) -> list[ToolUseBlock | ServerToolUseBlock]:
        return [b for b in self.content if isinstance(b, ToolUseBlock | ServerToolUseBlock)]

    @property
    def tool_result_blocks(self) -> list[ToolResultBlock]:
        return [b for b in self.content if isinstance(b, ToolResultBlock)]


class ToolDefinition(BaseModel):
    """What a provider is told about a tool: the data face of ``tools.Tool``."""

    model_config = ConfigDict(frozen=True)

    name: str
    description: str = ""
    input_schema: dict[str, Any] = Field(
        default_factory=lambda: {"type": "object", "properties": {}}
    )


def user(content: str | Sequence[ContentBlock]) -> Message:
    return Message(role="user", content=content)  # type: ignore[arg-type]


#: What ``run``/``chat`` and friends accept as the new turn's prompt.
Prompt = str | Message | None


def prompt_message(prompt: Prompt) -> Message | None:
    """The message a prompt adds to the history (``None`` adds none): a str becomes a user
    message, a Message stays as it is; anything else is a ConfigError naming its type."""
    if isinstance(prompt, str):
        return user(prompt)
    if isinstance(prompt, Message) or prompt is None:
        return prompt
    raise ConfigError(
        f"the prompt must be a str, a Message or None, got {type(prompt).__name__}"
    )


def assistant(content: str | Sequence[ContentBlock]) -> Message:
    return Message(role="assistant", content=content)  # type: ignore[arg-type]


def tool_results(blocks: Iterable[ToolResultBlock]) -> Message:
    """Tool results travel in a *user* message, one block per call, in call order."""
    return Message(role="user", content=list(blocks))


MessageList = TypeAdapter(list[Message])

INTERRUPTED_RESULT = "Tool call was not completed (the run was interrupted)."


def repair_history(messages: Sequence[Message]) -> list[Message]:
    """Return a history any provider accepts and the loop can continue from.

    - every ``tool_use`` is answered by a ``tool_result`` in the next user message
      (missing ones are added as error results; a missing user message is inserted);
    - results that answer no preceding call are dropped;
    - empty messages are dropped.
    Idempotent: a valid history comes back equal.
    """
    out: list[Message] = []
    pending: list[str] = []  # tool_use ids of the last assistant message awaiting results

    def close_pending(into: Sequence[ContentBlock]) -> list[ContentBlock]:
        """Results for every pending call, in call order; missing ones become errors."""
        have = {b.tool_use_id: b for b in into if isinstance(b, ToolResultBlock)}
        return [
            have.get(call_id)
            or ToolResultBlock(tool_use_id=call_id, content=INTERRUPTED_RESULT, is_error=True)
            for call_id in pending
        ]

    for msg in messages:
        if msg.role == "assistant":
            if pending:
                out.append(Message(role="user", content=close_pending([])))
            stray = [b for b in msg.content if isinstance(b, ToolResultBlock)]
            content = [b for b in msg.content if b not in stray] if stray else msg.content
            if not content:
                pending = []
                continue
            out.append(msg if not stray else Message(role="assistant", content=content))
            pending = [b.id for b in msg.content if isinstance(b, ToolUseBlock)]
        else:
            allowed = set(pending)
            kept: list[ContentBlock] = []
            seen: set[str] = set()
            for b in msg.content:
                if isinstance(b, ToolResultBlock):
                    if b.tool_use_id in allowed and b.tool_use_id not in seen:
                        seen.add(b.tool_use_id)
                        kept.append(b)
                else:
                    kept.append(b)
            if pending:
                # results first, in call order, then any other user content
                others: list[ContentBlock] = [b for b in kept if not isinstance(b, ToolResultBlock)]
                kept = close_pending(kept) + others
            pending = []
            if not kept:
                continue
            if kept == msg.content:
                out.append(msg)
            else:
                out.append(Message(role="user", content=kept))
    if pending:
        out.append(Message(role="user", content=close_pending([])))
    return out
