"""The transcript (events → blocks → Markdown for Jupyter to render) and prompt
interpolation."""

from __future__ import annotations

import pytest

from alloy_nb.events import Emitter
from alloy_nb.jupyter._prompt import PromptError, interpolate
from alloy_nb.jupyter.render import Transcript, close_open_fence, conversation_markdown
from alloy_nb.messages import Message, ToolResultBlock, ToolUseBlock
from alloy_nb.result import Result
from alloy_nb.usage import Usage


def _feed(t: Transcript, *events: tuple[str, object]) -> None:
    em = Emitter()
    for name, payload in events:
        t.feed(em.emit(name, payload, turn=1))


# ---- markdown ----------------------------------------------------------------------


def test_open_fence_is_closed_for_display() -> None:
    assert close_open_fence("a\n```py\nx = 1").endswith("\n```")
    assert close_open_fence("```\nx\n```") == "```\nx\n```"
    assert close_open_fence("````\n```\nstill code") == "````\n```\nstill code\n````"
    assert close_open_fence("math:\n\n$$\nx^2") == "math:\n\n$$\nx^2\n$$"
    assert close_open_fence("$$x$$ inline") == "$$x$$ inline"


# ---- transcript --------------------------------------------------------------------


def test_text_is_frozen_at_paragraph_breaks_losslessly() -> None:
    t = Transcript()
    pieces = [f"para {i} " * 20 + "\n\n" for i in range(40)]
    _feed(t, *[("text_delta", p) for p in pieces])
    texts = [b for b in t.segments if b.kind == "text"]
    assert len(texts) > 3
    assert all(b.frozen for b in texts[:-1]) and not texts[-1].frozen
    assert all(b.text.count("para ") <= 20 for b in texts)  # one paragraph per block
    assert "".join(b.text for b in texts) == "".join(pieces)
    assert t.text == "".join(pieces).strip()


def test_no_split_inside_a_code_fence() -> None:
    t = Transcript()
    code = "```python\n" + "\n\n".join(f"x{i} = {i}" for i in range(400)) + "\n```\n"
    _feed(t, *[("text_delta", code[i : i + 7]) for i in range(0, len(code), 7)])
    assert len([b for b in t.segments if b.kind == "text"]) == 1


def test_tool_cards_thinking_usage_and_footer() -> None:
    t = Transcript()
    _feed(
        t,
        ("turn_start", {"model": "m-1"}),
        ("thinking_delta", "hmm"),
        ("text_delta", "Let me look."),
        ("tool_start", {"id": "t1", "name": "read", "input": {"path": "a"}}),
        ("tool_end", {"id": "t1", "name": "read", "input": {"path": "a"}, "duration_ms": 5,
                      "error": None, "result": "contents"}),
        ("usage", {"usage": {"input_tokens": 10, "output_tokens": 5},
                   "total": {"input_tokens": 10, "output_tokens": 5}}),
    )
    kinds = [b.kind for b in t.segments]
    assert kinds == ["thinking", "text", "tool"]
    tool = t.segments[2]
    assert tool.tool_status == "ok" and tool.result == "contents"
    assert "read ✓ · 5 ms" in tool.tool_title()
    assert "contents" in tool.tool_html() and '"path": "a"' in tool.tool_html()
    assert t.footer().startswith("m-1 · turns 1 · 10 in / 5 out tokens")
    t.finish(Result(text="x", status="completed", turns=1,
                    usage=Usage(input_tokens=10, output_tokens=5)))
    assert "✓ completed" in t.footer()
    md = t.to_markdown()
    assert "Let me look." in md
    # tool calls and thinking are collapsible cards; their text is escaped inside <pre>
    assert "<details><summary>🔧 read ✓ · 5 ms</summary>\n\n<pre><b>arguments</b>" in md
    assert "<pre><b>result</b>\ncontents</pre>\n\n</details>" in md
    assert "<details><summary>💭 Thinking</summary>" in md


