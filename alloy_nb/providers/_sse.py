"""Incremental server-sent-events parser (WHATWG event-stream): bytes in, events out.

Knows nothing about providers or HTTP; ``_http.py`` feeds it network chunks and the provider
modules interpret each event's ``data``. Written by hand (about 100 lines) rather than taking
``httpx-sse``, which parses from ``aiter_lines`` and so cannot see a BOM or bare-CR framing.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["SSEDecoder", "SSEEvent"]

# Only CRLF, LF and CR end a line in an event stream; str.splitlines would also split on
# U+2028, form feeds and friends, which JSON strings may contain raw.
_LINE_END = re.compile(r"\r\n|\r|\n")


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event. ``event`` defaults to ``"message"`` as in the WHATWG spec."""

    event: str
    data: str
    id: str = ""


class SSEDecoder:
    """Feed it bytes as they arrive; it returns the events completed by each chunk.

    Chunk boundaries may fall anywhere: inside a UTF-8 sequence, inside a field name, or
    between the ``\\r`` and ``\\n`` of one line ending. A leading BOM is dropped. ``retry``
    holds the last reconnection delay (ms) the server announced.
    """

    __slots__ = ("_buf", "_data", "_decoder", "_event", "_last_id", "_skip_lf", "retry")

    def __init__(self) -> None:
        # utf-8-sig drops one leading BOM even when it is split across chunks.
        self._decoder = codecs.getincrementaldecoder("utf-8-sig")("replace")
        self._buf: list[str] = []  # pieces of an unterminated line (joined once it ends)
        self._skip_lf = False  # the last chunk ended in \r: a leading \n belongs to it
        self._data: list[str] = []
        self._event = ""
        self._last_id = ""
        self.retry: int | None = None

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse one network chunk and return the events it completed (often none)."""
        return self._lines(self._decoder.decode(chunk))

    def close(self) -> list[SSEEvent]:
        """End of stream: dispatch an event whose lines all ended but lacked the blank line.

        An unterminated last line is dropped (WHATWG): it may be half of a cut-off line, and a
        half-written JSON payload must not pass for a whole one.
        """
        events = self._lines(self._decoder.decode(b"", final=True))
        self._buf = []
        self._skip_lf = False
        if self._data:
            events += self._lines("\n")
        return events

    def _lines(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if self._skip_lf:
            self._skip_lf = False
            if text[0] == "\n":
                text = text[1:]
                if not text:
                    return []
        # Buffered pieces hold no line end, so looking at the new text is enough. Without a
        # CR, str.split is several times cheaper than the regex (the usual LF-only stream).
        has_cr = "\r" in text
        if not has_cr and "\n" not in text:  # still inside one (possibly huge) line
            self._buf.append(text)
            return []
        if self._buf:
            self._buf.append(text)
            text = "".join(self._buf)
        lines = _LINE_END.split(text) if has_cr else text.split("\n")
        rest = lines.pop()
        self._buf = [rest] if rest else []
        if not rest and text[-1] == "\r":
            self._skip_lf = True
        events: list[SSEEvent] = []
        for line in lines:
            if not line:
                if self._data:
                    events.append(
                        SSEEvent(self._event or "message", "\n".join(self._data), self._last_id)
                    )
                    self._data = []
                self._event = ""
                continue
            if line[0] == ":":
                continue  # comment / keep-alive
            name, _, value = line.partition(":")
            if value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id":
                if "\0" not in value:
                    self._last_id = value
            elif name == "retry" and value.isascii() and value.isdigit():
                self.retry = int(value)
        return events
