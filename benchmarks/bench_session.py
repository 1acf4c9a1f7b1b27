"""Memory and time of a Session holding 1k/5k/10k messages, and of one compaction pass.

Run: ``python benchmarks/bench_session.py``. Offline (Scripted provider). Prints a table,
per-message figures and the 10k/1k ratios, which should stay near 10 (linear growth).
"""

from __future__ import annotations

import asyncio
import gc
import time
import tracemalloc
from collections.abc import Callable
from typing import Any

from alloy_nb.compaction import Compaction, estimate_tokens, maybe_compact
from alloy_nb.messages import Message, TextBlock, ToolResultBlock, ToolUseBlock
from alloy_nb.providers.scripted import Scripted
from alloy_nb.session import Session

SIZES = (1_000, 5_000, 10_000)


def history(n: int) -> list[Message]:
    """A realistic mix: prompts, tool calls with ~500-char results, prose answers."""
    msgs: list[Message] = []
    i = 0
    while len(msgs) < n:
        msgs.append(Message(role="user", content=f"Step {i}: look at module {i} " + "q" * 120))
        call = ToolUseBlock(id=f"call_{i}", name="read", input={"path": f"src/mod_{i}.py"})
        msgs.append(Message(role="assistant", content=[TextBlock(text="Reading it."), call]))
        msgs.append(Message(role="user", content=[
            ToolResultBlock(tool_use_id=f"call_{i}", content=f"# module {i}\n" + "x" * 500)]))
        msgs.append(Message(role="assistant", content=f"Module {i} does thing {i}. " + "y" * 200))
        i += 1
    return msgs[:n]


def measure(fn: Callable[[], Any]) -> tuple[float, int, Any]:
    """(seconds, tracemalloc peak bytes, result): timed in a plain run, since tracing
    allocations slows Python down several times, then traced in a second run."""
    gc.collect()
    t0 = time.perf_counter()
    out = fn()
    elapsed = time.perf_counter() - t0
    gc.collect()
    tracemalloc.start()
    fn()
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    return elapsed, peak, out


def session_run(n: int) -> tuple[float, int, float]:
    """Build a Session over n messages and run one chat turn; returns (s, peak, chat s)."""

    def build_and_chat() -> float:
        session = Session(provider=Scripted(["ok"]), messages=history(n), max_tokens=10**9)
        t0 = time.perf_counter()
        session.chat("one more question")
        return time.perf_counter() - t0

    elapsed, peak, chat_s = measure(build_and_chat)
    return elapsed, peak, chat_s


def compaction_run(n: int) -> tuple[float, int]:
    msgs = history(n)
    budget = estimate_tokens(msgs) // 2  # over budget: one summary pass

    async def compact() -> Any:
        out = await maybe_compact(msgs, settings=Compaction(), max_tokens=budget,
                                  provider=Scripted(["summary of the work so far"]))
        assert out is not None and out.method == "summary"
        return out

    elapsed, peak, _ = measure(lambda: asyncio.run(compact()))
    return elapsed, peak


def estimate_run(n: int) -> tuple[float, float]:
    """First (uncached) and repeated estimate of n messages, in seconds."""
    msgs = history(n)
    t0 = time.perf_counter()
    estimate_tokens(msgs)
    first = time.perf_counter() - t0
    t0 = time.perf_counter()
    estimate_tokens(msgs)
    return first, time.perf_counter() - t0


def main() -> None:
    rows = []
    for n in SIZES:
        s_time, s_peak, chat_s = session_run(n)
        c_time, c_peak = compaction_run(n)
        e_first, e_again = estimate_run(n)
        rows.append((n, s_time, s_peak, chat_s, c_time, c_peak, e_first, e_again))
    print(f"{'messages':>8} | {'session s':>9} {'peak MB':>8} {'chat ms':>8} | "
          f"{'compact s':>9} {'peak MB':>8} | {'est ms':>7} {'cached':>7}")
    print("-" * 84)
    for n, st, sp, cs, ct, cp, ef, ea in rows:
        print(f"{n:>8,} | {st:>9.3f} {sp / 1e6:>8.2f} {cs * 1e3:>8.1f} | "
              f"{ct:>9.3f} {cp / 1e6:>8.2f} | {ef * 1e3:>7.2f} {ea * 1e3:>7.2f}")
    print("\nper message (at 10k):")
    n, st, sp, cs, ct, cp, ef, ea = rows[-1]
    print(f"  session: {st / n * 1e6:.1f} µs, {sp / n:.0f} B peak; "
          f"chat turn {cs / n * 1e6:.2f} µs")
    print(f"  compaction: {ct / n * 1e6:.1f} µs, {cp / n:.0f} B peak; "
          f"estimate {ef / n * 1e6:.2f} µs first, {ea / n * 1e6:.2f} µs cached")
    first, last = rows[0], rows[-1]
    print("\nratio 10k/1k (linear ≈ 10):")
    for label, i in (("session time", 1), ("session peak", 2), ("chat turn", 3),
                     ("compaction time", 4), ("compaction peak", 5), ("estimate", 6)):
        print(f"  {label:<16} {last[i] / first[i]:5.1f}")


if __name__ == "__main__":
    main()
