"""Events → a transcript of blocks → Markdown, HTML or plain text; no widgets, no I/O.

``Transcript.feed`` turns the run's event stream into blocks (text, thinking, tool calls);
long text is frozen at paragraph boundaries so a view only re-sends the live tail.
``widgets.py`` and ``display.py`` draw it; ``Throttle`` bounds how often they do.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any

from alloy_nb.jupyter._markdown import _FENCE, close_open_fence, markdown_to_html
from alloy_nb.redact import redact_env_values
from alloy_nb.result import Result
from alloy_nb.usage import Usage

__all__ = ["Block", "Transcript", "close_open_fence", "markdown_to_html", "scrub_secrets"]

def scrub_secrets(text: str) -> str:
    """Hide the values of secret-looking environment variables (``*_API_KEY``, ``*_TOKEN``,
    ...): whatever a tool printed (``os.environ`` from ``run_python``, a config dump), keys
    never reach widget state or the saved notebook."""
    return redact_env_values(text)

# ---- the transcript: what one run has shown so far ------------------------------------

FREEZE_CHARS = 2000  # past this, the live text block is split at its last paragraph break
_STATUS_LABEL = {
    "running": "● running",
    "completed": "✓ completed",
    "max_turns": "⚠ stopped at max turns",
    "budget_exceeded": "⚠ budget exceeded",
    "halted": "⏸ halted",
    "error": "✗ error",
    "cancelled": "⏹ interrupted",
}


@dataclass
class Block:
    """One visual unit. ``version`` bumps on every change, so a view redraws only what moved."""

    kind: str  # "text" | "thinking" | "tool" | "notice" | "error"
    text: str = ""
    frozen: bool = False
    version: int = 0
    tool_id: str = ""
    name: str = ""
    input: Any = None
    result: str | None = None
    error: str | None = None
    duration_ms: int | None = None
    cont: bool = False  # a text block that continues the previous one (a split)

    def touch(self) -> None:
        self.version += 1

    @property
    def tool_status(self) -> str:
        if self.duration_ms is None and self.error is None:
            return "running"
        return "error" if self.error else "ok"

    def tool_title(self) -> str:
        mark = {"running": "… running", "ok": "✓", "error": "✗ error"}[self.tool_status]
        took = f" · {self.duration_ms} ms" if self.duration_ms is not None else ""
        return f"🔧 {self.name} {mark}{took}"

    def tool_html(self) -> str:
        args = html.escape(_pretty(self.input))
        parts = [f"<div><b>arguments</b><pre>{args}</pre></div>"]
        if self.error:
            parts.append(f"<div><b>error</b><pre>{html.escape(self.error)}</pre></div>")
        if self.result is not None and self.result != self.error:  # not the error twice
            parts.append(f"<div><b>result</b><pre>{html.escape(_clip(self.result))}</pre></div>")
        return "".join(parts)


def _pretty(value: Any) -> str:
    try:
        return _clip(json.dumps(value, indent=2, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return _clip(repr(value))


def _clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit:,} more chars)"


def _split_point(text: str) -> int | None:
    """Index just after the last blank line that is outside a code fence, if any."""
    inside, pos, best = False, 0, None
    for line in text.splitlines(keepends=True):
        if _FENCE.match(line):
            inside = not inside
        pos += len(line)
        if not inside and not line.strip() and pos < len(text):
            best = pos
    return best


class Transcript:
    """The state of one run's view, fed event by event (from one thread at a time)."""

    def __init__(self, *, model: str | None = None, prompt: str | None = None,
                 base: Usage | None = None) -> None:
        self.base = base or Usage()  # the session's usage before this run
        self.blocks: list[Block] = []
        self.model = model
        self.prompt = prompt
        self.status = "running"
        self.note = ""  # transient footer note: retries, compaction
        self.turns = 0
        self.usage = self.base  # the running total; this run adds to it
        self.error: str | None = None
        self.result: Result | None = None
        self.version = 0  # bumps when the footer changes or blocks are added

    # -- feeding ----------------------------------------------------------------------

    def feed(self, event: Any) -> None:
        """Apply one event envelope (``Event`` or a dict); unknown events are ignored."""
        name = _get(event, "event")
        payload = _get(event, "payload")
        if name == "text_delta":
            self._append("text", str(payload or ""))
        elif name == "thinking_delta":
            self._append("thinking", str(payload or ""))
        elif name == "tool_start":
            self._tool_start(payload if isinstance(payload, dict) else {})
        elif name == "tool_end":
            self._tool_end(payload if isinstance(payload, dict) else {})
        elif name == "turn_start":
            self.turns = max(self.turns, int(_get(event, "turn") or 0))
            if isinstance(payload, dict) and payload.get("model"):
                self.model = str(payload["model"])
            self.note = ""
            self.version += 1
        elif name == "done" and isinstance(payload, dict):
            if isinstance(payload.get("usage"), dict):
                self._usage({"total": payload["usage"]})
            self.turns = max(self.turns, int(payload.get("turns") or 0))
        elif name == "turn_end":
            self._freeze_live()
        elif name == "usage" and isinstance(payload, dict):
            self._usage(payload)
        elif name == "retry":
            self.note = f"↻ retrying ({_describe(payload)})"
            self.version += 1
        elif name == "compaction":
            self.note = f"🗜 history compacted ({_describe(payload)})"
            self.version += 1
        elif name == "error":
            self.error = _describe(payload)
            self._add("error", f"✗ {self.error}")

    def _append(self, kind: str, text: str) -> None:
        if not text:
            return
        last = self.blocks[-1] if self.blocks else None
        if last is None or last.kind != kind or last.frozen:
            self._freeze_live()
            last = Block(kind=kind)
            self.blocks.append(last)
            self.version += 1
        last.text += text
        last.touch()
        if kind == "text" and len(last.text) > FREEZE_CHARS and "\n" in text:
            cut = _split_point(last.text)
            if cut:
                head, tail = last.text[:cut], last.text[cut:]
                last.text, last.frozen = head, True
                self.blocks.append(Block(kind="text", text=tail, version=1, cont=True))
                self.version += 1

    def _freeze_live(self) -> None:
        if self.blocks and self.blocks[-1].kind in ("text", "thinking"):
            last = self.blocks[-1]
            if not last.frozen:
                last.frozen = True
                last.touch()

    def _tool_start(self, p: dict[str, Any]) -> None:
        self._freeze_live()
        self.blocks.append(
            Block(kind="tool", tool_id=str(p.get("id", "")), name=str(p.get("name", "tool")),
                  input=p.get("input"), version=1)
        )
        self.version += 1

    def _tool_end(self, p: dict[str, Any]) -> None:
        block = self._find_tool(str(p.get("id", "")))
        if block is None:
            self._tool_start(p)
            block = self.blocks[-1]
        block.duration_ms = int(p.get("duration_ms") or 0)
        block.error = p.get("error") or None
        if isinstance(p.get("result"), str):  # events.ToolEndPayload["result"]
            block.result = p["result"]
        block.frozen = True
        block.touch()

    def _find_tool(self, tool_id: str) -> Block | None:
        for block in reversed(self.blocks):
            if block.kind == "tool" and block.tool_id == tool_id:
                return block
        return None

    def _usage(self, p: dict[str, Any]) -> None:
        total = p.get("total")
        raw: dict[str, Any] = total if isinstance(total, dict) else p
        fields = {k: v for k, v in raw.items() if k in Usage.model_fields}
        try:
            usage = Usage(**fields)
        except ValueError:
            return
        self.usage = usage if "total" in p else self.usage + usage
        self.version += 1

    def notice(self, text: str) -> None:
        """Add a one-line notice (interruption marker, stop reason) as its own block."""
        self._add("notice", text)

    def _add(self, kind: str, text: str) -> None:
        self._freeze_live()
        self.blocks.append(Block(kind=kind, text=text, frozen=True, version=1))
        self.version += 1

    def finish(self, result: Result | None = None, *, status: str | None = None,
               error: str | None = None) -> None:
        """Close the run: take usage, status and tool results from ``result`` when known."""
        self._freeze_live()
        if result is not None:
            self.result = result
            self.status, self.usage = result.status, result.usage
            # Result.turns counts completed turns; a stopped or failed run also ran the turn
            # it was in (the footer showed it while streaming), so keep the larger count
            self.turns = max(self.turns, result.turns)
            self.model = result.model or self.model
            self.error = result.error or self.error
            self._fill_tool_results(result)
            fresh = result.ok and result.turns > 0  # else .text is an older turn's answer
            if fresh and result.text and not any(b.kind == "text" for b in self.blocks):
                self.blocks.append(Block(kind="text", text=result.text, frozen=True, version=1))
        if status:
            self.status = status
        if error:
            self.error = error
        shown = any(b.kind == "error" for b in self.blocks)
        if self.status == "cancelled":
            self.notice("⏹ interrupted — the partial answer above was kept; the history is valid")
        elif self.error and self.status in ("error", "halted") and not shown:
            self._add("error", f"✗ {self.error}")
        elif self.error and self.status in ("max_turns", "budget_exceeded"):
            self.notice(f"⚠ {self.error}")
        elif self.status == "running":
            self.status = "completed"
        self.note = ""
        self.version += 1

    def _fill_tool_results(self, result: Result) -> None:
        found = {
            b.tool_use_id: (b.content, b.is_error)
            for m in result.messages for b in m.tool_result_blocks
        }
        for block in self.blocks:
            if block.kind == "tool" and block.result is None and block.tool_id in found:
                content, is_error = found[block.tool_id]
                block.result = content
                if is_error and not block.error:
                    block.error = "tool reported an error"
                block.touch()

    # -- reading ----------------------------------------------------------------------

    @property
    def done(self) -> bool:
        return self.status != "running"

    @property
    def text(self) -> str:
        """The answer text shown so far (text blocks only)."""
        parts = [("" if b.cont else "\n\n") + b.text for b in self.blocks if b.kind == "text"]
        return "".join(parts).strip()

    @property
    def run_usage(self) -> Usage:
        """What this run cost (``usage`` is the session's running total)."""
        return self.usage - self.base

    def footer(self) -> str:
        """``model · turns 2 · 1,234 in / 56 out tokens · $0.0012 · ✓ completed``."""
        u = self.run_usage
        cost = u.cost_label
        if self.base.total_tokens:
            cost += f" (session {self.usage.cost_label})"
        parts = [self.model or "model ?", f"turns {self.turns}",
                 f"{u.input_tokens:,} in / {u.output_tokens:,} out tokens", cost,
                 _STATUS_LABEL.get(self.status, self.status)]
        if self.note and not self.done:
            parts.append(self.note)
        return " · ".join(parts)

    def to_markdown(self, banner: str | None = None) -> str:
        """A static copy for saved notebooks, GitHub and nbconvert (thinking left out).

        ``banner`` (the offline-demo notice) comes first, so a saved notebook still says
        that its replies were scripted when the widget is not drawn.
        """
        out: list[str] = [_quote(f"ⓘ {banner}")] if banner else []
        for b in self.blocks:
            if b.kind == "text" and b.cont and out:
                out[-1] = close_open_fence(out[-1] + b.text)
            elif b.kind == "text" and b.text.strip():
                out.append(close_open_fence(b.text))
            elif b.kind == "tool":
                detail = f"\n{_tail(b.error)}" if b.error else ""
                out.append(_quote(f"{b.tool_title()}{detail}"))
            elif b.kind in ("notice", "error"):
                out.append(_quote(b.text))
        out.append(f"---\n*{self.footer()}*")
        return scrub_secrets("\n\n".join(out))


def _quote(text: str) -> str:
    """``text`` as a Markdown block quote that shows literally: every line quoted (blank
    lines too, so the quote does not end early) and HTML escaped (``<module>`` in a
    traceback would otherwise vanish as an unknown tag)."""
    lines = html.escape(text, quote=False).splitlines() or [""]
    return "\n".join(f"> {line}".rstrip() for line in lines)


def _tail(text: str, lines: int = 12) -> str:
    """The end of an error (a traceback's last lines name the exception), clipped."""
    parts = text.strip().splitlines()
    kept = parts[-lines:]
    head = [f"… ({len(parts) - lines} lines above not shown)"] if len(parts) > lines else []
    return _clip("\n".join(head + kept), 2000)


def _get(event: Any, key: str) -> Any:
    return event.get(key) if isinstance(event, dict) else getattr(event, key, None)


def _describe(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("message", "error", "reason"):
            if payload.get(key):
                return str(payload[key])
        return ", ".join(f"{k}={v}" for k, v in payload.items() if not isinstance(v, dict | list))
    return str(payload) if payload is not None else ""

