"""output_type: a final ``final_result`` tool, validated; the run ends on the first valid
call, invalid ones go back to the model with the validation message, bounded."""

from __future__ import annotations

import asyncio
import dataclasses
from typing import Any, Literal

import pytest
from pydantic import BaseModel, Field
from typing_extensions import TypedDict

import alloy_nb as alloy
from alloy_nb.errors import AgentError, ConfigError, OutputValidationError
from alloy_nb.output import FINAL_RESULT, OUTPUT_RETRIES, OutputSpec
from alloy_nb.providers import Anthropic, OpenAI, OpenAICompat
from alloy_nb.providers._sample import sample_value
from alloy_nb.providers.demo import Demo
from alloy_nb.providers.scripted import Scripted
from alloy_nb.testing import FakeProviderServer, reply


class Penguin(BaseModel):
    species: Literal["Adelie", "Chinstrap", "Gentoo"]
    confidence: float = Field(ge=0, le=1)


class Point(TypedDict):
    x: int
    y: int


@dataclasses.dataclass
class Box:
    width: float
    label: str


def final(args: dict[str, Any]) -> Any:
    return Scripted.tool_calls((FINAL_RESULT, args))


def test_model_output_ends_run_without_extra_turn() -> None:
    p = Scripted([final({"species": "Gentoo", "confidence": 0.9})])
    r = alloy.run("classify", provider=p, output_type=Penguin)
    assert r.output == Penguin(species="Gentoo", confidence=0.9)
    assert r.status == "completed" and r.turns == 1 and len(p.calls) == 1
    assert "**output** `Penguin(species='Gentoo', confidence=0.9)`" in r._repr_markdown_()
    tools = p.calls[0].tools
    assert [t.name for t in tools] == [FINAL_RESULT]
    assert tools[0].input_schema["properties"]["species"]["enum"] == [
        "Adelie", "Chinstrap", "Gentoo"]
    # the history is valid to continue from: the call has its result
    r2 = alloy.run("and now?", provider=Scripted(["ok"]), messages=r.messages)
    assert r2.text == "ok"


@pytest.mark.parametrize(("tp", "args", "expected"), [
    (Point, {"x": 1, "y": 2}, {"x": 1, "y": 2}),
    (Box, {"width": 2.5, "label": "a"}, Box(2.5, "a")),
    (int, {"response": 7}, 7),
    (list[Penguin], {"response": [{"species": "Adelie", "confidence": 0}]},
     [Penguin(species="Adelie", confidence=0)]),
    (Literal["yes", "no"], {"response": "no"}, "no"),
])
def test_type_kinds(tp: Any, args: dict[str, Any], expected: Any) -> None:
    p = Scripted([final(args)])
    r = alloy.run("x", provider=p, output_type=tp)
    assert r.output == expected
    schema = p.calls[0].tools[-1].input_schema
    assert schema["type"] == "object"


def test_invalid_arguments_go_back_with_the_message_then_succeed() -> None:
    p = Scripted([final({"species": "Emperor", "confidence": 2}),
                  final({"species": "Adelie", "confidence": 0.5})])
    r = alloy.run("x", provider=p, output_type=Penguin)
    assert r.output == Penguin(species="Adelie", confidence=0.5)
    assert r.turns == 2
    sent_back = p.calls[1].messages[-1].tool_result_blocks[0]
    assert sent_back.is_error
    assert "species" in sent_back.content and "confidence" in sent_back.content


def test_retries_are_bounded_then_typed_error() -> None:
    bad = [final({"species": "Emperor", "confidence": 0.5}) for _ in range(OUTPUT_RETRIES + 1)]
    p = Scripted([*bad, "never used"])
    with pytest.raises(OutputValidationError) as info:
        alloy.run("x", provider=p, output_type=Penguin)
    assert isinstance(info.value, AgentError)
    result = info.value.result
    assert result.status == "error" and result.output is None
    assert "species" in (result.error or "")
    assert len(p.calls) == OUTPUT_RETRIES + 1
    # history stays valid: every tool_use answered
    alloy.run("go on", provider=Scripted(["fine"]), messages=result.messages)


def test_plain_answer_gets_nudged_to_call_final_result() -> None:
    p = Scripted(["It is a Gentoo.", final({"species": "Gentoo", "confidence": 1})])
    r = alloy.run("x", provider=p, output_type=Penguin)
    assert r.output.species == "Gentoo"
    assert FINAL_RESULT in (p.calls[1].messages[-1].text or "")


