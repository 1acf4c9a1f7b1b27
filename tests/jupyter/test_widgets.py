"""The notebook views (``RunView``, ``ChatView``), asserted on what they publish.

Runs go through the real shell with the kernel view forced (``%alloy display widget``);
every display and ``update_display`` is recorded as the front end would receive it. The
rule under test: the answer is Markdown that Jupyter renders, widgets appear only where
someone must act, and when a run ends no output keeps a widget.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections import defaultdict
from typing import Any

import pytest
from IPython.utils.capture import capture_output

import alloy_nb.jupyter as J
from alloy_nb import Session
from alloy_nb.events import Emitter
from alloy_nb.jupyter import runner
from alloy_nb.jupyter.approval import Approver
from alloy_nb.jupyter.render import Transcript
from alloy_nb.jupyter.widgets import RunView
from alloy_nb.providers.scripted import Scripted

from .conftest import run

WIDGET = "application/vnd.jupyter.widget-view+json"


@pytest.fixture
def published(shell, monkeypatch) -> list[dict[str, Any]]:
    """Every display the shell publishes: data, transient display id, update flag."""
    seen: list[dict[str, Any]] = []

    def publish(data, metadata=None, *, transient=None, update=False, **_kw) -> None:
        seen.append({"data": data, "id": (transient or {}).get("display_id"),
                     "update": update})

    monkeypatch.setattr(shell.display_pub, "publish", publish)
    run(shell, "%alloy display widget")
    return seen


def final_outputs(published: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The outputs a front end ends with: displays in order, each with its last update."""
    order: list[str] = []
    last: dict[str, dict[str, Any]] = {}
    for p in published:
        if p["id"] not in last:
            order.append(p["id"])
        if not p["update"] or p["id"] in last:
            last[p["id"]] = p["data"]
    return [last[i] for i in order]


def markdown_of(outputs: list[dict[str, Any]]) -> str:
    return "\n\n".join(o.get("text/markdown", "") for o in outputs)


def _use(shell, *replies, **kw) -> Scripted:
    p = Scripted(list(replies), **kw)
    shell.user_ns["p"] = p
    run(shell, "%alloy provider p")
    return p


def _classes(widget: Any) -> tuple[str, ...]:
    return tuple(widget._dom_classes)


def _feed(t: Transcript, *events: tuple[str, Any]) -> None:
    em = Emitter()
    for name, payload in events:
        t.feed(em.emit(name, payload, turn=1))


def test_blocking_cell_is_markdown_and_ends_without_widgets(shell, published) -> None:
    answer = "The **answer**:\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n$x^2$ and\n\n```py\nx = 1\n```"
    _use(shell, answer, chunk_size=2)
    run(shell, "%%alloy -o r\nq\n")
    assert all(WIDGET not in p["data"] for p in published)  # no Stop: ■ is the way
    first = published[0]["data"]["text/markdown"]
    assert "■ interrupt the kernel to stop" in first and "● running" in first
    outputs = final_outputs(published)
    md = markdown_of(outputs)
    assert answer in md.replace("\n\n\n\n", "\n\n")  # Markdown as written, for Jupyter
    assert "■" not in md and "✓ completed" in outputs[-1]["text/markdown"]
    assert outputs[0] == {"text/plain": ""}  # the status line, emptied
    view = J.controller(shell).views["default"]
    assert view.text == answer and view.stop_button is None


def test_only_the_live_paragraph_is_resent(shell, published) -> None:
    t = Transcript()
    view = RunView(t)
    view.show()
    text = ""
    for i in range(60):
        piece = f"Paragraph {i} " + "word " * 30 + "\n\n"
        text += piece
        for k in range(0, len(piece), 40):  # three flushes per paragraph
            _feed(t, ("text_delta", piece[k:k + 40]))
            view.flush()
    t.finish()
    view.finalize()
    sends = defaultdict(list)
    for p in published:
        sends[p["id"]].append(p["data"].get("text/markdown", ""))
    sent = sum(len(m) for ms in sends.values() for m in ms)
    # ~180 flushes: re-sending the whole answer each time would be ~90x its size; only
    # the unfinished paragraph is re-sent (here at an extreme 3 flushes per paragraph)
    assert sent < 4 * len(text), (sent, len(text))
    for markdowns in sends.values():  # each output holds about one paragraph
        assert all(m.count("Paragraph") <= 2 for m in markdowns)
    assert markdown_of(final_outputs(published)).count("Paragraph") == 60


