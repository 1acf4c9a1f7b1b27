"""The ``edit`` tool: replace one unique (or every) occurrence of a string in a file.

Path confinement lives in ``tools/_paths.py``; whole-file writes are ``core/write.py``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar

from alloy_nb.errors import ToolError
from alloy_nb.tools._paths import os_reason, require_regular_file, resolve_path
from alloy_nb.tools.base import Tool

__all__ = ["Edit"]


class Edit(Tool):
    """Search and replace with the reference's uniqueness rule.

    ``old_string`` must occur exactly once unless ``replace_all`` is true, so the model
    cannot silently change the wrong place. The file is read and written as UTF-8 with its
    line endings untouched.
    """

    name = "edit"
    description = "Search and replace text in a file."
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "Path to the file to edit"},
            "old_string": {"type": "string", "description": "The text to find and replace"},
            "new_string": {"type": "string", "description": "The replacement text"},
            "replace_all": {
                "type": "boolean",
                "description": "Replace all occurrences (default: false)",
                "default": False,
            },
        },
        "required": ["file_path", "old_string", "new_string"],
    }
    concurrent = False  # two edits of one file in one reply must not race

    def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> str:
        path = resolve_path(input.get("file_path"), context)
        old, new = input.get("old_string"), input.get("new_string")
        if not isinstance(old, str) or not isinstance(new, str):
            raise ToolError("old_string and new_string must both be strings")
        if not old:
            raise ToolError("old_string must not be empty; use write to create a file")
        replace_all = input.get("replace_all") in (True, "true", "True")
        require_regular_file(path, may_be_missing=True)  # missing: the usual enoent below
        try:
            with open(path, encoding="utf-8", newline="") as f:
                text = f.read()
        except OSError as exc:
            raise ToolError(f"Cannot read {path}: {os_reason(exc)}") from exc
        except UnicodeDecodeError:
            # from None: the byte offset in UnicodeDecodeError does not help the model
            raise ToolError(f"Cannot read {path}: not valid UTF-8 text") from None
        count = text.count(old)
        if count == 0:
            raise ToolError("No match found for the provided old_string in the file.")
        if count > 1 and not replace_all:
            raise ToolError(
                f"old_string appears {count} times (ambiguous). "
                "Use replace_all: true to replace all occurrences."
            )
        updated = text.replace(old, new) if replace_all else text.replace(old, new, 1)
        try:
            with open(path, "w", encoding="utf-8", newline="") as f:
                f.write(updated)
        except OSError as exc:
            raise ToolError(f"Failed to write {path}: {os_reason(exc)}") from exc
        return f"Successfully edited {path}"