def test_other_tools_run_before_the_final_result() -> None:
    def lookup(name: str) -> str:
        """Look a penguin up."""
        return "Gentoo, very sure"

    p = Scripted([Scripted.tool_calls(("lookup", {"name": "pingu"})),
                  final({"species": "Gentoo", "confidence": 0.99})])
    r = alloy.run("x", provider=p, tools=[lookup], output_type=Penguin)
    assert [c.name for c in r.tool_calls] == ["lookup", FINAL_RESULT]
    assert r.output.confidence == 0.99


def test_stream_and_async_twins() -> None:
    chunks: list[str] = []
    r = alloy.stream("x", chunks.append, provider=Scripted(
        [Scripted.reply("thinking aloud", tool_calls=[(FINAL_RESULT, {"response": 3})])]),
        output_type=int)
    assert r.output == 3 and "".join(chunks) == "thinking aloud"

    async def go() -> tuple[Any, Any]:
        a = await alloy.arun("x", provider=Scripted([final({"response": 4})]), output_type=int)
        b = await alloy.astream("x", None, provider=Scripted([final({"response": 5})]),
                                output_type=int)
        return a.output, b.output

    assert asyncio.run(go()) == (4, 5)


def test_session_chats_take_output_type_per_call_and_as_option() -> None:
    s = alloy.Session(provider=Scripted([final({"response": 1}), "plain",
                                         final({"species": "Adelie", "confidence": 0})]),
                      output_type=int)
    assert s.chat("a").output == 1
    s.configure(output_type=None)
    r = s.chat("b")
    assert r.text == "plain" and r.output is None
    assert s.chat("c", output_type=Penguin).output.species == "Adelie"
    assert s.config.output_type is None  # the per-call type did not stick


def test_bad_types_and_name_clash_are_config_errors() -> None:
    class Opaque:
        pass

    with pytest.raises(ConfigError, match="output_type=Opaque"):
        alloy.run("x", provider=Scripted(["a"]), output_type=Opaque)

    def final_result(x: int) -> int:
        """Clash."""
        return x

    with pytest.raises(ConfigError, match="final_result"):
        alloy.run("x", provider=Scripted(["a"]), tools=[final_result], output_type=int)


@pytest.mark.parametrize("tp", [Penguin, Point, Box, int, str, bool, list[Penguin],
                                Literal["a", "b"], dict[str, int], float | None])
def test_demo_answers_with_schema_valid_sample(tp: Any) -> None:
    r = alloy.run("Penguin on Dream island, 3750 g", provider=Demo(delay_s=0), output_type=tp)
    assert r.status == "completed" and r.turns == 1
    OutputSpec(tp).adapter.validate_python(r.output)  # valid (and already validated)


def test_demo_sample_is_deterministic_and_uses_mentioned_enum() -> None:
    schema = OutputSpec(Penguin).schema
    a = sample_value(schema, "a Chinstrap seen today")
    assert a["species"] == "Chinstrap" and 0 <= a["confidence"] <= 1
    assert sample_value(schema, "row 7") == sample_value(schema, "row 7")


class Nested(BaseModel):
    name: str = Field(min_length=12, max_length=20)
    items: list[Box] = Field(min_length=2, max_length=2)
    when: str = Field(json_schema_extra={"format": "date"})
    n: int = Field(gt=10, lt=13, multiple_of=2)


def test_sample_respects_constraints() -> None:
    spec = OutputSpec(Nested)
    for prompt in ("a", "b", "c 11 12 99"):
        spec.adapter.validate_python(sample_value(spec.schema, prompt))


@pytest.mark.parametrize("kind", ["anthropic", "openai", "openai-compat"])
@pytest.mark.parametrize("stream", [False, True])
def test_over_real_http(kind: str, stream: bool) -> None:
    with FakeProviderServer([reply.tool_calls(
            (FINAL_RESULT, {"species": "Gentoo", "confidence": 0.25}))]) as srv:
        url = srv.url
        if kind == "anthropic":
            provider: Any = Anthropic(api_key="k", base_url=url)
        elif kind == "openai":
            provider = OpenAI(api_key="k", base_url=url)
        else:
            provider = OpenAICompat(api_key="k", model="m", base_url=url)
        fn = alloy.stream if stream else alloy.run
        args = ("classify", None) if stream else ("classify",)
        r = fn(*args, provider=provider, output_type=Penguin)  # type: ignore[operator]
        body = srv.requests[0].json
    assert r.output == Penguin(species="Gentoo", confidence=0.25)
    assert FINAL_RESULT in str(body["tools"])


def test_session_chat_raises_the_typed_error_and_keeps_a_valid_history() -> None:
    bad = [final({"species": "Emperor", "confidence": 0}) for _ in range(OUTPUT_RETRIES + 1)]
    s = alloy.Session(provider=Scripted([*bad, "later"]))
    with pytest.raises(OutputValidationError):
        s.chat("x", output_type=Penguin)
    assert s.chat("go on").text == "later"  # the history was valid to continue from