def test_tool_card_thinking_and_status(shell, published) -> None:
    t = Transcript()
    view = RunView(t)
    view.show()
    _feed(t, ("turn_start", {"model": "m"}), ("thinking_delta", "let me think"),
          ("text_delta", "Checking."),
          ("tool_start", {"id": "1", "name": "bash", "input": {"command": "ls <dir>"}}))
    view.flush()
    md = markdown_of(final_outputs(published))
    assert "<details><summary>💭 Thinking</summary>" in md and "let me think" in md
    assert "<summary>🔧 bash … running</summary>" in md and "ls &lt;dir&gt;" in md
    _feed(t, ("tool_end", {"id": "1", "name": "bash", "duration_ms": 7,
                           "error": "exit 1", "result": "exit 1"}))
    view.flush()
    md = markdown_of(final_outputs(published))
    assert "<summary>🔧 bash ✗ error · 7 ms</summary>" in md and md.count("exit 1") == 1
    assert "m · turns 1" in final_outputs(published)[0]["text/markdown"]


def test_cell_with_no_answer_still_ends_with_a_footer(shell, published) -> None:
    t = Transcript()
    view = RunView(t)
    view.show()
    t.finish(status="error", error="boom")
    view.finalize()
    outputs = final_outputs(published)
    assert "✗ boom" in markdown_of(outputs) and "✗ error" in outputs[-1]["text/markdown"]


def test_flushes_are_coalesced_whatever_the_delta_rate(shell, published) -> None:
    text = "\n\n".join(f"Paragraph {i} " + "x " * 50 for i in range(200))
    _use(shell, text, chunk_size=4)  # ~5,000 deltas, as fast as the loop goes
    flushes: list[float] = []
    original = RunView.flush

    def counting(self: RunView) -> None:
        flushes.append(time.monotonic())
        original(self)

    RunView.flush = counting  # type: ignore[method-assign]
    try:
        started = time.monotonic()
        run(shell, "%%alloy -o r\nq\n")
        took = time.monotonic() - started
    finally:
        RunView.flush = original  # type: ignore[method-assign]
    assert shell.user_ns["r"].text == text
    assert len(flushes) <= took / runner.FLUSH_INTERVAL_S + 3, (len(flushes), took)


def test_stop_button_stops_a_background_run(shell, published) -> None:
    _use(shell, Scripted.reply("slow " * 1000), chunk_size=2, chunk_delay=0.005)
    handle = run(shell, "%%alloy --background -o h\nq\n")
    assert handle is None  # with -o the handle goes to the variable instead
    handle = shell.user_ns["h"]
    assert WIDGET in published[0]["data"]  # the Stop button, while it runs
    assert _classes(handle.view.stop_button) == ("alloy-stop",)
    time.sleep(0.2)
    handle.view.stop_button.click()
    result = handle.result(timeout=5)
    assert result.status == "cancelled" and handle.status == "cancelled"
    outputs = final_outputs(published)
    assert all(WIDGET not in o for o in outputs)  # the Stop button is gone
    md = markdown_of(outputs)
    assert "⏹ interrupted" in md and "slow slow" in md and "turns 1" in md
    assert handle.view.stop_button.comm is None  # closed, not just hidden


