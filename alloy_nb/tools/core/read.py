"""The ``read`` tool: a text file's lines, numbered, a window at a time.

Streams the file (never loads it whole); path confinement lives in ``tools/_paths.py``.
"""

from __future__ import annotations

import codecs
import os
from collections.abc import Iterator, Mapping
from typing import Any, ClassVar

from alloy_nb.errors import ToolError
from alloy_nb.tools._paths import resolve_path
from alloy_nb.tools.base import Tool

__all__ = ["DEFAULT_LIMIT", "MAX_LINE_CHARS", "MAX_OUTPUT_CHARS", "Read"]

DEFAULT_LIMIT = 2000
MAX_LINE_CHARS = 2000
MAX_OUTPUT_CHARS = 100_000
_SNIFF_BYTES = 8192
_LINE_READ_BYTES = 4 * MAX_LINE_CHARS + 4  # enough UTF-8 for MAX_LINE_CHARS + 1 characters
_CHUNK_BYTES = 1 << 16


class Read(Tool):
    """Read a file with line numbers (``cat -n`` style), from ``offset`` for ``limit`` lines.

    Beyond the reference: lines longer than ``MAX_LINE_CHARS`` are cut, the whole answer
    stops at ``MAX_OUTPUT_CHARS`` with a note saying which offset to continue from, and
    binary files are refused instead of being sent to the model as mojibake.
    """

    name = "read"
    description = "Read a file from the filesystem. Returns contents with line numbers."
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "file_path": {"type": "string", "description": "Path to the file to read"},
            "offset": {
                "type": "integer",
                "description": "Line number to start reading from (1-based)",
            },
            "limit": {"type": "integer", "description": "Maximum number of lines to return"},
        },
        "required": ["file_path"],
    }

    def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> str:
        path = resolve_path(input.get("file_path"), context)
        offset = max(int_arg(input, "offset", 1), 1)
        limit = max(int_arg(input, "limit", DEFAULT_LIMIT), 0)
        if not os.path.isfile(path):
            raise ToolError(f"File does not exist or is not a readable file: {path}")
        try:
            with open(path, "rb") as f:
                if b"\0" in f.read(_SNIFF_BYTES):
                    raise ToolError(f"Cannot read {path}: it looks like a binary file")
                f.seek(0)
                selected, more_from = _select(f, offset, limit)
        except OSError as exc:
            raise ToolError(f"File does not exist or is not a readable file: {path}") from exc
        if not selected:
            return ""
        width = max(len(str(selected[-1][0])), 6)
        text = "\n".join(f"{n:>{width}}\t{line}" for n, line in selected) + "\n"
        if more_from is not None:
            text += (
                f"... [truncated: output limit of {MAX_OUTPUT_CHARS} chars reached; "
                f"continue with offset={more_from}]\n"
            )
        return text


def _select(f: Any, offset: int, limit: int) -> tuple[list[tuple[int, str]], int | None]:
    """Lines ``offset .. offset+limit-1`` (split on ``\\n`` only; ``\\r`` is kept).

    Returns the numbered lines and, if the output cap cut the window short, the next line.
    """
    selected: list[tuple[int, str]] = []
    budget = MAX_OUTPUT_CHARS
    if limit == 0:
        return selected, None
    for number, (text, more) in enumerate(_lines(f), start=1):
        if number < offset:
            continue
        if len(text) + more > MAX_LINE_CHARS:
            cut = len(text) + more - MAX_LINE_CHARS
            text = f"{text[:MAX_LINE_CHARS]}... [truncated {cut} chars]"
        budget -= len(text) + 8
        if budget < 0 and selected:
            return selected, number
        selected.append((number, text))
        if len(selected) >= limit:
            break
    return selected, None


def _lines(f: Any) -> Iterator[tuple[str, int]]:
    """Each line without its ``\\n``, decoded, as ``(text, chars_not_included)``.

    At most ``_LINE_READ_BYTES`` of a line are held in memory; the rest of a longer line
    (a minified bundle, a one-line JSON dump) is streamed past and only counted.
    """
    while raw := f.readline(_LINE_READ_BYTES):
        if raw.endswith(b"\n"):
            yield raw[:-1].decode("utf-8", errors="replace"), 0
            continue
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        text, more, rest = decoder.decode(raw), 0, False
        while chunk := f.readline(_CHUNK_BYTES):
            rest = True
            end = chunk.endswith(b"\n")
            more += len(decoder.decode(chunk[:-1] if end else chunk))
            if end:
                break
        last = decoder.decode(b"", final=True)
        if rest:
            more += len(last)
        else:
            text += last
        yield text, more


def int_arg(input: Mapping[str, Any], key: str, default: int) -> int:
    """An optional integer argument; ``None`` means the default, numeric strings are accepted."""
    value = input.get(key)
    if value is None:
        return default
    if isinstance(value, bool):
        raise ToolError(f"{key} must be an integer, got {value!r}")
    try:
        return int(value)
    except (TypeError, ValueError):
        # from None: the message says what int() would
        raise ToolError(f"{key} must be an integer, got {value!r}") from None
