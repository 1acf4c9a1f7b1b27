"""Issue 10 (second half) in a real kernel via nbclient: what a saved notebook holds.

One notebook is executed once (kernel python3 of this venv, no API keys): usage from
Python and from cells, a provider without a key, a failing run, a background run. Each
test reads the outputs nbclient saved, i.e. what the .ipynb would hold.
"""

from __future__ import annotations

import json
import os
import re
from typing import Any

import nbformat
import pytest

from alloy_nb.testing.env import without_api_keys

pytestmark = pytest.mark.kernel

WIDGET = "application/vnd.jupyter.widget-view+json"

CELLS = {
    "load": "%load_ext alloy_nb\nimport asyncio, os, time\nimport alloy_nb as alloy\n"
            "from alloy_nb.providers.scripted import Scripted",
    "python_chat": "tutor = alloy.Session(provider=Scripted(['a', 'b'], usage=(120, 30)))\n"
                   "tutor.chat('one'); tutor.chat('two');",
    "cell_run": "%%alloy\nWhat is 2+2?",
    "second_cell": "%%alloy -s other\nWhat is 3+3?",
    "nokey": "t0 = time.monotonic()\n%alloy provider anthropic:claude-sonnet-4-6",
    "nokey_time": "print(f'{time.monotonic() - t0:.2f}')",
    "still_demo": "%%alloy\nWhat is 5+5?",
    "fails": "broken = Scripted([])\n%alloy provider broken",
    "fail_run": "%%alloy -s failing\nanything",
    "back_to_demo": "%alloy provider demo",
    "background": "%%alloy --background -s bg\nWhat is 6*7?",
    "background_o": "%%alloy --background -s bg2 -o job\nWhat is 7*8?",
    "wait": "await asyncio.sleep(1.5)\nr = await job\nprint(r.status)\njob",
    "usage": "%alloy usage",
}


@pytest.fixture(scope="module")
def executed(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    from nbclient import NotebookClient

    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in CELLS.values()])
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    workdir = tmp_path_factory.mktemp("doc")
    client = NotebookClient(nb, kernel_name="python3", timeout=60, allow_errors=True,
                            resources={"metadata": {"path": str(workdir)}})
    client.execute(env=without_api_keys(os.environ))
    return dict(zip(CELLS, nb.cells, strict=True))


def _texts(cell: Any) -> list[str]:
    out = []
    for o in cell.outputs:
        if o.output_type == "stream":
            out.append(o.text)
        elif o.output_type == "error":
            out.append(f"{o.ename}: {o.evalue}\n" + "\n".join(o.traceback))
        else:
            data = o.get("data", {})
            out += [str(data[m]) for m in ("text/plain", "text/markdown", "text/html") if m in data]
    return out


def test_usage_counts_session_chat_from_python_and_every_cell(executed) -> None:
    cell = executed["usage"]
    [out] = [o for o in cell.outputs if o.output_type == "display_data"]
    plain, md = out.data["text/plain"], out.data["text/markdown"]
    rows = {r[0]: r for r in (re.split(r"\s{2,}", line.strip())
                              for line in plain.splitlines()[1:]) if len(r) >= 8}
    assert rows["tutor"][1:7] == ["scripted", "scripted", "2", "0", "240", "60"]  # Python
    assert rows["default"][3] == "2" and rows["other"][3] == "1"  # %%alloy cells
    assert rows["failing"][3:5] == ["1", "1"]  # the failed run counts, as failed
    assert {"bg", "bg2"} <= set(rows)  # background runs too
    assert "| tutor | scripted | scripted | 2 | 0 | 240 | 60 |" in md
    assert "unpriced: no known price for scripted:scripted" in plain


def test_provider_without_key_fails_at_once_in_magic_terms(executed) -> None:
    [err] = [o.text for o in executed["nokey"].outputs if o.output_type == "stream"]
    assert err.startswith("UsageError: %alloy provider anthropic:claude-sonnet-4-6: no API key")
    message = err
    assert "ANTHROPIC_API_KEY" in message and "getpass.getpass(" in message
    assert "os.environ['ANTHROPIC_API_KEY']" in message
    assert "api_key=" not in message  # speaks in magics, not constructor arguments
    assert float("".join(_texts(executed["nokey_time"]))) < 1.0  # no request was tried
    # nothing changed: the next cell still answers on the demo
    assert any("**10**" in t for t in _texts(executed["still_demo"]))


def test_a_failed_run_shows_its_error_once(executed) -> None:
    reason = "Scripted provider has no more replies"
    outs = executed["fail_run"].outputs
    finals = [o.data.get("text/markdown", "") for o in outs if o.output_type == "display_data"]
    assert sum(md.count(reason) for md in finals) == 1  # once, in the run's own output
    errors = [o for o in outs if o.output_type == "error"]
    assert len(errors) == 1 and reason not in "\n".join(errors[0].traceback)
    assert "shown above" in "\n".join(errors[0].traceback)  # the traceback points there
    assert not [o for o in outs if o.output_type == "stream" and reason in o.text]


