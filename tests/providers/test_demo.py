"""The offline demo provider drives the real loop: tools called, results read, answers honest."""

from __future__ import annotations

import asyncio

import pytest

import alloy_nb as alloy
from alloy_nb.messages import user
from alloy_nb.providers.base import ProviderRequest
from alloy_nb.providers.demo import Demo
from alloy_nb.tools import tool
from alloy_nb.tools.notebook import notebook_tools


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_arithmetic_is_answered_and_marked_as_scripted() -> None:
    result = alloy.run("What is 2+2?", provider=Demo(delay_s=0))
    assert result.text.startswith("**4**")
    assert "offline demo" in result.text


def test_a_tool_named_in_the_prompt_is_called_with_numbers_from_it() -> None:
    result = alloy.run("Please add 3 and 4", provider=Demo(delay_s=0), tools=[add])
    assert [(c.name, c.input) for c in result.tool_calls] == [("add", {"a": 3, "b": 4})]
    assert "7" in result.text
    assert result.turns == 2


def test_data_questions_list_then_inspect_the_dataframe() -> None:
    pd = pytest.importorskip("pandas")
    ns = {"sales": pd.DataFrame({"price": [1.0, None, None], "region": ["n", "s", None]}), "k": 3}
    result = alloy.run(
        "Which column of my data has the most missing values?",
        provider=Demo(delay_s=0),
        tools=notebook_tools(),
        context={"namespace": ns},
    )
    assert [c.name for c in result.tool_calls] == ["list_variables", "inspect_variable"]
    assert result.tool_calls[1].input == {"name": "sales"}
    assert "`price` has the most missing values (2)" in result.text


def test_streaming_sends_the_whole_text_in_deltas() -> None:
    chunks: list[str] = []
    result = alloy.stream("Tell me about notebooks", chunks.append, provider=Demo(delay_s=0))
    assert len(chunks) > 5
    assert "".join(chunks) == result.text


def test_until_tool_gets_schema_shaped_arguments() -> None:
    @tool
    def report(title: str, score: int, tags: list[str]) -> str:
        """Submit the final report."""
        return "ok"

    result = alloy.run(
        "Summarise 'quarterly sales' with score 9",
        provider=Demo(delay_s=0),
        tools=[report],
        until_tool="report",
        max_turns=4,
    )
    call = next(c for c in result.tool_calls if c.name == "report")
    assert call.error is None
    assert call.input["score"] == 9
    assert call.input["title"] == "quarterly sales"


def test_usage_is_counted() -> None:
    completion = asyncio.run(Demo(delay_s=0).complete(ProviderRequest(messages=[user("hi")])))
    assert completion.usage.input_tokens > 0
    assert completion.usage.output_tokens > 0


def test_a_new_prompt_does_not_reuse_numbers_of_the_previous_one() -> None:
    session = alloy.Session(provider=Demo(delay_s=0), tools=[add])
    session.chat("What is 12 * 12?")
    assert session.chat("Use add to add 144 and 6.").tool_calls[0].input == {"a": 144, "b": 6}
    assert session.chat("Thanks! What is 3 * 3?").tool_calls == []


def test_optional_arguments_are_left_to_their_defaults(tmp_path) -> None:
    from alloy_nb.tools.core import Read

    (tmp_path / "three.txt").write_text("one\ntwo\nthree\n")
    result = alloy.run(
        "Read three.txt", provider=Demo(delay_s=0), tools=[Read], working_directory=str(tmp_path)
    )
    assert result.tool_calls[0].input == {"file_path": "three.txt"}
    assert "three" in result.text and result.tool_calls[0].error is None


def test_only_a_listing_is_followed_by_an_inspection() -> None:
    result = alloy.run(
        "Use list_variables please",
        provider=Demo(delay_s=0),
        tools=notebook_tools(),
        context={"namespace": {"x": 1}},
    )
    assert [c.name for c in result.tool_calls] == ["list_variables", "inspect_variable"]
    result = alloy.run(
        "Use inspect_variable on 'x'",
        provider=Demo(delay_s=0),
        tools=notebook_tools(),
        context={"namespace": {"x": 1}},
    )
    assert [c.name for c in result.tool_calls] == ["inspect_variable"]


def test_optional_arguments_named_in_the_prompt_are_filled() -> None:
    @tool
    def convert(grams: float, unit: str = "kg") -> str:
        """Convert grams."""
        return f"{grams} {unit}"

    result = alloy.run(
        'Use convert on 5200 grams, unit "stone".', provider=Demo(delay_s=0), tools=[convert]
    )
    assert result.tool_calls[0].input == {"grams": 5200.0, "unit": "stone"}


def test_default_pacing_is_capped_but_an_explicit_delay_is_kept() -> None:
    sleeps: list[float] = []

    async def fake_sleep(seconds: float) -> None:
        sleeps.append(seconds)

    from unittest import mock

    request = ProviderRequest(messages=[user("Tell me about notebooks")])
    with mock.patch("alloy_nb.providers.demo.asyncio.sleep", fake_sleep):
        asyncio.run(Demo(max_stream_s=1.5).stream(request, lambda kind, text: None))
        assert 0 < sum(sleeps) <= 1.5 + 1e-9
        sleeps.clear()
        asyncio.run(Demo(delay_s=0.2).stream(request, lambda kind, text: None))
        assert set(sleeps) == {0.2} and len(sleeps) > 10


def test_a_stopped_demo_run_counts_the_tokens_it_streamed() -> None:
    """Like a real provider (which reports input tokens at the stream's start), a demo
    reply stopped mid-stream reports what it read and sent: not "0 in / 0 out"."""
    import asyncio

    import alloy_nb
    from alloy_nb.errors import AgentError
    from alloy_nb.providers.demo import Demo

    async def main() -> alloy_nb.Result:
        s = alloy_nb.Session(provider=Demo(delay_s=0.05, chunk_chars=5))
        task = asyncio.ensure_future(s.astream_chat("tell me about pandas dataframes"))
        await asyncio.sleep(0.3)
        assert s.cancel()
        try:
            await task
        except AgentError as exc:
            return exc.result
        raise AssertionError("the run was not stopped")

    r = asyncio.run(main())
    assert r.status == "cancelled"
    assert r.usage.input_tokens > 0 and 0 < r.usage.output_tokens < 40