def test_approval_card_becomes_its_verdict(shell, published) -> None:
    view = RunView(Transcript(), on_stop=lambda: None)
    view.show()
    approver = Approver()
    approver.mode, approver.view = "background", view

    async def ask() -> bool:
        pending = approver("run_python", "print('hi')")
        assert isinstance(pending, asyncio.Future)
        card = view._card.widget
        assert _classes(card) == ("alloy-approval",) and "print(&#x27;hi&#x27;)" in \
            card.children[0].value
        approve = card.children[1].children[0]
        assert _classes(approve) == ("alloy-approve",)
        asyncio.get_running_loop().call_soon(approve.click)
        return await pending

    assert asyncio.run(ask()) is True
    assert approver.log == [("run_python", True)]
    card_id = [p["id"] for p in published if WIDGET in p["data"]][-1]
    verdict = [p for p in published if p["id"] == card_id][-1]
    assert verdict["update"] and "✋ run_python: ✓ approved" in verdict["data"]["text/markdown"]
    for policy, expected in (("always", True), ("never", False)):
        approver.policy = policy
        assert approver("run_python", "x") is expected
    view.finalize()
    md = markdown_of(final_outputs(published))
    assert "approve policy: always" in md and "✗ denied (approve policy: never)" in md
    assert all(WIDGET not in o for o in final_outputs(published))


def test_displayed_session_is_a_chat_with_every_turn(shell, published) -> None:
    session = Session(provider=Scripted(["Hi! I am a chat.", "From a cell.", "From a magic."],
                                        chunk_size=3))
    shell.user_ns["chat"] = session
    run(shell, "chat")  # what `session` as the last line of a cell shows
    conversation, live, box = (p["id"] for p in published[:3])
    assert "*No messages yet.*" in published[0]["data"]["text/markdown"]
    assert WIDGET in published[2]["data"] and "Enter sends" in \
        published[1]["data"]["text/markdown"]
    view = J.controller(shell).chats[-1]
    assert _classes(view.widget) == ("alloy-chat",)
    view.input.value = "hel"
    view.input.value = "hello\ue000"  # Enter: the browser appends the send marker
    view._run.result(timeout=5)
    assert view.stop_button.disabled and view.input.value == ""
    session.chat("and you?")  # from another cell ...
    run(shell, "%%alloy -s chat\nand the magic?\n")  # ... and through %%alloy -s
    text = [p for p in published if p["id"] == conversation][-1]["data"]["text/markdown"]
    for said in ("> hello", "Hi! I am a chat.", "> and you?", "From a cell.",
                 "> and the magic?", "From a magic."):
        assert said in text, said
    assert text.count("**🧑 You**") == 3 and text.count("**🤖 Assistant**") == 3
    assert [m.role for m in session.messages] == ["user", "assistant"] * 3
    assert "Enter sends" in [p for p in published if p["id"] == live][-1]["data"][
        "text/markdown"]
    assert box not in [p["id"] for p in published if p["update"]]  # the box stays


def test_no_api_key_in_widget_state_outputs_or_errors(shell, published, monkeypatch) -> None:
    from alloy_nb.providers import Anthropic
    from alloy_nb.testing import FakeProviderServer, reply

    secret = "sk-ant-api03-SECRETSECRETSECRET-0123456789"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    with FakeProviderServer([reply.text("fine"), reply.status(401, message="bad key")]) as srv:
        shell.user_ns["prov"] = Anthropic(base_url=srv.url)
        with capture_output(display=False) as cap:
            run(shell, "%alloy provider prov")
            run(shell, "%%alloy\nq\n")
            failed = shell.run_cell("%%alloy -o bad\nq\n")
            run(shell, "%alloy sessions")
            run(shell, "%alloy history")
        assert srv.requests[0].headers.get("x-api-key") == secret  # it was really used
    assert failed.error_in_exec is not None
    everything = [cap.stdout, cap.stderr, json.dumps([p["data"] for p in published]),
                  str(failed.error_in_exec), repr(shell.user_ns["bad"]),
                  shell.user_ns["bad"].model_dump_json(), repr(J.controller(shell).session())]
    assert "401" in markdown_of(final_outputs(published))
    for text in everything:
        assert secret not in text and "SECRETSECRET" not in text


def test_markdown_says_demo_replies_were_scripted_once(shell, published) -> None:
    run(shell, "%%alloy -o r\nWhat is 2+2?\n")  # via the magic (no key: the demo)
    outputs = final_outputs(published)
    assert outputs[0]["text/markdown"].startswith("> ⓘ Offline demo provider")
    md = markdown_of(outputs)
    assert "**4**" in md and "✓ completed" in md
    published.clear()
    J.controller(shell).ask("What is 3*3?")  # via the API: the banner was shown once
    later = markdown_of(final_outputs(published))
    assert "Offline demo provider" not in later and "offline demo reply" in later


