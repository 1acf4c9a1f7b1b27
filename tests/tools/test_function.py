"""Function tools: schema from hints and docstrings, validation text, context, sync/async."""

from __future__ import annotations

import asyncio
import inspect
from typing import Any, Literal

import pytest
from pydantic import BaseModel

from alloy_nb.errors import ConfigError, ToolError
from alloy_nb.tools import Tool, ToolResult, as_tool, tool
from alloy_nb.tools.function import AsyncFunctionTool, FunctionTool


class Point(BaseModel):
    x: int
    y: int = 0


@tool
def add(a: int, b: int) -> int:
    """Add two integers."""
    return a + b


def test_bare_decorator_keeps_function_callable() -> None:
    assert isinstance(add, Tool)
    assert add(1, 2) == 3
    assert add.__name__ == "add"
    assert add.name == "add"
    assert add.description == "Add two integers."
    assert add.execute({"a": 1, "b": 2}, {}) == "3"


def test_definition_matches_attributes() -> None:
    d = add.definition()
    assert (d.name, d.description) == ("add", "Add two integers.")
    assert d.input_schema == add.input_schema


def test_schema_types_defaults_optional_literal_list_nested() -> None:
    @tool
    def f(
        name: str,
        count: int = 3,
        ratio: float | None = None,
        mode: Literal["fast", "slow"] = "fast",
        tags: list[str] | None = None,
        point: Point | None = None,
        flag: bool = False,
    ) -> str:
        """Do things."""
        return ""

    s = f.input_schema
    assert s["type"] == "object"
    assert s["required"] == ["name"]
    p = s["properties"]
    assert p["name"] == {"type": "string"}
    assert p["count"] == {"type": "integer", "default": 3}
    assert {"type": "number"} in p["ratio"]["anyOf"]
    assert p["mode"]["enum"] == ["fast", "slow"]
    assert p["mode"]["default"] == "fast"
    assert {"type": "array", "items": {"type": "string"}} in p["tags"]["anyOf"]
    assert p["flag"] == {"type": "boolean", "default": False}
    assert {"$ref": "#/$defs/Point"} in p["point"]["anyOf"]
    assert s["$defs"]["Point"]["required"] == ["x"]
    assert "title" not in s and "title" not in p["name"]


def test_google_docstring_descriptions() -> None:
    @tool
    def f(a: int, b: str = "x") -> None:
        """Summary line.

        Longer explanation.

        Args:
            a (int): The first
                value.
            b: The second.

        Returns:
            Nothing.
        """

    assert f.description == "Summary line.\n\nLonger explanation."
    assert f.input_schema["properties"]["a"]["description"] == "The first value."
    assert f.input_schema["properties"]["b"]["description"] == "The second."


def test_numpy_and_sphinx_docstrings() -> None:
    def numpy_style(x: int, y: int) -> int:
        """Numpy summary.

        Parameters
        ----------
        x : int
            The x
            coordinate.
        y : int
            The y.

        Returns
        -------
        int
        """
        return x

    def sphinx_style(x: int, y: int) -> int:
        """Sphinx summary.

        :param int x: the x
        :param y: the y
        :returns: x
        """
        return x

    n = as_tool(numpy_style)
    assert n.description == "Numpy summary."
    assert n.input_schema["properties"]["x"]["description"] == "The x coordinate."
    assert n.input_schema["properties"]["y"]["description"] == "The y."
    s = as_tool(sphinx_style)
    assert s.description == "Sphinx summary."
    assert s.input_schema["properties"]["x"]["description"] == "the x"
    assert s.input_schema["properties"]["y"]["description"] == "the y"


def test_decorator_with_arguments() -> None:
    @tool(name="multiply", description="Multiply numbers.")
    def mul(a: float, b: float) -> float:
        return a * b

    assert (mul.name, mul.description) == ("multiply", "Multiply numbers.")
    assert mul(2, 3) == 6
    assert mul.execute({"a": 2, "b": 3.5}, {}) == "7.0"


def test_validation_error_names_each_field() -> None:
    with pytest.raises(ToolError) as info:
        add.execute({"a": 1, "b": "x"}, {})
    msg = str(info.value)
    assert msg.startswith("Invalid arguments for add: b: Input should be a valid integer")
    assert "(got 'x')" in msg
    with pytest.raises(ToolError, match=r"a: Field required; b: Field required"):
        add.execute({}, {})
    with pytest.raises(ToolError, match=r"extra: Extra inputs are not permitted"):
        add.execute({"a": 1, "b": 2, "extra": 1}, {})


