"""The notebook views of a run (``RunView``) and of a Session as a chat (``ChatView``).

A run's answer is Markdown in ordinary display outputs, so Jupyter's own renderer draws it
(code highlighting, tables, LaTeX): each finished paragraph, tool card or approval is its
own output, and a throttled ``update_display`` re-sends only the live tail. Widgets appear
only where a person must act (Stop, Approve / Deny, the chat's input box); when the run
ends every output is replaced in place by static Markdown, so a saved notebook renders
without widget state (GitHub, nbconvert, VS Code, a reopened notebook). Views only draw a
``render.Transcript``; ``runner.py`` runs things; everything here runs on the main thread.
"""

from __future__ import annotations

import html
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from alloy_nb.jupyter.render import (
    Transcript,
    ViewSegment,
    conversation_markdown,
    footer_text,
    scrub_secrets,
    segment_markdown,
    user_turn_markdown,
)

__all__ = ["WIDGET_MIME", "ApprovalCard", "ChatView", "RunView"]

WIDGET_MIME = "application/vnd.jupyter.widget-view+json"
_BLOCKING_HINT = "■ interrupt the kernel to stop"
_EMPTY: dict[str, Any] = {"text/plain": ""}
_FOOTER = '<span style="opacity:0.75;font-size:90%">{}</span>'


def _w() -> Any:
    import ipywidgets  # lazy: ~200 ms, paid only when a widget is first needed

    return ipywidgets


def _new(cls: Any, *classes: str, **kw: Any) -> Any:
    """Build a widget with its CSS classes in the first message (no extra update)."""
    return cls(_dom_classes=classes, **kw)


def _md(markdown: str) -> dict[str, Any]:
    """A Markdown output. No ``text/plain`` copy: it would double every live update, and
    every front end that shows notebooks renders Markdown."""
    return {"text/markdown": markdown or " "}


def _widget_bundle(widget: Any, text: str) -> dict[str, Any]:
    data = dict(widget._repr_mimebundle_())
    data["text/plain"] = text
    data["text/markdown"] = text or " "
    return data


def _publish(data: dict[str, Any], display_id: str, *, update: bool) -> None:
    from alloy_nb.jupyter._ipython import display, update_display

    if update:
        update_display(data, raw=True, display_id=display_id)
    else:
        display(data, raw=True, display_id=display_id)


def _new_id() -> str:
    return uuid.uuid4().hex[:16]  # sent with every update: short, still unique enough


def _close(*widgets: Any) -> None:
    """Close widgets (their comms): a front end that still shows one hides it."""
    for widget in widgets:
        if widget is not None:
            for child in getattr(widget, "children", ()):
                _close(child)
            widget.close()


@dataclass
class _Slot:
    """One output of the cell: consecutive blocks, an approval card, or the status line."""

    display_id: str
    kind: str = "blocks"  # "blocks" | "card" | "status" | "banner"
    segments: list[ViewSegment] = field(default_factory=list)
    sent: Any = None  # what was last published (None: not published yet)
    versions: tuple[int, ...] = ()
    widget: Any = None

    def markdown(self) -> str:
        parts: list[str] = []
        texts: list[str] = []  # a paragraph group split while streaming: one text again
        for block in self.segments:
            if block.kind == "text":
                texts.append(block.text)
                continue
            if texts:
                parts.append(segment_markdown(ViewSegment(kind="text", text="".join(texts))))
                texts = []
            parts.append(segment_markdown(block))
        if texts:
            parts.append(segment_markdown(ViewSegment(kind="text", text="".join(texts))))
        return "\n\n".join(p for p in parts if p)