def test_approvals_are_part_of_the_transcript() -> None:
    t = Transcript()
    t.approval("run_python", "print('<b>hi</b>')", True)
    t.approval("run_python", "import os", False, " (approve policy: never)")
    md = t.to_markdown()
    assert "<summary>✋ run_python: ✓ approved</summary>" in md
    assert "print('&lt;b&gt;hi&lt;/b&gt;')" in md  # code shown as typed, not as HTML
    assert "<summary>✋ run_python: ✗ denied (approve policy: never)</summary>" in md


def test_conversation_markdown_tells_user_and_assistant_apart() -> None:
    messages = [
        Message(role="user", content="What is <b>in</b> f.txt?"),
        Message(role="assistant", content=[
            {"type": "text", "text": "Let me read it."},
            ToolUseBlock(id="a", name="read", input={"path": "f.txt"})]),
        Message(role="user", content=[ToolResultBlock(tool_use_id="a", content="hello")]),
        Message(role="assistant", content="It says **hello**."),
    ]
    md = conversation_markdown(messages, footer="m · 4 messages")
    assert md.startswith("**🧑 You**\n\n> What is &lt;b&gt;in&lt;/b&gt; f.txt?")
    assert md.count("**🤖 Assistant**") == 2 and "It says **hello**." in md
    assert "<summary>🔧 read ✓</summary>" in md and "<pre><b>result</b>\nhello</pre>" in md
    assert md.endswith("<sub>m · 4 messages</sub>")
    assert conversation_markdown([]) == "*No messages yet.*"


def test_interrupted_run_keeps_partial_text_and_says_so() -> None:
    t = Transcript()
    _feed(t, ("text_delta", "partial ans"),
          ("done", {"status": "cancelled", "turns": 1, "usage": {"input_tokens": 3}}))
    t.finish(status="cancelled")
    assert t.text == "partial ans"
    assert t.usage.input_tokens == 3
    assert "⏹ interrupted" in t.footer()
    assert any(b.kind == "notice" and "interrupted" in b.text for b in t.segments)


def test_finish_fills_tool_results_and_non_streamed_text() -> None:
    t = Transcript()
    _feed(t, ("tool_start", {"id": "a", "name": "bash", "input": {"command": "ls"}}),
          ("tool_end", {"id": "a", "name": "bash", "duration_ms": 1, "error": None}))
    messages = [Message(role="assistant", content=[ToolUseBlock(id="a", name="bash")]),
                Message(role="user", content=[ToolResultBlock(tool_use_id="a", content="f.txt")])]
    t.finish(Result(text="done", messages=messages, status="completed", turns=2))
    assert t.segments[0].result == "f.txt"
    assert t.text == "done"


def test_error_event_is_shown() -> None:
    t = Transcript()
    _feed(t, ("error", {"error": "HTTP 401: bad key", "type": "AuthenticationError"}))
    t.finish(status="error")
    assert "401" in t.to_markdown() and "✗ error" in t.footer()


# ---- prompt interpolation ------------------------------------------------------------


def test_interpolation_rules() -> None:
    ns = {"x": 5, "d": {"k": [1, 2]}, "s": "hi"}
    out = interpolate('a {x} {{x}} {"j": 1} {d[\'k\'][1]} {n*2}\n```\nf"{zz}"\n```\n{s}', ns)
    assert out == 'a 5 {x} {"j": 1} 2 {n*2}\n```\nf"{zz}"\n```\nhi'


def test_missing_variable_is_named() -> None:
    with pytest.raises(PromptError, match="no variable named 'nope'"):
        interpolate("look at {nope}", {})
    with pytest.raises(PromptError, match=r"d\.missing failed"):
        interpolate("{d.missing}", {"d": {}})


def test_big_values_are_capped() -> None:
    out = interpolate("{big}", {"big": "x" * 50_000})
    assert len(out) < 5000 and "more characters not shown" in out


