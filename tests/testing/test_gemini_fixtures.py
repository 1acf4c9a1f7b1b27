"""The loader reads the 39 Gemini recordings in their five formats (INDEX.md, "Gemini native
API", "File formats"): pydantic-ai and vcrpy cassettes, R vcr, httprr traces, vercel bodies."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from alloy_nb.testing import FIXTURES_DIR, iter_fixtures, load_fixture

GEMINI = {rel: exs for rel, exs in iter_fixtures() if rel.startswith("gemini/")}


def one(rel: str):
    return GEMINI["gemini/" + rel]


def test_all_39_load_as_gemini() -> None:
    assert len(GEMINI) == 39
    for rel, exchanges in GEMINI.items():
        assert exchanges, rel
        for ex in exchanges:
            assert ex.protocol == "gemini", rel
            assert ex.body and 200 <= ex.status < 600, rel
            assert "content-encoding" not in ex.headers and not ex.body.startswith(b"\x1f\x8b")
            if ex.path.endswith(":streamGenerateContent") and ex.status == 200:
                assert ex.streaming, rel


def test_httprr_traces_are_read_by_byte_counts() -> None:
    (ex,) = one("langchaingo/testdata/TestGoogleAIErrorHandling.httprr")
    assert (ex.method, ex.status, ex.streaming) == ("POST", 400, False)
    assert ex.path == "/v1beta/models/gemini-2.0-flash:generateContent"  # `//v1beta` fixed
    assert ex.request_json is not None and ex.request_json["contents"][0]["parts"] == [
        {"text": "Hello"}
    ]
    assert json.loads(ex.body)["error"]["details"][0]["reason"] == "API_KEY_INVALID"
    assert ex.headers["content-type"] == "application/json; charset=UTF-8"
    assert "content-length" not in ex.headers
    two = one("langchaingo/testdata/TestGoogleAIToolCallResponse.httprr")
    assert [e.index for e in two] == [0, 1] and all(e.status == 200 for e in two)
    (sse,) = one("langchaingo/testdata/TestGoogleAIThinkingModels-streaming.httprr")
    assert sse.streaming and sse.body.startswith(b"data: ")


def test_r_vcr_and_vercel_bodies() -> None:
    ellmer = one("ellmer/_vcr/google-tool.yml")
    assert len(ellmer) == 4 and ellmer[0].request_json is not None
    assert ellmer[0].request_json["tools"][0]["functionDeclarations"][0]["name"] == "current_date"
    assert json.loads(ellmer[0].body)["candidates"][0]["content"]["parts"][0]["functionCall"]
    (chunks,) = one("vercel-ai/__fixtures__/google-text.chunks.txt")
    frames = chunks.body.split(b"\n\n")
    assert chunks.streaming and len(frames) == 4 and frames[-1] == b""
    assert all(f.startswith(b"data: {") for f in frames[:-1])
    (limited,) = one("vercel-ai/__fixtures__/google-429-retry-info.json")
    assert limited.status == 429 and not limited.streaming


def test_json_array_streams_and_pydantic_cassettes() -> None:
    (arr,) = one("llm-gemini/test_gemini/test_prompt.yaml")
    assert arr.streaming and arr.content_type.startswith("application/json")
    assert isinstance(json.loads(arr.body), list)  # no alt=sse: one JSON array of chunks
    cached = one("pydantic-ai/test_cache/test_google_model_cached_content.yaml")
    assert [e.method for e in cached] == ["POST", "POST", "POST", "DELETE"]
    assert cached[0].path.endswith("/cachedContents")  # not a generation: tests skip it
    (stream,) = one("pydantic-ai/test_google/test_google_model_stream.yaml")
    assert b"\r\n\r\n" in stream.body and stream.streaming


def test_a_gemini_folder_file_in_an_unknown_format_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "gemini" / "x.httprr"
    bad.parent.mkdir()
    bad.write_bytes(b"not a trace\n")
    with pytest.raises(ValueError, match="httprr"):
        load_fixture(bad)
    assert (FIXTURES_DIR / "gemini" / "langchaingo" / "LICENSE").is_file()
