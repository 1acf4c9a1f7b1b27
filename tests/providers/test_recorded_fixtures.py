"""Every recorded response in shared/fixtures replayed through the matching provider over real
HTTP on loopback (as recorded, and re-chunked at random byte boundaries), checked against the
"expected" lines of the fixtures' INDEX.md: blocks in order, tool calls, stop reason, usage,
or the typed error."""

from __future__ import annotations

import asyncio
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import urlsplit

import pytest

from alloy_nb.errors import (
    AuthenticationError,
    BadRequestError,
    OverloadedError,
    ProviderHTTPError,
    RateLimitError,
    StreamError,
)
from alloy_nb.messages import RawBlock, TextBlock, ThinkingBlock, ToolUseBlock, user
from alloy_nb.providers import Anthropic, Compat, OpenAI, OpenAICompat, ProviderRequest
from alloy_nb.providers.base import Completion, Provider
from alloy_nb.testing import FIXTURES_DIR, FakeProviderServer, RecordedExchange, load_fixture

KEY = "test-key-fixtures-0c7d"

# Chat Completions vendors, recognised by the recorded host, get their preset's Compat.
_HOST_PRESET = {
    "openrouter.ai": "openrouter",
    "api.groq.com": "groq",
    "api.mistral.ai": "mistral",
    "api.deepseek.com": "deepseek",
    "generativelanguage.googleapis.com": "gemini",
    "localhost:11434": "ollama",
}
_HF_ROUTER = Compat(requires_done_marker=False)  # router.huggingface.co never sends [DONE]


# ----------------------------------------------------------------- INDEX.md expectations


@dataclass
class Expected:
    index: int
    line: str
    blocks: list[tuple[str, Any]] = field(default_factory=list)
    stop: tuple[str, str | None] | None = None  # ("stop"|"status"|"finish", value)
    usage: dict[str, int] = field(default_factory=dict)
    http_error: tuple[int, str, str] | None = None  # status, label, message excerpt
    stream_error: str | None = None  # message excerpt


_ITEM = re.compile(
    r"; (?=text \"|message \"|tool_use |tool_call |function_call |thinking\[|redacted_thinking"
    r"|reasoning\[|stop=|status=|finish=|in=|prompt=|usage=|in-stream error)"
)
_TOOL = re.compile(
    r"^(tool_use|tool_call|function_call) ([\w.-]+)\((.*)\)(?: call_id=(\S+)| id='(.*)')?$"
)


def _parse_rhs(exp: Expected, rhs: str) -> None:
    if m := re.match(r"^HTTP (\d+) (\S+?): (.*)$", rhs):
        exp.http_error = (int(m[1]), m[2], m[3])
        return
    rhs = re.sub(r"^SSE\[(?:[^\[\]]|\[[^\]]*\])*\] ", "", rhs)
    for item in _ITEM.split(rhs):
        if item.startswith(('text "', 'message "')):
            exp.blocks.append(("text", item.split(" ", 1)[1][1:-1]))
        elif m := _TOOL.match(item):
            exp.blocks.append(("tool", (m[2], m[3], m[4] if m[4] is not None else m[5])))
        elif m := re.match(r"^thinking\[(\d+)ch,sig=([yn])\]$", item):
            exp.blocks.append(("thinking", (int(m[1]), m[2] == "y")))
        elif item == "redacted_thinking":
            exp.blocks.append(("redacted_thinking", None))
        elif m := re.match(r"^reasoning\[summary=(\d+),enc=([yn])\]$", item):
            exp.blocks.append(("reasoning_item", (int(m[1]), m[2] == "y")))
        elif m := re.match(r"^reasoning\[(\d+)ch\]$", item):
            exp.blocks.append(("thinking", (int(m[1]), None)))
        elif m := re.match(r"^(stop|status|finish)=(\S+)$", item):
            exp.stop = (m[1], None if m[2] == "None" else m[2])
        elif re.match(r"^(in|prompt)=", item):
            exp.usage = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", item)}
        elif item.startswith("in-stream error: "):
            msg = re.search(r'"message": "(.*?)(?:"|$)', item)
            exp.stream_error = msg[1] if msg else ""
        elif item != "usage=none":
            raise AssertionError(f"INDEX.md item not understood: {item!r}")


