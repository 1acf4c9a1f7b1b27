"""Untrusted input to structured output: whatever arguments a model sends to final_result,
validation returns a valid value or a ToolError for the model (never another exception);
the demo's samples are valid for generated schemas; item templates fail only as ConfigError."""

from __future__ import annotations

from typing import Any, Literal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, Field

from alloy_nb.batch._items import prepare
from alloy_nb.errors import ConfigError, ToolError
from alloy_nb.output import OutputSpec
from alloy_nb.providers._sample import sample_value


class Inner(BaseModel):
    name: str = Field(min_length=2, max_length=5)
    tags: list[Literal["x", "y"]] = Field(min_length=1)


class Outer(BaseModel):
    n: int = Field(ge=-3, le=7)
    ratio: float = Field(gt=0, lt=1)
    inner: Inner
    maybe: Inner | None = None
    many: list[Inner] = Field(default_factory=list, max_length=3)


TYPES: list[Any] = [Outer, Inner, int, str, list[Outer], Literal["a", "b"], dict[str, int],
                    bool, float | None, list[int]]
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=True) | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner,
                                                                max_size=4),
    max_leaves=20,
)


@pytest.mark.parametrize("tp", TYPES)
@settings(max_examples=50, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(args=st.dictionaries(st.sampled_from(["response", "n", "inner", "name", "tags", "x"])
                            | st.text(max_size=6), json_values, max_size=5))
def test_validate_returns_a_value_or_a_tool_error(tp: Any, args: dict[str, Any]) -> None:
    spec = OutputSpec(tp)
    try:
        value = spec.validate(args)
    except ToolError as exc:
        assert str(exc).startswith("Invalid final_result arguments")
        assert len(str(exc)) < 3000
    else:
        spec.adapter.validate_python(value)


@pytest.mark.parametrize("tp", TYPES)
@settings(max_examples=25, deadline=None)
@given(prompt=st.text(max_size=200))
def test_demo_samples_are_valid_for_any_prompt(tp: Any, prompt: str) -> None:
    spec = OutputSpec(tp)
    spec.validate(sample_value(spec.schema, prompt))


@settings(max_examples=200, deadline=None)
@given(template=st.text(max_size=40), item=json_values)
def test_templates_fill_or_raise_config_error(template: str, item: Any) -> None:
    items = [item]
    try:
        out = prepare(template, items)
    except ConfigError:
        return
    assert len(out.prompts) == 1 and isinstance(out.prompts[0], str)
