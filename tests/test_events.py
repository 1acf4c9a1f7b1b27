"""Event envelopes and the emitter (conformance D65–D71, adapted to the Python emitter)."""

from __future__ import annotations

import logging

import pytest

from alloy_nb.agent import AgentConfig, new_emitter
from alloy_nb.events import Emitter, Event, new_id
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState


def test_d65_defaults_and_supplied_values() -> None:
    e = Emitter()
    assert e.correlation_id.startswith("run_") and e.next_seq() == 1
    assert Emitter("mine").correlation_id == "mine"


@pytest.mark.parametrize(("context", "expected"), [
    ({"request_id": "req-123"}, "req-123"),
    ({"correlation_id": "corr-456"}, "corr-456"),
    ({"request_id": "req-123", "correlation_id": "corr-456"}, "req-123"),
    ({"request_id": 42}, None),  # only strings count
])
def test_d66_correlation_id_precedence(context: dict, expected: str | None) -> None:
    config = AgentConfig.from_options(provider=Scripted(), context=context)
    cid = new_emitter(config).correlation_id
    assert cid == expected if expected else cid.startswith("run_")
    state_ctx = new_emitter(AgentConfig.from_options(provider=Scripted()),
                            AgentState(context=context)).correlation_id
    assert state_ctx == expected if expected else state_ctx.startswith("run_")
    assert new_emitter(config, correlation_id="explicit").correlation_id == "explicit"


def test_d67_envelope_fields() -> None:
    got: list[Event] = []
    ev = Emitter("c", [got.append]).emit("text_delta", "hello", turn=1)
    assert got == [ev]
    assert (ev.v, ev.seq, ev.correlation_id, ev.turn, ev.event, ev.payload) == (
        1, 1, "c", 1, "text_delta", "hello")
    assert isinstance(ev.ts_ms, int) and ev.ts_ms > 1_600_000_000_000
    assert ev["payload"] == "hello" and ev["seq"] == 1


def test_d68_d71_explicit_seq_is_kept() -> None:
    e = Emitter("c")
    assert e.emit("tool_start", {"name": "read"}, seq=99).seq == 99
    assert e.emit("tool_start", {"name": "read"}, seq=42).payload == {"name": "read"}


def test_d69_runtime_event_name_exists() -> None:
    ev = Emitter().emit("runtime_event", "raw", turn=3)
    assert (ev.event, ev.payload, ev.turn) == ("runtime_event", "raw", 3)


def test_d70_successive_seq() -> None:
    e = Emitter()
    assert [e.emit("usage").seq for _ in range(3)] == [1, 2, 3]


def test_listener_errors_are_logged_not_raised(caplog: pytest.LogCaptureFixture) -> None:
    def bad(ev: Event) -> None:
        raise RuntimeError("ui bug")

    got: list[Event] = []
    with caplog.at_level(logging.ERROR, logger="alloy_nb"):
        Emitter("c", [bad, got.append, None]).emit("done")  # type: ignore[list-item]
    assert len(got) == 1 and "ignoring" in caplog.text


def test_events_are_frozen_and_ids_random() -> None:
    ev = Emitter().emit("done")
    with pytest.raises(Exception, match="frozen"):
        ev.seq = 5  # type: ignore[misc]
    assert new_id() != new_id() and len(new_id(16)) == 22


def test_emit_delta_numbers_events_the_same_with_or_without_listeners() -> None:
    """Per-delta events are built only when someone listens; seq must not depend on it."""
    got: list[Event] = []
    heard, silent = Emitter("c", [got.append]), Emitter("c")
    for e in (heard, silent):
        e.emit("turn_start", {}, turn=1)
        e.emit_delta("text_delta", "a", turn=1)
        e.emit_delta("thinking_delta", "b", turn=1)
    assert [(ev.event, ev.payload, ev.seq, ev.turn) for ev in got] == [
        ("turn_start", {}, 1, 1), ("text_delta", "a", 2, 1), ("thinking_delta", "b", 3, 1)]
    assert silent.emit("done", None).seq == heard.emit("done", None).seq == 4
