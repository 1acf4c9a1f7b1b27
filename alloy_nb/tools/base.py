"""The tool protocol: a name, a JSON schema, and ``execute(input, context)``.

``tools/function.py`` turns plain functions into tools; ``agent/executor.py`` runs them.
A tool may be sync (run in a worker thread so it never blocks the event loop) or async.
"""

from __future__ import annotations

from collections.abc import Awaitable, Mapping
from typing import Any, ClassVar

from pydantic import BaseModel

from alloy_nb.errors import ToolError
from alloy_nb.messages import ToolDefinition

__all__ = ["Tool", "ToolError", "ToolResult"]


class ToolResult(BaseModel):
    """A tool's answer: ``content`` goes to the model, ``data`` only to the Result."""

    content: str
    is_error: bool = False
    data: Any = None


ToolOutput = str | ToolResult


class Tool:
    """Subclass and set ``name``, ``description``, ``input_schema``; implement ``execute``.

    ``execute`` may be ``def`` or ``async def`` and returns a string or a ``ToolResult``;
    raising any exception gives the model an error result (``ToolError`` for a message
    meant for the model). ``concurrent = False`` runs the tool before the concurrent ones,
    one at a time. ``max_result_chars`` truncates long results, keeping head and tail.
    """

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    input_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    concurrent: ClassVar[bool] = True
    max_result_chars: ClassVar[int | None] = None

    def execute(
        self, input: dict[str, Any], context: Mapping[str, Any]
    ) -> ToolOutput | Awaitable[ToolOutput]:
        raise NotImplementedError(f"{type(self).__name__}.execute is not implemented")

    def definition(self) -> ToolDefinition:
        return ToolDefinition(
            name=self.name, description=self.description, input_schema=self.input_schema
        )

    def __repr__(self) -> str:
        return f"<tool {self.name}>"