class RunView:
    """A run as outputs: a status line (with a Stop button when ``on_stop`` is given, i.e.
    background runs; "■ interrupt" for blocking ones), then the answer, each output a
    group of finished paragraphs, a tool card or an approval, the last one live.

    ``flush()`` publishes only what changed since the last flush (callers throttle it):
    the live paragraph, and at most one new output holding what was finished since.
    When the run ends the status line is emptied and the footer follows the answer.
    """

    def __init__(
        self,
        transcript: Transcript,
        *,
        banner: str | None = None,
        on_stop: Callable[[], Any] | None = None,
    ) -> None:
        self.transcript = transcript
        self.banner = banner
        self._slots: list[_Slot] = []
        self._placed: set[int] = set()  # id() of blocks already in a slot
        self._status: _Slot | None = None
        self._status_text = ""
        self._card: _Slot | None = None  # an approval card waiting for a click
        self.footer: Any = None
        self.stop_button: Any = None
        self._controls: Any = None
        self.display_id: str | None = None  # the run's first output
        self.finished = False
        if on_stop is not None:
            w = _w()
            self.footer = _new(w.HTML, "alloy-footer", value=_FOOTER.format("● starting…"))
            self.stop_button = _new(
                w.Button, "alloy-stop", description="Stop", icon="stop", button_style="danger",
                tooltip="Cancel this run (the partial answer is kept)",
            )
            self.stop_button.on_click(lambda _b: on_stop())
            self._controls = _new(w.HBox, "alloy-controls", children=[self.footer,
                                                                      self.stop_button])

    # -- outputs ------------------------------------------------------------------------

    def show(self) -> None:
        """Publish the first outputs: the banner (if any) and the status line."""
        if self.banner:
            slot = _Slot(_new_id(), kind="banner")
            slot.sent = f"> ⓘ {html.escape(self.banner, quote=False)}"
            _publish(_md(slot.sent), slot.display_id, update=False)
            self._slots.append(slot)
        self._status = _Slot(_new_id(), kind="status")
        self._status_text = self.transcript.footer()
        _publish(self._status_bundle(), self._status.display_id, update=False)
        self._status.sent = True
        self._slots.append(self._status)
        self.display_id = self._slots[0].display_id

    def _status_bundle(self) -> dict[str, Any]:
        t = self.transcript
        if self._controls is None:
            return _md(f"<sub>{footer_text(t.footer())} · {_BLOCKING_HINT}</sub>")
        return _widget_bundle(self._controls, t.footer())

    def flush(self) -> None:
        """Publish what changed: the live output, new outputs, the status line."""
        t = self.transcript
        prev: ViewSegment | None = None
        for block in t.segments:
            if id(block) not in self._placed:
                self._place(block, prev)
            prev = block
        for slot in self._slots:
            if slot.kind == "blocks":
                self._sync(slot)
        status = t.footer()
        if self._status is not None and not self.finished and status != self._status_text:
            self._status_text = status
            if self.footer is not None:
                self.footer.value = _FOOTER.format(html.escape(status))
            else:
                _publish(self._status_bundle(), self._status.display_id, update=True)

    def _place(self, block: ViewSegment, prev: ViewSegment | None) -> None:
        """Put a new block into the last output when it continues a paragraph group that
        was still live at the last flush, else into a new output."""
        self._placed.add(id(block))
        last = self._slots[-1] if self._slots else None
        if (last is not None and last.kind == "blocks" and block.kind == "text" and block.cont
                and block.frozen and last.segments and last.segments[-1] is prev
                and prev is not None
                and prev.frozen and not self._frozen_when_sent(last)):
            last.segments.append(block)
            return
        slot = _Slot(_new_id(), segments=[block])
        self._slots.append(slot)

    @staticmethod
    def _frozen_when_sent(slot: _Slot) -> bool:
        """Whether the slot's last block was already final when last published (then the
        group is closed: what follows goes to a new output, the old one is not re-sent)."""
        return bool(slot.sent is not None and slot.versions
                    and slot.segments[-1].frozen and slot.versions[-1] == slot.segments[-1].version
                    and len(slot.versions) == len(slot.segments))

    def _sync(self, slot: _Slot) -> None:
        versions = tuple(b.version for b in slot.segments)
        if slot.sent is not None and versions == slot.versions:
            return
        slot.versions = versions
        markdown = slot.markdown()
        if markdown == slot.sent:
            return
        _publish(_md(markdown), slot.display_id, update=slot.sent is not None)
        slot.sent = markdown

    def add(self, widget: Any) -> None:
        """Show an approval card (a widget) after the outputs shown so far."""
        self.flush()
        slot = _Slot(_new_id(), kind="card", widget=widget)
        _publish(_widget_bundle(widget, "approval requested: waiting…"), slot.display_id,
                 update=False)
        slot.sent = True
        self._slots.append(slot)
        self._card = slot

    def approval(self, tool_name: str, code: str, allowed: bool, how: str = "") -> None:
        """Record a verdict; a waiting card is replaced in place by its static form."""
        block = self.transcript.approval(tool_name, code, allowed, how)
        if threading.current_thread() is not threading.main_thread():
            return  # a tool run off the main thread: the next flush shows the verdict
        card, self._card = self._card, None
        if card is None:
            self.flush()
            return
        self._placed.add(id(block))
        card.kind, card.segments, card.sent = "blocks", [block], True
        _close(card.widget)
        card.widget = None
        self._sync(card)

    def finalize(self) -> None:
        """The run is over: every live output becomes static Markdown. The status line
        (Stop, ■) is emptied, the footer is published after the answer, and a card
        nobody answered says so."""
        self.flush()
        self.finished = True
        if self._card is not None:  # the run ended while a card waited for a click
            card, self._card = self._card, None
            card.kind, card.sent = "done", "> ✋ approval request not answered: the run ended"
            _publish(_md(card.sent), card.display_id, update=True)
            _close(card.widget)
        footer = _Slot(_new_id(), kind="footer", sent=self.transcript.footer_markdown())
        if any(s.kind == "blocks" for s in self._slots) or self._status is None:
            _publish(_md(footer.sent), footer.display_id, update=False)
            self._slots.append(footer)
            if self._status is not None:
                _publish(_EMPTY, self._status.display_id, update=True)
        else:  # nothing was said: the footer takes the status line's place
            _publish(_md(footer.sent), self._status.display_id, update=True)
        if self._status is not None:
            self._status.kind = "done"
        _close(self._controls)

    def redisplay(self) -> None:
        """Be the cell's only outputs again, in order and under the same display ids, e.g.
        after a y/N prompt whose log would otherwise sit between the tool card and the
        rest of the answer (``clear_output(wait=True)`` applies when the first output
        arrives again: no flicker)."""
        if not self._slots:
            return
        from alloy_nb.jupyter._ipython import clear_output

        self.flush()
        clear_output(wait=True)
        for slot in self._slots:
            _publish(self._current(slot), slot.display_id, update=False)

    def _current(self, slot: _Slot) -> dict[str, Any]:
        """What ``slot`` shows now (as last published)."""
        if slot.kind == "status" and not self.finished:
            return self._status_bundle()
        if slot.kind == "card" and slot.widget is not None:
            return _widget_bundle(slot.widget, "approval requested: waiting…")
        if isinstance(slot.sent, str):
            return _md(slot.sent)
        return _EMPTY

    def resend(self) -> None:
        """Publish the finished run again from the current cell, as ONE static output.

        nbclient (and so nbconvert, papermill) keeps only messages of the cell it is
        executing, so a background run that ended after its cell keeps its first
        outputs there. Its first output now receives the whole transcript; the others
        are emptied. Called by ``await handle`` and after the next cell.
        """
        if not self._slots:
            return
        head, *rest = self._slots
        whole = self.transcript.to_markdown(self.banner)
        _publish({"text/markdown": whole, "text/plain": whole}, head.display_id, update=True)
        for slot in rest:
            _publish(_EMPTY, slot.display_id, update=True)

    @property
    def text(self) -> str:
        """The answer text shown so far, for assertions in CI notebooks."""
        return self.transcript.text


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