def test_background_cell_leaves_no_stale_running_out(executed) -> None:
    for name in ("background", "background_o"):
        outs = executed[name].outputs
        assert not [o for o in outs if o.output_type == "execute_result"], name
    everything = json.dumps([c.outputs for c in executed.values()])
    assert ": running" not in everything
    wait = "".join(_texts(executed["wait"]))
    assert "completed" in wait
    assert "<alloy background run 'bg2': completed>" in wait  # the handle's repr is final


# ---- blocking approval, driven over ZMQ like JupyterLab (which has stdin) -------------


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Any:
    from .test_kernel import Kernel

    k = Kernel(tmp_path_factory.mktemp("kernelspec"))
    try:
        k.ok("%load_ext alloy_nb\nfrom alloy_nb.providers.scripted import Scripted")
        yield k
    finally:
        k.close()


def _front_end_outputs(msgs: list[dict[str, Any]], echo_at: int, echo: str) -> list[dict]:
    """Apply IOPub messages the way JupyterLab's output area does, including the stdin
    echo it adds itself (``{"name": "stdin"}`` stream) when the person answers."""
    outputs: list[dict[str, Any]] = []
    pending_clear = False
    for i, m in enumerate(msgs):
        if i == echo_at:
            outputs.append({"type": "stream", "text": echo})
        kind, c = m["msg_type"], m["content"]
        if kind == "clear_output":
            if c["wait"]:
                pending_clear = True
            else:
                outputs = []
            continue
        if kind in ("stream", "display_data", "execute_result", "error") and pending_clear:
            outputs, pending_clear = [], False
        if kind == "stream":
            outputs.append({"type": "stream", "text": c["text"]})
        elif kind == "display_data":
            outputs.append({"type": "display", "id": c.get("transient", {}).get("display_id"),
                            "data": c["data"]})
        elif kind == "update_display_data":
            for o in outputs:
                if o["type"] == "display" and o["id"] == c["transient"]["display_id"]:
                    o["data"] = c["data"]
    return outputs


def _card_drawn_before(msgs: list[dict[str, Any]], asked: Any) -> bool:
    """The tool card (a ``<details>`` in a Markdown output) was published before the y/N
    request was sent (kernel timestamps: IOPub and stdin are separate sockets, so arrival
    order is not send order)."""
    return any(m["msg_type"] in ("display_data", "update_display_data")
               and m["header"]["date"] < asked
               and "<summary>🔧 run_python" in m["content"]["data"].get("text/markdown", "")
               for m in msgs)


def test_blocking_approval_card_first_then_verdict_in_the_transcript(kernel) -> None:
    import queue
    import time as _time

    kernel.ok(
        "pa = Scripted([Scripted.tool_calls(('run_python', {'code': 'approved_value = 41 + 1'})),"
        " 'All done: the value is 42.'])\n%alloy provider pa\n%alloy tools run_python\n"
        "%alloy approve ask")
    content = {"code": "%%alloy -s asking -o ra\nplease set the value", "silent": False,
               "store_history": True, "user_expressions": {}, "allow_stdin": True,
               "stop_on_error": True}
    request = kernel.kc.session.msg("execute_request", content)
    kernel.kc.shell_channel.send(request)
    msg_id = request["header"]["msg_id"]
    mine: list[dict[str, Any]] = []
    echo_at, prompt, card_first = -1, "", False
    end = _time.monotonic() + 30
    while _time.monotonic() < end:
        if echo_at < 0:
            try:
                ask = kernel.kc.get_stdin_msg(timeout=0)
            except queue.Empty:
                ask = None
            if ask is not None:
                prompt = ask["content"]["prompt"]
                t_end = _time.monotonic() + 1.2  # the person reads the code; IOPub catches up
                while _time.monotonic() < t_end:
                    msg = kernel._read(0.01)
                    if msg is not None and msg["parent_header"].get("msg_id") == msg_id:
                        mine.append(msg)
                card_first = _card_drawn_before(mine, ask["header"]["date"])
                kernel.kc.input("y")
                echo_at = len(mine)
        msg = kernel._read(0.01)
        if msg is None or msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            break
        mine.append(msg)
    assert prompt == "Run it? [y/N] " and card_first, "the tool card must precede the y/N prompt"
    outputs = _front_end_outputs(mine, echo_at, prompt + "y\n")
    assert {o["type"] for o in outputs} == {"display"}, outputs  # no log below the answer
    assert not any(WIDGET in o["data"] for o in outputs)  # a static document
    md = "\n\n".join(o["data"].get("text/markdown", "") for o in outputs)
    assert "Run it?" not in md and "wants to run this code" not in md
    card, verdict, answer = (md.index("🔧 run_python"), md.index("run_python: ✓ approved by you"),
                             md.index("All done: the value is 42."))
    assert card < verdict < answer
    took = float(re.search(r"you took (\d+\.\d) s", md).group(1))
    assert took >= 1.1
    timing = kernel.ok("c = ra.tool_calls[0]\nprint(c.duration_ms, c.wait_ms, approved_value)")
    duration_ms, wait_ms, value = map(int, timing.split())
    assert value == 42 and wait_ms >= 1100 and duration_ms < 1000  # the wait is apart
    kernel.ok("%alloy tools none\n%alloy provider demo")
