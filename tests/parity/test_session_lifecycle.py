"""Session start and shutdown (reference §7.1, §7.8; conformance E75, E84, E87, E88, E90)."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from alloy_nb import Halt, Middleware, Session
from alloy_nb.errors import AgentError, ConfigError
from alloy_nb.providers.scripted import Scripted
from alloy_nb.state import AgentState


def test_conformance_E84_on_shutdown_gets_the_session_once_on_close() -> None:
    seen: list[tuple[str, int]] = []
    session = Session(provider=Scripted(["hi"]), on_shutdown=lambda s: seen.append(
        (s.id, len(s.messages))))
    session.chat("hello")
    session.close()
    session.close()  # a second close does not call it again
    assert seen == [(session.id, 2)]


def test_conformance_E84_on_shutdown_on_context_exit_sync_and_async() -> None:
    seen: list[str] = []
    with Session(provider=Scripted([]), on_shutdown=lambda s: seen.append("sync")):
        pass

    async def record(s: Session) -> None:
        await asyncio.sleep(0)
        seen.append("async")

    async def main() -> None:
        async with Session(provider=Scripted([]), on_shutdown=record):
            pass

    asyncio.run(main())
    assert seen == ["sync", "async"]


def test_conformance_E75_E84_a_raising_on_shutdown_is_logged_not_raised(
    caplog: pytest.LogCaptureFixture,
) -> None:
    def boom(session: Session) -> None:
        raise RuntimeError("shutdown bug")

    with caplog.at_level(logging.ERROR, logger="alloy_nb"):
        Session(provider=Scripted([]), on_shutdown=boom).close()  # no exception
    (record,) = [r for r in caplog.records if "on_shutdown callback raised" in r.getMessage()]
    assert record.exc_info is not None and "shutdown bug" in str(record.exc_info[1])


def test_conformance_E84_no_callback_is_fine_and_a_bad_one_is_a_config_error() -> None:
    Session(provider=Scripted([])).close()
    with pytest.raises(ConfigError, match="on_shutdown must be a callable"):
        Session(provider=Scripted([]), on_shutdown="print")  # type: ignore[arg-type]


def test_conformance_E88_on_shutdown_runs_after_session_end_and_sees_its_session_id() -> None:
    order: list[str] = []

    class Enrich(Middleware):
        def session_end(self, state: AgentState) -> AgentState:
            order.append("session_end")
            state.context["session_id"] = "enriched-session-id"
            return state

    ids: list[str] = []
    session = Session(provider=Scripted([]), middleware=[Enrich()],
                      on_shutdown=lambda s: (order.append("on_shutdown"), ids.append(s.id)))
    session.close()
    assert order == ["session_end", "on_shutdown"] and ids == ["enriched-session-id"]

    class Refuse(Middleware):
        def session_end(self, state: AgentState) -> Any:
            return Halt("not now")

    fired: list[str] = []
    halted = Session(provider=Scripted([]), middleware=[Refuse()],
                     on_shutdown=lambda s: fired.append(s.id))
    halted.close()
    assert fired == [halted.id]  # a halting session_end does not stop on_shutdown


def test_conformance_E90_session_start_can_set_the_session_id() -> None:
    class Name(Middleware):
        def session_start(self, state: AgentState) -> AgentState:
            state.context["session_id"] = "custom-session-123"
            return state

    seen: list[str] = []

    class Look(Middleware):
        def before_completion(self, state: AgentState) -> AgentState:
            seen.append(state.context["session_id"])
            return state

    session = Session(provider=Scripted(["a", "b"]), middleware=[Name(), Look()])
    assert session.id != "custom-session-123"  # session_start runs with the first request
    session.chat("one")
    assert session.id == "custom-session-123"
    session.chat("two")
    assert seen == ["custom-session-123", "custom-session-123"]
    assert session.snapshot().id == "custom-session-123"


def test_conformance_E87_session_start_halt_fails_the_first_request() -> None:
    """Deviation (docs/deviations.md, E87): the hook runs with the first request, so a halt
    fails that request (AgentError, status halted) instead of the constructor."""

    class Refuse(Middleware):
        def session_start(self, state: AgentState) -> Any:
            return Halt("blocked at start")

    session = Session(provider=Scripted(["x"]), middleware=[Refuse()])
    with pytest.raises(AgentError) as info:
        session.chat("hi")
    assert info.value.result.status == "halted"
    assert info.value.result.error == "Halted by middleware: blocked at start"