# Enter sends, Shift+Enter adds a line. ipywidgets' Textarea has no key events, so a small
# listener (run by Jupyter for trusted Markdown only; idempotent) handles Enter. It does
# not click Send: ipywidgets may hold back value updates while the kernel is busy, and
# the click would overtake the text. It appends a marker to the text instead; the kernel
# sends when the value carrying the marker arrives, so nothing typed is ever lost.
_SEND_MARK = "\ue000"
_KEYS_JS = """<script>
(() => {
  // Reopened without its kernel, the input box's widget is gone: say so in its place
  // instead of JupyterLab's "model not found" (this cell's outputs only).
  const area = document.currentScript && document.currentScript.closest('.jp-OutputArea');
  if (area) {
    const fix = () => {
      for (const el of area.querySelectorAll('.jp-OutputArea-output')) {
        if (el.textContent.trim().startsWith('Error displaying widget')) {
          el.textContent = 'The chat box was live while the kernel ran: run this cell ' +
            'again to chat.';
          el.classList.remove('jupyter-widgets');
          el.style.opacity = '0.7';
        }
      }
    };
    fix();
    const watch = new MutationObserver(fix);
    watch.observe(area, {childList: true, subtree: true, characterData: true});
    setTimeout(() => watch.disconnect(), 120000);
  }
  if (window.__alloyChatKeys) return; window.__alloyChatKeys = true;
  window.addEventListener('keydown', (e) => {
    const box = e.target;
    if (e.key !== 'Enter' || !(box instanceof HTMLTextAreaElement) ||
        !box.closest('.alloy-input')) return;
    e.stopPropagation();  // not JupyterLab's run-cell shortcut; Shift+Enter: a new line
    if (e.shiftKey || e.isComposing) return;
    e.preventDefault();
    if (!box.value.trim()) return;
    box.value += '\\ue000';
    box.dispatchEvent(new Event('input', {bubbles: true}));
  }, true);
})();
</script>"""


