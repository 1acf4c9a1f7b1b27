"""CPU cost of one agent run through alloy_nb versus hand-written httpx code doing the same
requests, per protocol, streaming and not. The fake server runs in a child process, so
``time.process_time`` here counts the client side only.

Method: per case one untimed warm-up of each side, then ``--repeat`` interleaved
repetitions (alloy then httpx, httpx then alloy, ...; ``--turns`` runs each); the ratio is
median(alloy) / median(httpx), with the range of the per-repetition ratios beside it.

    .venv/bin/python benchmarks/bench_providers.py [--turns 100] [--repeat 15]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from typing import Any

import httpx

from alloy_nb.api import arun, astream
from alloy_nb.messages import user
from alloy_nb.providers import Anthropic, Gemini, OpenAI, OpenAICompat, ProviderRequest
from alloy_nb.providers.base import Provider

KEY = "bench-key"
ANSWER = "The answer is forty-two, as computed by a long line of thought. " * 3
PROTOCOLS = ("anthropic", "openai-responses", "openai-chat")

_SERVER = textwrap.dedent(
    """
    import sys
    from alloy_nb.testing import FakeProviderServer, reply
    n = int(sys.argv[1])
    with FakeProviderServer([reply.text(sys.argv[2], usage=(12, 30))] * n) as srv:
        print(srv.url, flush=True)
        sys.stdin.read()  # until the parent closes our stdin
    """
)


def provider(protocol: str, url: str) -> Provider:
    if protocol == "anthropic":
        return Anthropic(api_key=KEY, base_url=url)
    if protocol == "openai-responses":
        return OpenAI(api_key=KEY, base_url=url)
    return OpenAICompat(api_key=KEY, model="bench", base_url=url)


# ----------------------------------------------------------------- the raw-httpx baseline


def _text_of(protocol: str, data: dict[str, Any]) -> str:
    if protocol == "anthropic":
        return "".join(b.get("text", "") for b in data["content"])
    if protocol == "openai-responses":
        return "".join(
            p.get("text", "") for item in data["output"] for p in item.get("content") or ()
        )
    return data["choices"][0]["message"]["content"] or ""


def _delta_of(protocol: str, data: dict[str, Any]) -> str:
    if protocol == "anthropic":
        return (
            data.get("delta", {}).get("text", "") if data["type"] == "content_block_delta" else ""
        )
    if protocol == "openai-responses":
        return data.get("delta", "") if data["type"] == "response.output_text.delta" else ""
    choices = data.get("choices") or [{}]
    return choices[0].get("delta", {}).get("content") or ""


async def raw_turns(
    protocol: str, url: str, body: dict, headers: dict, n: int, stream: bool
) -> str:
    text = ""
    async with httpx.AsyncClient() as client:
        for _ in range(n):
            if not stream:
                resp = await client.post(url, json=body, headers=headers)
                text = _text_of(protocol, resp.json())
                continue
            parts = []
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data:") and line[5:].strip() != "[DONE]":
                        parts.append(_delta_of(protocol, json.loads(line[5:])))
            text = "".join(parts)
    return text


# ----------------------------------------------------------------- alloy_nb


#: ``--listener``: an ``on_event`` callback too, so every event (each delta included) is built.
_OPTIONS: dict[str, Any] = {}


async def alloy_turns(p: Provider, n: int, stream: bool) -> str:
    text = ""
    for _ in range(n):
        if stream:
            result = await astream(
                "What is the answer?", lambda chunk: None, provider=p, max_retries=0, **_OPTIONS
            )
        else:
            result = await arun("What is the answer?", provider=p, max_retries=0, **_OPTIONS)
        text = result.text
    return text


def cpu(fn: Callable[[], str]) -> tuple[float, str]:
    t0 = time.process_time()
    out = fn()
    return time.process_time() - t0, out


def interleaved(
    protocol: str, stream: bool, side_a: Callable[[], str], side_r: Callable[[], str], n: int,
    repeat: int,
) -> float:
    """CPU of both sides over ``repeat`` interleaved repetitions (alternating which goes
    first, so drift cancels out); prints the row and returns the ratio of medians."""
    alloy_s: list[float] = []
    raw_s: list[float] = []
    for rep in range(repeat):
        if rep % 2:
            tr, r_text = cpu(side_r)
            ta, a_text = cpu(side_a)
        else:
            ta, a_text = cpu(side_a)
            tr, r_text = cpu(side_r)
        assert a_text == r_text == ANSWER, (a_text, r_text)
        alloy_s.append(ta)
        raw_s.append(tr)
    a, r = statistics.median(alloy_s), statistics.median(raw_s)
    each = [x / y for x, y in zip(alloy_s, raw_s, strict=True)]
    mode = "stream" if stream else "json"
    spread = f"  ({min(each):.2f}-{max(each):.2f})"
    print(f"{protocol:<18}{mode:<8}{a / n * 1000:>14.3f}{r / n * 1000:>14.3f}{a / r:>8.2f}{spread}")
    return a / r


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--turns", type=int, default=100)
    ap.add_argument("--warmup", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=15)
    ap.add_argument("--protocol", choices=PROTOCOLS, action="append",
                    help="only these protocols (repeatable; default all)")
    ap.add_argument("--listener", action="store_true",
                    help="give alloy_nb runs an on_event listener (events are then built)")
    args = ap.parse_args()
    if args.listener:
        _OPTIONS["on_event"] = lambda event: None
    n, w = args.turns, args.warmup
    protocols = tuple(args.protocol or PROTOCOLS)
    per_case = 2 * (n * args.repeat + w)
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(per_case * len(protocols) * 2), ANSWER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        print(f"{n} runs per repetition, {args.repeat} interleaved repetitions, ratio of "
              f"medians; fake server at {url} (own process)"
              f"{'; alloy runs with an on_event listener' if args.listener else ''}\n")
        print(f"{'protocol':<18}{'mode':<8}{'alloy ms/run':>14}{'httpx ms/run':>14}"
              f"{'ratio':>8}{'  (range)':<14}")
        ratios: dict[tuple[str, bool], float] = {}
        for protocol in protocols:
            for stream in (False, True):
                p = provider(protocol, url)
                body = p.build_body(
                    ProviderRequest(messages=[user("What is the answer?")]), stream=stream
                )  # type: ignore[attr-defined]
                call = p._call()  # type: ignore[attr-defined]
                asyncio.run(alloy_turns(p, w, stream))  # warm-up, untimed
                asyncio.run(raw_turns(protocol, call.url, body, call.headers, w, stream))
                def side_a(p: Provider = p, s: bool = stream) -> str:
                    return asyncio.run(alloy_turns(p, n, s))

                def side_r(pr: str = protocol, c: Any = call, b: dict = body,
                           s: bool = stream) -> str:
                    return asyncio.run(raw_turns(pr, c.url, b, c.headers, n, s))

                ratios[protocol, stream] = interleaved(
                    protocol, stream, side_a, side_r, n, args.repeat
                )
        ratios.update(bench_gemini(n, w, args.repeat))
        chat = [v for (pr, _), v in ratios.items() if pr == "openai-chat"]
        worst_chat = f"; chat completions worst {max(chat):.2f}" if chat else ""
        print(f"\nworst ratio {max(ratios.values()):.2f}{worst_chat} (target <= 1.25)")
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=10)


# ----------------------------------------------------------------- Gemini (native API)


def _gemini_text(data: dict[str, Any]) -> str:
    parts = (data.get("candidates") or [{}])[0].get("content", {}).get("parts") or ()
    return "".join(p.get("text", "") for p in parts if not p.get("thought"))


async def _gemini_raw_turns(url: str, body: dict, headers: dict, n: int, stream: bool) -> str:
    """Hand-written httpx client for generateContent / streamGenerateContent?alt=sse."""
    text = ""
    async with httpx.AsyncClient() as client:
        for _ in range(n):
            if not stream:
                resp = await client.post(url, json=body, headers=headers)
                text = _gemini_text(resp.json())
                continue
            parts = []
            async with client.stream("POST", url, json=body, headers=headers) as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data:"):
                        parts.append(_gemini_text(json.loads(line[5:])))
            text = "".join(parts)
    return text


def bench_gemini(n: int, w: int, repeat: int) -> dict[tuple[str, bool], float]:
    """The Gemini rows, on a fake server of their own, measured like the others (untimed
    warm-up, interleaved repetitions, ratio of medians); returns the two ratios."""
    per_mode = n * repeat * 2 + w * 2
    server = subprocess.Popen(
        [sys.executable, "-c", _SERVER, str(4 * per_mode), ANSWER],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    ratios: dict[tuple[str, bool], float] = {}
    try:
        url = server.stdout.readline().strip()  # type: ignore[union-attr]
        for stream in (False, True):
            p = Gemini(api_key=KEY, model="bench", base_url=url)
            request = ProviderRequest(messages=[user("What is the answer?")])
            body = p.build_body(request, stream=stream)
            call = p._call(stream=stream)
            asyncio.run(alloy_turns(p, w, stream))  # warm-up, untimed
            asyncio.run(_gemini_raw_turns(call.url, body, call.headers, w, stream))

            def side_a(p: Provider = p, s: bool = stream) -> str:
                return asyncio.run(alloy_turns(p, n, s))

            def side_r(c: Any = call, b: dict = body, s: bool = stream) -> str:
                return asyncio.run(_gemini_raw_turns(c.url, b, c.headers, n, s))

            ratios["gemini", stream] = interleaved("gemini", stream, side_a, side_r, n, repeat)
    finally:
        server.stdin.close()  # type: ignore[union-attr]
        server.wait(timeout=10)
    return ratios


if __name__ == "__main__":
    main()
