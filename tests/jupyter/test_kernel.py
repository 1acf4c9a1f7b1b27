"""``%%alloy`` in a real ipykernel, driven over ZMQ like a front end would drive it.

One kernel for the module (started from this venv's Python, offline, no API keys). Every
IOPub message is kept with its parent header, so tests can say which cell a widget
update belongs to, count what a long answer costs on the wire, interrupt mid-stream, and
click a Stop button by sending the comm message a browser sends.
"""

from __future__ import annotations

import json
import queue
import sys
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.kernel

REPO = Path(__file__).resolve().parents[2]
WIDGET = "application/vnd.jupyter.widget-view+json"
UI_MESSAGES = {"comm_open", "comm_msg", "display_data", "update_display_data", "stream"}


@dataclass
class Executed:
    msg_id: str
    reply: dict[str, Any]
    started: float
    ended: float
    interrupted: float | None = None
    stdin_prompts: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.reply["content"]["status"] == "ok"


class Kernel:
    """A started kernel plus every IOPub message seen so far (in arrival order)."""

    def __init__(self, tmp: Path) -> None:
        from jupyter_client import KernelManager
        from jupyter_client.kernelspec import KernelSpecManager

        spec = tmp / "alloytest"
        spec.mkdir()
        (spec / "kernel.json").write_text(json.dumps({
            "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
            "display_name": "alloy_nb tests", "language": "python",
        }))
        self.km = KernelManager(kernel_name="alloytest",
                                kernel_spec_manager=KernelSpecManager(kernel_dirs=[str(tmp)]))
        self.km.start_kernel(cwd=str(REPO))
        self.kc = self.km.client()
        self.kc.start_channels()
        self.kc.wait_for_ready(timeout=60)
        self.iopub: list[dict[str, Any]] = []

    def close(self) -> None:
        self.kc.stop_channels()
        self.km.shutdown_kernel(now=True)

    def _read(self, timeout: float) -> dict[str, Any] | None:
        try:
            msg = self.kc.get_iopub_msg(timeout=timeout)
        except queue.Empty:
            return None
        self.iopub.append(msg)
        return msg

    def run(self, code: str, *, timeout: float = 30, interrupt_after: float | None = None,
            stdin: str | None = None, cell_id: str | None = None) -> Executed:
        content = {"code": code, "silent": False, "store_history": True,
                   "user_expressions": {}, "allow_stdin": stdin is not None,
                   "stop_on_error": True}
        request = self.kc.session.msg("execute_request", content,
                                      metadata={"cellId": cell_id} if cell_id else {})
        self.kc.shell_channel.send(request)
        msg_id = request["header"]["msg_id"]
        ex = Executed(msg_id, {}, time.monotonic(), 0.0)
        while True:
            now = time.monotonic()
            if interrupt_after is not None and ex.interrupted is None \
                    and now - ex.started >= interrupt_after:
                self.km.interrupt_kernel()
                ex.interrupted = time.monotonic()
            if stdin is not None:
                try:
                    request = self.kc.get_stdin_msg(timeout=0)
                    ex.stdin_prompts.append(request["content"]["prompt"])
                    self.kc.input(stdin)
                except queue.Empty:
                    pass
            msg = self._read(0.01)
            if msg is not None and msg["parent_header"].get("msg_id") == msg_id \
                    and msg["msg_type"] == "status" \
                    and msg["content"]["execution_state"] == "idle":
                ex.ended = time.monotonic()
                break
            assert now - ex.started < timeout, f"cell timed out: {code!r}"
        ex.reply = self.kc.get_shell_msg(timeout=10)
        return ex

    def ok(self, code: str, **kw: Any) -> str:
        """Run a cell that must succeed; return its stdout."""
        ex = self.run(code, **kw)
        errors = [m["content"] for m in self.of(ex) if m["msg_type"] == "error"]
        assert ex.ok, errors
        return "".join(m["content"]["text"] for m in self.of(ex)
                       if m["msg_type"] == "stream" and m["content"]["name"] == "stdout")

    def drain(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            self._read(0.02)

    def wait_for(self, css: str, parent: str, timeout: float = 10) -> str:
        """The comm id of the first widget with CSS class ``css`` opened under ``parent``."""
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            ids = _comm_ids([m for m in self.iopub
                             if m["parent_header"].get("msg_id") == parent], css)
            if ids:
                return ids[0]
            self._read(0.02)
        raise AssertionError(f"no {css} widget appeared")

    def of(self, ex: Executed) -> list[dict[str, Any]]:
        return [m for m in self.iopub if m["parent_header"].get("msg_id") == ex.msg_id]

    def click(self, comm_id: str) -> None:
        """What the browser sends when a Button is clicked."""
        content = {"comm_id": comm_id,
                   "data": {"method": "custom", "content": {"event": "click"}}}
        self.kc.shell_channel.send(self.kc.session.msg("comm_msg", content))


def final_outputs(msgs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """What a front end ends with: each display, in order, with its last update."""
    order: list[str] = []
    last: dict[str, dict[str, Any]] = {}
    for m in msgs:
        if m["msg_type"] not in ("display_data", "update_display_data"):
            continue
        did = m["content"].get("transient", {}).get("display_id")
        if m["msg_type"] == "display_data" and did not in last:
            order.append(did)
            last[did] = m["content"]["data"]
        elif did in last:
            last[did] = m["content"]["data"]
    return [last[d] for d in order]


def _markdown(outputs: list[dict[str, Any]]) -> str:
    return "\n\n".join(o.get("text/markdown", "") for o in outputs)


def _comm_ids(msgs: list[dict[str, Any]], css: str) -> list[str]:
    return [m["content"]["comm_id"] for m in msgs if m["msg_type"] == "comm_open"
            and css in m["content"]["data"]["state"].get("_dom_classes", [])]


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = Kernel(tmp_path_factory.mktemp("kernelspec"))
    try:
        k.ok("%load_ext alloy_nb\nimport asyncio\nimport alloy_nb.jupyter as J\n"
             "from alloy_nb import Session\nfrom alloy_nb.providers.scripted import Scripted")
        yield k
    finally:
        k.close()


def test_blocking_cell_output_lands_in_its_own_cell(kernel: Kernel) -> None:
    kernel.ok("p = Scripted(['streamed ' * 150], chunk_size=3, chunk_delay=0.002)\n"
              "%alloy provider p")
    ex = kernel.run("%%alloy -o r\nhello")
    assert ex.ok
    own = kernel.of(ex)
    kinds = Counter(m["msg_type"] for m in own)
    assert kinds["update_display_data"] >= 3  # live updates while ~400 deltas streamed
    assert not kinds["comm_open"] and not kinds["comm_msg"]  # no widget: nothing to click
    assert not [m for m in own if WIDGET in m["content"].get("data", {})]
    outputs = final_outputs(own)
    assert outputs[0] == {"text/plain": ""}  # the "● running · ■" line, emptied
    assert "streamed streamed" in outputs[1]["text/markdown"]
    assert "✓ completed" in outputs[-1]["text/markdown"]
    others = [m for m in kernel.iopub if m not in own and m["msg_type"] in UI_MESSAGES
              and m["parent_header"].get("msg_id") not in (None, "")]
    assert all(m["parent_header"]["msg_id"] != ex.msg_id for m in others)
    assert kernel.ok("print(r.status, r.text.count('streamed'))") == "completed 150\n"


def test_background_output_stays_with_its_cell_while_others_run(kernel: Kernel) -> None:
    kernel.ok("pa = Scripted(['alpha ' * 200], chunk_size=4, chunk_delay=0.005)\n"
              "sa = Session(provider=pa)")
    started = kernel.run("%%alloy --background -s sa -o ha\nslowly")
    assert started.ok and started.ended - started.started < 1.0  # returned at once
    other = kernel.run("for _ in range(10):\n    await asyncio.sleep(0.05)\nprint('busy')")
    assert other.ok
    during = [m for m in kernel.iopub
              if m["msg_type"] in ("display_data", "update_display_data")
              and other.reply["parent_header"]["date"] < m["header"]["date"]
              < other.reply["header"]["date"]]
    assert during, "the run kept streaming while another cell awaited"
    assert all(m["parent_header"]["msg_id"] == started.msg_id for m in during)
    assert not [m for m in kernel.of(other) if "alpha" in json.dumps(m["content"])]
    out = kernel.ok("r = await ha\nprint(r.status, r.text.count('alpha'), ha.status)")
    assert out == "completed 200 completed\n"


def test_interrupt_stops_within_a_second_and_the_next_cell_continues(kernel: Kernel) -> None:
    kernel.ok("pi = Scripted([Scripted.reply('slow ' * 3000), 'continued'], chunk_size=2,"
              " chunk_delay=0.01)\nsi = Session(provider=pi)")
    ex = kernel.run("%%alloy -s si\ntake your time", interrupt_after=1.0)
    assert ex.interrupted is not None
    latency = ex.ended - ex.interrupted
    assert ex.reply["content"]["status"] == "error"
    assert ex.reply["content"]["ename"] == "RunInterrupted"
    assert latency < 1.0, f"interrupt took {latency:.2f} s"
    final = _markdown(final_outputs(kernel.of(ex)))
    assert "⏹ interrupted" in final and "slow slow" in final
    out = kernel.ok("%%alloy -s si -o r2\nnow continue")
    assert "continued" not in out  # widgets, not text
    assert kernel.ok("print(r2.text, [m.role for m in si.messages][-2:])") == \
        "continued ['user', 'assistant']\n"
    print(f"interrupt latency: {latency * 1000:.0f} ms")


def test_stop_button_driven_by_a_comm_message(kernel: Kernel) -> None:
    kernel.ok("ps = Scripted([Scripted.reply('tick ' * 2000)], chunk_size=2, chunk_delay=0.01)"
              "\nss = Session(provider=ps)")
    ex = kernel.run("%%alloy --background -s ss -o hs\ngo")
    stop = _comm_ids(kernel.of(ex), "alloy-stop")
    assert len(stop) == 1
    kernel.drain(0.5)
    clicked = time.monotonic()
    kernel.click(stop[0])
    out = kernel.ok("r = await hs\nprint(r.status, hs.status, len(hs.view.text) > 20)")
    assert out == "cancelled cancelled True\n"
    assert time.monotonic() - clicked < 2.0
    closed = [m for m in kernel.iopub if m["msg_type"] == "comm_close"
              and m["content"]["comm_id"] == stop[0]]
    assert closed  # the Stop button is gone with the run, not left as a dead widget
    ids = {m["content"]["transient"]["display_id"] for m in kernel.of(ex)
           if m["msg_type"] == "display_data"}
    outputs = final_outputs([m for m in kernel.iopub if m["msg_type"].endswith("display_data")
                             and m["content"]["transient"]["display_id"] in ids])
    assert outputs and not [o for o in outputs if WIDGET in o]
    assert "⏹ interrupted" in _markdown(outputs)


def test_two_background_runs_stream_into_their_own_outputs(kernel: Kernel) -> None:
    kernel.ok("s1 = Session(provider=Scripted(['one ' * 100], chunk_size=3, chunk_delay=0.005))"
              "\ns2 = Session(provider=Scripted(['two ' * 100], chunk_size=3, chunk_delay=0.005))")
    a = kernel.run("%%alloy --background -s s1 -o h1\nfirst")
    b = kernel.run("%%alloy --background -s s2 -o h2\nsecond")
    waiter = kernel.run("r1, r2 = await h1, await h2\n"
                        "print(r1.text.count('one'), r2.text.count('two'),"
                        " r1.text.strip() == h1.view.text)")
    assert waiter.ok
    for ex, word in ((a, "one"), (b, "two")):
        updates = [m for m in kernel.iopub
                   if m["msg_type"] in ("display_data", "update_display_data")
                   and word in m["content"]["data"].get("text/markdown", "")]
        assert updates
        parents = Counter(m["parent_header"]["msg_id"] for m in updates)
        # streamed under the launching cell; the awaiting cell re-sends the final state
        assert set(parents) <= {ex.msg_id, waiter.msg_id} and parents[ex.msg_id] >= 3
    out = "".join(m["content"].get("text", "") for m in kernel.of(waiter)
                  if m["msg_type"] == "stream")
    assert out == "100 100 True\n"


def test_notebook_tools_and_stdin_approval_in_a_blocking_cell(kernel: Kernel) -> None:
    kernel.ok(
        "pt = Scripted([Scripted.tool_calls(('run_python', {'code': 'import threading\\n"
        "where = threading.current_thread().name'})), 'done'])\n%alloy provider pt\n"
        "%alloy tools notebook,run_python")
    ex = kernel.run("%%alloy -s tooly -o rt\nrun something", stdin="y")
    assert ex.ok and ex.stdin_prompts == ["Run it? [y/N] "]
    assert kernel.ok("print(where, rt.status)") == "MainThread completed\n"
    kernel.ok("%alloy tools none\n%alloy provider demo")


def test_approval_card_in_a_background_run(kernel: Kernel) -> None:
    kernel.ok("pc = Scripted([Scripted.tool_calls(('run_python', {'code': 'approved = 7'})),"
              " 'done'])\n"
              "from alloy_nb.tools.notebook import RunPython\n"
              "%alloy provider pc\n%alloy tools run_python\n%alloy approve ask")
    ex = kernel.run("%%alloy --background -s carded -o hc\nplease run")
    assert ex.ok
    kernel.click(kernel.wait_for("alloy-approve", ex.msg_id))
    out = kernel.ok("r = await hc\nprint(r.status, approved)")
    assert out == "completed 7\n"
    kernel.ok("%alloy tools none\n%alloy provider demo")


def test_rerunning_a_cell_replaces_its_background_run(kernel: Kernel) -> None:
    kernel.ok("sr = Session(provider=Scripted([Scripted.reply('old ' * 2000), 'new answer'],"
              " chunk_size=2, chunk_delay=0.01))")
    first = kernel.run("%%alloy --background -s sr -o h\nq", cell_id="cell-42")
    kernel.drain(0.3)
    again = kernel.run("%%alloy --background -s sr -o h\nq", cell_id="cell-42")
    assert first.ok and again.ok
    out = kernel.ok("r = await h\nprint(r.text, J.controller().views['sr'] is h.view)")
    assert out == "new answer True\n"
    assert kernel.ok("print([r.status for r in sr.history])") == "['cancelled', 'completed']\n"


PACED = """
from alloy_nb.messages import Message
from alloy_nb.providers.base import Completion, Provider


class Paced(Provider):
    name = "paced"
    supports_streaming = True

    def __init__(self, text, pause_every, pause):
        self.model, self.text, self.every, self.pause = "paced", text, pause_every, pause

    async def complete(self, request):
        return Completion(stop_reason="end_turn",
                          message=Message(role="assistant", content=self.text))

    async def stream(self, request, on_delta):
        for n, i in enumerate(range(0, len(self.text), 4)):
            on_delta("text", self.text[i:i + 4])
            await asyncio.sleep(self.pause if n % self.every == 0 else 0)
        return await self.complete(request)


text = "\\n\\n".join(f"Paragraph {i}: " + "word " * 45 for i in range(90))
print(len(range(0, len(text), 4)))
"""


@pytest.mark.parametrize(("label", "every", "pause"), [("as fast as possible", 1, 0),
                                                       ("paced over ~3 s", 2, 0.001)])
def test_messages_for_a_5000_delta_answer_are_bounded(kernel: Kernel, label: str, every: int,
                                                      pause: float) -> None:
    deltas = int(kernel.ok(PACED))
    assert deltas >= 5000
    kernel.ok(f"sm = Session(provider=Paced(text, {every}, {pause}))")
    ex = kernel.run("%%alloy -s sm -o rm\ncount me")
    assert ex.ok
    own = [m for m in kernel.of(ex) if m["msg_type"] in UI_MESSAGES]
    sent = len(own)
    nbytes = sum(len(json.dumps(m["content"])) for m in own)
    took = ex.ended - ex.started
    assert kernel.ok("print(rm.text == text)") == "True\n"
    print(f"{deltas:,} deltas {label}: {took:.2f} s -> {sent} UI messages, "
          f"{nbytes / 1024:.0f} KB ({dict(Counter(m['msg_type'] for m in own))})")
    assert sent < 200, (sent, took)
    assert sent <= took * 20 + 50  # ~20 live updates per second, plus one per new block


def test_interrupting_await_of_a_silent_background_run_is_prompt(kernel: Kernel) -> None:
    """■ during ``r = await job`` ends the cell at once, not at the loop's next wake-up.

    The provider is silent for 30 s before its first byte, so nothing else would wake the
    kernel's loop (ipykernel #881): the scoped SIGINT handler in ``BackgroundRun.wait``
    does. The run is stopped with the wait, its history repaired, its view interrupted.
    """
    kernel.ok("sq = Session(provider=Scripted([Scripted.delay(30, 'late'), 'after']))\n"
              "import signal\nidle_handler = signal.getsignal(signal.SIGINT)")
    started = kernel.run("%%alloy -s sq --background -o job\nanyone there?")
    assert started.ok
    kernel.drain(0.3)
    ex = kernel.run("r = await job", interrupt_after=1.0)
    assert ex.interrupted is not None
    latency = ex.ended - ex.interrupted
    print(f"await interrupt latency: {latency * 1000:.0f} ms")
    assert ex.reply["content"]["status"] == "error"
    assert ex.reply["content"]["ename"] == "CancelledError"
    assert latency < 3.0, f"interrupt took {latency:.2f} s"
    interrupted = [m for m in kernel.iopub if m["msg_type"] == "update_display_data"
                   and m["parent_header"].get("msg_id") in (started.msg_id, ex.msg_id)]
    assert any("⏹ interrupted" in m["content"]["data"].get("text/markdown", "")
               for m in interrupted)
    out = kernel.ok(
        "print(job.status, sq.health()['busy'], [m.role for m in sq.messages],"
        " signal.getsignal(signal.SIGINT) == idle_handler)")
    assert out == "cancelled False ['user'] True\n"
    kernel.ok("%%alloy -s sq -o r2\nstill there?")
    assert kernel.ok("print(r2.text, [m.role for m in sq.messages])") == \
        "after ['user', 'user', 'assistant']\n"


def test_interrupting_a_shielded_wait_keeps_the_run_going(kernel: Kernel) -> None:
    kernel.ok("sw = Session(provider=Scripted([Scripted.delay(1.5, 'kept')]))")
    assert kernel.run("%%alloy -s sw --background -o jw\nkeep going").ok
    ex = kernel.run("r = await jw.wait(shield=True)", interrupt_after=0.5)
    assert ex.reply["content"]["ename"] == "CancelledError"
    assert ex.interrupted is not None and ex.ended - ex.interrupted < 3.0
    assert kernel.ok("print(jw.status)") == "running\n"
    assert kernel.ok("r = await jw\nprint(r.status, r.text)") == "completed kept\n"


def test_gemini_provider_spec_in_a_real_kernel(kernel: Kernel) -> None:
    """``%alloy provider gemini:MODEL`` in a kernel: the native provider streams the answer
    into the cell (Google's endpoint pointed at a loopback fake) and the cost is priced."""
    secret = "test-key-kernel-gemini-77"
    kernel.ok("import os, alloy_nb.providers.gemini as G\n"
              "from alloy_nb.testing import FakeProviderServer, reply\n"
              "gsrv = FakeProviderServer([reply.text('Hallo ' * 40)]).start()\n"
              f"G.DEFAULT_BASE_URL, os.environ['GEMINI_API_KEY'] = gsrv.url, {secret!r}\n"
              "%alloy provider gemini:gemini-2.5-flash")
    try:
        ex = kernel.run("%%alloy -o rg\nSay hello")
        assert ex.ok
        # the fake's default usage (10 in, 5 out) at gemini-2.5-flash's catalogue price;
        # run_usage is this cell's share (a session's usage is cumulative)
        cents = (10 * 0.30 + 5 * 2.50) * 100 / 1e6
        out = kernel.ok("print(type(J.controller().session().config.provider).__name__,"
                        " rg.text.count('Hallo'), round(rg.run_usage.estimated_cost_cents, 9),"
                        " gsrv.requests[0].path)")
        assert out == (f"Gemini 40 {round(cents, 9)} "
                       "/v1beta/models/gemini-2.5-flash:streamGenerateContent\n")
        assert secret not in json.dumps([m["content"] for m in kernel.of(ex)])
    finally:
        kernel.ok("gsrv.stop(); del os.environ['GEMINI_API_KEY']\n"
                  "G.DEFAULT_BASE_URL = 'https://generativelanguage.googleapis.com'\n"
                  "%alloy provider demo")
