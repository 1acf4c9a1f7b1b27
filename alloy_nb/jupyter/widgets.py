"""Stock-ipywidgets views: ``RunView`` (one run) and ``ChatView`` (a Session as a chat box).

Views only draw a ``render.Transcript``; they never run anything themselves (``runner.py``
does) and they are only touched from the kernel's main thread. ipywidgets is imported here,
lazily, when the first view is built.
"""

from __future__ import annotations

import html
from collections.abc import Callable
from typing import Any

from alloy_nb.jupyter.render import Block, Transcript, markdown_to_html, scrub_secrets

__all__ = ["ApprovalCard", "ChatView", "RunView"]

_MD = '<div class="jp-RenderedHTMLCommon alloy-md">{}</div>'
_FOOTER = '<span style="opacity:0.75;font-size:90%">{}</span>'
_BLOCKING_HINT = "■ interrupt the kernel to stop"


def _w() -> Any:
    import ipywidgets  # lazy: ~200 ms, paid only when a view is first shown

    return ipywidgets


def _new(cls: Any, *classes: str, **kw: Any) -> Any:
    """Build a widget with its CSS classes in the first message (no extra update)."""
    return cls(_dom_classes=classes, **kw)


class RunView:
    """Frozen blocks plus one live block, a footer, and a Stop button when ``on_stop`` is set.

    ``flush()`` sends only what changed since the last flush; callers throttle it.
    """

    def __init__(
        self,
        transcript: Transcript,
        *,
        banner: str | None = None,
        on_stop: Callable[[], Any] | None = None,
    ) -> None:
        w = _w()
        self.transcript = transcript
        from ipywidgets.widgets.widget_string import HTMLStyle

        # one Layout/Style shared by every block: a new block costs one comm_open, not three
        self._shared = {"layout": w.Layout(), "style": HTMLStyle()}
        self._box_layout = w.Layout()
        self._entries: list[tuple[Block, Any, int]] = []
        self._order: list[Any] = []
        self._footer_text = ""
        self._body = _new(w.VBox, "alloy-transcript")
        self.footer = _new(w.HTML, "alloy-footer", value=_FOOTER.format("● starting…"))
        controls: list[Any] = [self.footer]
        self.stop_button: Any = None
        self._hint: Any = None
        if on_stop is not None:
            self.stop_button = _new(
                w.Button, "alloy-stop", description="Stop", icon="stop", button_style="danger",
                tooltip="Cancel this run (the partial answer is kept)",
            )
            self.stop_button.on_click(lambda _b: on_stop())
            controls.append(self.stop_button)
        else:
            self._hint = _new(w.HTML, "alloy-hint", value=_FOOTER.format(_BLOCKING_HINT))
            controls.append(self._hint)
        self._controls = _new(w.HBox, "alloy-controls", children=controls)
        self.banner = banner
        top: list[Any] = []
        if banner:
            top.append(_new(w.HTML, "alloy-banner", value=_banner_html(banner)))
        self.widget = _new(w.VBox, "alloy-run", children=[*top, self._body, self._controls])
        self.display_id: str | None = None

    # -- drawing ----------------------------------------------------------------------

    def flush(self) -> None:
        """Push changed blocks and the footer to the front end (main thread only)."""
        t = self.transcript
        added = False
        for i, block in enumerate(t.blocks):
            if i >= len(self._entries):
                widget = self._make(block)
                self._entries.append((block, widget, block.version))
                self._order.append(widget)
                added = True
            elif self._entries[i][2] != block.version:
                _, widget, _ = self._entries[i]
                self._update(block, widget)
                self._entries[i] = (block, widget, block.version)
        if added:
            self._body.children = tuple(self._order)
        footer = t.footer()
        if footer != self._footer_text:
            self._footer_text = footer
            self.footer.value = _FOOTER.format(html.escape(footer))

    def add(self, widget: Any) -> None:
        """Append a foreign widget (an approval card) after the blocks shown so far."""
        self.flush()
        self._order.append(widget)
        self._body.children = tuple(self._order)

    def close_controls(self) -> None:
        """The run is over: hide Stop (and the ■ hint) so nobody reaches for a dead control."""
        if self.stop_button is not None:
            self.stop_button.disabled = True
            self.stop_button.layout.display = "none"
        if self._hint is not None:
            self._hint.value = ""

    def _make(self, block: Block) -> Any:
        w = _w()
        if block.kind in ("text", "notice", "error"):
            return _new(w.HTML, f"alloy-{block.kind}", value=self._html(block), **self._shared)
        inner = w.HTML(self._html(block), **self._shared)
        title = block.tool_title() if block.kind == "tool" else "💭 Thinking"
        classes = [f"alloy-{block.kind}"]
        if block.kind == "tool" and block.tool_status == "error":
            classes.append("alloy-tool-error")
        return _new(w.Accordion, *classes, children=[inner], titles=(title,),
                    selected_index=None, layout=self._box_layout)

    def _update(self, block: Block, widget: Any) -> None:
        if block.kind in ("text", "notice", "error"):
            widget.value = self._html(block)
            return
        with widget.hold_sync():
            widget.children[0].value = self._html(block)
            if block.kind == "tool":
                widget.titles = (block.tool_title(),)
                if block.tool_status == "error":
                    widget.add_class("alloy-tool-error")

    @staticmethod
    def _html(block: Block) -> str:
        """A block's HTML; secret values from the environment never reach widget state."""
        return scrub_secrets(RunView._raw_html(block))

    @staticmethod
    def _raw_html(block: Block) -> str:
        if block.kind == "text":
            return _MD.format(markdown_to_html(block.text))
        if block.kind == "thinking":
            return f'<pre style="white-space:pre-wrap;opacity:0.8">{html.escape(block.text)}</pre>'
        if block.kind == "tool":
            return block.tool_html()
        if block.kind == "error":
            return f'<div style="color:#c62828"><b>{html.escape(block.text)}</b></div>'
        return f"<div><i>{html.escape(block.text)}</i></div>"

    # -- the static fallback -------------------------------------------------------------

    def bundle(self, markdown: str) -> dict[str, Any]:
        """The widget view plus ``text/markdown`` for front ends without widgets."""
        data = dict(self.widget._repr_mimebundle_())
        data["text/plain"] = markdown
        data["text/markdown"] = markdown
        return data

    def show(self) -> None:
        """Display the view once, as a raw bundle with a display id to update at the end."""
        from IPython.display import display

        first = "*(streaming…)*"
        if self.banner:  # a run killed mid-stream still says its replies were scripted
            first = f"> ⓘ {self.banner}\n\n{first}"
        handle = display(self.bundle(first), raw=True, display_id=True)
        self.display_id = getattr(handle, "display_id", None)

    def finalize(self) -> None:
        """Last flush, then rewrite the static copy with the final transcript."""
        self.flush()
        self.close_controls()
        if self.display_id is not None:
            from IPython.display import update_display

            update_display(self.bundle(self.transcript.to_markdown(self.banner)), raw=True,
                           display_id=self.display_id)

    def redisplay(self) -> None:
        """Be the cell's only output again (same display id), e.g. after a y/N prompt
        whose log would otherwise sit between this view and the rest of the answer."""
        if self.display_id is None:
            return
        from IPython.display import clear_output, display

        self.flush()
        clear_output(wait=True)  # applied when the next output arrives: no flicker
        display(self.bundle(self.transcript.to_markdown(self.banner)), raw=True,
                display_id=self.display_id)

    def resend(self) -> None:
        """Re-send all state under the current cell (nbclient records only its own cell)."""
        for _, widget, _ in self._entries:
            widget.send_state()
        self.footer.send_state()
        self._body.send_state()
        self.finalize()

    @property
    def text(self) -> str:
        """The answer text shown so far, for assertions in CI notebooks."""
        return self.transcript.text