class ChatView:
    """A Session as a chat: its whole conversation as static Markdown (updated whenever the
    session changes, whichever cell or box sent the turn), a live line for the reply being
    streamed, and the input box (the one widget: text, Send, Stop).

    ``send(prompt, make_view)`` starts a reply (a background run on the kernel loop);
    ``make_view(transcript, **kw)`` builds the view it streams into. It returns a handle
    (``cancel``, ``done``, ``add_done_callback``) or raises with a message to show.
    """

    def __init__(self, title: str, session: Any,
                 send: Callable[[str, Callable[..., Any]], Any],
                 banner: str | None = None, with_input: bool = True) -> None:
        w = _w()
        self.with_input = with_input
        self.title = title
        self.session = session
        self.banner = banner
        self._send = send
        self._run: Any = None
        self._ids = (_new_id(), _new_id(), _new_id())  # conversation, live line, input
        self._sent: list[Any] = [None, None, None]
        self.shown = False
        self.input = _new(w.Textarea, "alloy-input",
                          placeholder="Message… (Enter sends, Shift+Enter adds a line)",
                          rows=2, layout=w.Layout(width="100%"))
        self.send_button = _new(w.Button, "alloy-send", description="Send",
                                button_style="primary", icon="paper-plane")
        self.stop_button = _new(w.Button, "alloy-stop", description="Stop", icon="stop",
                                button_style="danger", disabled=True)
        self.send_button.on_click(lambda _b: self.submit())
        self.input.observe(self._typed, names="value")
        self.stop_button.on_click(lambda _b: self.stop())
        self.cards = _new(w.VBox, "alloy-cards")
        self.error = _new(w.HTML, "alloy-error")
        controls = w.HBox([self.input, self.send_button, self.stop_button])
        self.widget = _new(w.VBox, "alloy-chat", children=[controls, self.cards, self.error])

    # -- outputs ------------------------------------------------------------------------

    def conversation(self) -> str:
        """The conversation so far as static Markdown (what a saved notebook keeps)."""
        head = f"**{html.escape(self.title, quote=False)}**"
        if self.banner:
            head += f"\n\n> ⓘ {html.escape(self.banner, quote=False)}"
        u = self.session.usage
        footer = (f"{self.session.model} · {len(self.session.messages)} messages · "
                  f"{u.input_tokens:,} in / {u.output_tokens:,} out tokens · {u.cost_label}")
        return head + "\n\n" + conversation_markdown(self.session.messages, footer=footer)

    def _idle_line(self) -> str:
        return "<sub>Type below: Enter sends, Shift+Enter adds a line.</sub>\n\n" + _KEYS_JS

    def _put(self, i: int, data: dict[str, Any], key: Any) -> None:
        if self._sent[i] == key or (i > 0 and not self.with_input):
            return
        _publish(data, self._ids[i], update=True)
        self._sent[i] = key

    def show(self) -> None:
        """Publish the conversation, then (for a person at the notebook) the live line and
        the input box; executed notebooks (nbclient) get the conversation only."""
        conversation = self.conversation()
        _publish(_md(conversation), self._ids[0], update=False)
        self._sent = [conversation, None, None]
        self.shown = True
        if not self.with_input:
            return
        _publish(_md(self._idle_line()), self._ids[1], update=False)
        _publish(_widget_bundle(self.widget, "(chat input: live while the kernel runs)"),
                 self._ids[2], update=False)
        self._sent = [conversation, "idle", "widget"]

    def refresh(self) -> None:
        """Re-publish the conversation if the session changed (any cell may have sent a
        turn). A no-op when nothing changed."""
        if self.shown:
            text = self.conversation()
            self._put(0, _md(text), text)

    def live(self, markdown: str) -> None:
        """The reply being streamed (the user's turn first)."""
        self._put(1, _md(markdown), markdown)

    def idle(self) -> None:
        self._put(1, _md(self._idle_line()), "idle")

    # -- input --------------------------------------------------------------------------

    def _typed(self, change: dict[str, Any]) -> None:
        """Enter in the box (see ``_KEYS_JS``): the value arrives with the send marker."""
        if _SEND_MARK in (change.get("new") or ""):
            self.submit()

    def submit(self) -> None:
        """Send the text box's content (what the Send button and Enter do)."""
        prompt = self.input.value.replace(_SEND_MARK, "").strip()
        if not prompt or (self._run is not None and not self._run.done()):
            if _SEND_MARK in self.input.value:  # not sent: keep the text, drop the marker
                self.input.value = self.input.value.replace(_SEND_MARK, "")
            return
        self.input.value = ""
        self.error.value = ""
        try:
            self._run = self._send(prompt, self._make_view)
        except Exception as exc:
            self.error.value = f"<span style='color:#c00'>{html.escape(str(exc))}</span>"
            self.input.value = prompt
            return
        self.send_button.disabled = False
        self.stop_button.disabled = False
        self._run.add_done_callback(lambda _r: setattr(self.stop_button, "disabled", True))

    def _make_view(self, transcript: Transcript, **_kw: Any) -> _ChatTurn:
        return _ChatTurn(self, transcript)

    def stop(self) -> None:
        """Cancel the reply being streamed (what the Stop button does)."""
        if self._run is not None:
            self._run.cancel()


