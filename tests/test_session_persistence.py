"""Session save/load, snapshot and Markdown export (spec §1.8, conformance S199-S200, E82):
a key-free JSON file that a new Session continues from."""

from __future__ import annotations

import json

import pytest

from alloy_nb.errors import ConfigError
from alloy_nb.messages import (
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
    assistant,
    tool_results,
    user,
)
from alloy_nb.providers.anthropic import Anthropic
from alloy_nb.providers.scripted import Scripted
from alloy_nb.session import Session, SessionSnapshot

SECRET = "sk-test-SECRET"


class KeyedScripted(Scripted):
    """A scripted provider that, like the HTTP ones, holds an API key."""

    name = "keyed"

    def __init__(self, *args, api_key: str, **kw):
        super().__init__(*args, **kw)
        self.api_key = api_key


def test_save_load_round_trip_continues_the_conversation(tmp_path):
    session = Session(provider=Scripted(["Paris."], model="claude-sonnet-4-6"), name="geo",
                      system_prompt="Be brief.", metadata={"project": "atlas"})
    session.chat("Capital of France?")
    path = session.save(tmp_path / "geo.json")
    assert path.exists()

    nxt = Scripted(["Berlin."])
    loaded = Session.load(path, provider=nxt)
    assert (loaded.id, loaded.name, loaded.metadata) == (session.id, "geo", {"project": "atlas"})
    assert loaded.messages == session.messages
    assert loaded.usage == session.usage
    assert loaded.config.system_prompt == "Be brief."
    assert loaded.created_at == session.created_at

    result = loaded.chat("And Germany?")
    assert result.text == "Berlin."
    request = nxt.calls[0]  # the provider saw the loaded history
    assert [m.text for m in request.messages] == ["Capital of France?", "Paris.", "And Germany?"]
    assert request.system == "Be brief."
    assert loaded.usage.input_tokens == session.usage.input_tokens + 10


def test_no_secrets_or_context_in_the_saved_file(tmp_path):
    namespace = {"df": "a DataFrame", "password": "hunter2"}
    anthropic = Session(provider=Anthropic(api_key=SECRET, model="claude-haiku-4-5"),
                        context={"namespace": namespace, "token": "ctx-token"},
                        messages=[user("hi"), assistant("hello")])
    keyed = Session(provider=KeyedScripted(["x"], api_key=SECRET), context={"token": "ctx-token"})
    keyed.chat("hi")
    for i, session in enumerate((anthropic, keyed)):
        text = session.save(tmp_path / f"s{i}.json").read_text()
        for secret in (SECRET, "hunter2", "ctx-token", "namespace"):
            assert secret not in text
        assert SECRET not in session.export_markdown()
        assert SECRET not in repr(session)
    data = json.loads((tmp_path / "s0.json").read_text())
    assert (data["provider"], data["model"], data["version"]) == (
        "anthropic", "claude-haiku-4-5", 1)
    assert set(data) == set(SessionSnapshot.model_fields)


def test_load_rebuilds_a_resolvable_provider_from_its_name(tmp_path):
    provider = Anthropic(api_key=SECRET, model="claude-haiku-4-5")
    session = Session(provider=provider, max_tokens=50_000)
    path = session.save(tmp_path / "a.json")
    loaded = Session.load(path)  # key would come from ANTHROPIC_API_KEY at the first request
    assert isinstance(loaded.config.provider, Anthropic)
    assert loaded.model == "claude-haiku-4-5"
    assert loaded.max_tokens == 50_000  # an explicit budget is kept


def test_load_needs_a_provider_when_it_cannot_be_rebuilt(tmp_path):
    path = Session(provider=Scripted([])).save(tmp_path / "s.json")
    with pytest.raises(ConfigError, match="pass provider="):
        Session.load(path)