def _banner_html(text: str) -> str:
    return (
        '<div style="border-left:4px solid #e0a800;padding:4px 8px;margin:2px 0;'
        f'background:rgba(224,168,0,0.12)">{markdown_to_html("ⓘ " + text)}</div>'
    )


class ApprovalCard:
    """Approve / Deny for one tool request; ``decide`` is called once with True or False."""

    def __init__(self, tool_name: str, code: str, decide: Callable[[bool], Any]) -> None:
        w = _w()
        self._decide = decide
        head = w.HTML(f"<b>{html.escape(tool_name)}</b> wants to run:"
                      f"<pre>{scrub_secrets(html.escape(code))}</pre>")
        self.approve = _new(w.Button, "alloy-approve", description="Approve",
                            button_style="success", icon="check")
        self.deny = _new(w.Button, "alloy-deny", description="Deny", button_style="warning",
                         icon="times")
        self.approve.on_click(lambda _b: self._click(True))
        self.deny.on_click(lambda _b: self._click(False))
        self.status = w.HTML("")
        self.widget = _new(w.VBox, "alloy-approval",
                           children=[head, w.HBox([self.approve, self.deny, self.status])])

    def _click(self, ok: bool) -> None:
        if self.approve.disabled:
            return
        self.approve.disabled = self.deny.disabled = True
        self.status.value = "✓ approved" if ok else "✗ denied"
        self._decide(ok)


