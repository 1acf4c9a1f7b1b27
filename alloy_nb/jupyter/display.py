"""Widget or plain text: which view a run gets, the terminal view, and the display hooks
that turn a displayed ``Session`` into a chat box and a ``Result`` into Markdown.

Kernels get ``widgets.RunView`` (Markdown outputs, widgets only for Stop and approvals,
static once the run ends); terminal IPython gets ``PlainView``, which prints the same
transcript as text.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TextIO

if TYPE_CHECKING:
    from alloy_nb.jupyter.render import Transcript

__all__ = ["PlainView", "frontend", "history_text", "make_view", "register_formatters",
           "sessions_report", "set_frontend", "unregister_formatters"]

_forced: str | None = None  # "widget" | "plain" from `%alloy display ...`
_SESSION = ("alloy_nb.session._session", "Session")  # where the class is defined
_RESULT = ("alloy_nb.result", "Result")


def set_frontend(mode: str | None) -> None:
    """Force ``"widget"`` or ``"plain"`` views; ``None`` (or "auto") detects again."""
    global _forced
    if mode not in (None, "auto", "widget", "plain"):
        raise ValueError(f"display mode must be auto, widget or plain, not {mode!r}")
    _forced = None if mode == "auto" else mode


def frontend(shell: Any = None) -> str:
    """``"widget"`` inside a Jupyter kernel, ``"plain"`` in terminal IPython and scripts.

    A kernel cannot know whether its front end draws widgets; the answer is Markdown
    outputs either way, and the only widgets (Stop, Approve / Deny) are replaced by
    static Markdown when the run ends.
    """
    if _forced is not None:
        return _forced
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    return "widget" if getattr(shell, "kernel", None) is not None else "plain"


class PlainView:
    """Prints a run as text: answer deltas as they stream, one line per tool call."""

    def __init__(self, transcript: Transcript, *, banner: str | None = None,
                 out: TextIO | None = None) -> None:
        self.transcript = transcript
        self._out = out
        self._cursor = (0, 0)  # (block index, characters printed of it)
        self._tools: dict[int, str] = {}
        self._said: set[int] = set()  # approval blocks already printed
        if banner:
            self._write(f"ⓘ {banner}\n")

    def _write(self, text: str) -> None:
        out = self._out or sys.stdout
        out.write(text)
        out.flush()

    def flush(self) -> None:
        blocks = self.transcript.segments
        i, done = self._cursor
        while i < len(blocks):
            b = blocks[i]
            if b.kind == "text" and done < len(b.text):
                self._write(b.text[done:])
                done = len(b.text)
            elif b.kind in ("thinking", "notice", "error") and done == 0:
                self._write("💭 thinking…\n" if b.kind == "thinking" else f"\n{b.text}\n")
                done = 1
            elif b.kind == "approval" and done == 0:
                if id(b) not in self._said:
                    self._write(f"   {b.name}\n")
                done = 1
            elif b.kind == "tool":
                self._tool(i, b)
                if b.tool_status == "running":
                    break
            if not b.frozen:
                break
            # a split text block continues in the next one: skip what was printed already
            carry = done - len(b.text) if b.kind == "text" else 0
            i += 1
            done = carry if carry > 0 and i < len(blocks) and blocks[i].cont else 0
        self._cursor = (i, done)

    def _tool(self, i: int, b: Any) -> None:
        shown = self._tools.get(i)
        if shown is None:
            self._write(f"\n🔧 {b.name} {_short(b.input)}\n")
            shown = self._tools[i] = "running"
        if b.tool_status != "running" and shown == "running":
            took = f" · {b.duration_ms} ms" if b.duration_ms is not None else ""
            mark = f"✗ {b.error[:200]}" if b.error else "✓"
            self._write(f"   {mark}{took}\n")
            self._tools[i] = b.tool_status

    def approval(self, tool_name: str, code: str, allowed: bool, how: str = "") -> None:
        """A verdict on a tool request: one line, as in the notebook's transcript."""
        block = self.transcript.approval(tool_name, code, allowed, how)
        self._write(f"   {block.name}\n")  # now, under the tool's line (flush waits for
        self._said.add(id(block))  # the running tool to end before going further)

    def finalize(self) -> None:
        self.flush()
        self._write(f"\n— {self.transcript.footer()}\n")

    @property
    def text(self) -> str:
        return self.transcript.text


