"""The reference's ``Alloy.Testing`` helpers (spec §8): script a run, then assert on it.

Plain functions raising ``AssertionError`` with the reference's messages, so they read well
under pytest and work in a notebook cell too. Unlike the rest of ``alloy_nb.testing`` (an
independent reading of the wire protocols), these drive the real loop with the
``Scripted`` provider; they import it on first use, so ``import alloy_nb.testing`` stays
light.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, ClassVar

if TYPE_CHECKING:
    from alloy_nb.messages import ToolUseBlock
    from alloy_nb.result import Result

__all__ = [
    "assert_tool_called",
    "error_response",
    "last_text",
    "refute_tool_called",
    "run_with_responses",
    "text_response",
    "tool_calls",
    "tool_response",
]


def text_response(text: str) -> Any:
    """A scripted text reply (end of turn, usage 10 in / 5 out)."""
    from alloy_nb.providers.scripted import Scripted

    return Scripted.reply(text)


def tool_response(name: str, input: Mapping[str, Any] | None = None) -> Any:
    """A scripted reply calling tool ``name`` once with ``input`` (id ``call_<random>``)."""
    from alloy_nb.providers.scripted import Scripted

    return Scripted.tool_calls((name, dict(input or {})))


def error_response(reason: BaseException | type[BaseException] | str) -> Any:
    """A scripted failed model call; a string becomes a non-retryable ``ProviderError``."""
    from alloy_nb.providers.scripted import Scripted

    return Scripted.error(reason)


def _echo_tool() -> Any:
    from alloy_nb.tools.base import Tool

    class EchoTool(Tool):
        """The reference's test tool: ``{"text": ...}`` comes back as ``"Echo: <text>"``."""

        name = "echo"
        description = "Echoes input back"
        input_schema: ClassVar[dict[str, Any]] = {
            "type": "object",
            "properties": {"text": {"type": "string"}},
            "required": ["text"],
        }

        def execute(self, input: dict[str, Any], context: Any) -> str:
            return f"Echo: {input.get('text', '')}"

    return EchoTool()


def run_with_responses(prompt: str, responses: Iterable[Any], **options: Any) -> Result:
    """Run ``prompt`` against a ``Scripted`` provider playing ``responses`` and return the
    ``Result`` whatever its status (an error or halt is returned, not raised).

    Defaults: ``tools=[echo]`` (``"Echo: <text>"``), ``max_turns=10`` and
    ``retry_backoff_ms=1``; any other ``run`` option may be passed.
    """
    from alloy_nb.api import run
    from alloy_nb.errors import AgentError, ConfigError
    from alloy_nb.providers.scripted import Scripted

    if "provider" in options:
        raise ConfigError(
            "run_with_responses plays `responses` through a Scripted provider; "
            "do not pass provider= (call alloy_nb.run for that)"
        )
    if isinstance(responses, str):
        responses = [responses]
    options.setdefault("tools", [_echo_tool()])
    options.setdefault("max_turns", 10)
    options.setdefault("retry_backoff_ms", 1)
    try:
        return run(prompt, provider=Scripted(list(responses)), **options)
    except AgentError as exc:
        return exc.result


def _messages(x: Any) -> list[Any] | None:
    messages = x.get("messages") if isinstance(x, Mapping) else getattr(x, "messages", None)
    return list(messages) if isinstance(messages, list | tuple) else None


def _as_message(m: Any) -> Any:
    from alloy_nb.messages import Message

    return m if isinstance(m, Message) else Message.model_validate(m)


def last_text(x: Any) -> str | None:
    """The newest assistant message's text (``""`` when it has none) of a Result, a state
    or anything with ``messages``; None when there is no assistant message or no
    ``messages`` at all."""
    messages = _messages(x)
    if not messages:
        return None
    for m in reversed(messages):
        msg = _as_message(m)
        if msg.role == "assistant":
            return str(msg.text)
    return None


def tool_calls(x: Any) -> list[ToolUseBlock]:
    """Every ``tool_use`` block the model sent (server tools excluded), in order; ``[]``
    for anything without ``messages``."""
    from alloy_nb.messages import ToolUseBlock

    out: list[ToolUseBlock] = []
    for m in _messages(x) or []:
        msg = _as_message(m)
        if msg.role == "assistant":
            out += [b for b in msg.content if isinstance(b, ToolUseBlock)]
    return out


def _matches(call_input: Mapping[str, Any], expected: Mapping[Any, Any]) -> bool:
    return all(str(k) in call_input and call_input[str(k)] == v for k, v in expected.items())


def assert_tool_called(
    result: Any, name: str, partial_input: Mapping[Any, Any] | None = None
) -> ToolUseBlock:
    """Fail unless the model called ``name`` (with an input containing every key/value of
    ``partial_input``, when given). Returns the first matching call."""
    calls = tool_calls(result)
    same = [c for c in calls if c.name == name]
    if not same:
        names = [c.name for c in calls]
        raise AssertionError(
            f"Expected tool {name} to be called, but only these tools were called: {names}"
        )
    if partial_input is None:
        return same[0]
    for c in same:
        if _matches(c.input, partial_input):
            return c
    expected = {str(k): v for k, v in partial_input.items()}
    raise AssertionError(
        f"Expected tool {name} to be called with input matching {expected}, "
        f"but it was called with: {[c.input for c in same]}"
    )


def refute_tool_called(result: Any, name: str) -> None:
    """Fail if the model called ``name``."""
    if any(c.name == name for c in tool_calls(result)):
        raise AssertionError(f"Expected tool {name} NOT to be called, but it was")
