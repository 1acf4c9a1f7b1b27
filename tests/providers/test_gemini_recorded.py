"""The 39 real Gemini recordings (tests/fixtures/recorded/gemini, copies of shared/fixtures)
replayed through the native Gemini provider over real HTTP on loopback, as recorded and
re-chunked at random byte boundaries, checked against the "expected" lines of INDEX.md
(§ Gemini native API): parts in order with their signatures, calls, finish reason, usage, or
the typed error. Then each recorded multi-turn loop is replayed the way the agent would
continue it, and the model turn we send back is compared with what the recorder sent."""

from __future__ import annotations

import asyncio
import base64
import json
import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alloy_nb.errors import AuthenticationError, BadRequestError, RateLimitError
from alloy_nb.messages import (
    Message,
    RawBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    tool_results,
    user,
)
from alloy_nb.providers import Gemini, ProviderRequest
from alloy_nb.providers.base import Completion
from alloy_nb.testing import FIXTURES_DIR, FakeProviderServer, RecordedExchange, load_fixture

KEY = "test-key-gemini-recorded-7f3a"
GEMINI_DIR = FIXTURES_DIR / "gemini"
FILES = sorted(
    p.relative_to(FIXTURES_DIR).as_posix()
    for p in GEMINI_DIR.rglob("*")
    if p.is_file() and not p.name.startswith("LICENSE")
)
_POLICY = {"SAFETY", "MODEL_ARMOR", "MAX_TOKENS"}


# ----------------------------------------------------------------- INDEX.md expectations


@dataclass
class Expected:
    line: str
    parts: list[tuple[str, Any, bool]] = field(default_factory=list)  # kind, value, signed
    finish: str | None = None
    usage: dict[str, int] = field(default_factory=dict)
    grounding: bool = False
    error: tuple[int, str, str] | None = None


_CALL = re.compile(r"^call ([\w.-]+)\((.*)\)(?: id=(\S+))?$")


def _parse(rhs: str) -> Expected:
    exp = Expected(rhs)
    if m := re.match(r"^error (\d+) (\w+): (.*)$", rhs):
        exp.error = (int(m[1]), m[2], m[3])
        return exp
    rhs = re.sub(r"^\[\d+ chunks\] ", "", rhs)
    for item in rhs.split("; "):
        signed = item.endswith(" [sig]")
        item = item.removesuffix(" [sig]")
        if item.startswith('text "'):
            exp.parts.append(("text", item[6:-1], signed))
        elif m := re.match(r"^thought\[(\d+)ch\]$", item):
            exp.parts.append(("thought", int(m[1]), signed))
        elif m := _CALL.match(item):
            # The reference reader keyed Vertex's streamed arguments by their raw jsonPath
            # ("$.id"); assembled properly the key is "id".
            args = m[2].replace('"$.', '"')
            exp.parts.append(("call", (m[1], args, m[3]), signed))
        elif item in ("executableCode", "codeExecutionResult"):
            exp.parts.append((item, None, signed))
        elif item == "(no parts)":
            pass
        elif item == "groundingMetadata":
            exp.grounding = True
        elif m := re.match(r"^finish=(\w+)$", item):
            exp.finish = m[1]
        elif item.startswith("prompt="):
            exp.usage = {k: int(v) for k, v in re.findall(r"(\w+)=(\d+)", item)}
        else:
            raise AssertionError(f"INDEX.md item not understood: {item!r}")
    return exp


def _expectations() -> dict[str, list[Expected]]:
    out: dict[str, list[Expected]] = {}
    current: list[Expected] | None = None
    for line in (FIXTURES_DIR / "INDEX.md").read_text(encoding="utf-8").splitlines():
        if m := re.match(r"^#### `(.+)`$", line):
            current = out.setdefault(m[1], []) if m[1].startswith("gemini/") else None
        elif (m := re.match(r"^  - \[(\d+)\] .*? → (.*)$", line)) and current is not None:
            current.append(_parse(m[2]))
    return out


EXPECTED = _expectations()


