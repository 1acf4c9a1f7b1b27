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
