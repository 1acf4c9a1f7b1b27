"""Loop overhead per turn with the Scripted provider (no HTTP, no sleeping).

Measures what alloy_nb itself costs per model turn: config resolution, events, usage
pricing, history repair, tool dispatch. Run: ``.venv/bin/python benchmarks/bench_loop.py``.
"""

from __future__ import annotations

import asyncio
import statistics
import time
from collections.abc import Callable
from typing import Any

import alloy_nb as alloy
from alloy_nb.providers.scripted import Scripted
from alloy_nb.tools.base import Tool

TEXT = "The answer is four; " * 5  # 100 characters, 25 deltas when streaming


class Add(Tool):
    name = "add"
    description = "Add two integers"

    async def execute(self, input: dict[str, Any], context: Any) -> str:
        return str(input["a"] + input["b"])


class SyncAdd(Add):
    name = "add"

    def execute(self, input: dict[str, Any], context: Any) -> str:  # type: ignore[override]
        return str(input["a"] + input["b"])


def _tool_script() -> list[Any]:
    return [Scripted.tool_calls(("add", {"a": i, "b": 1})) for i in range(3)] + [TEXT]


async def _many(n: int, script: Callable[[], list[Any]], streaming: bool,
                tools: list[Any]) -> float:
    events = 0

    def count(ev: Any) -> None:
        nonlocal events
        events += 1

    t0 = time.perf_counter()
    for _ in range(n):
        provider = Scripted(script())
        if streaming:
            await alloy.astream("q", None, provider=provider, tools=tools, on_event=count)
        else:
            await alloy.arun("q", provider=provider, tools=tools, on_event=count)
    return time.perf_counter() - t0


def _sync_many(n: int) -> float:
    t0 = time.perf_counter()
    for _ in range(n):
        alloy.run("q", provider=Scripted([TEXT]))
    return time.perf_counter() - t0


def _report(label: str, seconds: float, runs: int, turns: int) -> None:
    per_turn = seconds / (runs * turns) * 1e6
    print(f"{label:<46} {runs:>5} runs x {turns} turns  {per_turn:8.1f} µs/turn")


def main() -> None:
    asyncio.run(_many(50, lambda: [TEXT], False, []))  # warm-up (imports, caches)
    print(f"alloy_nb {alloy.__version__} loop overhead (Scripted provider, no HTTP)")
    for streaming in (False, True):
        mode = "streaming" if streaming else "complete"
        best = min(asyncio.run(_many(2000, lambda: [TEXT], streaming, [])) for _ in range(3))
        _report(f"single text turn, arun, {mode}", best, 2000, 1)
        best = min(asyncio.run(_many(500, _tool_script, streaming, [Add])) for _ in range(3))
        _report(f"4 turns (3 async tool calls), arun, {mode}", best, 500, 4)
    best = min(asyncio.run(_many(500, _tool_script, False, [SyncAdd])) for _ in range(3))
    _report("4 turns (3 sync tool calls, thread), arun", best, 500, 4)
    samples = [_sync_many(500) for _ in range(3)]
    _report("single text turn, sync run() via loop thread", statistics.median(samples), 500, 1)


if __name__ == "__main__":
    main()