def _generations(rel: str) -> list[RecordedExchange]:
    """The generateContent calls of a file (cassettes also hold cache and token calls)."""
    return [
        ex
        for ex in load_fixture(FIXTURES_DIR / rel)
        if ex.path.endswith((":generateContent", ":streamGenerateContent"))
    ]


def test_all_39_recordings_are_vendored_with_expectations() -> None:
    assert len(FILES) == 39
    assert sorted(EXPECTED) == FILES
    for rel in FILES:
        assert len(EXPECTED[rel]) == len(_generations(rel)), rel
    for source in ("pydantic-ai", "vercel-ai", "chatlas", "ellmer", "llm-gemini", "langchaingo"):
        assert (GEMINI_DIR / source / "LICENSE").is_file(), source


# ----------------------------------------------------------------- checks


def _esc(text: str) -> str:
    return json.dumps(text, ensure_ascii=False)[1:-1]


def _matches(actual: str, excerpt: str) -> bool:
    return actual.startswith(excerpt[:-3]) if excerpt.endswith("...") else actual == excerpt


def _signed(blocks: list[Any], i: int) -> bool:
    nxt = blocks[i + 1] if i + 1 < len(blocks) else None
    return isinstance(nxt, RawBlock) and nxt.type == "gemini.signature"


def _check(c: Completion, exp: Expected) -> None:
    blocks = c.message.content
    got = [
        (b, _signed(blocks, i))
        for i, b in enumerate(blocks)
        if not (isinstance(b, RawBlock) and b.type in ("gemini.signature", "gemini.grounding"))
    ]
    # an empty trailing text part without a signature says nothing and is not kept
    want = [p for p in exp.parts if p != ("text", "", False)]
    assert len(got) == len(want), (got, want)
    for (b, signed), (kind, value, want_sig) in zip(got, want, strict=True):
        if kind == "text":
            assert isinstance(b, TextBlock) and _matches(_esc(b.text), value), (b, value)
        elif kind == "thought":
            assert isinstance(b, ThinkingBlock) and len(b.thinking) == value
        elif kind == "call":
            name, args, ident = value
            assert isinstance(b, ToolUseBlock) and b.name == name
            wire = json.dumps(b.input, separators=(",", ":"), ensure_ascii=False)
            assert wire == args or (not args.endswith("}") and wire.startswith(args)), wire
            if ident is not None:
                assert b.id == ident  # the vendor's id is kept (and sent back)
            else:
                assert b.id.startswith("alloy-gemini-")  # ours, never sent
        else:
            assert isinstance(b, RawBlock) and b.type == "gemini.part"
            part = (b.model_extra or {})["part"]
            assert kind in part
            signed = bool(part.get("thoughtSignature"))
        assert signed == want_sig, (b, kind)
    grounding = [b for b in blocks if isinstance(b, RawBlock) and b.type == "gemini.grounding"]
    assert bool(grounding) == exp.grounding
    if grounding:  # kept verbatim
        assert (grounding[0].model_extra or {})["groundingMetadata"]
    assert c.raw_stop_reason == exp.finish
    calls = any(k == "call" for k, _, _ in exp.parts)
    assert c.stop_reason == ("tool_use" if calls and exp.finish not in _POLICY else "end_turn")
    u = exp.usage
    cached = u.get("cached", 0)
    want_usage = (
        u["prompt"] - cached + u.get("toolUse", 0),
        u.get("cand", 0) + u.get("thoughts", 0),
        cached,
        0,
    )
    got_usage = (
        c.usage.input_tokens,
        c.usage.output_tokens,
        c.usage.cache_read_input_tokens,
        c.usage.cache_creation_input_tokens,
    )
    assert got_usage == want_usage


