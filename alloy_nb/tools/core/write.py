"""The ``write`` tool: create or overwrite a text file, making parent directories.

Path confinement lives in ``tools/_paths.py``; editing in place is ``core/edit.py``.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any, ClassVar

from alloy_nb.errors import ToolError
from alloy_nb.tools._paths import os_reason, require_regular_file, resolve_path
from alloy_nb.tools.base import Tool

__all__ = ["Write"]


class Write(Tool):
    """Write ``content`` (UTF-8, newlines kept as given) to ``file_path``, replacing it."""

    name = "write"
    description = "Write content to a file. Creates parent directories if needed."
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "Path to the file to write"},
            "content": {"type": "string", "description": "Content to write to the file"},
        },
        "required": ["file_path", "content"],
    }
    concurrent = False  # two writes to one file in one reply must not interleave

    def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> str:
        path = resolve_path(input.get("file_path"), context)
        content = input.get("content")
        if not isinstance(content, str):
            raise ToolError(f"content must be a string, got {type(content).__name__}")
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
        except OSError as exc:
            raise ToolError(f"Cannot create directory: {os_reason(exc)}") from exc
        require_regular_file(path, may_be_missing=True)
        try:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(content)
        except OSError as exc:
            raise ToolError(f"Failed to write to {path}: {os_reason(exc)}") from exc
        return f"Successfully wrote to {path}"
