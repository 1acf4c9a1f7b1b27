"""Scripted: an offline provider that plays back a list of replies, for tests and demos.

It speaks the same protocol as the HTTP providers (``complete`` and ``stream``), so a run
against it exercises the whole loop. The wire translation lives in the real providers;
the fake HTTP server is ``alloy_nb.testing``.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

from alloy_nb.errors import ProviderError, ScriptExhausted
from alloy_nb.messages import (
    ContentBlock,
    Message,
    TextBlock,
    ThinkingBlock,
    ToolUseBlock,
    assistant,
)
from alloy_nb.providers.base import Completion, OnDelta, Provider, ProviderRequest
from alloy_nb.usage import Usage

__all__ = ["Scripted"]

CallSpec = tuple[str, dict[str, Any]] | tuple[str, dict[str, Any], str] | ToolUseBlock


@dataclass(frozen=True)
class _Error:
    exc: BaseException


@dataclass(frozen=True)
class _Delay:
    seconds: float
    entry: Any


@dataclass(frozen=True)
class _ThinkingThenError:
    text: str
    exc: BaseException


def _as_exception(err: BaseException | type[BaseException] | str) -> BaseException:
    if isinstance(err, str):
        return ProviderError(err)
    if isinstance(err, type) and issubclass(err, BaseException):
        return err()
    if isinstance(err, BaseException):
        return err
    raise TypeError(f"Scripted.error needs an exception or a message, got {err!r}")


def _call_block(spec: CallSpec) -> ToolUseBlock:
    if isinstance(spec, ToolUseBlock):
        return spec
    name, args, *rest = spec
    return ToolUseBlock(
        id=rest[0] if rest else f"call_{secrets.token_urlsafe(4)}", name=name, input=dict(args)
    )


def _usage(pair: tuple[int, int] | Usage) -> Usage:
    return pair if isinstance(pair, Usage) else Usage(input_tokens=pair[0], output_tokens=pair[1])


class Scripted(Provider):
    """Plays ``replies`` in order, one per model call (``complete`` and ``stream`` share it).

    Entries: a ``str`` (a text reply), ``Scripted.tool_calls(...)``, ``Scripted.reply(...)``,
    a ``Completion`` (verbatim), ``Scripted.error(exc)``, ``Scripted.delay(s, entry)`` or
    ``Scripted.thinking_then_error(text, exc)``. When streaming, text and thinking arrive
    in deltas of ``chunk_size`` characters (``chunk_delay`` seconds apart). Each reply
    reports ``usage`` (default 10 in / 5 out). Running out raises ``ScriptExhausted``.
    """

    name: ClassVar[str] = "scripted"
    supports_streaming: ClassVar[bool] = True

    def __init__(
        self,
        replies: Iterable[Any] = (),
        *,
        model: str = "scripted",
        usage: tuple[int, int] = (10, 5),
        chunk_size: int = 4,
        chunk_delay: float = 0.0,
    ) -> None:
        if isinstance(replies, str | Completion):
            replies = [replies]
        self._script: list[Any] = list(replies)
        self._used = 0
        self.model = model
        self.usage = usage
        self.chunk_size = max(1, chunk_size)
        self.chunk_delay = chunk_delay
        self.calls: list[ProviderRequest] = []

    # ---- builders -------------------------------------------------------------------

    @staticmethod
    def reply(
        text: str | None = None,
        *,
        tool_calls: Sequence[CallSpec] = (),
        thinking: str | None = None,
        usage: tuple[int, int] | Usage = (10, 5),
        model: str | None = None,
    ) -> Completion:
        """A full reply: optional thinking, text, then tool calls (stop reason follows)."""
        blocks: list[ContentBlock] = []
        if thinking:
            blocks.append(ThinkingBlock(thinking=thinking))
        if text:
            blocks.append(TextBlock(text=text))
        calls = [_call_block(c) for c in tool_calls]
        blocks.extend(calls)
        return Completion(
            stop_reason="tool_use" if calls else "end_turn",
            message=Message(role="assistant", content=blocks),
            usage=_usage(usage),
            model=model,
            raw_stop_reason="tool_use" if calls else "end_turn",
        )

    @staticmethod
    def tool_calls(*calls: CallSpec, usage: tuple[int, int] | Usage = (10, 5)) -> Completion:
        """One reply calling each ``(name, input)`` (or ``(name, input, id)``) in order."""
        if not calls:
            raise ValueError("Scripted.tool_calls needs at least one (name, input) pair")
        return Scripted.reply(tool_calls=calls, usage=usage)

    @staticmethod
    def error(exc: BaseException | type[BaseException] | str) -> _Error:
        """The call fails with ``exc`` (a string becomes a non-retryable ProviderError)."""
        return _Error(_as_exception(exc))

    @staticmethod
    def delay(seconds: float, entry: Any) -> _Delay:
        """Wait ``seconds`` (cancellable), then play ``entry``."""
        return _Delay(seconds, entry)

    @staticmethod
    def thinking_then_error(
        text: str, exc: BaseException | type[BaseException] | str
    ) -> _ThinkingThenError:
        """When streaming, emit a thinking delta and then fail (tests no-retry-after-output)."""
        return _ThinkingThenError(text, _as_exception(exc))

    # ---- state ----------------------------------------------------------------------

    @property
    def replies_left(self) -> int:
        return len(self._script) - self._used

    def push(self, *entries: Any) -> None:
        """Append replies to the script (handy in notebooks)."""
        self._script.extend(entries)

    def describe(self) -> dict[str, Any]:
        return {"provider": self.name, "model": self.model, "replies_left": self.replies_left}

    def __repr__(self) -> str:
        return f"Scripted(model={self.model!r}, replies_left={self.replies_left})"

    # ---- protocol -------------------------------------------------------------------

    async def complete(self, request: ProviderRequest) -> Completion:
        return await self._play(request, None)

    async def stream(self, request: ProviderRequest, on_delta: OnDelta) -> Completion:
        return await self._play(request, on_delta)

    def _next(self, request: ProviderRequest) -> Any:
        self.calls.append(request)
        if self._used >= len(self._script):
            n = len(self._script)
            raise ScriptExhausted(f"Scripted provider has no more replies (used {n} of {n})")
        entry = self._script[self._used]
        self._used += 1
        return entry

    async def _play(self, request: ProviderRequest, on_delta: OnDelta | None) -> Completion:
        entry = self._next(request)
        while isinstance(entry, _Delay):
            await asyncio.sleep(entry.seconds)
            entry = entry.entry
        if isinstance(entry, _Error):
            raise entry.exc
        if isinstance(entry, _ThinkingThenError):
            if on_delta is not None:
                on_delta("thinking", entry.text)
            raise entry.exc
        if isinstance(entry, str):
            completion = Completion(
                stop_reason="end_turn",
                message=assistant(entry),
                usage=_usage(self.usage),
                raw_stop_reason="end_turn",
            )
        elif isinstance(entry, Completion):
            completion = entry
        else:
            raise TypeError(f"Scripted cannot play {entry!r}; see Scripted's docstring")
        if completion.model is None:
            completion = completion.model_copy(update={"model": self.model})
        if on_delta is not None:
            await self._stream_blocks(completion.message, on_delta)
        return completion

    async def _stream_blocks(self, message: Message, on_delta: OnDelta) -> None:
        for block in message.content:
            if isinstance(block, TextBlock):
                kind, text = "text", block.text
            elif isinstance(block, ThinkingBlock):
                kind, text = "thinking", block.thinking
            else:
                continue
            for i in range(0, len(text), self.chunk_size):
                on_delta(kind, text[i : i + self.chunk_size])  # type: ignore[arg-type]
                await asyncio.sleep(self.chunk_delay)
