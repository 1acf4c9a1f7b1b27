"""alloy.amap over 1,000 items against the fake server (200 ms latency, own process) at
concurrency 50, versus a hand-written ``asyncio.gather`` + ``Semaphore`` over raw httpx
sending the same requests.

Wall time is compared with the ideal ``items × latency / concurrency`` (target within
1.3x); client CPU per item (``time.process_time``: the server runs in a child process)
with the raw-httpx loop (target within 1.5x).

    .venv/bin/python benchmarks/bench_map.py [--items 1000] [--latency 0.2] [--concurrency 50]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import subprocess
import sys
import textwrap
import time
from typing import Any

import httpx

import alloy_nb as alloy
from alloy_nb.messages import user
from alloy_nb.providers import Anthropic, ProviderRequest

KEY = "bench-key"
ANSWER = "positive"

_SERVER = textwrap.dedent(
    """
    import sys
    from alloy_nb.testing import FakeProviderServer, reply
    n, latency = int(sys.argv[1]), float(sys.argv[2])
    with FakeProviderServer([reply.text(sys.argv[3], usage=(40, 2))] * n,
                            latency=latency) as srv:
        print(srv.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
    """
)


async def raw(url: str, headers: dict[str, str], prompts: list[str], concurrency: int,
              template: dict[str, Any]) -> list[str]:
    """The baseline a careful user would write by hand."""
    sem = asyncio.Semaphore(concurrency)
    async with httpx.AsyncClient(timeout=60) as client:  # httpx's default pool
        async def one(prompt: str) -> str:
            body = {**template, "messages": [{"role": "user", "content": prompt}]}
            async with sem:
                resp = await client.post(url, json=body, headers=headers)
                resp.raise_for_status()
                data = resp.json()
            return "".join(b.get("text", "") for b in data["content"])

        return await asyncio.gather(*(one(p) for p in prompts))


async def with_alloy(url: str, prompts: list[str], concurrency: int) -> list[str]:
    batch = await alloy.amap("{item}", prompts, provider=Anthropic(api_key=KEY, base_url=url),
                             concurrency=concurrency, progress=False)
    assert not batch.errors, list(batch.errors.items())[:3]
    return batch.outputs


def measure(fn: Any) -> tuple[float, float, Any]:
    wall, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return time.perf_counter() - wall, time.process_time() - cpu, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--items", type=int, default=1000)
    ap.add_argument("--latency", type=float, default=0.2)
    ap.add_argument("--concurrency", type=int, default=50)
    ap.add_argument("--repeat", type=int, default=2)
    args = ap.parse_args()
    n, c, lat = args.items, args.concurrency, args.latency
    prompts = [f"Classify the sentiment of review #{i}: great product" for i in range(n)]
    total = (n * 2) * (args.repeat + 1)
    server = subprocess.Popen([sys.executable, "-c", _SERVER, str(total), str(lat), ANSWER],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        p = Anthropic(api_key=KEY, base_url=url)
        call = p._call()  # type: ignore[attr-defined]
        template = p.build_body(ProviderRequest(messages=[user("x")]), stream=False)  # type: ignore[attr-defined]
        template.pop("messages", None)
        ideal = n * lat / c
        print(f"{n} items, {lat * 1000:.0f} ms latency, concurrency {c}; fake server at {url}"
              f" (own process); ideal wall {ideal:.2f} s; best of {args.repeat}\n")
        best: dict[str, tuple[float, float]] = {}
        for round_ in range(args.repeat + 1):  # round 0 warms up imports and pools
            for name, fn in (
                ("alloy.amap", lambda: asyncio.run(with_alloy(url, prompts, c))),
                ("raw httpx", lambda: asyncio.run(raw(call.url, call.headers, prompts, c,
                                                      template))),
            ):
                wall, cpu, out = measure(fn)
                assert out == [ANSWER] * n, out[:3]
                if round_:
                    w0, c0 = best.get(name, (float("inf"), float("inf")))
                    best[name] = (min(w0, wall), min(c0, cpu))
        print(f"{'':<12}{'wall s':>9}{'vs ideal':>10}{'CPU ms/item':>13}")
        for name, (wall, cpu) in best.items():
            print(f"{name:<12}{wall:>9.2f}{wall / ideal:>10.2f}{cpu / n * 1000:>13.3f}")
        a_wall, a_cpu = best["alloy.amap"]
        _, r_cpu = best["raw httpx"]
        print(f"\nalloy wall / ideal {a_wall / ideal:.2f} (target <= 1.3); "
              f"alloy CPU / raw CPU {a_cpu / r_cpu:.2f} (target <= 1.5)")
        load = os.getloadavg()[0]
        print(f"load average {load:.1f} on {os.cpu_count()} CPUs: wall times need an idle "
              "machine (a CPU-starved client reads responses late); the CPU ratio does not")
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=10)


if __name__ == "__main__":
    main()
