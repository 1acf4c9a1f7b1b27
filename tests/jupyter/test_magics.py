"""``%alloy`` / ``%%alloy`` through a real InteractiveShell, each behaviour also via the API.

The shell is terminal-like (no kernel), so runs print plain text; the provider is
``Scripted`` (offline, exact). Kernel-only behaviour lives in ``test_kernel.py``.
"""

from __future__ import annotations

import _thread
import subprocess
import sys
import threading
import time

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import alloy_nb.jupyter as J
from alloy_nb import AgentError, Session
from alloy_nb.jupyter.runner import BackgroundRun, RunInterrupted
from alloy_nb.providers.scripted import Scripted

from .conftest import run


def _use(shell, *replies, **kw) -> Scripted:
    p = Scripted(list(replies), **kw)
    shell.user_ns["p"] = p
    shell.run_line_magic("alloy", "provider p")
    return p


# ---- loading -------------------------------------------------------------------------


def test_import_and_load_stay_light() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import alloy_nb\n"
        "assert 'IPython' not in sys.modules and 'ipywidgets' not in sys.modules\n"
        "from IPython.core.interactiveshell import InteractiveShell\n"
        "ip = InteractiveShell.instance(); ip.run_line_magic('load_ext', 'alloy_nb')\n"
        "assert 'ipywidgets' not in sys.modules, 'ipywidgets must load lazily'\n"
        "assert 'alloy_nb.providers.anthropic' not in sys.modules\n"
        "assert 'pydantic' not in sys.modules, 'the core loads on first use'\n"
        "assert 'alloy' in ip.magics_manager.magics['cell']\n"
        "import asyncio; assert asyncio.run.__module__ == 'asyncio.runners', 'nest_asyncio!'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


def test_load_is_idempotent_and_unload_removes_everything(shell) -> None:
    shell.run_line_magic("load_ext", "alloy_nb")  # second load: a no-op
    J.load_ipython_extension(shell)
    assert "alloy" in shell.magics_manager.magics["line"]
    shell.run_line_magic("unload_ext", "alloy_nb")
    assert "alloy" not in shell.magics_manager.magics["line"]
    assert "alloy" not in shell.magics_manager.magics["cell"]
    fmt = shell.display_formatter.ipython_display_formatter
    assert ("alloy_nb.session._session", "Session") not in fmt.deferred_printers
    assert Session not in fmt.type_printers
    with pytest.raises(RuntimeError, match="not loaded"):
        J.controller(shell)
    shell.run_line_magic("load_ext", "alloy_nb")  # the fixture unloads again


