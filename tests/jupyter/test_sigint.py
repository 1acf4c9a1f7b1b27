"""The scoped SIGINT handler behind a prompt ■ during ``await handle`` (no kernel needed).

A real SIGINT is sent to this process from a helper thread while the main thread's loop
sleeps on a 30 s timer, the situation of ipykernel #881: only a thread-safe wake-up gets
the cancel through in time. The handler that was installed before is a recording stand-in
for ipykernel's, so each test restores pytest's own handler afterwards.
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
import time
from collections.abc import Iterator
from typing import Any

import pytest

from alloy_nb.jupyter import runner
from alloy_nb.jupyter._sigint import cancel_on_sigint
from alloy_nb.jupyter.render import Transcript
from alloy_nb.result import Result

pytestmark = pytest.mark.skipif(not hasattr(signal, "pthread_kill"), reason="POSIX signals")


@pytest.fixture
def previous() -> Iterator[list[float]]:
    """A stand-in for ipykernel's handler: records when it was called, does nothing else."""
    calls: list[float] = []
    saved = signal.signal(signal.SIGINT, lambda *_: calls.append(time.monotonic()))
    try:
        yield calls
    finally:
        signal.signal(signal.SIGINT, saved)


def _interrupt_after(seconds: float) -> list[float]:
    sent: list[float] = []

    def fire() -> None:
        time.sleep(seconds)
        sent.append(time.monotonic())
        os.kill(os.getpid(), signal.SIGINT)

    threading.Thread(target=fire, daemon=True).start()
    return sent


def _run(coro: Any) -> Any:
    loop = asyncio.new_event_loop()  # not asyncio.run: its Runner installs its own handler
    try:
        return loop.run_until_complete(coro)
    finally:
        loop.close()


class _View:
    def __init__(self) -> None:
        self.transcript = Transcript(model="m", prompt="p")
        self.finalized = 0

    def flush(self) -> None:
        pass

    def finalize(self) -> None:
        self.finalized += 1


def _silent_factory(seconds: float) -> runner.RunFactory:
    async def factory(on_event: Any) -> Result:
        await asyncio.sleep(seconds)  # silent before its first byte
        return Result(text="late", status="completed")

    return factory


def test_sigint_cancels_the_waiting_task_at_once_and_chains(previous: list[float]) -> None:
    async def main() -> tuple[bool, bool]:
        with cancel_on_sigint() as installed:
            inside = signal.getsignal(signal.SIGINT)
            try:
                await asyncio.sleep(30)
            except asyncio.CancelledError:
                return installed, callable(inside) and inside is not signal.default_int_handler
        raise AssertionError("not cancelled")

    handler = signal.getsignal(signal.SIGINT)
    sent = _interrupt_after(0.3)
    installed, ours = _run(main())
    latency = time.monotonic() - sent[0]
    assert installed and ours
    assert len(previous) == 1  # chained: ipykernel's own handler still runs
    assert latency < 1.0, latency
    assert signal.getsignal(signal.SIGINT) is handler  # restored


def test_not_installed_while_the_interrupt_is_ignored() -> None:
    async def main() -> bool:
        with cancel_on_sigint() as installed:
            assert signal.getsignal(signal.SIGINT) is signal.SIG_IGN
            return installed

    saved = signal.signal(signal.SIGINT, signal.SIG_IGN)  # an idle ipykernel
    try:
        assert _run(main()) is False
    finally:
        signal.signal(signal.SIGINT, saved)


def test_not_installed_off_the_main_thread(previous: list[float]) -> None:
    out: list[bool] = []

    async def main() -> None:
        with cancel_on_sigint() as installed:
            out.append(installed)

    worker = threading.Thread(target=lambda: _run(main()))
    worker.start()
    worker.join(10)
    assert out == [False]


def test_handlers_left_out_of_order_restore_the_original(previous: list[float]) -> None:
    original = signal.getsignal(signal.SIGINT)

    async def waiter(release: asyncio.Event) -> None:
        with cancel_on_sigint():
            await release.wait()

    async def main() -> None:
        first, second = asyncio.Event(), asyncio.Event()
        a = asyncio.create_task(waiter(first))
        b = asyncio.create_task(waiter(second))
        await asyncio.sleep(0.01)
        first.set()  # the first one installed leaves first
        await a
        assert signal.getsignal(signal.SIGINT) is not original  # b still needs its own
        second.set()
        await b

    _run(main())
    assert signal.getsignal(signal.SIGINT) is original


def test_interrupting_await_of_a_background_run_stops_the_run(previous: list[float]) -> None:
    view = _View()

    async def main() -> tuple[BaseException | None, runner.BackgroundRun]:
        handle = runner.start_background(_silent_factory(30), view, "bg")
        await asyncio.sleep(0)
        try:
            await handle
        except asyncio.CancelledError as exc:
            return exc, handle
        return None, handle

    sent = _interrupt_after(0.3)
    exc, handle = _run(main())
    assert isinstance(exc, asyncio.CancelledError)
    assert time.monotonic() - sent[0] < 1.0
    assert handle.done() and handle.status == "cancelled"
    assert view.transcript.status == "cancelled" and view.finalized == 1


def test_interrupting_a_shielded_wait_leaves_the_run_going(previous: list[float]) -> None:
    view = _View()

    async def main() -> tuple[str, Result]:
        handle = runner.start_background(_silent_factory(0.8), view, "bg")
        with pytest.raises(asyncio.CancelledError):
            await handle.wait(shield=True)
        during = handle.status
        return during, await handle

    sent = _interrupt_after(0.2)
    during, result = _run(main())
    assert sent and during == "running"
    assert result.status == "completed" and result.text == "late"