def _short(value: Any, limit: int = 160) -> str:
    try:
        text = json.dumps(value, ensure_ascii=False, default=str)
    except (TypeError, ValueError):
        text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def make_view(transcript: Transcript, *, shell: Any = None, banner: str | None = None,
              on_stop: Callable[[], Any] | None = None) -> Any:
    """The view for this front end: a ``RunView`` (shown at once) or a ``PlainView``."""
    if frontend(shell) == "plain":
        return PlainView(transcript, banner=banner)
    try:
        import ipywidgets  # noqa: F401 - a declared dependency, but envs differ

        from alloy_nb.jupyter.widgets import RunView
    except ImportError:
        return PlainView(transcript, banner=banner)

    view = RunView(transcript, banner=banner, on_stop=on_stop)
    view.show()
    return view


# ---- reports (plain text: they read the same in a terminal and a notebook) -----------


def history_text(messages: list[Any], width: int = 300) -> str:
    """The conversation, one line per block (long text clipped)."""
    if not messages:
        return "(no messages yet)"
    out = []
    for i, m in enumerate(messages, 1):
        for b in m.content:
            kind = getattr(b, "type", "?")
            if kind == "text":
                body = b.text
            elif kind == "thinking":
                body = "(thinking) " + b.thinking
            elif kind == "tool_use":
                body = f"→ {b.name}({json.dumps(b.input, ensure_ascii=False, default=str)})"
            elif kind == "tool_result":
                body = ("✗ " if b.is_error else "← ") + b.content
            else:
                body = f"({kind})"
            body = " ".join(body.split())
            out.append(f"{i:>3} {m.role:<9} {body[:width]}{'…' if len(body) > width else ''}")
    return "\n".join(out)


def sessions_report(sessions: dict[str, Any], running: dict[str, Any]) -> str:
    """One line per session: model, size, status, usage."""
    if not sessions:
        return "no sessions yet (the first %%alloy cell creates 'default')"
    lines = []
    for name, session in sessions.items():
        h = session.health()
        status = "background run" if name in running else h["status"]
        lines.append(f"{name:<12} {h['model']:<28} {h['message_count']:>4} messages  "
                     f"{status:<14} {session.usage}")
    return "\n".join(lines)


# ---- display hooks -------------------------------------------------------------------


def register_formatters(shell: Any, chat: Callable[[Any], Any]) -> None:
    """A displayed Session becomes ``chat(session).show()`` (its conversation as Markdown
    plus an input box) where widgets are drawn, its text repr elsewhere; a Result renders
    as Markdown. Registered by class name: loading imports neither class.
    """
    fmt = shell.display_formatter

    def show_session(session: Any) -> None:
        if frontend(shell) == "plain":
            print(repr(session))  # what Out[] would have shown
            return
        chat(session).show()

    fmt.ipython_display_formatter.for_type_by_name(*_SESSION, show_session)
    fmt.formatters["text/markdown"].for_type_by_name(*_RESULT, _result_markdown)


def _result_markdown(result: Any) -> str:
    """A Result as Markdown, its model text unable to run HTML (``render.defuse_html``)."""
    from alloy_nb.jupyter.render import defuse_html  # lazy: loading stays light

    return defuse_html(result._repr_markdown_())


def unregister_formatters(shell: Any) -> None:
    """Undo ``register_formatters`` (``%unload_ext``)."""
    fmt = shell.display_formatter
    for formatter, (module, name) in (
        (fmt.ipython_display_formatter, _SESSION),
        (fmt.formatters["text/markdown"], _RESULT),
    ):
        formatter.deferred_printers.pop((module, name), None)
        for cls in list(formatter.type_printers):
            if cls.__module__ == module and cls.__name__ == name:
                formatter.type_printers.pop(cls, None)
