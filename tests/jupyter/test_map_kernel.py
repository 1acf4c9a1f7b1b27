"""alloy.map in a real ipykernel: the progress is one display updated in place (no widget)
ending as static text, and the kernel's interrupt stops the batch promptly, raising
BatchInterrupted with the finished items kept; the next cell runs normally."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from .test_kernel import Kernel

pytestmark = pytest.mark.kernel

SETUP = """
%load_ext alloy_nb
import alloy_nb as alloy
from alloy_nb.providers.scripted import Scripted
def slow(n, s):
    return Scripted([Scripted.delay(s, "ok") for _ in range(n)])
"""


@pytest.fixture(scope="module")
def kernel(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Kernel]:
    k = Kernel(tmp_path_factory.mktemp("kernelspec_map"))
    try:
        k.ok(SETUP)
        yield k
    finally:
        k.close()


def _settle(kernel: Kernel) -> None:
    """ipykernel aborts execute requests that arrive while it is still aborting the queue
    after an error (stop_on_error); on a loaded machine that window can outlast a short
    drain, so wait until a trivial cell runs."""
    for _ in range(10):
        kernel.drain(0.3)
        probe = kernel.run("pass")
        if probe.reply["content"]["status"] == "ok":
            return
    raise AssertionError("the kernel kept aborting requests after the interrupt")


def _progress(kernel: Kernel, ex: Any) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    msgs = kernel.of(ex)
    shown = [m for m in msgs if m["msg_type"] == "display_data"
             and "alloy.map" in m["content"]["data"].get("text/plain", "")]
    ids = {m["content"]["transient"]["display_id"] for m in shown}
    updates = [m for m in kernel.iopub if m["msg_type"] == "update_display_data"
               and m["content"].get("transient", {}).get("display_id") in ids]
    return shown, updates


def test_progress_updates_in_place_then_static_text(kernel: Kernel) -> None:
    out = kernel.ok("b = alloy.map('{item}', list(range(24)), provider=slow(24, 0.25), "
                    "concurrency=4)\nprint(len(b.outputs), len(b.errors))")
    assert out.strip() == "24 0"
    ex = kernel.run("pass")  # flush
    assert ex.ok
    cell = [m for m in kernel.iopub if m["msg_type"] == "display_data"
            and "alloy.map" in m["content"]["data"].get("text/plain", "")]
    assert len(cell) == 1
    display_id = cell[0]["content"]["transient"]["display_id"]
    updates = [m for m in kernel.iopub if m["msg_type"] == "update_display_data"
               and m["content"]["transient"]["display_id"] == display_id]
    assert len(updates) >= 3  # it moved while running (1.5 s of work, <= 4 updates/s)
    texts = [u["content"]["data"]["text/plain"] for u in updates]
    assert any(t.startswith("alloy.map running:") for t in texts[:-1])
    assert texts[-1].startswith("alloy.map finished: 24/24 done, 0 failed")
    assert "ETA" not in texts[-1]
    assert not [m for m in kernel.iopub if m["msg_type"] == "comm_open"]  # no widget


def test_interrupt_stops_the_batch_and_keeps_finished_items(kernel: Kernel) -> None:
    ex = kernel.run("b = alloy.map('{item}', list(range(40)), provider=slow(40, 0.4), "
                    "concurrency=2)", interrupt_after=1.5, timeout=30)
    assert ex.interrupted is not None
    latency = ex.ended - ex.interrupted
    assert latency < 3.0, f"interrupt took {latency:.2f} s"
    errors = [m["content"] for m in kernel.of(ex) if m["msg_type"] == "error"]
    assert errors and errors[0]["ename"] == "BatchInterrupted"
    _settle(kernel)
    out = kernel.ok("import sys\npartial = sys.last_value.result\n"
                    "print(partial.statuses.count('completed'), len(partial.statuses),"
                    " set(partial.statuses))")
    done, total, _ = out.split(" ", 2)
    assert 2 <= int(done) < 40 and int(total) == 40
    shown, updates = _progress(kernel, ex)
    assert len(shown) == 1
    assert updates[-1]["content"]["data"]["text/plain"].startswith("alloy.map stopped:")
    again = kernel.ok("print(alloy.map('{item}', [1, 2], provider=slow(2, 0), "
                      "progress=False).outputs)")
    assert again.strip() == "['ok', 'ok']"