def test_nested_model_validated_and_built() -> None:
    @tool
    def norm(p: Point) -> int:
        """Manhattan norm."""
        assert isinstance(p, Point)
        return abs(p.x) + abs(p.y)

    assert norm.execute({"p": {"x": -2, "y": 3}}, {}) == "5"
    with pytest.raises(ToolError, match=r"p\.x: Input should be a valid integer"):
        norm.execute({"p": {"x": "nope"}}, {})


def test_async_function_tool() -> None:
    @tool
    async def slow_add(a: int, b: int) -> int:
        """Add, slowly."""
        await asyncio.sleep(0)
        return a + b

    assert isinstance(slow_add, AsyncFunctionTool)
    assert inspect.iscoroutinefunction(slow_add.execute)
    assert asyncio.run(slow_add.execute({"a": 2, "b": 5}, {})) == "7"
    assert asyncio.run(slow_add(1, 1)) == 2


def test_sync_tool_execute_is_not_a_coroutine() -> None:
    assert isinstance(add, FunctionTool)
    assert not inspect.iscoroutinefunction(add.execute)


def test_context_is_injected_and_not_in_schema() -> None:
    @tool
    def where(path: str, context: dict[str, Any]) -> str:
        """Join the path to the working directory."""
        return f"{context['working_directory']}/{path}"

    assert "context" not in where.input_schema["properties"]
    assert where.execute({"path": "a.txt"}, {"working_directory": "/w"}) == "/w/a.txt"
    with pytest.raises(ToolError, match="context: Extra inputs"):
        where.execute({"path": "a", "context": {}}, {})


def test_return_values() -> None:
    result = ToolResult(content="hi", data={"n": 1})

    @tool
    def as_result() -> ToolResult:
        return result

    @tool
    def as_dict() -> dict[str, Any]:
        return {"a": [1, 2], "p": Point(x=1)}

    @tool
    def as_none() -> None:
        return None

    class Opaque:
        def __repr__(self) -> str:
            return "<opaque>"

    @tool
    def as_object() -> Any:
        return Opaque()

    @tool
    def as_text() -> str:
        return "plain"

    assert as_result.execute({}, {}) is result
    assert as_dict.execute({}, {}) == '{"a": [1, 2], "p": {"x": 1, "y": 0}}'
    assert as_none.execute({}, {}) == "null"
    assert as_object.execute({}, {}) == "<opaque>"
    assert as_text.execute({}, {}) == "plain"


def test_missing_annotation_is_any() -> None:
    @tool
    def echo(value) -> str:  # type: ignore[no-untyped-def]
        """Echo."""
        return str(value)

    assert echo.input_schema["properties"]["value"] == {}
    assert echo.execute({"value": [1]}, {}) == "[1]"


def test_refuses_var_args_and_kwargs() -> None:
    def star(*items: int) -> int:
        return 0

    def double_star(**opts: int) -> int:
        return 0

    with pytest.raises(ConfigError, match=r"star.*\*items"):
        as_tool(star)
    with pytest.raises(ConfigError, match=r"double_star.*\*\*opts"):
        as_tool(double_star)


def test_refuses_unnameable_things() -> None:
    with pytest.raises(ConfigError, match="_hidden"):
        as_tool(lambda _hidden: 1, name="ok")
    with pytest.raises(ConfigError, match="<lambda>"):
        as_tool(lambda x: x)
    with pytest.raises(ConfigError, match="unresolved"):

        def bad(x: unresolved) -> None:  # type: ignore[name-defined] # noqa: F821
            pass

        as_tool(bad)


def test_parameter_names_that_shadow_pydantic_attributes() -> None:
    @tool
    def f(json: str, copy: int = 1, model_config: str = "m") -> str:
        return f"{json}{copy}{model_config}"

    assert set(f.input_schema["properties"]) == {"json", "copy", "model_config"}
    assert f.execute({"json": "j"}, {}) == "j1m"


def test_positional_only_parameters() -> None:
    def sub(a: int, b: int, /) -> int:
        return a - b

    assert as_tool(sub).execute({"a": 5, "b": 2}, {}) == "3"


def test_as_tool_passes_tools_through() -> None:
    assert as_tool(add) is add

    class Custom(Tool):
        name = "custom"

    assert isinstance(as_tool(Custom), Custom)  # type: ignore[arg-type]


def test_async_callable_object() -> None:
    class Fetcher:
        __name__ = "fetch"

        async def __call__(self, url: str) -> str:
            return url.upper()

    t = as_tool(Fetcher())
    assert t.name == "fetch"
    assert asyncio.run(t.execute({"url": "a"}, {})) == "A"  # type: ignore[arg-type]