class ChatView:
    """A Session as a chat box: transcript, a text box, Send and Stop.

    ``send(prompt, make_view)`` starts the reply; ``make_view(transcript, **kw)`` builds the
    ``RunView`` it streams into, placed in this chat. It returns a background-run handle
    (``cancel``, ``done``, ``add_done_callback``) or raises with a message to show.
    """

    def __init__(self, title: str, history: list[tuple[str, str]],
                 send: Callable[[str, Callable[..., RunView]], Any],
                 banner: str | None = None) -> None:
        w = _w()
        self.title = title
        self._send = send
        self._run: Any = None
        self.transcript = _new(w.VBox, "alloy-chat-transcript")
        for role, text in history[-20:]:
            self._say(role, text)
        self.input = _new(w.Textarea, "alloy-input", placeholder="Message…", rows=2,
                          layout=w.Layout(width="100%"))
        self.send_button = _new(w.Button, "alloy-send", description="Send",
                                button_style="primary", icon="paper-plane")
        self.stop_button = _new(w.Button, "alloy-stop", description="Stop", icon="stop",
                                button_style="danger", disabled=True)
        self.send_button.on_click(lambda _b: self.submit())
        self.stop_button.on_click(lambda _b: self.stop())
        self.error = _new(w.HTML, "alloy-error")
        top = [w.HTML(f"<b>{html.escape(title)}</b>")]
        if banner:
            top.append(_new(w.HTML, "alloy-banner", value=_banner_html(banner)))
        controls = w.HBox([self.input, self.send_button, self.stop_button])
        self.widget = _new(w.VBox, "alloy-chat",
                           children=[*top, self.transcript, controls, self.error])

    def _say(self, role: str, text: str) -> None:
        w = _w()
        label = "🧑 You" if role == "user" else "🤖 Assistant"
        item = _new(w.HTML, f"alloy-{role}",
                    value=scrub_secrets(f"<b>{label}</b>" + _MD.format(markdown_to_html(text))))
        self.transcript.children = (*self.transcript.children, item)

    def submit(self) -> None:
        """Send the text box's content (what the Send button does)."""
        prompt = self.input.value.strip()
        if not prompt or (self._run is not None and not self._run.done()):
            return
        self.input.value = ""
        self.error.value = ""
        self._say("user", prompt)
        try:
            self._run = self._send(prompt, self._make_view)
        except Exception as exc:
            self.error.value = f"<span style='color:#c00'>{html.escape(str(exc))}</span>"
            return
        self.stop_button.disabled = False
        self._run.add_done_callback(lambda _r: setattr(self.stop_button, "disabled", True))

    def _make_view(self, transcript: Transcript, **_kw: Any) -> RunView:
        view = RunView(transcript)  # no banner or Stop of its own: the chat has both
        self.transcript.children = (*self.transcript.children, view.widget)
        return view

    def stop(self) -> None:
        """Cancel the reply being streamed (what the Stop button does)."""
        if self._run is not None:
            self._run.cancel()

    def _repr_mimebundle_(self, **_kw: Any) -> dict[str, Any]:
        data = dict(self.widget._repr_mimebundle_())
        data["text/plain"] = self.title
        return data
