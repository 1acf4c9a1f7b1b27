"""Front-end traffic of a streamed answer: messages and bytes a real kernel sends for a
5,000-delta answer through ``%%alloy``, against a naive widget that is updated per delta.

Run: ``python benchmarks/bench_widgets.py``. Starts one ipykernel (this interpreter), counts
the IOPub messages (comm_open, comm_msg, display_data, update_display_data, stream) whose
parent is the measured cell, and prints counts, bytes, wall time, updates per second, the
ratio of bytes sent to the answer's own size, and how many outputs the cell ends with
(the answer is Markdown outputs: one per finished paragraph group, plus the live tail).
"""

from __future__ import annotations

import json
import queue
import sys
import time
from typing import Any

from jupyter_client import KernelManager

UI = {"comm_open", "comm_msg", "display_data", "update_display_data", "stream"}

SETUP = """
import asyncio
import ipywidgets
import alloy_nb
from alloy_nb.messages import Message
from alloy_nb.providers.base import Completion, Provider
%load_ext alloy_nb

class Paced(Provider):
    name = "paced"
    supports_streaming = True

    def __init__(self, text, pause):
        self.model, self.text, self.pause = "paced", text, pause

    async def complete(self, request):
        return Completion(stop_reason="end_turn",
                          message=Message(role="assistant", content=self.text))

    async def stream(self, request, on_delta):
        for n, i in enumerate(range(0, len(self.text), 4)):
            on_delta("text", self.text[i:i + 4])
            if self.pause and n % 2 == 0:
                await asyncio.sleep(self.pause)
        return await self.complete(request)

text = "\\n\\n".join(f"Paragraph {i}: " + "word " * 45 for i in range(90))
chunks = [text[i:i + 4] for i in range(0, len(text), 4)]
print(len(chunks))
"""

NAIVE = """
view = ipywidgets.HTML()
display(view)
shown = ""
for c in chunks:
    shown += c
    view.value = shown
"""


def _run(kc: Any, code: str) -> tuple[list[dict[str, Any]], float]:
    """Execute ``code``; its IOPub messages and wall time. The naive run floods IOPub past
    ZMQ's high-water mark, which may drop even the "idle" status, so the shell's
    execute_reply also ends the wait (then IOPub is drained briefly)."""
    msg_id = kc.execute(code)
    start = time.monotonic()
    own: list[dict[str, Any]] = []
    replied_at: float | None = None
    while True:
        if replied_at is None:
            try:
                reply = kc.get_shell_msg(timeout=0)
                if reply["parent_header"].get("msg_id") == msg_id:
                    replied_at = time.monotonic()
            except queue.Empty:
                pass
        try:
            msg = kc.get_iopub_msg(timeout=0.05)
        except queue.Empty:
            if replied_at is not None and time.monotonic() - replied_at > 2:
                return own, replied_at - start
            if time.monotonic() - start > 300:
                raise RuntimeError(f"no reply to {code[:40]!r}") from None
            continue
        if msg["parent_header"].get("msg_id") != msg_id:
            continue
        if msg["msg_type"] == "error":
            raise RuntimeError("\n".join(msg["content"]["traceback"]))
        if msg["msg_type"] == "status" and msg["content"]["execution_state"] == "idle":
            return own, time.monotonic() - start
        own.append(msg)


def _traffic(msgs: list[dict[str, Any]]) -> tuple[int, int]:
    ui = [m for m in msgs if m["msg_type"] in UI]
    return len(ui), sum(len(json.dumps(m["content"])) for m in ui)


def main() -> None:
    km = KernelManager(kernel_name="python3")
    km.kernel_spec.argv[0] = sys.executable  # this interpreter, wherever it lives
    km.start_kernel()
    kc = km.client()
    kc.start_channels()
    kc.wait_for_ready(timeout=60)
    try:
        out, _ = _run(kc, SETUP)
        deltas = int("".join(m["content"]["text"] for m in out if m["msg_type"] == "stream"))
        naive_n, naive_b = _traffic(_run(kc, NAIVE)[0])
        print(f"answer: {deltas:,} deltas; naive HTML widget updated per delta: "
              f"{naive_n:,} messages, {naive_b / 1e6:.1f} MB")
        answer = int("".join(m["content"]["text"] for m in _run(kc, "print(len(text))")[0]
                             if m["msg_type"] == "stream"))
        print(f"answer: {answer / 1024:.1f} KB of Markdown")
        print(f"{'pacing':<22}{'wall s':>8}{'messages':>10}{'msg/s':>7}{'KB':>7}"
              f"{'x answer':>10}{'outputs':>9}{'vs naive (msgs)':>17}")
        for label, pause in (("as fast as possible", 0.0), ("~3 s stream", 0.001),
                             ("~8 s stream", 0.003)):
            _run(kc, f"sess = alloy_nb.Session(provider=Paced(text, {pause}))")
            msgs, took = _run(kc, "%%alloy -s sess\ncount me")
            n, b = _traffic(msgs)
            outputs = sum(m["msg_type"] == "display_data" for m in msgs)
            print(f"{label:<22}{took:>8.2f}{n:>10}{n / took:>7.1f}{b / 1024:>7.0f}"
                  f"{b / answer:>10.2f}{outputs:>9}{n / naive_n:>16.3f}x")
    finally:
        kc.stop_channels()
        km.shutdown_kernel(now=True)


if __name__ == "__main__":
    main()
