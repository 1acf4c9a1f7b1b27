"""API keys never leak: not in reprs, errors, events, logs, results or saved sessions.

Each check runs a real failure or success path over loopback HTTP and then searches every
surface a user could see or save for the key.
"""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path

import pytest

import alloy_nb as alloy
from alloy_nb.errors import AuthenticationError
from alloy_nb.providers import Anthropic, Gemini, OpenAI, OpenAICompat
from alloy_nb.testing import FakeProviderServer, reply

KEY = "sk-test-SECRET-4f1c9e2b7a"


def _providers(url: str) -> list:
    return [
        Anthropic(api_key=KEY, base_url=url),
        OpenAI(api_key=KEY, base_url=url),
        OpenAICompat(api_key=KEY, model="m", base_url=url),
        Gemini(api_key=KEY, base_url=url),
    ]


def test_reprs_and_descriptions_hide_the_key() -> None:
    for p in _providers("http://127.0.0.1:9"):
        assert KEY not in repr(p)
        assert KEY not in str(p)
        assert KEY not in str(p.describe())
        assert KEY not in str(vars(p))  # not even a plain attribute dump


@pytest.mark.parametrize("index", [0, 1, 2, 3])
def test_auth_failure_error_events_and_logs_hide_the_key(
    index: int, caplog: pytest.LogCaptureFixture
) -> None:
    events: list = []
    caplog.set_level(logging.DEBUG)
    with FakeProviderServer([reply.status(401)]) as srv:
        provider = _providers(srv.url)[index]
        with pytest.raises(alloy.AgentError) as info:
            alloy.run("hi", provider=provider, on_event=events.append, max_retries=0)
        sent = srv.requests[0].headers
    assert KEY in str(sent)  # the key really went over the wire, to the server only
    result = info.value.result
    assert result.status == "error"
    surfaces = [
        str(info.value),
        repr(info.value),
        result.model_dump_json(),
        repr(result),
        result._repr_markdown_(),
        *(e.model_dump_json() for e in events),
        caplog.text,
    ]
    for text in surfaces:
        assert KEY not in text


def test_typed_auth_error_never_carries_the_key() -> None:
    with FakeProviderServer([reply.status(401)]) as srv:
        provider = Anthropic(api_key=KEY, base_url=srv.url)
        from alloy_nb.messages import user
        from alloy_nb.providers.base import ProviderRequest

        with pytest.raises(AuthenticationError) as info:
            asyncio.run(provider.complete(ProviderRequest(messages=[user("hi")])))
    err = info.value
    assert err.status_code == 401
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in err.body


def test_saved_session_has_no_key(tmp_path: Path) -> None:
    with FakeProviderServer([reply.text("hello")]) as srv:
        session = alloy.Session(provider=Anthropic(api_key=KEY, base_url=srv.url))
        session.chat("hi")
        path = session.save(tmp_path / "s.json")
        exported = session.export_markdown()
        session.close()
    assert KEY not in Path(path).read_text()
    assert KEY not in exported
    assert KEY not in repr(session)


@pytest.mark.parametrize("stream", [False, True])
def test_gemini_key_echoed_by_the_server_is_scrubbed(stream: bool) -> None:
    """Google's 400 for a bad key, echoing the key: the typed error never carries it, and
    the key went in the x-goog-api-key header, not the URL."""
    from alloy_nb.messages import user
    from alloy_nb.providers.base import ProviderRequest

    body = json.dumps({"error": {"code": 400, "status": "INVALID_ARGUMENT",
                                 "message": f"API key not valid: {KEY}",
                                 "details": [{"reason": "API_KEY_INVALID"}]}})  # fmt: skip
    with FakeProviderServer([reply.raw(400, {"content-type": "application/json"}, body)]) as srv:
        provider = Gemini(api_key=KEY, base_url=srv.url)
        request = ProviderRequest(messages=[user("hi")])

        async def go() -> object:
            if stream:
                return await provider.stream(request, lambda k, t: None)
            return await provider.complete(request)

        with pytest.raises(AuthenticationError) as info:
            asyncio.run(go())
        (sent,) = srv.requests
    err = info.value
    assert err.status_code == 400 and "API key not valid" in str(err)
    assert KEY not in str(err) and KEY not in repr(err) and KEY not in err.body
    assert sent.headers["x-goog-api-key"] == KEY and KEY not in sent.path + sent.query