def _check_error(err: BaseException, exp: Expected) -> None:
    assert exp.error is not None
    status, label, message = exp.error
    if status == 400 and "API key not valid" in message:
        assert isinstance(err, AuthenticationError)  # Gemini's bad key is a 400
    elif status == 429:
        assert isinstance(err, RateLimitError) and err.retryable
        assert err.retry_after == pytest.approx(34.4)  # from the body's RetryInfo
    else:
        assert type(err) is BadRequestError and not err.retryable
    assert err.status_code == status and label in str(err)
    assert message.removesuffix("...") in str(err)
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in err.body


# ----------------------------------------------------------------- replay


def _model(ex: RecordedExchange) -> str:
    m = re.search(r"/models/([^/:]+):", ex.path)
    return m[1] if m else "gemini-3-pro-preview"


async def _replay(
    ex: RecordedExchange, provider: Gemini, messages: list[Message] | None = None
) -> tuple[Completion, list[tuple[str, str]]]:
    request = ProviderRequest(messages=messages or [user("hi")])
    if not ex.streaming:
        return await provider.complete(request), []
    deltas: list[tuple[str, str]] = []
    c = await provider.stream(request, lambda kind, text: deltas.append((kind, text)))
    return c, deltas


def _run_file(rel: str, sizes: Any, seed: int) -> None:
    exchanges = _generations(rel)
    with FakeProviderServer([ex.as_reply(chunk_sizes=sizes, seed=seed) for ex in exchanges]) as srv:
        for ex, exp in zip(exchanges, EXPECTED[rel], strict=True):
            provider = Gemini(api_key=KEY, model=_model(ex), base_url=srv.url)
            if exp.error is not None:
                with pytest.raises(Exception) as info:
                    asyncio.run(_replay(ex, provider))
                _check_error(info.value, exp)
                continue
            c, deltas = asyncio.run(_replay(ex, provider))
            _check(c, exp)
            if ex.streaming:  # the live deltas add up to the final text and thinking
                text = "".join(b.text for b in c.message.content if isinstance(b, TextBlock))
                thinking = "".join(
                    b.thinking for b in c.message.content if isinstance(b, ThinkingBlock)
                )
                assert "".join(t for k, t in deltas if k == "text") == text
                assert "".join(t for k, t in deltas if k == "thinking") == thinking
        assert srv.remaining == 0
        for r in srv.requests:  # the key travels in its header, never in the URL
            assert r.headers["x-goog-api-key"] == KEY
            assert KEY not in r.path + r.query
            assert r.path.endswith((":generateContent", ":streamGenerateContent"))
            assert r.query in ("", "alt=sse") and (r.query == "alt=sse") == r.path.endswith(
                ":streamGenerateContent"
            )


@pytest.mark.parametrize("chunking", ["as-recorded", "random-chunks"])
@pytest.mark.parametrize("rel", FILES)
def test_recording(rel: str, chunking: str) -> None:
    seed = zlib.crc32(rel.encode())
    _run_file(rel, "random" if chunking == "random-chunks" else None, seed)


_STREAMS = [rel for rel in FILES if any(ex.streaming for ex in _generations(rel))]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rel=st.sampled_from(_STREAMS), sizes=st.lists(st.integers(1, 300), min_size=1, max_size=8))
def test_streams_survive_any_chunking(rel: str, sizes: list[int]) -> None:
    """Chunk boundaries anywhere (mid-UTF-8, between \\r and \\n) change nothing."""
    _run_file(rel, sizes, 0)


# ----------------------------------------------------------------- multi-turn round trips

def _continues(ex: RecordedExchange) -> bool:
    """The request replays an earlier model turn (a loop, not independent calls)."""
    return any(t.get("role") == "model" for t in (ex.request_json or {}).get("contents", []))


_LOOPS = [
    rel
    for rel in FILES
    if len(_generations(rel)) > 1 and all(_continues(ex) for ex in _generations(rel)[1:])
]


def _sig(part: dict[str, Any]) -> bytes | None:
    """The signature's bytes: Google's SDKs (chatlas, pydantic-ai) re-encode what they got as
    URL-safe base64, while we send back the very string we received."""
    sig = part.get("thoughtSignature") or part.get("thought_signature")
    if sig is None:
        return None
    return base64.urlsafe_b64decode(sig.replace("+", "-").replace("/", "_") + "==")