def _expectations() -> dict[str, list[Expected]]:
    out: dict[str, list[Expected]] = {}
    current = None
    for line in (FIXTURES_DIR / "INDEX.md").read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^#### `(.+)`$", line):
            # Gemini's entries have their own grammar: tests/providers/test_gemini_recorded.py
            current = None if m[1].startswith("gemini/") else out.setdefault(m[1], [])
        elif (m := re.match(r"^  - \[(\d+)\] .*? → (.*)$", line)) and current is not None:
            exp = Expected(int(m[1]), line.strip())
            _parse_rhs(exp, m[2])
            current.append(exp)
    return out


EXPECTED = _expectations()
FILES = sorted(
    p.relative_to(FIXTURES_DIR).as_posix()
    for p in FIXTURES_DIR.rglob("*")
    if p.suffix in (".yaml", ".txt") and "gemini" not in p.relative_to(FIXTURES_DIR).parts[:1]
)


def test_every_fixture_has_expectations() -> None:
    assert len(FILES) == 79
    assert sorted(EXPECTED) == FILES
    for name in FILES:
        assert len(EXPECTED[name]) == len(load_fixture(FIXTURES_DIR / name)), name


# ----------------------------------------------------------------- checks


def _excerpt_matches(actual: str, excerpt: str) -> bool:
    if excerpt.endswith("..."):
        return actual.startswith(excerpt[:-3])
    return actual == excerpt


def _esc(text: str) -> str:
    return text.replace("\n", "\\n")


def _check_blocks(c: Completion, exp: Expected) -> None:
    got = [
        b
        for b in c.message.content
        if not (isinstance(b, RawBlock) and b.type == "openai_chat.extra_content")
    ]
    want = [b for b in exp.blocks if b != ("text", "")]  # empty text blocks are not kept
    assert len(got) == len(want), (got, want)
    for b, (kind, value) in zip(got, want, strict=True):
        if kind == "text":
            assert isinstance(b, TextBlock) and _excerpt_matches(_esc(b.text), value), (b, value)
        elif kind == "tool":
            name, args, ident = value
            assert isinstance(b, ToolUseBlock) and b.name == name
            wire = json.dumps(b.input, separators=(",", ":"), ensure_ascii=False)
            assert (args == '""' and b.input == {}) or _excerpt_matches(_esc(wire), args), (
                wire,
                args,
            )
            if ident == "":
                assert b.id.startswith("call_")  # synthesized for an empty vendor id
            elif ident is not None:
                assert _excerpt_matches(b.id, ident)
        elif kind == "thinking":
            length, signed = value
            assert isinstance(b, ThinkingBlock) and len(b.thinking) == length
            if signed is not None:
                assert bool(b.signature) == signed
        elif kind == "redacted_thinking":
            assert isinstance(b, RawBlock) and b.type == "redacted_thinking"
            assert b.model_extra and b.model_extra.get("data")
        elif kind == "reasoning_item":
            summaries, encrypted = value
            assert isinstance(b, RawBlock) and b.type == "reasoning"
            extra = b.model_extra or {}
            assert len(extra.get("summary") or []) == summaries
            assert bool(extra.get("encrypted_content")) == encrypted
    if not any(k == "text" and v for k, v in exp.blocks):
        assert c.message.text == ""


def _check_stop(c: Completion, exp: Expected) -> None:
    assert exp.stop is not None
    kind, raw = exp.stop
    has_tools = any(k == "tool" for k, _ in exp.blocks)
    assert c.raw_stop_reason == raw
    if kind == "stop":
        tool_use = raw == "tool_use"
    elif kind == "status":
        tool_use = has_tools and raw == "completed"
    else:  # Chat: tool calls decide, unless the reply was cut off or filtered
        tool_use = has_tools and raw not in ("length", "content_filter")
    assert c.stop_reason == ("tool_use" if tool_use else "end_turn")


