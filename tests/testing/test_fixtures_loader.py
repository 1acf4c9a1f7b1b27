"""The fixture loader reads all 79 recordings in their three formats, as the INDEX describes."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from alloy_nb.testing import FIXTURES_DIR, RecordedExchange, iter_fixtures, load_fixture
from alloy_nb.testing import fixtures as fixtures_module

# fails loudly at collection if the fixtures are missing; the Gemini recordings have their
# own formats and tests (tests/testing/test_gemini_fixtures.py)
ALL = {rel: exs for rel, exs in iter_fixtures() if not rel.startswith("gemini/")}


def one(rel: str) -> list[RecordedExchange]:
    return ALL[rel]


def test_every_fixture_file_loads() -> None:
    assert FIXTURES_DIR.is_dir()
    assert len(ALL) == 79
    files = Counter(exs[0].protocol for exs in ALL.values())
    assert files == {"anthropic": 23, "openai-responses": 21, "openai-chat": 35}
    for rel, exchanges in ALL.items():
        assert exchanges, rel
        for ex in exchanges:
            assert 200 <= ex.status < 600, rel
            assert ex.body, rel
            assert ex.method == "POST", rel
            assert all(name == name.lower() for name in ex.headers), rel
            if not rel.endswith(".txt"):
                assert ex.path.endswith(("/messages", "/responses", "/chat/completions")), rel
                assert isinstance(ex.request_json, dict), rel


def test_streaming_flag_and_body_agree() -> None:
    for rel, exchanges in ALL.items():
        for ex in exchanges:
            sse = ex.body.lstrip().startswith((b"event:", b"data:", b":"))
            if ex.status == 200:
                assert ex.streaming == sse, rel
            else:  # errors are JSON even for a streaming request
                assert json.loads(ex.body), rel


def test_gzip_bodies_are_decoded() -> None:
    (ex,) = one("llm-anthropic/anthropic/test_anthropic/test_stream_events_tool_calls.yaml")
    assert ex.body.startswith(b"event: message_start")
    assert "content-encoding" not in ex.headers and "content-length" not in ex.headers
    assert ex.headers["anthropic-ratelimit-requests-limit"] == "20000"
    (ex,) = one(
        "llm/openai-responses/test_openai_responses/test_responses_basic_non_streaming.yaml"
    )
    assert json.loads(ex.body)["output"][0]["content"][0]["text"] == "pong"
    for exchanges in ALL.values():
        for ex in exchanges:
            assert "content-encoding" not in ex.headers
            assert not ex.body.startswith(b"\x1f\x8b")


def test_parsed_body_cassettes() -> None:
    rel = "pydantic-ai/anthropic/test_anthropic/test_anthropic_model_instructions.yaml"
    (ex,) = one(rel)
    assert ex.uri == "https://api.anthropic.com/v1/messages?beta=true"
    assert ex.path == "/v1/messages" and ex.request_json is not None
    assert ex.request_json["model"] == "claude-3-opus-latest" and not ex.streaming
    assert json.loads(ex.body)["usage"]["input_tokens"] == 20
    assert "content-length" not in ex.headers  # re-serialised JSON has another length


def test_raw_sse_text_files() -> None:
    (ex,) = one("anthropic-sdk-python/anthropic/fixtures/tool_use_response.txt")
    assert (ex.protocol, ex.status, ex.streaming, ex.path) == (
        "anthropic",
        200,
        True,
        "/v1/messages",
    )
    assert ex.request_json is None and ex.content_type.startswith("text/event-stream")
    assert ex.body.startswith(b"event: message_start")


def test_recorded_quirks_survive_loading() -> None:
    groq = one("pydantic-ai/openai-chat/test_groq/test_tool_use_failed_error_streaming.yaml")
    assert b"event: error" in groq[0].body and b"[DONE]" not in groq[0].body
    hf = one("chatlas/openai-chat/test_provider_huggingface/test_huggingface_tools.yaml")
    assert b"[DONE]" not in hf[0].body
    router = one("pydantic-ai/openai-chat/test_openrouter/test_openrouter_stream_error.yaml")
    assert router[0].body.startswith(b": OPENROUTER PROCESSING")
    thinking = "pydantic-ai/anthropic/test_anthropic/test_anthropic_model_thinking_part_stream.yaml"
    assert b"}          }" in one(thinking)[0].body  # trailing spaces after the JSON
    error = one(
        "pydantic-ai/openai-responses/test_openai_responses/test_openai_responses_model_http_error.yaml"
    )
    assert error[0].streaming and error[0].status == 400
    assert error[0].content_type.startswith("application/json")


def test_fixtures_dir_resolution(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("ALLOY_FIXTURES_DIR", str(tmp_path))
    assert fixtures_module._find_fixtures_dir() == tmp_path
    monkeypatch.delenv("ALLOY_FIXTURES_DIR")
    assert fixtures_module._find_fixtures_dir() == FIXTURES_DIR
    # the repository's vendored copy wins over ../shared/fixtures, so a clean clone tests
    assert FIXTURES_DIR.parts[-3:] == ("tests", "fixtures", "recorded")
    assert (FIXTURES_DIR / "INDEX.md").is_file()


def test_loader_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="ALLOY_FIXTURES_DIR"):
        list(iter_fixtures(tmp_path / "missing"))
    stray = tmp_path / "stream.txt"
    stray.write_bytes(b"data: {}\n\n")
    with pytest.raises(ValueError, match="protocol"):
        load_fixture(stray)
    (ex,) = load_fixture(stray, protocol="openai-chat")
    assert ex.path == "/v1/chat/completions" and ex.body == b"data: {}\n\n"
    bad = tmp_path / "openai-chat" / "x.yaml"
    bad.parent.mkdir()
    bad.write_text("just: text\n")
    with pytest.raises(ValueError, match="interactions"):
        load_fixture(bad)
