"""OpenTelemetry spans (reference 0.9 telemetry events, spec §4.4/§10) following the GenAI
semantic conventions, checked with opentelemetry-sdk's in-memory exporter; and nothing is
imported when opentelemetry is not installed (checked in a subprocess)."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from typing import Any

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.trace import StatusCode

import alloy_nb
from alloy_nb import Session, telemetry
from alloy_nb.errors import AgentError
from alloy_nb.providers.scripted import Scripted

_EXPORTER = InMemorySpanExporter()


class _Recording(SimpleSpanProcessor):
    """Exports only while a test here asks for spans: the global provider outlives us."""

    on = False

    def on_end(self, span: Any) -> None:
        if self.on:
            super().on_end(span)


_PROCESSOR = _Recording(_EXPORTER)


@pytest.fixture()
def spans() -> Iterator[InMemorySpanExporter]:
    current = trace.get_tracer_provider()
    if not isinstance(current, TracerProvider):  # first use in this process
        current = TracerProvider()
        trace.set_tracer_provider(current)
    if not getattr(current, "_alloy_test_exporter", False):
        current.add_span_processor(_PROCESSOR)
        current._alloy_test_exporter = True  # type: ignore[attr-defined]
    _EXPORTER.clear()
    _PROCESSOR.on = True
    try:
        yield _EXPORTER
    finally:
        _PROCESSOR.on = False
        _EXPORTER.clear()


def echo(text: str) -> str:
    """Echo the text."""
    return f"Echo: {text}"


def broken(text: str) -> str:
    """Always fails."""
    raise ValueError("tool broke")


def _by_name(exporter: InMemorySpanExporter) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    for s in exporter.get_finished_spans():
        out.setdefault(s.name, []).append(s)
    return out


def test_conformance_v09_telemetry_run_turn_provider_and_tool_spans(spans: Any) -> None:
    provider = Scripted([Scripted.tool_calls(("echo", {"text": "a"}, "call_a"),
                                             ("echo", {"text": "b"}, "call_b")), "done"],
                        model="claude-sonnet-4-6")
    result = alloy_nb.run("go", provider=provider, tools=[echo])
    assert result.status == "completed"
    found = _by_name(spans)
    (run,) = found["invoke_agent alloy_nb"]
    turns = sorted(found["alloy_nb.turn"], key=lambda s: s.attributes["alloy_nb.turn"])
    chats = found["chat claude-sonnet-4-6"]
    tools = found["execute_tool echo"]
    assert (len(turns), len(chats), len(tools)) == (2, 2, 2)
    assert run.attributes["gen_ai.operation.name"] == "invoke_agent"
    assert (run.attributes["alloy_nb.status"], run.attributes["alloy_nb.turns"]) == (
        "completed", 2)
    assert run.attributes["gen_ai.usage.input_tokens"] == 20
    assert run.attributes["gen_ai.request.model"] == "claude-sonnet-4-6"
    # nesting: run > turn > (chat, tools)
    assert all(t.parent.span_id == run.context.span_id for t in turns)
    assert {c.parent.span_id for c in chats} == {t.context.span_id for t in turns}
    assert {t.parent.span_id for t in tools} == {turns[0].context.span_id}
    chat = next(c for c in chats if c.parent.span_id == turns[0].context.span_id)
    assert chat.kind == trace.SpanKind.CLIENT
    assert chat.attributes["gen_ai.operation.name"] == "chat"
    assert chat.attributes["gen_ai.provider.name"] == "scripted"
    assert chat.attributes["gen_ai.response.finish_reasons"] == ("tool_use",)
    assert chat.attributes["gen_ai.usage.output_tokens"] == 5
    assert sorted(t.attributes["gen_ai.tool.call.id"] for t in tools) == ["call_a", "call_b"]
    assert all(t.attributes["gen_ai.tool.type"] == "function" for t in tools)
    assert all(s.status.status_code != StatusCode.ERROR for s in spans.get_finished_spans())
    text = str([dict(s.attributes) for s in spans.get_finished_spans()])
    assert "Echo: a" not in text and "'text': 'a'" not in text  # no contents recorded


def test_conformance_v09_telemetry_marks_failures(spans: Any) -> None:
    with pytest.raises(AgentError):
        alloy_nb.run("go", provider=Scripted([Scripted.error("API rate limited")]))
    found = _by_name(spans)
    (run,) = found["invoke_agent alloy_nb"]
    (chat,) = found["chat scripted"]
    assert chat.status.status_code == StatusCode.ERROR
    assert chat.attributes["error.type"] == "ProviderError"
    assert run.status.status_code == StatusCode.ERROR and run.attributes["error.type"] == "error"
    spans.clear()
    alloy_nb.run("go", provider=Scripted([Scripted.tool_calls(("broken", {"text": "x"})),
                                          "ok"]), tools=[broken])
    (tool,) = _by_name(spans)["execute_tool broken"]
    assert tool.status.status_code == StatusCode.ERROR
    assert tool.attributes["error.type"] == "tool_error"


def test_conformance_v09_telemetry_session_id_is_the_conversation_id(spans: Any) -> None:
    session = Session(provider=Scripted(["one"]), context={"session_id": "sess-42"})
    session.chat("hi")
    (run,) = _by_name(spans)["invoke_agent alloy_nb"]
    assert run.attributes["gen_ai.conversation.id"] == "sess-42"
    assert run.attributes["alloy_nb.request_id"]
    assert telemetry.enabled()


# how Python spells "not installed": import fails and find_spec answers None
_ABSENT = "import sys\nsys.modules['opentelemetry'] = None\n"


def test_conformance_v09_telemetry_nothing_imported_without_opentelemetry() -> None:
    code = _ABSENT + (
        "import alloy_nb\n"
        "from alloy_nb import telemetry\n"
        "from alloy_nb.providers.scripted import Scripted\n"
        "def echo(text: str) -> str:\n"
        "    '''Echo.'''\n"
        "    return text\n"
        "r = alloy_nb.run('go', provider=Scripted([Scripted.tool_calls(('echo', {'text': 'x'})),"
        " 'done']), tools=[echo])\n"
        "assert r.status == 'completed', r\n"
        "assert not telemetry.enabled()\n"
        "print(sorted(m for m, mod in sys.modules.items()\n"
        "             if m.startswith('opentelemetry') and mod is not None))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "[]"


def test_importing_alloy_nb_never_imports_opentelemetry() -> None:
    code = ("import sys, alloy_nb, alloy_nb.agent; "
            "print([m for m in sys.modules if m.startswith('opentelemetry')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
