"""Widget vs plain text, the terminal view, and the Session/Result display hooks."""

from __future__ import annotations

import io
from types import SimpleNamespace

from IPython.utils.capture import capture_output

from alloy_nb import Session
from alloy_nb.events import Emitter
from alloy_nb.jupyter import display as D
from alloy_nb.jupyter.render import Transcript
from alloy_nb.providers.scripted import Scripted
from alloy_nb.result import Result

from .conftest import run


def test_frontend_detection(shell) -> None:
    assert D.frontend(shell) == "plain"  # terminal-like shell: no kernel
    assert D.frontend(SimpleNamespace(kernel=object())) == "widget"
    D.set_frontend("widget")
    assert D.frontend(shell) == "widget"
    D.set_frontend("auto")
    assert D.frontend(shell) == "plain"
    with capture_output() as cap:
        run(shell, "%alloy display plain")
    assert "display: plain" in cap.stdout


def test_plain_view_prints_each_piece_once() -> None:
    t = Transcript(model="m")
    out = io.StringIO()
    view = D.PlainView(t, banner="demo mode", out=out)
    em = Emitter()
    streamed = ""
    for i in range(300):
        piece = f"w{i} " + ("\n\n" if i % 25 == 0 else "")
        streamed += piece
        t.feed(em.emit("text_delta", piece))
        if i % 7 == 0:
            view.flush()
    t.feed(em.emit("thinking_delta", "hmm"))
    t.feed(em.emit("tool_start", {"id": "a", "name": "read", "input": {"file_path": "x"}}))
    view.flush()
    t.feed(em.emit("tool_end", {"id": "a", "name": "read", "duration_ms": 2, "error": None}))
    t.feed(em.emit("text_delta", "after"))
    t.finish()
    view.finalize()
    text = out.getvalue()
    assert text.startswith("ⓘ demo mode\n" + streamed)
    assert text.count("💭 thinking…") == 1
    assert '🔧 read {"file_path": "x"}\n   ✓ · 2 ms\nafter' in text
    assert text.rstrip().endswith("✓ completed")


def test_result_renders_as_markdown(shell) -> None:
    data, _ = shell.display_formatter.format(Result(text="**done**", turns=1))
    assert data["text/markdown"].startswith("**done**")


def test_session_display_is_plain_text_without_widgets(shell) -> None:
    shell.user_ns["s"] = Session(provider=Scripted(["x"]))
    with capture_output() as cap:
        run(shell, "s")
    assert "Session(" in cap.stdout and "messages=0" in cap.stdout


def test_unregister_leaves_other_formatters_alone(shell) -> None:
    md = shell.display_formatter.formatters["text/markdown"]
    md.for_type(complex, lambda c: f"**{c}**")
    D.unregister_formatters(shell)
    assert complex in md.type_printers
    data, _ = shell.display_formatter.format(Session(provider=Scripted([])))
    assert data["text/plain"].startswith("Session(")
    md.type_printers.pop(complex)
