"""The widget views, asserted on widget state (no browser; comms are no-ops here).

Runs go through the real shell with widgets forced (``%alloy display widget``); what the
front end would receive is read from the widgets and from the published display bundles.
"""

from __future__ import annotations

import asyncio
import json
import time
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
        seen.append({"data": data, "transient": transient or {}, "update": update})

    monkeypatch.setattr(shell.display_pub, "publish", publish)
    run(shell, "%alloy display widget")
    return seen


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


def test_run_view_structure() -> None:
    view = RunView(Transcript(), banner="Offline demo", on_stop=lambda: None)
    assert _classes(view.widget) == ("alloy-run",)
    banner, body, controls = view.widget.children
    assert _classes(banner) == ("alloy-banner",) and "Offline demo" in banner.value
    assert _classes(body) == ("alloy-transcript",)
    assert [_classes(c) for c in controls.children] == [("alloy-footer",), ("alloy-stop",)]
    blocking = RunView(Transcript())
    hint = blocking.widget.children[1].children[1]
    assert _classes(hint) == ("alloy-hint",) and "interrupt the kernel" in hint.value


def test_blocks_freeze_and_only_the_live_block_is_resent() -> None:
    t = Transcript()
    view = RunView(t)
    changes: list[int] = []
    live = -1
    for i in range(60):
        _feed(t, ("text_delta", f"Paragraph {i} " + "word " * 30 + "\n\n"))
        view.flush()
        if i == 40:  # watch every block shown so far; only the live one may change again
            live = len(view._order) - 1
            for n, w in enumerate(view._order):
                w.observe(lambda _c, n=n: changes.append(n), names="value")
    texts = view._body.children
    assert len(texts) > live + 1 > 3
    assert all(_classes(w) == ("alloy-text",) for w in texts)
    assert set(changes) == {live}
    assert "<p>Paragraph 59" in texts[-1].value


def test_tool_card_thinking_and_footer() -> None:
    t = Transcript()
    view = RunView(t)
    _feed(t, ("turn_start", {"model": "m"}), ("thinking_delta", "let me think"),
          ("text_delta", "Checking."),
          ("tool_start", {"id": "1", "name": "bash", "input": {"command": "ls"}}))
    view.flush()
    thinking, _text, tool = view._body.children
    assert _classes(thinking) == ("alloy-thinking",) and thinking.selected_index is None
    assert "let me think" in thinking.children[0].value
    assert "bash … running" in tool.titles[0]
    _feed(t, ("tool_end", {"id": "1", "name": "bash", "duration_ms": 7,
                           "error": "exit 1", "result": "exit 1"}))
    view.flush()
    assert "bash ✗ error · 7 ms" in tool.titles[0]
    assert "alloy-tool-error" in _classes(tool) and "exit 1" in tool.children[0].value
    assert view.footer.value.count("m · turns 1") == 1


def test_cell_shows_a_widget_with_a_markdown_fallback(shell, published) -> None:
    _use(shell, "The **answer**.", chunk_size=2)
    run(shell, "%%alloy -o r\nq\n")
    first, last = published[0], published[-1]
    assert WIDGET in first["data"] and first["data"]["text/markdown"] == "*(streaming…)*"
    display_id = first["transient"]["display_id"]
    assert last["update"] and last["transient"]["display_id"] == display_id
    assert last["data"]["text/markdown"].startswith("The **answer**.")
    assert "✓ completed" in last["data"]["text/markdown"]
    view = J.controller(shell).views["default"]
    assert view.text == "The **answer**." and view.stop_button is None
    assert "<strong>answer</strong>" in view._body.children[0].value


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
    time.sleep(0.2)
    handle.view.stop_button.click()
    result = handle.result(timeout=5)
    assert result.status == "cancelled" and handle.status == "cancelled"
    assert handle.view.stop_button.layout.display == "none"
    assert "⏹ interrupted" in handle.view.footer.value
    assert "slow slow" in handle.view.text


def test_approval_card_in_background_mode() -> None:
    view = RunView(Transcript(), on_stop=lambda: None)
    approver = Approver()
    approver.mode, approver.view = "background", view

    async def ask() -> bool:
        pending = approver("run_python", "print('hi')")
        assert isinstance(pending, asyncio.Future)
        card = view._body.children[-1]
        assert _classes(card) == ("alloy-approval",) and "print(&#x27;hi&#x27;)" in \
            card.children[0].value
        approve = card.children[1].children[0]
        assert _classes(approve) == ("alloy-approve",)
        asyncio.get_running_loop().call_soon(approve.click)
        return await pending

    assert asyncio.run(ask()) is True
    assert approver.log == [("run_python", True)]
    for policy, expected in (("always", True), ("never", False)):
        approver.policy = policy
        assert approver("run_python", "x") is expected