def _check_usage(c: Completion, exp: Expected, protocol: str) -> None:
    u = exp.usage
    got = (
        c.usage.input_tokens,
        c.usage.output_tokens,
        c.usage.cache_read_input_tokens,
        c.usage.cache_creation_input_tokens,
    )
    if protocol == "anthropic":
        want = (u["in"], u["out"], u.get("cache_r", 0), u.get("cache_w", 0))
    elif protocol == "openai-responses":
        cached = u.get("cached", 0)
        want = (u["in"] - cached, u["out"], cached, 0)
    else:
        cached = u.get("cached", u.get("ds_cache_hit", 0))
        output = max(u["completion"], u["total"] - u["prompt"])  # Gemini's hidden thinking
        want = (u["prompt"] - cached, output, cached, 0)
    assert got == want, (got, want)


_STATUS_CLASS = {400: BadRequestError, 401: AuthenticationError, 404: BadRequestError}


def _check_error(err: BaseException, exp: Expected) -> None:
    if exp.http_error is not None:
        status, label, message = exp.http_error
        assert isinstance(err, ProviderHTTPError) and err.status_code == status
        cls = _STATUS_CLASS.get(status) or (RateLimitError if status == 429 else OverloadedError)
        assert type(err) is cls
        for part in label.split("/"):
            if part != "None":
                assert part in str(err)
        assert message.removesuffix("...") in str(err)
    else:
        assert isinstance(err, StreamError)
        assert (exp.stream_error or "").removesuffix("...") in str(err)
    assert KEY not in str(err)


# ----------------------------------------------------------------- replay


def _provider(ex: RecordedExchange, url: str) -> Provider:
    if ex.protocol == "anthropic":
        return Anthropic(api_key=KEY, base_url=url)
    if ex.protocol == "openai-responses":
        return OpenAI(api_key=KEY, base_url=url)
    host = urlsplit(ex.uri).netloc
    if host in _HOST_PRESET:
        return getattr(OpenAICompat, _HOST_PRESET[host])("m", api_key=KEY, base_url=url)
    compat = _HF_ROUTER if "huggingface" in host else Compat()
    return OpenAICompat(api_key=KEY, model="m", base_url=url, compat=compat)


async def _replay(ex: RecordedExchange, provider: Provider) -> tuple[Completion, str]:
    request = ProviderRequest(messages=[user("hi")])
    if not ex.streaming:
        return await provider.complete(request), ""
    deltas: list[tuple[str, str]] = []
    c = await provider.stream(request, lambda kind, text: deltas.append((kind, text)))
    return c, "".join(t for k, t in deltas if k == "text")


@pytest.mark.parametrize("chunking", ["as-recorded", "random-chunks"])
@pytest.mark.parametrize("name", FILES)
def test_fixture(name: str, chunking: str) -> None:
    exchanges = load_fixture(FIXTURES_DIR / name)
    expected = EXPECTED[name]
    seed = zlib.crc32(name.encode())
    sizes = "random" if chunking == "random-chunks" else None
    with FakeProviderServer([ex.as_reply(chunk_sizes=sizes, seed=seed) for ex in exchanges]) as srv:
        for ex, exp in zip(exchanges, expected, strict=True):
            provider = _provider(ex, srv.url)
            failing = exp.http_error is not None or exp.stream_error is not None
            if failing:
                with pytest.raises(Exception) as info:
                    asyncio.run(_replay(ex, provider))
                _check_error(info.value, exp)
                continue
            c, streamed = asyncio.run(_replay(ex, provider))
            _check_blocks(c, exp)
            _check_stop(c, exp)
            _check_usage(c, exp, ex.protocol)
            if ex.streaming:  # the live deltas add up to the final text
                assert streamed == "".join(
                    b.text for b in c.message.content if isinstance(b, TextBlock)
                ) or (ex.protocol == "openai-responses" and c.raw_stop_reason == "refusal")
        assert srv.remaining == 0 and len(srv.requests) == len(exchanges)
