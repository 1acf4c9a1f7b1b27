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
from dataclasses import dataclass
from typing import Any

from alloy_nb.jupyter.render import (
    Block,
    Transcript,
    block_markdown,
    conversation_markdown,
    scrub_secrets,
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
    return {"text/markdown": markdown or " ", "text/plain": markdown}


def _widget_bundle(widget: Any, text: str) -> dict[str, Any]:
    data = dict(widget._repr_mimebundle_())
    data["text/plain"] = text
    data["text/markdown"] = text or " "
    return data


def _publish(data: dict[str, Any], display_id: str, *, update: bool) -> None:
    from IPython.display import display, update_display

    if update:
        update_display(data, raw=True, display_id=display_id)
    else:
        display(data, raw=True, display_id=display_id)


def _new_id() -> str:
    return uuid.uuid4().hex


def _close(*widgets: Any) -> None:
    """Close widgets (their comms): a front end that still shows one hides it."""
    for widget in widgets:
        if widget is not None:
            for child in getattr(widget, "children", ()):
                _close(child)
            widget.close()


@dataclass
class _Slot:
    """One output of the cell: a block, an approval card, the banner or the footer."""

    display_id: str
    sent: Any = None  # the Markdown (or bundle) last published, to skip no-op updates
    version: int = -1
    widget: Any = None


class RunView:
    """A run as outputs: one per finished block, a live tail, and a footer (with a Stop
    button when ``on_stop`` is given, i.e. background runs; blocking runs say "■").

    ``flush()`` publishes only what changed since the last flush; callers throttle it.
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
        self._on_stop = on_stop
        self._slots: list[_Slot] = []
        self._placed: dict[int, _Slot] = {}  # id(block) -> its output
        self._tail: _Slot | None = None
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
        """Publish the first outputs: the banner (if any) and the footer."""
        if self.banner:
            slot = _Slot(_new_id())
            slot.sent = f"> ⓘ {html.escape(self.banner, quote=False)}"
            _publish(_md(slot.sent), slot.display_id, update=False)
            self._slots.append(slot)
        self._new_tail()
        self.display_id = self._slots[0].display_id

    def _tail_bundle(self) -> dict[str, Any]:
        t = self.transcript
        if self._controls is None:
            return _md(t.footer_markdown("" if self.finished else _BLOCKING_HINT))
        return _widget_bundle(self._controls, t.footer())

    def _new_tail(self) -> None:
        slot = _Slot(_new_id())
        slot.sent = self._footer_key()
        _publish(self._tail_bundle(), slot.display_id, update=False)
        self._slots.append(slot)
        self._tail = slot

    def _footer_key(self) -> str:
        return self.transcript.footer()

    def _take_tail(self, data: dict[str, Any]) -> _Slot:
        """Turn the footer output into ``data`` (outputs cannot be inserted above another
        one, so the footer moves down: a new one is published after the caller's outputs)."""
        slot = self._tail
        if slot is None:  # never shown (tests) or already finished
            slot = _Slot(_new_id())
            _publish(data, slot.display_id, update=False)
            self._slots.append(slot)
        else:
            _publish(data, slot.display_id, update=True)
        self._tail = None
        return slot

    def flush(self) -> None:
        """Publish changed blocks, new blocks (the live one last) and the footer."""
        t = self.transcript
        fresh: list[Block] = []
        for block in t.blocks:
            slot = self._placed.get(id(block))
            if slot is None:
                fresh.append(block)
            elif slot.version != block.version:
                slot.version = block.version
                markdown = block_markdown(block)
                if markdown != slot.sent:
                    slot.sent = markdown
                    _publish(_md(markdown), slot.display_id, update=True)
        for n, block in enumerate(fresh):
            markdown = block_markdown(block)
            data = _md(markdown)
            if n == 0 and self._tail is not None:
                slot = self._take_tail(data)
            else:
                slot = _Slot(_new_id())
                _publish(data, slot.display_id, update=False)
                self._slots.append(slot)
            slot.sent, slot.version = markdown, block.version
            self._placed[id(block)] = slot
        if self.finished:
            return
        if fresh and self._tail is None:
            self._new_tail()
        elif self._tail is not None and self._tail.sent != self._footer_key():
            self._tail.sent = self._footer_key()
            if self.footer is not None:
                self.footer.value = _FOOTER.format(html.escape(t.footer()))
            else:
                _publish(self._tail_bundle(), self._tail.display_id, update=True)

    def add(self, widget: Any) -> None:
        """Show an approval card (a widget) after the blocks shown so far."""
        self.flush()
        slot = self._take_tail(_widget_bundle(widget, "approval requested: waiting…"))
        slot.widget = widget
        self._card = slot
        if not self.finished:
            self._new_tail()

    def approval(self, tool_name: str, code: str, allowed: bool, how: str = "") -> None:
        """Record a verdict; a waiting card is replaced in place by its static form."""
        block = self.transcript.approval(tool_name, code, allowed, how)
        if threading.current_thread() is not threading.main_thread():
            return  # a tool run off the main thread: the next flush shows the verdict
        card, self._card = self._card, None
        if card is not None:
            markdown = block_markdown(block)
            card.sent, card.version = markdown, block.version
            self._placed[id(block)] = card
            _publish(_md(markdown), card.display_id, update=True)
            _close(card.widget)
            card.widget = None
        else:
            self.flush()

    def finalize(self) -> None:
        """The run is over: last flush, then every live output becomes static Markdown
        (the footer loses its Stop button and ■ hint; a card nobody answered says so)."""
        self.flush()
        self.finished = True
        if self._card is not None:  # the run ended while a card waited for a click
            card, self._card = self._card, None
            _publish(_md("> ✋ approval request not answered: the run ended"),
                     card.display_id, update=True)
            _close(card.widget)
        if self._tail is not None:
            self._tail.sent = None
            _publish(self._tail_bundle(), self._tail.display_id, update=True)
        _close(self._controls)

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
        _publish(_md(self.transcript.to_markdown(self.banner)), head.display_id, update=True)
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


# Enter sends, Shift+Enter adds a line: ipywidgets' Textarea has no key events, so a
# small listener (run by Jupyter for trusted Markdown only; idempotent) clicks Send.
_KEYS_JS = """<script>
(() => { if (window.__alloyChatKeys) return; window.__alloyChatKeys = true;
  window.addEventListener('keydown', (e) => {
    const box = e.target;
    if (e.key !== 'Enter' || !(box instanceof HTMLTextAreaElement) ||
        !box.closest('.alloy-input')) return;
    e.stopPropagation();  // not JupyterLab's run-cell shortcut; Shift+Enter: a new line
    if (e.shiftKey || e.isComposing) return;
    e.preventDefault();
    const send = box.closest('.alloy-chat')?.querySelector('.alloy-send');
    if (send && !send.disabled) send.click();
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
                 banner: str | None = None) -> None:
        w = _w()
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
        if self._sent[i] == key:
            return
        _publish(data, self._ids[i], update=True)
        self._sent[i] = key

    def show(self) -> None:
        """Publish the three outputs (conversation, live line, input box)."""
        conversation = self.conversation()
        _publish(_md(conversation), self._ids[0], update=False)
        _publish(_md(self._idle_line()), self._ids[1], update=False)
        _publish(_widget_bundle(self.widget, "(chat input: live while the kernel runs)"),
                 self._ids[2], update=False)
        self._sent = [conversation, "idle", "widget"]
        self.shown = True

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

    def submit(self) -> None:
        """Send the text box's content (what the Send button and Enter do)."""
        prompt = self.input.value.strip()
        if not prompt or (self._run is not None and not self._run.done()):
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
        body = [block_markdown(b) for b in t.blocks]
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
        said = [block_markdown(b) for b in t.blocks if b.kind in ("notice", "error")]
        if t.status == "completed" and not said:
            self.chat.idle()
        else:  # stopped or failed: say so (the conversation above has what was kept)
            self.chat.live("\n\n".join([*said, t.footer_markdown(), _KEYS_JS]))

    def resend(self) -> None:
        self.chat.refresh()

    @property
    def text(self) -> str:
        return self.transcript.text