def test_displayed_session_is_a_chat_box(shell, published) -> None:
    session = Session(provider=Scripted(["Hi! I am a chat.", "Second reply"], chunk_size=3))
    bundle, _ = shell.display_formatter.format(session)  # what `session` as Out[] shows
    assert WIDGET in bundle and bundle["text/plain"] == "alloy · chat · scripted"
    chat = J.controller(shell).chat(session)
    assert _classes(chat.widget) == ("alloy-chat",)
    chat.input.value = "hello"
    chat.send_button.click()
    chat._run.result(timeout=5)
    items = chat.transcript.children
    assert _classes(items[0]) == ("alloy-user",) and "hello" in items[0].value
    assert _classes(items[1]) == ("alloy-run",)
    assert "Hi! I am a chat." in items[1].children[0].children[0].value
    assert chat.stop_button.disabled and chat.input.value == ""
    assert [m.role for m in session.messages] == ["user", "assistant"]


def test_no_api_key_in_widget_state_outputs_or_errors(shell, published, monkeypatch) -> None:
    from ipywidgets.embed import embed_data

    from alloy_nb.providers import Anthropic
    from alloy_nb.testing import FakeProviderServer, reply

    secret = "sk-ant-api03-SECRETSECRETSECRET-0123456789"
    monkeypatch.setenv("ANTHROPIC_API_KEY", secret)
    with FakeProviderServer([reply.text("fine"), reply.status(401, message="bad key")]) as srv:
        shell.user_ns["prov"] = Anthropic(base_url=srv.url)
        with capture_output() as cap:
            run(shell, "%alloy provider prov")
            run(shell, "%%alloy\nq\n")
            failed = shell.run_cell("%%alloy -o bad\nq\n")
            run(shell, "%alloy sessions")
            run(shell, "%alloy history")
        assert srv.requests[0].headers.get("x-api-key") == secret  # it was really used
    assert failed.error_in_exec is not None
    view = J.controller(shell).views["default"]
    state = json.dumps(embed_data(views=[view.widget])["manager_state"])
    everything = [state, cap.stdout, cap.stderr, json.dumps([p["data"] for p in published]),
                  str(failed.error_in_exec), repr(shell.user_ns["bad"]),
                  shell.user_ns["bad"].model_dump_json(), repr(J.controller(shell).session())]
    assert "401" in view._body.children[-1].value and "alloy-error" in state
    for text in everything:
        assert secret not in text and "SECRETSECRET" not in text


def test_markdown_copy_says_demo_replies_were_scripted(shell, published) -> None:
    run(shell, "%%alloy -o r\nWhat is 2+2?\n")  # via the magic (no key: the demo)
    first, last = published[0]["data"]["text/markdown"], published[-1]["data"]["text/markdown"]
    assert first.startswith("> ⓘ Offline demo provider") and "*(streaming…)*" in first
    assert last.startswith("> ⓘ Offline demo provider: replies are scripted")
    assert "**4**" in last and "✓ completed" in last
    published.clear()
    J.controller(shell).ask("What is 3*3?")  # via the API: the banner was shown once
    later = published[-1]["data"]["text/markdown"]
    assert "Offline demo provider" not in later and "offline demo reply" in later


def test_markdown_copy_of_a_failed_run_reads_well(shell, published) -> None:
    _use(shell, Scripted.error("HTTP 502 from <proxy>\n\nupstream said: try later"))
    failed = shell.run_cell("%%alloy -o bad\nq\n")
    assert failed.error_in_exec is not None
    md = published[-1]["data"]["text/markdown"]
    assert "> ✗ HTTP 502 from &lt;proxy&gt;\n>\n> upstream said: try later" in md
    assert "✗ error" in md.rsplit("---", 1)[1]


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
    view = J.controller(shell).views["boomy"]
    boom, zero, _text = view._body.children
    for card, message in ((boom, "ValueError: kaboom"), (zero, "ZeroDivisionError")):
        assert "alloy-tool-error" in _classes(card) and "✗ error" in card.titles[0]
        assert card.children[0].value.count(message) == 1  # shown once, as the error
    md = published[-1]["data"]["text/markdown"]
    assert "> 🔧 explode ✗ error" in md and "> ZeroDivisionError: division by zero" in md
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
    assert "turns 1" in handle.view.footer.value and "⏹ interrupted" in handle.view.footer.value
    assert "turns 1" in published[-1]["data"]["text/markdown"]


def test_a_key_printed_by_a_tool_never_reaches_widget_state(shell, published,
                                                           monkeypatch) -> None:
    from ipywidgets.embed import embed_data

    secret = "sk-proj-LEAKED-0123456789abcdef"
    monkeypatch.setenv("OPENAI_API_KEY", secret)
    _use(shell, Scripted.tool_calls(("run_python", {"code": "import os\n"
                                                            "os.environ['OPENAI_API_KEY']"})),
         f"Your key is {secret}.")
    run(shell, "%alloy tools run_python")
    run(shell, "%alloy approve always")
    run(shell, "%%alloy -o r\nwhat is my key?\n")
    view = J.controller(shell).views["default"]
    state = json.dumps(embed_data(views=[view.widget])["manager_state"])
    md = published[-1]["data"]["text/markdown"]
    assert "[redacted]" in state and "[redacted]" in md
    assert secret not in state and secret not in md
