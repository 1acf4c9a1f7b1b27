"""Events → a transcript of view segments → Markdown (rendered by the front end); no I/O.

``Transcript.feed`` turns the run's events into ``ViewSegment``s (text, thinking, tool
calls, approvals); text is frozen at paragraph boundaries so a view only re-sends the live tail.
Model text is never converted to HTML here: Jupyter's own Markdown renderer draws it
(highlighting, tables, math). Tool cards are escaped HTML ``<details>`` inside Markdown.
``widgets.py`` and ``display.py`` draw it; ``runner.py`` bounds how often.
"""

from __future__ import annotations

import html
import itertools
import json
import re
from dataclasses import dataclass
from typing import Any

from alloy_nb.redact import redact_env_values
from alloy_nb.result import Result
from alloy_nb.usage import Usage

__all__ = [
    "Transcript",
    "ViewSegment",
    "close_open_fence",
    "conversation_markdown",
    "defuse_html",
    "footer_text",
    "scrub_secrets",
    "segment_markdown",
]

_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})\s*([^`\s]*)")
_MATH = re.compile(r"^\s{0,3}\$\$")


def _step(line: str, fence: str | None, math: bool) -> tuple[str | None, bool]:
    """Fence / ``$$`` state after ``line`` (a tiny CommonMark-ish scanner)."""
    m = _FENCE.match(line)
    if m:
        if fence is None:
            return m.group(1), math
        if m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence) \
                and not line.strip().strip(fence[0]):
            return None, math
    elif fence is None and _MATH.match(line) and line.count("$$") % 2:
        return fence, not math
    return fence, math


_CODE_SPAN = re.compile(r"(`+)(?!`).*?(?<!`)\1(?!`)")
_TAG_OPEN = re.compile(r"<(?!https?://[^\s<>]+>)")  # keep <https://...> autolinks


def defuse_html(text: str) -> str:
    """Model text as Markdown whose raw HTML shows as text instead of running.

    Jupyter renders Markdown from the kernel as *trusted*: raw HTML is not sanitized and
    ``<script>`` runs. Model output is untrusted (a page a tool read can steer it), so
    every ``<`` outside code fences and code spans becomes ``&lt;`` (shown as ``<``;
    inside ``$...$`` math the browser decodes it before MathJax reads it)."""
    if "<" not in text:
        return text
    out: list[str] = []
    fence: str | None = None
    math = False
    for line in text.splitlines(keepends=True):
        before = fence
        fence, math = _step(line, fence, math)
        if before is not None or fence is not None:  # inside a fence, or its opening line
            out.append(line)
            continue
        pos, parts = 0, []
        for m in _CODE_SPAN.finditer(line):
            parts.append(_TAG_OPEN.sub("&lt;", line[pos:m.start()]))
            parts.append(m.group(0))
            pos = m.end()
        parts.append(_TAG_OPEN.sub("&lt;", line[pos:]))
        out.append("".join(parts))
    return "".join(out)


def close_open_fence(text: str) -> str:
    """Close an unterminated code fence (and ``$$`` math block) so half-streamed code does
    not swallow what follows; for display only, the text itself is not changed."""
    fence: str | None = None
    math = False
    for line in text.splitlines():
        fence, math = _step(line, fence, math)
    if fence:
        return text + "\n" + fence
    return text + ("\n$$" if math else "")

def scrub_secrets(text: str) -> str:
    """Hide the values of secret-looking environment variables (``*_API_KEY``, ``*_TOKEN``,
    ...): whatever a tool printed (``os.environ`` from ``run_python``, a config dump), keys
    never reach widget state or the saved notebook."""
    return redact_env_values(text)

# ---- the transcript: what one run has shown so far ------------------------------------

# past this, the live text block is split at its last paragraph break: the finished part
# becomes its own output and each update re-sends only the unfinished paragraph
FREEZE_CHARS = 0
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
class ViewSegment:
    """One visual unit. ``version`` bumps on every change, so a view redraws only what moved."""

    kind: str  # "text" | "thinking" | "tool" | "notice" | "error" | "approval"
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
    # incremental scan for paragraph breaks outside fences (each character read once)
    scan_pos: int = 0
    scan_fence: str | None = None
    scan_math: bool = False
    scan_best: int = 0

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
        """The card's body: arguments, then the result or the error (escaped HTML)."""
        parts = [_pre("arguments", _pretty(self.input))]
        if self.error:
            parts.append(_pre("error", self.error))
        if self.result is not None and self.result != self.error:  # not the error twice
            parts.append(_pre("result", _clip(self.result)))
        return "\n\n".join(parts)


def _pre(label: str, text: str) -> str:
    """A labelled ``<pre>`` that Markdown passes through untouched (an HTML block of type 1
    lasts until ``</pre>``, blank lines included; the text is escaped, so it cannot end it)."""
    return f"<pre><b>{label}</b>\n{html.escape(text, quote=False)}</pre>"


def _details(summary: str, body: str, *, open_: bool = False) -> str:
    """A collapsible card in Markdown: ``<details>`` works in JupyterLab, Notebook 7,
    VS Code, nbconvert and GitHub. Blank lines keep the parts separate HTML blocks."""
    tag = "<details open>" if open_ else "<details>"
    return (f"{tag}<summary>{html.escape(summary, quote=False)}</summary>\n\n"
            f"{body}\n\n</details>")


_LIVE_THINKING = 1500


def segment_markdown(block: ViewSegment) -> str:
    """One block as Markdown for the front end to render (secrets scrubbed); an open code
    fence or ``$$`` of a half-streamed block is closed for display."""
    if block.kind == "text":
        return scrub_secrets(close_open_fence(defuse_html(block.text)))
    if block.kind == "thinking":  # while it streams, only its end (a bounded update)
        text = block.text if block.frozen or len(block.text) <= _LIVE_THINKING else \
            "…" + block.text[-_LIVE_THINKING:]
        return scrub_secrets(_details("💭 Thinking", _pre("thinking", text)))
    if block.kind == "tool":
        return scrub_secrets(_details(block.tool_title(), block.tool_html()))
    if block.kind == "approval":
        return scrub_secrets(_details(block.name, _pre("code", _clip(block.text))))
    return scrub_secrets(_quote(block.text))


def _pretty(value: Any) -> str:
    try:
        return _clip(json.dumps(value, indent=2, ensure_ascii=False, default=str))
    except (TypeError, ValueError):
        return _clip(repr(value))


def _clip(text: str, limit: int = 4000) -> str:
    return text if len(text) <= limit else text[:limit] + f"\n… ({len(text) - limit:,} more chars)"


def _split_point(block: ViewSegment) -> int:
    """Index just after the last blank line outside a code fence or ``$$`` block (0 if
    none); scans only the lines completed since the last call."""
    text = block.text
    pos = block.scan_pos
    while True:
        end = text.find("\n", pos)
        if end < 0:
            break
        line = text[pos:end]
        block.scan_fence, block.scan_math = _step(line, block.scan_fence, block.scan_math)
        pos = end + 1
        if block.scan_fence is None and not block.scan_math and not line.strip():
            block.scan_best = pos
    block.scan_pos = pos
    return block.scan_best


class Transcript:
    """The state of one run's view, fed event by event (from one thread at a time)."""

    def __init__(self, *, model: str | None = None, prompt: str | None = None,
                 base: Usage | None = None) -> None:
        self.base = base or Usage()  # the session's usage before this run
        self.segments: list[ViewSegment] = []
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
            self.note = f"↻ retrying ({_payload_summary(payload)})"
            self.version += 1
        elif name == "compaction":
            self.note = f"🗜 history compacted ({_payload_summary(payload)})"
            self.version += 1
        elif name == "error":
            self.error = _payload_summary(payload)
            self._add("error", f"✗ {self.error}")

    def _append(self, kind: str, text: str) -> None:
        if not text:
            return
        last = self.segments[-1] if self.segments else None
        if last is None or last.kind != kind or last.frozen:
            self._freeze_live()
            last = ViewSegment(kind=kind)
            self.segments.append(last)
            self.version += 1
        last.text += text
        last.touch()
        if kind == "text":
            before = last.scan_best
            if "\n" in text:  # a line ended: scan it (partial lines are never re-read)
                _split_point(last)
            cut = last.scan_best if last.scan_best < len(last.text) else before
            if FREEZE_CHARS < cut < len(last.text):
                head, tail = last.text[:cut], last.text[cut:]
                last.text, last.frozen = head, True
                rest = ViewSegment(kind="text", text=tail, version=1, cont=True)
                _split_point(rest)  # its finished lines, so the next delta can split it
                self.segments.append(rest)
                self.version += 1

    def _freeze_live(self) -> None:
        if self.segments and self.segments[-1].kind in ("text", "thinking"):
            last = self.segments[-1]
            if not last.frozen:
                last.frozen = True
                last.touch()

    def _tool_start(self, p: dict[str, Any]) -> None:
        self._freeze_live()
        self.segments.append(
            ViewSegment(kind="tool", tool_id=str(p.get("id", "")), name=str(p.get("name", "tool")),
                  input=p.get("input"), version=1)
        )
        self.version += 1

    def _tool_end(self, p: dict[str, Any]) -> None:
        block = self._find_tool(str(p.get("id", "")))
        if block is None:
            self._tool_start(p)
            block = self.segments[-1]
        block.duration_ms = int(p.get("duration_ms") or 0)
        block.error = p.get("error") or None
        if isinstance(p.get("result"), str):  # events.ToolEndPayload["result"]
            block.result = p["result"]
        block.frozen = True
        block.touch()

    def _find_tool(self, tool_id: str) -> ViewSegment | None:
        for block in reversed(self.segments):
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

    def approval(self, tool_name: str, code: str, allowed: bool, how: str = "") -> ViewSegment:
        """Record a human's verdict on a tool request (kept in the static transcript)."""
        verdict = "✓ approved" if allowed else "✗ denied"
        self._freeze_live()
        block = ViewSegment(kind="approval", name=f"✋ {tool_name}: {verdict}{how}", text=code,
                      frozen=True, version=1)
        self.segments.append(block)
        self.version += 1
        return block

    def _add(self, kind: str, text: str) -> None:
        self._freeze_live()
        self.segments.append(ViewSegment(kind=kind, text=text, frozen=True, version=1))
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
            if fresh and result.text and not any(b.kind == "text" for b in self.segments):
                self.segments.append(
                    ViewSegment(kind="text", text=result.text, frozen=True, version=1))
        if status:
            self.status = status
        if error:
            self.error = error
        shown = any(b.kind == "error" for b in self.segments)
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
        for block in self.segments:
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
        parts = [("" if b.cont else "\n\n") + b.text for b in self.segments if b.kind == "text"]
        return "".join(parts).strip()

    @property
    def run_usage(self) -> Usage:
        """What this run cost (``usage`` is the session's running total)."""
        return self.usage - self.base

    def footer(self) -> str:
        """``model · turns 2 · 1,234 in / 56 out tokens · $0.0012 · ✓ completed``."""
        u = self.run_usage
        cost = u.cost_label
        if self.base.total_tokens and self.usage.cost_label != cost:  # not "unpriced" twice
            cost += f" (session {self.usage.cost_label})"
        parts = [self.model or "model ?", f"turns {self.turns}",
                 f"{u.input_tokens:,} in / {u.output_tokens:,} out tokens", cost,
                 _STATUS_LABEL.get(self.status, self.status)]
        if self.note and not self.done:
            parts.append(self.note)
        return " · ".join(parts)

    def to_markdown(self, banner: str | None = None) -> str:
        """The whole run as one static Markdown document: the answer, tool calls and
        approvals as collapsible ``<details>``, notices, and the footer. This is what a
        finished cell keeps, so it renders without widgets (GitHub, nbconvert, VS Code).

        ``banner`` (the offline-demo notice) comes first, so a saved notebook still says
        that its replies were scripted.
        """
        out: list[str] = [_quote(f"ⓘ {banner}")] if banner else []
        for b in self.segments:
            if b.kind == "text" and b.cont and out:
                out[-1] = close_open_fence(out[-1] + defuse_html(b.text))
            elif b.kind == "text":
                if b.text.strip():
                    out.append(close_open_fence(defuse_html(b.text)))
            else:
                out.append(segment_markdown(b))
        out.append(self.footer_markdown())
        return scrub_secrets("\n\n".join(out))

    def footer_markdown(self, hint: str = "") -> str:
        """The footer line as Markdown (model names may hold ``_`` or ``*``)."""
        text = self.footer() + (f" · {hint}" if hint else "")
        return f"---\n<sub>{footer_text(text)}</sub>"


def footer_text(text: str) -> str:
    """A footer or status line for Markdown: HTML escaped, and no LaTeX: a cost and a
    session cost on one line, "$0.01 (session $0.02)", would render as math. ``\\$``
    keeps the Markdown step (JupyterLab, GitHub, nbconvert) from reading ``$`` as math;
    the ``<span>`` keeps MathJax, which scans the rendered page's text, from pairing two
    of them (it never pairs across elements)."""
    return html.escape(text, quote=False).replace("$", "<span>\\$</span>")


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


def _payload_summary(payload: Any) -> str:
    if isinstance(payload, dict):
        for key in ("message", "error", "reason"):
            if payload.get(key):
                return str(payload[key])
        return ", ".join(f"{k}={v}" for k, v in payload.items() if not isinstance(v, dict | list))
    return str(payload) if payload is not None else ""



def conversation_markdown(messages: list[Any], *, footer: str = "") -> str:
    """A whole conversation as static Markdown: user turns quoted under "You", the
    assistant's text as Markdown, its tool calls as ``<details>`` with their results."""
    results: dict[str, tuple[str, bool]] = {}
    for m in messages:
        for r in getattr(m, "tool_result_blocks", []):
            results[r.tool_use_id] = (r.content, r.is_error)
    out: list[str] = []
    for m in messages:
        if m.role == "user":
            if m.text.strip() and not m.tool_result_blocks:
                out.append(user_turn_markdown(m.text))
            continue
        parts: list[str] = []
        for b in m.content:
            kind = getattr(b, "type", "")
            if kind == "text" and b.text.strip():
                parts.append(close_open_fence(defuse_html(b.text)))
            elif kind == "tool_use":
                card = ViewSegment(kind="tool", tool_id=b.id, name=b.name, input=b.input)
                content, is_error = results.get(b.id, (None, False))
                card.result = content
                card.duration_ms = 0 if content is not None else None
                card.error = content if is_error else None
                title = card.tool_title().replace(" · 0 ms", "")
                parts.append(_details(title, card.tool_html()))
        if parts:
            out.append("**🤖 Assistant**\n\n" + "\n\n".join(parts))
    if not out:
        out.append("*No messages yet.*")
    if footer:
        out.append(f"---\n<sub>{footer_text(footer)}</sub>")
    return scrub_secrets("\n\n".join(out))


def user_turn_markdown(text: str) -> str:
    """A user's turn: a quote under "You", escaped and with its line breaks kept (a
    trailing backslash is a hard break), so it shows as typed."""
    lines = _quote(text.strip()).split("\n")
    kept = [line + "\\" if line.strip() != ">" and nxt.strip() != ">" else line
            for line, nxt in itertools.pairwise(lines)]
    return "**🧑 You**\n\n" + "\n".join([*kept, lines[-1]])