def _signed_parts(parts: list[dict[str, Any]]) -> list[tuple[str, Any, bytes | None]]:
    """What must survive a round trip: each non-thought part's kind, its call (name, args)
    and its signature, in order."""
    out: list[tuple[str, Any, bytes | None]] = []
    for p in parts:
        if p.get("thought"):
            continue
        fc = p.get("functionCall") or p.get("function_call")
        if fc is not None:
            out.append(("call", (fc["name"], fc.get("args") or {}), _sig(p)))
        elif "text" in p:
            if p["text"] or _sig(p):
                out.append(("text", p["text"], _sig(p)))
        else:
            kind = next(iter(k for k in p if k not in ("thoughtSignature", "thought_signature")))
            out.append((kind, p[kind], _sig(p)))
    return out


@pytest.mark.parametrize("rel", _LOOPS)
def test_multi_turn_sends_each_model_turn_back_as_recorded(rel: str) -> None:
    """Continue each recorded loop as the agent would (the recorded tool results fed back)
    and compare the model turn we send with the one the recorder sent: same parts, same
    order, each signature on the same part, the vendor's call ids echoed (and only those),
    function responses in one user turn, in call order."""
    exchanges = _generations(rel)
    with FakeProviderServer([ex.as_reply() for ex in exchanges]) as srv:
        history: list[Message] = []
        for n, ex in enumerate(exchanges[:-1]):
            provider = Gemini(api_key=KEY, model=_model(ex), base_url=srv.url)
            recorded_next = exchanges[n + 1].request_json
            assert recorded_next is not None
            if not history:
                history = [user("hi")]
            c, _ = asyncio.run(_replay(ex, provider, history))
            history = [*history, c.message]
            contents = recorded_next["contents"]
            i_model = max(i for i, t in enumerate(contents) if t.get("role") == "model")
            after = contents[i_model + 1] if i_model + 1 < len(contents) else None
            if c.message.tool_calls:
                responses = [
                    p.get("functionResponse") or p.get("function_response")
                    for p in (after or {}).get("parts", [])
                ]
                assert len(responses) == len(c.message.tool_calls)
                history.append(
                    tool_results(
                        ToolResultBlock(tool_use_id=call.id, content=json.dumps(r["response"]))
                        for call, r in zip(c.message.tool_calls, responses, strict=True)
                    )
                )
            elif after is not None:
                history.append(user(after["parts"][0].get("text") or "next"))
            body = provider.build_body(ProviderRequest(messages=history), stream=ex.streaming)
            ours = body["contents"]
            model_turns = [t for t in ours if t["role"] == "model"]
            sent, recorded = (
                _signed_parts(model_turns[-1]["parts"]),
                _signed_parts(contents[i_model]["parts"]),
            )
            assert [p[:2] for p in sent] == [p[:2] for p in recorded], rel
            for (kind, _, ours_sig), (_, _, their_sig) in zip(sent, recorded, strict=True):
                # every signature the recorder sent back, we send back on the same part; on a
                # call we send exactly its signatures (ellmer left them off answer text only)
                assert ours_sig == their_sig or (their_sig is None and kind != "call"), rel
            for part in model_turns[-1]["parts"]:  # ids: the vendor's when it sent one, else none
                fc = part.get("functionCall")
                if fc is not None:
                    vendor = [b.id for b in c.message.tool_calls if not b.id.startswith("alloy-")]
                    assert fc.get("id") in (None, *vendor)
                    assert ("id" in fc) == bool(vendor)
            if c.message.tool_calls:
                last = ours[-1]
                assert last["role"] == "user"
                sent = [p["functionResponse"] for p in last["parts"]]
                assert [s["name"] for s in sent] == [b.name for b in c.message.tool_calls]
                for s, b in zip(sent, c.message.tool_calls, strict=True):
                    assert s.get("id") == (None if b.id.startswith("alloy-") else b.id)
                    assert isinstance(s["response"], dict)
