"""What the bubblewrap sandbox costs a Bash call: ``echo hi`` through the Bash tool with the
sandbox, without it, and a raw ``asyncio.create_subprocess_exec("bash", ...)`` for the floor.

Median of N calls each, after one warm-up call (which also runs the one-time bwrap probe).

    python benchmarks/bench_bash_sandbox.py [--runs 30]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import tempfile
import time

from alloy_nb.tools import _sandbox
from alloy_nb.tools.core import Bash


async def _raw(cwd: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "bash", "-rc", "echo hi", cwd=cwd, stdout=asyncio.subprocess.PIPE)
    await proc.communicate()


async def _median(fn, runs: int) -> float:  # type: ignore[no-untyped-def]
    await fn()
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        await fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times) * 1000


async def main(runs: int) -> None:
    with tempfile.TemporaryDirectory() as wd:
        bash = Bash()

        def call(sandbox: object):  # type: ignore[no-untyped-def]
            ctx = {"working_directory": wd, "bash_sandbox": sandbox}
            return lambda: bash.execute({"command": "echo hi"}, ctx)

        raw = await _median(lambda: _raw(wd), runs)
        plain = await _median(call(False), runs)
        print(f"raw subprocess      {raw:7.2f} ms")
        print(f"Bash, no sandbox    {plain:7.2f} ms  ({plain / raw:.2f}x raw)")
        if _sandbox.sandbox_available():
            boxed = await _median(call(True), runs)
            print(f"Bash, bwrap sandbox {boxed:7.2f} ms  ({boxed / raw:.2f}x raw, "
                  f"+{boxed - plain:.2f} ms over no sandbox)")
        else:
            print("bubblewrap unavailable here: sandbox not measured")


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=30)
    asyncio.run(main(parser.parse_args().runs))