def test_nest_asyncio_is_opt_in_only() -> None:
    code = (
        "import asyncio, warnings\n"
        "from alloy_nb.nest import enable_nest_asyncio\n"
        "assert asyncio.run.__module__ == 'asyncio.runners'\n"
        "with warnings.catch_warnings(record=True) as w:\n"
        "    warnings.simplefilter('always')\n"
        "    assert enable_nest_asyncio() is True\n"
        "assert any('anyio' in str(x.message) for x in w)\n"
        "assert enable_nest_asyncio() is False\n"
        "assert asyncio.run(asyncio.sleep(0, 'ok')) == 'ok'\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.returncode == 0, out.stderr


# ---- %%alloy basics ------------------------------------------------------------------


def test_cell_streams_and_o_binds_the_result(shell) -> None:
    p = _use(shell, "Hello **there**, " * 5, chunk_size=3)
    with capture_output() as cap:
        assert run(shell, "%%alloy -o answer\nsay hi\n") is None
    result = shell.user_ns["answer"]
    assert result.status == "completed" and result.text.startswith("Hello **there**")
    assert "Hello **there**, Hello" in cap.stdout
    assert "scripted · turns 1 · 10 in / 5 out tokens" in cap.stdout
    assert p.calls[-1].messages[-1].text == "say hi"


def test_the_api_does_the_same(shell) -> None:
    _use(shell, "first", "second")
    ctl = J.controller(shell)
    with capture_output():
        result = ctl.ask("q1", output="r1")
        second = ctl.ask("q2")
    assert result.text == "first" and shell.user_ns["r1"] is result
    assert second.text == "second"
    assert [m.role for m in ctl.session().messages] == ["user", "assistant"] * 2


def test_next_cell_continues_the_conversation(shell) -> None:
    p = _use(shell, "one", "two")
    with capture_output() as cap:
        run(shell, "%%alloy\nfirst\n")
        run(shell, "%%alloy\nsecond\n")
        run(shell, "%alloy history")
    assert [m.text for m in p.calls[-1].messages] == ["first", "one", "second"]
    assert "user      first" in cap.stdout and "assistant two" in cap.stdout


def test_offline_demo_provider_says_so(shell) -> None:
    with capture_output() as cap:
        run(shell, "%%alloy -o r\nWhat is 2+2?\n")
    assert "Offline demo provider" in cap.stdout
    assert "**4**" in shell.user_ns["r"].text
    assert J.controller(shell).session().config.provider.name == "demo"


def test_provider_from_environment(shell, monkeypatch) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key-0000000000")
    with capture_output() as cap:
        run(shell, "%alloy provider")
    assert "openai:gpt-5.4" in cap.stdout
    monkeypatch.setenv("ANTHROPIC_API_KEY", "sk-ant-test-not-a-real-key-000000")
    assert J.controller(shell).default_provider_spec() == "anthropic:claude-sonnet-4-6"
    assert J.controller(shell).session().model == "claude-sonnet-4-6"


def test_provider_and_model_commands(shell, monkeypatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", "test-not-a-real-key")
    with capture_output() as cap:
        run(shell, "%alloy provider anthropic:claude-sonnet-4-6")
        run(shell, "%alloy model claude-haiku-4-5")
    assert "anthropic:claude-haiku-4-5" in cap.stdout
    assert J.controller(shell).session().model == "claude-haiku-4-5"
    with pytest.raises(UsageError, match="unknown provider 'nonsense:thing'"):
        run(shell, "%alloy provider nonsense:thing")
    with pytest.raises(UsageError, match="API key"):
        run(shell, "%alloy provider sk-ant-abcdefabcdefabcdef")
    run(shell, "%alloy provider demo")
    with pytest.raises(UsageError, match="PREFIX:MODEL"):
        run(shell, "%alloy model bigger")


def test_usage_errors(shell) -> None:
    for bad, match in [
        ("%%alloy --bogus\nhi\n", "unrecognized arguments"),
        ("%%alloy\n   \n", "empty"),
        ("%%alloy --max-turns 0\nhi\n", "at least 1"),
        ("%%alloy\nlook at {nothing_here}\n", "no variable named 'nothing_here'"),
        ("%alloy frobnicate", "unknown command"),
        ("%alloy tools read,teleport", "unknown tool name"),
        ("%alloy approve sometimes", "approve policy"),
        ("%alloy save", "usage: %alloy save FILE"),
    ]:
        with pytest.raises(UsageError, match=match):
            run(shell, bad)


def test_interpolation(shell) -> None:
    p = _use(shell, "a", "b")
    shell.user_ns.update(n=3, data={"k": [10, 20]})
    with capture_output():
        run(shell, '%%alloy\nn={n} k={data[\'k\'][1]} {{lit}} {"json": 1}\n')
        run(shell, "%%alloy --no-interp\nkeep {n}\n")
    assert p.calls[0].messages[-1].text == 'n=3 k=20 {lit} {"json": 1}'
    assert p.calls[1].messages[-1].text == "keep {n}"


# ---- options -------------------------------------------------------------------------


def test_per_cell_system_model_and_max_turns_are_undone(shell) -> None:
    p = _use(shell, "a", Scripted.tool_calls(("nope", {})), "c")
    with capture_output():
        run(shell, '%%alloy --system "Be terse."\nq\n')
        run(shell, "%%alloy --max-turns 1 -o r\nq\n")
        run(shell, "%%alloy --model demo -o d\nWhat is 3*3?\n")
    assert p.calls[0].system == "Be terse."
    assert shell.user_ns["r"].status == "max_turns"
    assert "**9**" in shell.user_ns["d"].text
    session = J.controller(shell).session()
    assert session.config.system_prompt is None and session.config.max_turns == 25
    assert session.config.provider is p


def test_a_cells_options_never_reach_a_concurrent_request(shell) -> None:
    """--system/--max-turns are options of that cell's request, not a change of the
    session: a request sent while the cell still runs sees the session's own options."""
    p = _use(shell, Scripted.delay(0.3, "one"), "two")
    with capture_output():
        run(shell, '%%alloy --bg -o h --system "cell one" --max-turns 2\nq1\n')
    session = J.controller(shell).session()
    deadline = time.monotonic() + 2
    while session.current_request_id is None and time.monotonic() < deadline:
        time.sleep(0.01)  # the run starts on the loop thread
    assert session.current_request_id is not None and not shell.user_ns["h"].done()
    assert session.config.system_prompt is None and session.config.max_turns == 25
    assert session.chat("q2").text == "two"  # waits for the cell's run, then runs as-is
    assert shell.user_ns["h"].result(5).text == "one"
    assert [c.system for c in p.calls] == ["cell one", None]


def test_system_and_tools_commands(shell) -> None:
    p = _use(shell, "ok")
    with capture_output() as cap:
        run(shell, "%alloy system You are a tutor.")
        run(shell, "%alloy tools read, notebook")
        run(shell, "%alloy tools")
        run(shell, "%%alloy\nhi\n")
    assert "tools: read, notebook" in cap.stdout
    assert p.calls[0].system == "You are a tutor."
    assert [t.name for t in p.calls[0].tools] == ["read", "list_variables", "inspect_variable"]
    run(shell, "%alloy system none")
    run(shell, "%alloy tools none")
    assert J.controller(shell).session().config.tools == []


def test_no_stream_still_shows_the_answer(shell) -> None:
    _use(shell, "whole answer")
    with capture_output() as cap:
        run(shell, "%%alloy --no-stream -o r\nq\n")
    assert "whole answer" in cap.stdout and shell.user_ns["r"].text == "whole answer"


def test_notebook_tools_read_the_namespace_on_the_main_thread(shell) -> None:
    p = _use(shell, Scripted.tool_calls(("list_variables", {})),
             Scripted.tool_calls(("run_python", {"code": "import threading\n"
                                                         "threading.current_thread().name"})),
             "done")
    shell.user_ns["sales"] = [1, 2, 3]
    with capture_output() as cap:
        run(shell, "%alloy tools notebook,run_python")
        run(shell, "%alloy approve always")
        run(shell, "%%alloy -o r\nlook\n")
    results = [b.content for m in shell.user_ns["r"].messages for b in m.tool_result_blocks]
    assert "sales: list — len 3" in results[0]
    assert "Out: 'MainThread'" in results[1]
    assert "🔧 list_variables" in cap.stdout
    assert len(p.calls) == 3


@pytest.mark.parametrize(("answer", "allowed"), [("y", True), ("n", False)])
def test_run_python_asks_on_stdin_in_a_blocking_cell(shell, monkeypatch, answer, allowed):
    _use(shell, Scripted.tool_calls(("run_python", {"code": "ran = 42"})), "done")
    asked = []
    monkeypatch.setattr("builtins.input", lambda prompt="": asked.append(prompt) or answer)
    with capture_output() as cap:
        run(shell, "%alloy tools run_python")
        run(shell, "%%alloy -o r\ngo\n")
    assert asked == ["Run it? [y/N] "]
    assert "wants to run this code" in cap.stdout and "ran = 42" in cap.stdout
    assert ("ran" in shell.user_ns) is allowed
    result_text = shell.user_ns["r"].messages[2].tool_result_blocks[0].content
    assert ("Denied by user" in result_text) is not allowed


def test_run_python_without_stdin_is_denied(shell, monkeypatch) -> None:
    _use(shell, Scripted.tool_calls(("run_python", {"code": "x = 1"})), "done")

    def no_stdin(prompt: str = "") -> str:
        raise EOFError("no stdin")

    monkeypatch.setattr("builtins.input", no_stdin)
    with capture_output() as cap:
        run(shell, "%alloy tools run_python")
        run(shell, "%%alloy\ngo\n")
    verdict = "run_python: ✗ denied (not run: this front end cannot ask (EOFError)"
    assert verdict in cap.stdout
    assert cap.stdout.index("🔧 run_python") < cap.stdout.index(verdict) < cap.stdout.index(
        "done\n")  # the verdict under the tool's line, before the answer
    assert "x" not in shell.user_ns


# ---- failures, interrupt, background ---------------------------------------------------


def test_provider_error_fails_the_cell_briefly_and_keeps_history(shell) -> None:
    _use(shell, "fine", Scripted.error("boom"), "recovered")
    with capture_output():
        run(shell, "%%alloy\none\n")
        result = shell.run_cell("%%alloy -o bad\ntwo\n")
        run(shell, "%%alloy -o good\nthree\n")
    assert isinstance(result.error_in_exec, AgentError)
    assert result.error_in_exec._render_traceback_()[0].startswith("AgentError: the run ended")
    assert shell.user_ns["bad"].status == "error" and "boom" in shell.user_ns["bad"].error
    assert shell.user_ns["good"].text == "recovered"


def test_interrupt_cancels_within_a_second_and_the_next_cell_continues(shell) -> None:
    p = _use(shell, Scripted.reply("slow " * 2000), "next", chunk_size=2, chunk_delay=0.01)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    started = time.monotonic()
    timer.start()
    with capture_output() as cap:
        result = shell.run_cell("%%alloy\ngo slowly\n")
    elapsed = time.monotonic() - started
    assert isinstance(result.error_in_exec, RunInterrupted)
    assert elapsed < 1.5, f"interrupt took {elapsed - 0.5:.2f} s"
    assert "slow slow" in cap.stdout and "⏹ interrupted" in cap.stdout
    with capture_output():
        run(shell, "%%alloy -o r\ncontinue\n")
    assert shell.user_ns["r"].text == "next"
    assert [m.text for m in p.calls[-1].messages][-1] == "continue"


def test_background_run_in_a_terminal_shell(shell) -> None:
    _use(shell, "in the background", chunk_size=2, chunk_delay=0.002)
    with capture_output():
        handle = run(shell, "%%alloy --background\nq\n")
        assert isinstance(handle, BackgroundRun)
        result = handle.result(timeout=10)
        run(shell, "%%alloy --background -o h2\nq2\n")  # script exhausted: an error run
        with pytest.raises(AgentError):
            shell.user_ns["h2"].result(timeout=10)
    assert result.text == "in the background" and handle.status == "completed"


def test_cancel_stops_a_background_run_and_busy_sessions_refuse(shell) -> None:
    _use(shell, Scripted.reply("slow " * 1000), "after", chunk_size=2, chunk_delay=0.01)
    ctl = J.controller(shell)
    with capture_output() as cap:
        handle = run(shell, "%%alloy --background\nq\n")
        time.sleep(0.2)
        with pytest.raises(UsageError, match="still answering in the background"):
            run(shell, "%%alloy\nanother\n")
        run(shell, "%alloy cancel")
        result = handle.result(timeout=5)
        run(shell, "%%alloy -o r\nthen\n")
    assert result.status == "cancelled" and "stopped: default" in cap.stdout
    assert shell.user_ns["r"].text == "after"
    assert ctl.cancel() == []


# ---- reports and files ---------------------------------------------------------------


def test_usage_sessions_reset_save_export(shell, tmp_path) -> None:
    _use(shell, "a", "b")
    with capture_output() as cap:
        run(shell, "%%alloy\nq1\n")
        run(shell, "%%alloy -s other\nq2\n")
        run(shell, "%alloy usage")
        run(shell, "%alloy sessions")
        run(shell, f"%alloy save {tmp_path / 's.json'}")
        run(shell, f"%alloy export {tmp_path / 's.md'} other")
        run(shell, "%alloy reset")
    out = cap.stdout
    table = [r for r in map(str.split, out.splitlines()) if r[:1] in (["default"], ["other"])
             and r[2:3] == ["scripted"]]  # the %alloy usage rows
    assert [row[:4] for row in table] == [["default", "scripted", "scripted", "1"],
                                          ["other", "scripted", "scripted", "1"]]
    assert "10 in / 5 out tokens" in out
    assert (tmp_path / "s.json").exists() and "q2" in (tmp_path / "s.md").read_text()
    ctl = J.controller(shell)
    assert ctl.session().messages == [] and len(ctl.session("other").messages) == 2


def test_session_variable_is_used_by_name(shell) -> None:
    shell.user_ns["mine"] = Session(provider=Scripted(["from my session"]))
    with capture_output():
        run(shell, "%%alloy -s mine -o r\nhello\n")
    assert shell.user_ns["r"].text == "from my session"
    assert J.controller(shell).session("mine") is shell.user_ns["mine"]


def test_help(shell) -> None:
    with capture_output() as cap:
        run(shell, "%alloy help")
        run(shell, "%alloy")
    assert cap.stdout.count("%alloy provider") == 2
    assert "Interrupt the kernel" in J.magics.AlloyMagics.alloy.__doc__


def test_a_session_variable_gets_the_notebook_namespace_and_approval(shell) -> None:
    from alloy_nb.jupyter.approval import Approver
    from alloy_nb.providers.demo import Demo
    from alloy_nb.session import Session
    from alloy_nb.tools.notebook import RunPython

    shell.user_ns["mine"] = Session(provider=Demo(delay_s=0), tools=[RunPython()])
    shell.user_ns["x"] = 20
    with capture_output():
        run(shell, "%alloy approve always")
        run(shell, '%%alloy -s mine -o r\nUse run_python with "x * 2 + 2"\n')
    context = shell.user_ns["mine"].config.context
    assert context["namespace"] is shell.user_ns
    assert isinstance(context["approve"], Approver)
    call = shell.user_ns["r"].tool_calls[0]
    assert call.error is None and "42" in shell.user_ns["r"].text


def test_gemini_provider_spec_runs_natively_and_prices_from_the_catalog(
    shell, monkeypatch
) -> None:
    """``%alloy provider gemini:MODEL`` is the native provider (key from GEMINI_API_KEY), a
    cell runs through it (Google's endpoint pointed at the loopback fake) and the catalogue
    price of the model applies, cache reads included."""
    from alloy_nb.model_metadata import lookup
    from alloy_nb.providers import Gemini
    from alloy_nb.providers import gemini as gemini_module
    from alloy_nb.testing import FakeProviderServer, Usage, reply

    usage = Usage(input_tokens=1000, output_tokens=300, cache_read_tokens=2000)
    with FakeProviderServer([reply.text("Bonjour!")], usage=usage) as srv:
        monkeypatch.setattr(gemini_module, "DEFAULT_BASE_URL", srv.url)
        monkeypatch.setenv("GEMINI_API_KEY", "test-key-magics-gemini-1")
        with capture_output() as cap:
            run(shell, "%alloy provider gemini:gemini-2.5-flash")
            run(shell, "%%alloy -o r\nSay hello in French.\n")
        provider = J.controller(shell).session().config.provider
        assert isinstance(provider, Gemini) and provider.model == "gemini-2.5-flash"
        assert "gemini:gemini-2.5-flash" in cap.stdout
        (request,) = srv.requests
        assert request.path == "/v1beta/models/gemini-2.5-flash:streamGenerateContent" or (
            request.path == "/v1beta/models/gemini-2.5-flash:generateContent"
        )
        assert request.headers["x-goog-api-key"] == "test-key-magics-gemini-1"
    r = shell.user_ns["r"]
    assert r.text == "Bonjour!"
    info = lookup("gemini-2.5-flash")
    assert info is not None
    want = (1000 * info.input_price + 300 * info.output_price + 2000 * info.cache_read_price)
    assert r.usage.priced and r.usage.estimated_cost_cents == pytest.approx(want * 100 / 1e6)
    assert "test-key-magics-gemini-1" not in cap.stdout
    with capture_output():
        run(shell, "%alloy model gemini-3-flash-preview")  # stays native, new model
    provider = J.controller(shell).session().config.provider
    assert isinstance(provider, Gemini) and provider.model == "gemini-3-flash-preview"
