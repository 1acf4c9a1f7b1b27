"""Finding 8 (issue 9): every unreadable session file is a SessionFileError naming it; plus
the hypothesis fuzz of the loader (finding 4's share of untrusted input)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import alloy_nb
from alloy_nb import errors
from alloy_nb.providers.scripted import Scripted


def test_finding8_session_file_error_is_exported_everywhere() -> None:
    from alloy_nb._session_store import SessionFileError as from_store
    from alloy_nb.session import SessionFileError as old_path

    assert alloy_nb.SessionFileError is errors.SessionFileError is old_path is from_store
    assert "SessionFileError" in alloy_nb.__all__ and "SessionFileError" in errors.__all__
    assert issubclass(errors.SessionFileError, errors.ConfigError)
    for name in ("CompactionError", "MiddlewareReturnError", "ProviderConfigError"):
        assert name in errors.__all__
    from alloy_nb.compaction import CompactionError
    from alloy_nb.errors import ProviderConfigError
    from alloy_nb.middleware import MiddlewareReturnError

    assert (CompactionError, MiddlewareReturnError, ProviderConfigError) == (
        errors.CompactionError, errors.MiddlewareReturnError, errors.ProviderConfigError)


@pytest.mark.parametrize(("content", "why"), [
    (b'{"version": 1, "messages": [\xff\xfe]}', "not UTF-8"),
    (b"[" * 100_000 + b"]" * 100_000, "nested too deeply|invalid JSON"),
    (b'{"version": 1, "messages": ' + b"[" * 50_000 + b"]" * 50_000 + b"}",
     "nested too deeply|not a valid|invalid JSON"),
    (b"\x00\x01\x02", "invalid JSON"),
    (b"", "invalid JSON"),
])
def test_finding8_hostile_session_files_raise_session_file_error(
    tmp_path: Path, content: bytes, why: str
) -> None:
    path = tmp_path / "hostile.json"
    path.write_bytes(content)
    with pytest.raises(alloy_nb.SessionFileError, match=why) as info:
        alloy_nb.Session.load(path, provider=Scripted(["x"]))
    assert str(path) in str(info.value)


def test_finding8_missing_and_directory_paths(tmp_path: Path) -> None:
    for path in (tmp_path / "missing.json", tmp_path):
        with pytest.raises(alloy_nb.SessionFileError) as info:
            alloy_nb.Session.load(path, provider=Scripted(["x"]))
        assert str(path) in str(info.value)


def test_finding8_a_good_file_still_loads(tmp_path: Path) -> None:
    session = alloy_nb.Session(provider=Scripted(["hello"]))
    session.chat("hi")
    path = session.save(tmp_path / "s.json")
    again = alloy_nb.Session.load(path, provider=Scripted(["x"]))
    assert [m.text for m in again.messages] == ["hi", "hello"]


_json = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
    lambda kids: (st.lists(kids, max_size=4)
                  | st.dictionaries(st.text(max_size=8), kids, max_size=4)),
    max_leaves=20,
)
_session_like = st.fixed_dictionaries(
    {"version": st.one_of(st.just(1), st.integers(), st.text()),
     "messages": st.one_of(_json, st.lists(st.fixed_dictionaries(
         {"role": st.sampled_from(["user", "assistant", "x"]),
          "content": st.one_of(_json, st.lists(st.dictionaries(
              st.sampled_from(["type", "text", "id", "name", "input"]), _json)))}), max_size=3))},
    optional={"usage": _json, "id": _json, "provider": _json, "metadata": _json},
)


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(payload=st.one_of(st.binary(max_size=300), _session_like.map(
    lambda d: json.dumps(d).encode())))
def test_finding4_fuzz_session_loader_raises_only_session_file_error(
    tmp_path: Path, payload: bytes
) -> None:
    path = tmp_path / "fuzz.json"
    path.write_bytes(payload)
    try:
        alloy_nb.Session.load(path, provider=Scripted(["x"]))
    except alloy_nb.SessionFileError as exc:
        assert str(path) in str(exc)
