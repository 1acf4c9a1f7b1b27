"""Every event the loop sends matches its TypedDict in ``events.py`` (keys and value types),
through a real provider against the fake server: the sender and the readers share one
contract. Also: duck-typed providers and tools are wrapped once, at ``from_options``."""

from __future__ import annotations

import asyncio
from typing import Any, ClassVar

import pytest
from pydantic import TypeAdapter, ValidationError

from alloy_nb.agent import AgentConfig
from alloy_nb.api import arun, astream
from alloy_nb.errors import AgentError
from alloy_nb.events import EVENT_PAYLOADS, Event, ToolEndPayload
from alloy_nb.messages import Message
from alloy_nb.providers import OpenAICompat
from alloy_nb.providers.base import Completion, Provider, ProviderRequest
from alloy_nb.testing import FakeProviderServer, reply
from alloy_nb.tools.base import Tool

KEY = "test-key-events-51bd"


def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def check(ev: Event) -> None:
    """The payload has exactly the TypedDict's keys (required ones all present) and
    values of the declared types."""
    typ = EVENT_PAYLOADS[ev.event]
    if typ is str:
        assert isinstance(ev.payload, str), ev
        return
    keys = set(ev.payload)
    required, optional = typ.__required_keys__, typ.__optional_keys__
    assert required <= keys, (ev.event, required - keys)
    assert keys <= required | optional, (ev.event, keys - required - optional)
    TypeAdapter(typ).validate_python(ev.payload, strict=True)


def run(script: list[Any], stream: bool, **kw: Any) -> tuple[list[Event], Any]:
    events: list[Event] = []
    with FakeProviderServer(script) as srv:
        provider = OpenAICompat(api_key=KEY, model="m", base_url=srv.url)
        kw = {"tools": [add], "retry_backoff_ms": 1, "on_event": events.append, **kw}

        async def go() -> Any:
            if stream:
                return await astream("add 1 and 2", lambda chunk: None, provider=provider, **kw)
            return await arun("add 1 and 2", provider=provider, **kw)

        try:
            result = asyncio.run(go())
        except AgentError as exc:
            result = exc.result
    return events, result


@pytest.mark.parametrize("stream", [False, True])
def test_every_event_of_a_run_with_a_retry_and_a_tool_matches_its_payload_type(
    stream: bool,
) -> None:
    script = [reply.status(429, retry_after=0), reply.tool_calls(("add", {"a": 1, "b": 2})),
              reply.text("It is 3.")]
    events, result = run(script, stream)
    assert result.text == "It is 3."
    names = [e.event for e in events]
    for needed in ("retry", "turn_start", "turn_end", "usage", "tool_start", "tool_end", "done"):
        assert needed in names
    if stream:
        assert "text_delta" in names
    for ev in events:
        check(ev)
    end = next(e for e in events if e.event == "tool_end")
    assert end.payload["result"] == "3"  # the key the notebook view reads


def test_error_event_matches_its_payload_type() -> None:
    events, result = run([reply.status(401)], stream=False)
    assert result.status == "error"
    [err] = [e for e in events if e.event == "error"]
    check(err)
    assert err.payload["stage"] == "provider" and err.payload["retryable"] is False
    check(events[-1])
    assert events[-1].event == "done"


def test_compaction_event_matches_its_payload_type() -> None:
    history = []
    for i in range(12):
        history += [Message(role="user", content=f"question {i} " + "x" * 400),
                    Message(role="assistant", content=f"answer {i} " + "y" * 400)]
    events, result = run([reply.text("summary of it all"), reply.text("done")], stream=False,
                         tools=[], max_tokens=1500, messages=history)
    [ev] = [e for e in events if e.event == "compaction"]
    check(ev)
    assert result.status == "completed"


def test_checker_rejects_a_wrong_key() -> None:
    bad = Event(seq=1, correlation_id="c", turn=1, ts_ms=0, event="tool_end",
                payload={"id": "a", "name": "n", "input": {}, "duration_ms": 1,
                         "error": None, "start_event_seq": 1, "content": "x"})
    with pytest.raises(AssertionError):
        check(bad)
    wrong_type: ToolEndPayload = {"id": "a", "name": "n", "input": {}, "duration_ms": 1,
                                  "error": None, "start_event_seq": 1, "result": "x"}
    with pytest.raises(ValidationError):
        check(Event(seq=1, correlation_id="c", turn=1, ts_ms=0, event="tool_end",
                    payload={**wrong_type, "duration_ms": "1"}))


# ---- duck-typed inputs: wrapped once at the boundary ------------------------------------


class DuckProvider:
    """Not a Provider subclass: only ``complete`` and a model."""

    name = "duck"
    model = "duck-1"

    async def complete(self, request: ProviderRequest) -> Completion:
        return Completion(stop_reason="end_turn",
                          message=Message(role="assistant", content="quack"))


class DuckTool:
    """Not a Tool subclass: name, input_schema, execute."""

    name = "honk"
    description = "Honks"
    input_schema: ClassVar[dict[str, Any]] = {"type": "object", "properties": {}}
    concurrent = False
    max_result_chars = 10

    def execute(self, input: dict[str, Any], context: Any) -> str:
        return "honk" * 10


def test_duck_provider_and_tool_are_wrapped_once_and_run() -> None:
    duck, honk = DuckProvider(), DuckTool()
    config = AgentConfig.from_options(provider=duck, tools=[honk])
    assert isinstance(config.provider, Provider) and config.provider.inner is duck
    assert (config.provider.name, config.model) == ("duck", "duck-1")
    [tool] = config.tools
    assert isinstance(tool, Tool) and tool.inner is honk
    assert (tool.name, tool.concurrent, tool.max_result_chars) == ("honk", False, 10)
    assert config.tool_definitions[0].description == "Honks"
    again = config.replace(max_turns=3)  # the wrappers pass through, not wrapped twice
    assert again.provider is config.provider and again.tools[0] is tool
    result = asyncio.run(arun("hi", provider=duck, tools=[honk]))
    assert result.text == "quack"


def test_emit_result_numbers_in_the_run_sequence_and_reaches_only_its_target() -> None:
    from alloy_nb.events import Emitter
    from alloy_nb.result import Result

    run_listener: list[Event] = []
    subscribers: list[Event] = []
    em = Emitter("req_1", [run_listener.append])
    em.emit("turn_start", {"model": "m", "provider": "p"}, turn=1)
    result = Result(text="hi", status="completed")
    ev = em.emit_result({"request_id": "req_1", "result": result}, turn=1,
                        to=subscribers.append)
    assert [e.event for e in run_listener] == ["turn_start"]  # on_event ends at done
    assert subscribers == [ev] and (ev.seq, ev.correlation_id) == (2, "req_1")
    assert ev.payload["result"] is result
