"""Issue 9, finding 4: model text containing ``"\\x00" + digits + "\\x00"`` crashed the
hand-written Markdown converter (IndexError), so ``%%alloy -o res`` failed and ``res`` was
never stored. Model text is untrusted input: whatever it holds, rendering must not raise.

The converter is gone (Jupyter renders the Markdown now); these tests fuzz everything that
still turns model text into something shown: the transcript, its Markdown, the run view's
outputs, the chat's conversation, and the fence closer.
"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alloy_nb.events import Emitter
from alloy_nb.jupyter import widgets
from alloy_nb.jupyter.render import (
    Transcript,
    close_open_fence,
    conversation_markdown,
    defuse_html,
)
from alloy_nb.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from alloy_nb.providers.scripted import Scripted
from alloy_nb.result import Result

from .conftest import run

NASTY = ["\x00", "\x00" + "0" + "\x00", "\x00" + "12" + "\x00", "```", "~~~", "````py", "$$",
         "\n\n", "\n", "\r\n", "|", "|---|", "<details>", "</pre>", "<script>", "&amp;", "\\",
         "`", "**", "> ", "- ", "1. ", "\u202e", "\ufeff", "\x1b[31m", "\x7f", "\t"]
text_pieces = st.lists(
    st.one_of(st.sampled_from(NASTY), st.text(max_size=40),
              st.text(alphabet=st.characters(max_codepoint=0x1f), max_size=10)),
    max_size=30,
).map("".join)


def _published(monkeypatch: Any) -> list[dict[str, Any]]:
    seen: list[dict[str, Any]] = []

    def publish(data: dict[str, Any], display_id: str, *, update: bool) -> None:
        seen.append({"data": data, "id": display_id, "update": update})

    monkeypatch.setattr(widgets, "_publish", publish)
    return seen


def _stream(text: str, cuts: list[int]) -> list[str]:
    points = sorted({c % (len(text) + 1) for c in cuts} | {0, len(text)})
    return [text[a:b] for a, b in itertools.pairwise(points) if b > a]


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(text=text_pieces, cuts=st.lists(st.integers(0, 10_000), max_size=12),
       tool_out=text_pieces)
def test_issue9_finding4_any_model_text_renders_without_raising(monkeypatch: Any, text: str,
                                                                 cuts: list[int],
                                                                 tool_out: str) -> None:
    seen = _published(monkeypatch)
    t = Transcript(model="m", prompt=text)
    view = widgets.RunView(t)
    view.show()
    em = Emitter()
    for piece in _stream(text, cuts):
        t.feed(em.emit("text_delta", piece, turn=1))
        t.feed(em.emit("thinking_delta", piece[:3], turn=1))
        view.flush()
    t.feed(em.emit("tool_start", {"id": "t", "name": "x", "input": {"a": text}}, turn=1))
    t.feed(em.emit("tool_end", {"id": "t", "name": "x", "duration_ms": 1, "result": tool_out,
                                "error": tool_out or None}, turn=1))
    view.flush()
    t.finish(Result(text=text, status="completed", turns=1))
    view.finalize()
    view.resend()
    shown = "".join(b.text for b in t.segments if b.kind == "text")
    assert shown == text  # nothing lost or reordered by freezing
    assert all(isinstance(v, str) for p in seen for k, v in p["data"].items()
               if k.startswith("text/"))
    assert widgets.WIDGET_MIME not in seen[-1]["data"]
    md = t.to_markdown(banner=text)
    assert isinstance(md, str) and "✓ completed" in md
    assert close_open_fence(text).startswith(text)
    messages = [Message(role="user", content=text),
                Message(role="assistant", content=[
                    TextBlock(text=text), ToolUseBlock(id="t", name="x", input={"a": text})]),
                Message(role="user", content=[ToolResultBlock(tool_use_id="t",
                                                              content=tool_out or "ok")])]
    assert isinstance(conversation_markdown(messages, footer=text), str)


def test_issue9_finding4_one_megabyte_line_and_unbalanced_fences(monkeypatch: Any) -> None:
    seen = _published(monkeypatch)
    t = Transcript()
    view = widgets.RunView(t)
    view.show()
    em = Emitter()
    line = "x" * 1_000_000
    for piece in ("```py\n", line, "\n\n~~~\n", "\x00" + "7" + "\x00", "\n\n$$\na", line):
        t.feed(em.emit("text_delta", piece, turn=1))
        view.flush()
    t.finish(status="completed")
    view.finalize()
    assert "".join(b.text for b in t.segments if b.kind == "text").count(line) == 2
    live = [p for p in seen if "x" * 1000 in p["data"].get("text/markdown", "")]
    assert live and all(p["data"]["text/markdown"].count("```") % 2 == 0 for p in live)


def test_issue9_finding4_cell_with_nul_markers_stores_its_result(shell) -> None:
    """The original failure, end to end: the answer holds ``\\x00 0 \\x00``."""
    text = "before \x00" + "0" + "\x00 `code` \x00" + "99" + "\x00 after"
    shell.user_ns["p"] = Scripted([text, text], chunk_size=3)
    run(shell, "%alloy provider p")
    run(shell, "%alloy display widget")
    run(shell, "%%alloy -o res\nq\n")
    assert shell.user_ns["res"].text == text
    run(shell, "%alloy display plain")
    run(shell, "%%alloy -o res2\nq\n")
    assert shell.user_ns["res2"].text == text


@settings(max_examples=300, deadline=None)
@given(text=text_pieces)
def test_issue9_finding4_defused_model_html_loses_nothing(text: str) -> None:
    """Raw HTML in model text is shown, not run, and no character is lost doing so."""
    out = defuse_html(text)
    assert out.replace("&lt;", "<") == text.replace("&lt;", "<")
    if "`" not in text and "~~~" not in text:  # no code: no tag can open at all
        assert "<script" not in out and "<details" not in out