class _ChatTurn:
    """The view of one reply sent from the chat box: streams into the chat's live line;
    approval cards go under the input box; when done the conversation is re-published."""

    def __init__(self, chat: ChatView, transcript: Transcript) -> None:
        self.chat = chat
        self.transcript = transcript
        self.finished = False
        self._card: Any = None

    def _markdown(self) -> str:
        t = self.transcript
        parts = [user_turn_markdown(t.prompt or "")]
        body = [segment_markdown(b) for b in t.segments]
        if body:
            parts.append("**🤖 Assistant**\n\n" + "\n\n".join(body))
        parts.append(t.footer_markdown())
        return "\n\n".join(parts)

    def flush(self) -> None:
        if not self.finished:
            self.chat.live(self._markdown())

    def add(self, widget: Any) -> None:
        self.flush()
        self._card = widget
        self.chat.cards.children = (*self.chat.cards.children, widget)

    def approval(self, tool_name: str, code: str, allowed: bool, how: str = "") -> None:
        self.transcript.approval(tool_name, code, allowed, how)
        card, self._card = self._card, None
        if card is not None:
            self.chat.cards.children = tuple(c for c in self.chat.cards.children
                                             if c is not card)
            _close(card)
        self.flush()

    def finalize(self) -> None:
        self.finished = True
        if self._card is not None:
            self.chat.cards.children = ()
            _close(self._card)
            self._card = None
        self.chat.refresh()
        t = self.transcript
        said = [segment_markdown(b) for b in t.segments if b.kind in ("notice", "error")]
        if t.status == "completed" and not said:
            self.chat.idle()
        else:  # stopped or failed: say so (the conversation above has what was kept)
            self.chat.live("\n\n".join([*said, t.footer_markdown(), _KEYS_JS]))

    def resend(self) -> None:
        self.chat.refresh()

    @property
    def text(self) -> str:
        return self.transcript.text