def test_newer_file_version_is_refused(tmp_path):
    path = Session(provider=Scripted([])).save(tmp_path / "s.json")
    data = json.loads(path.read_text())
    data["version"] = 99
    path.write_text(json.dumps(data))
    with pytest.raises(ConfigError, match="newer"):
        Session.load(path, provider=Scripted([]))


def test_snapshot_is_stable_and_timestamps_move():  # S199, S200, E82
    session = Session(provider=Scripted(["ok"]), context={"session_id": "my-session-123"})
    first = session.snapshot()
    assert first.id == "my-session-123" and first.created_at == first.updated_at
    session.chat("hi")
    second = session.snapshot()
    assert second.id == first.id and len(second.messages) == 2
    assert second.created_at == first.created_at and second.updated_at >= first.updated_at
    assert second.metadata["status"] == "idle"  # E82


def test_save_is_atomic_and_overwrites(tmp_path):
    session = Session(provider=Scripted(["a"]))
    path = tmp_path / "nested" / "s.json"
    session.save(path)
    session.chat("hi")
    session.save(path)
    assert len(json.loads(path.read_text())["messages"]) == 2
    assert [p.name for p in path.parent.iterdir()] == ["s.json"]  # no temp files left


def test_export_markdown_renders_every_block(tmp_path):
    messages = [
        user("Read ```weird``` file"),
        assistant([ThinkingBlock(thinking="I should call read."),
                   ToolUseBlock(id="t1", name="read", input={"path": "a.py"})]),
        tool_results([ToolResultBlock(tool_use_id="t1", content="print('```')")]),
        assistant("It prints backticks."),
        user("[Conversation summary]\nearlier work"),
    ]
    session = Session(provider=Scripted([]), messages=messages, name="Demo run",
                      system_prompt="Be careful.")
    out = tmp_path / "s.md"
    md = session.export_markdown(out)
    assert out.read_text() == md
    assert md.startswith("# Demo run")
    assert "<details><summary>Thinking</summary>" in md and "I should call read." in md
    assert "<details><summary>System prompt</summary>" in md
    assert "**Tool call** `read` (t1)" in md and '"path": "a.py"' in md
    assert "## Tool results" in md and "````\nprint('```')\n````" in md  # longer fence
    assert "It prints backticks." in md
    assert "<details><summary>Conversation summary</summary>" in md


def test_error_tool_results_are_labelled():
    session = Session(provider=Scripted([]), messages=[
        user("go"),
        assistant([ToolUseBlock(id="t1", name="bash", input={})]),
        tool_results([ToolResultBlock(tool_use_id="t1", content="exit code: 1", is_error=True)]),
    ])
    assert "**Tool error** (t1)" in session.export_markdown()


@pytest.mark.parametrize(("content", "why"), [
    ("{not json", "invalid JSON"),
    ("[1, 2]", "a JSON list"),
    ('{"version": 1, "messages": 5}', "not a valid saved session"),
    ('{"version": "two", "id": "x"}', "invalid session file version"),
])
def test_a_corrupted_file_raises_a_typed_error_naming_it(tmp_path, content, why):
    from alloy_nb.session import SessionFileError

    path = tmp_path / "broken.json"
    path.write_text(content)
    with pytest.raises(SessionFileError, match=why) as info:
        Session.load(path, provider=Scripted([]))
    assert str(path) in str(info.value)
    assert isinstance(info.value, ConfigError)


def test_save_during_a_background_run_is_consistent(tmp_path):
    session = Session(provider=Scripted([Scripted.delay(0.3, "answer"), "more"]))
    rid = session.send_message("question")
    assert [m.text for m in session.messages] == ["question"]  # §7.3: at once, not racily
    path = session.save(tmp_path / "mid.json")  # while running: up to the prompt
    assert session.wait(rid, timeout=10).text == "answer"
    loaded = Session.load(path, provider=Scripted(["resumed"]))
    assert [m.text for m in loaded.messages] == ["question"]
    assert loaded.health()["status"] == "idle"
    assert loaded.chat().text == "resumed"  # continues from the saved prompt