def test_turns_shown_after_a_stop_or_failure_are_the_turns_that_ran() -> None:
    t = Transcript()
    _feed(t, ("turn_start", {"model": "m"}), ("text_delta", "half an answ"))
    t.finish(Result(text="", status="cancelled", turns=0, error="cancelled"))
    assert "turns 1" in t.footer() and "⏹ interrupted" in t.footer()
    done = Transcript()
    _feed(done, ("turn_start", {}), ("done", {"status": "error", "turns": 0}))
    assert done.turns == 1


def test_markdown_banner_and_quoted_errors() -> None:
    t = Transcript()
    _feed(t, ("text_delta", "hi"))
    t.finish(Result(text="hi", status="error", turns=1, error="bad <thing>\n\nsecond"))
    md = t.to_markdown(banner="Offline demo provider: replies are scripted")
    assert md.startswith("> ⓘ Offline demo provider: replies are scripted\n\nhi")
    assert "> ✗ bad &lt;thing&gt;\n>\n> second" in md
    assert md.endswith("✗ error</sub>")


def test_live_thinking_shows_its_end_and_the_whole_once_frozen() -> None:
    from alloy_nb.jupyter.render import segment_markdown

    t = Transcript()
    _feed(t, ("thinking_delta", "start " + "x" * 5000 + " end"))
    live = segment_markdown(t.segments[0])
    assert "end" in live and "start" not in live and len(live) < 2000
    _feed(t, ("text_delta", "answer"))
    assert "start" in segment_markdown(t.segments[0])


def test_model_html_shows_as_text_and_never_runs() -> None:
    from alloy_nb.jupyter.render import defuse_html, segment_markdown

    evil = ("Hi <script>alert(1)</script> <img src=x onerror=alert(2)>\n\n"
            "`<b>code</b>` stays, <https://ok.org> stays, $a < b$\n\n"
            "```html\n<p>in a fence</p>\n```\n<details open>")
    out = defuse_html(evil)
    assert "<script" not in out and "<img" not in out and "<details" not in out
    assert "&lt;script>alert(1)&lt;/script>" in out
    assert "`<b>code</b>`" in out and "<https://ok.org>" in out and "$a &lt; b$" in out
    assert "```html\n<p>in a fence</p>\n```" in out
    t = Transcript()
    _feed(t, ("text_delta", evil))
    t.finish()
    for md in (segment_markdown(t.segments[0]), t.to_markdown(),
               conversation_markdown([Message(role="assistant", content=evil)])):
        assert "<script" not in md and "<img" not in md, md


def test_footer_costs_are_not_latex_and_unpriced_is_said_once() -> None:
    """Two costs on one line ("$0.0001 (session $0.0002)") would be LaTeX math in
    JupyterLab: the Markdown footer escapes ``$``; an unpriced run in an unpriced session
    says "unpriced" once."""
    priced = Usage(input_tokens=10, output_tokens=5, estimated_cost_cents=0.02, priced=True)
    t = Transcript(model="m", base=priced)
    t.finish(status="completed")
    t.usage = priced + priced
    assert "$0.0002 (session $0.0004)" in t.footer()  # plain text keeps the dollars
    md = t.footer_markdown()
    # escaped for Markdown, and each in its own element so MathJax cannot pair them
    assert "<span>\\$</span>0.0002 (session <span>\\$</span>0.0004)" in md
    assert md.count("$") == md.count("<span>\\$</span>") == 2
    assert md in t.to_markdown()
    chat = conversation_markdown([], footer="m · $0.01 (session $0.02)")
    assert "<span>\\$</span>0.01 (session <span>\\$</span>0.02)" in chat
    unpriced = Usage(input_tokens=10, output_tokens=5, priced=False)
    u = Transcript(model="m", base=unpriced)
    u.usage = unpriced + unpriced
    assert "unpriced" in u.footer() and u.footer().count("unpriced") == 1