def test_markdown_of_a_failed_run_reads_well(shell, published) -> None:
    _use(shell, Scripted.error("HTTP 502 from <proxy>\n\nupstream said: try later"))
    failed = shell.run_cell("%%alloy -o bad\nq\n")
    assert failed.error_in_exec is not None
    outputs = final_outputs(published)
    md = markdown_of(outputs)
    assert "> ✗ HTTP 502 from &lt;proxy&gt;\n>\n> upstream said: try later" in md
    assert "✗ error" in outputs[-1]["text/markdown"]


def test_tool_exception_is_a_red_card_not_a_traceback(shell, published) -> None:
    from alloy_nb import tool
    from alloy_nb.tools.notebook import RunPython

    @tool
    def explode(x: int) -> str:
        """Explodes."""
        raise ValueError("kaboom")

    session = Session(provider=Scripted([
        Scripted.tool_calls(("explode", {"x": 1})),
        Scripted.tool_calls(("run_python", {"code": "1/0"})), "done"]),
        tools=[explode, RunPython()],
        context={"namespace": shell.user_ns, "allow_run_python": True})
    shell.user_ns["boomy"] = session
    with capture_output(display=False) as cap:
        run(shell, "%%alloy -s boomy -o r\nq\n")
    assert cap.stderr == "" and "Traceback" not in cap.stdout
    md = markdown_of(final_outputs(published))
    assert "<summary>🔧 explode ✗ error" in md and "<summary>🔧 run_python ✗ error" in md
    assert md.count("ValueError: kaboom") == 1 and "ZeroDivisionError" in md
    assert "&lt;module&gt;" in md  # the traceback's <module> lines stay visible
    assert shell.user_ns["r"].status == "completed"


def test_footer_after_stop_counts_the_turn_that_ran(shell, published) -> None:
    _use(shell, Scripted.reply("slow " * 2000), chunk_size=2, chunk_delay=0.005)
    run(shell, "%%alloy --background -o handle\nq\n")  # a live view returns no Out
    handle = shell.user_ns["handle"]
    time.sleep(0.3)
    assert "turns 1" in handle.view.footer.value
    handle.view.stop_button.click()
    result = handle.result(timeout=5)
    assert result.status == "cancelled"
    last = final_outputs(published)[-1]["text/markdown"]
    assert "turns 1" in last and "⏹ interrupted" in last


def test_a_demo_run_stopped_early_shows_the_tokens_it_used(shell, published) -> None:
    from alloy_nb.providers.demo import Demo

    shell.user_ns["d"] = Demo(delay_s=0.05, chunk_chars=3)
    run(shell, "%alloy provider d")
    run(shell, "%%alloy --background -o handle\ntell me about pandas\n")
    handle = shell.user_ns["handle"]
    time.sleep(0.4)
    handle.view.stop_button.click()
    result = handle.result(timeout=5)
    assert result.status == "cancelled" and result.usage.input_tokens > 0
    last = final_outputs(published)[-1]["text/markdown"]
    assert "⏹ interrupted" in last and "0 in / 0 out" not in last
    assert f"{result.usage.input_tokens:,} in / {result.usage.output_tokens:,} out" in last


def test_a_key_printed_by_a_tool_never_reaches_an_output(shell, published,
                                                        monkeypatch) -> None:
    secret = "sk-proj-LEAKED-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    _use(shell, Scripted.tool_calls(("run_python", {"code": "import os\n"
                                                            "os.environ['OPENAI_API_KEY']"})),
         f"Your key is {secret}.")
    run(shell, "%alloy tools run_python")
    run(shell, "%alloy approve always")
    run(shell, "%%alloy -o r\nwhat is my key?\n")
    everything = json.dumps([p["data"] for p in published])
    assert "[redacted]" in everything and secret not in everything
