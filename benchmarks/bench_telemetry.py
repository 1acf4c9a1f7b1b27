"""Cost of the OpenTelemetry hooks on one run: a scripted 3-turn run with 2 tool calls per
tool turn (so 1 run + 3 turn + 3 chat + 4 tool spans), timed three ways in one process:

- ``off``: opentelemetry treated as absent (the hooks are shared no-ops);
- ``api``: opentelemetry-api installed, no SDK configured (no-op tracer: what most users
  with the package installed but no exporter pay);
- ``sdk``: an SDK TracerProvider with an in-memory exporter (spans really recorded).

Figures are the median microseconds per run over N runs; ratios are against ``off``.

    python benchmarks/bench_telemetry.py [--runs 300] [--json]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import time
from typing import Any

from alloy_nb import telemetry
from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.messages import user
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState


async def echo(text: str) -> str:
    """Echo the text (async, so no thread per call)."""
    return text


def _script() -> list[Any]:
    two = Scripted.tool_calls(("echo", {"text": "a"}), ("echo", {"text": "b"}))
    return [two, two, "done"]


async def _runs(n: int) -> list[float]:
    times = []
    for _ in range(n):
        config = AgentConfig.from_options(provider=Scripted(_script()), tools=[echo])
        state = AgentState(messages=[user("go")])
        emitter = new_emitter(config, state)
        t0 = time.perf_counter()
        await run_loop(config, state, emitter)
        times.append(time.perf_counter() - t0)
        assert state.status == "completed" and not any(c.error for c in state.tool_calls)
    return times


def _median_us(n: int) -> float:
    return statistics.median(asyncio.run(_runs(n))) * 1e6


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=300)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    telemetry._state["trace"] = None  # as without opentelemetry
    _median_us(20)  # warm up
    off = _median_us(args.runs)
    telemetry._state.clear()
    if not telemetry.enabled():
        raise SystemExit("opentelemetry-api is not installed: only 'off' can be measured")
    api = _median_us(args.runs)

    from opentelemetry import trace
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

    provider = TracerProvider()
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    trace.set_tracer_provider(provider)
    sdk = _median_us(args.runs)
    spans_per_run = len(exporter.get_finished_spans()) / args.runs

    figures = {"off_us": off, "api_us": api, "sdk_us": sdk, "api_ratio": api / off,
               "sdk_ratio": sdk / off, "spans_per_run": spans_per_run}
    if args.json:
        print(json.dumps(figures))
        return
    print(f"one 3-turn run, median of {args.runs}:")
    print(f"  off (no opentelemetry)   {off:8.0f} us")
    print(f"  api (no SDK configured)  {api:8.0f} us   x{api / off:.2f}")
    print(f"  sdk (in-memory exporter) {sdk:8.0f} us   x{sdk / off:.2f}  "
          f"({spans_per_run:.0f} spans per run)")


if __name__ == "__main__":
    main()
