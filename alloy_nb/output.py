"""Structured output: ``output_type=`` turns a Python type into a final tool, ``final_result``.

The model answers by calling ``final_result`` with arguments matching the type's JSON
schema (the reference's ``until_tool`` idea). The loop (``agent/turn.py``) ends the run
on the first valid call, with no extra model turn; invalid arguments go back to the model
as an error tool_result carrying the validation message, at most ``OUTPUT_RETRIES`` times,
then the run ends with status ``error`` and ``run`` raises ``OutputValidationError``.

Accepted types: pydantic models, TypedDicts, dataclasses (object schemas, sent as is) and
anything else pydantic can validate (``int``, ``str``, ``Literal[...]``, ``list[...]``),
which is wrapped as ``{"response": <schema>}`` because tool arguments must be an object.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from pydantic import TypeAdapter, ValidationError

from alloy_nb.errors import AgentError, ConfigError, OutputValidationError, ToolError
from alloy_nb.messages import ToolDefinition
from alloy_nb.result import Result
from alloy_nb.tools.base import Tool, ToolResult

__all__ = [
    "FINAL_RESULT",
    "OUTPUT_ERROR_PREFIX",
    "OUTPUT_RETRIES",
    "FinalResultTool",
    "OutputSpec",
    "agent_error",
    "output_spec",
]

#: The name of the final tool; a user tool of that name is refused with ``output_type``.
FINAL_RESULT = "final_result"
#: Invalid ``final_result`` calls (or turns ended without one) tolerated before failing.
OUTPUT_RETRIES = 3
#: Starts ``Result.error`` when the run failed for want of a valid ``final_result``.
OUTPUT_ERROR_PREFIX = "no valid final_result"
_WRAP_KEY = "response"

_DESCRIPTION = (
    "Give your final answer by calling this tool with arguments matching its schema. "
    "Call it exactly once, when you are done; the run ends as soon as it succeeds."
)


class OutputSpec:
    """What the loop needs about one ``output_type``: the tool schema and the validator."""

    def __init__(self, output_type: Any) -> None:
        self.output_type = output_type
        try:
            self.adapter: TypeAdapter[Any] = TypeAdapter(output_type)
            schema = self.adapter.json_schema()
        except Exception as exc:  # pydantic cannot validate or describe the type
            raise ConfigError(
                f"output_type={_name(output_type)} cannot be used: pydantic cannot build a "
                f"JSON schema for it ({exc}). Use a pydantic model, TypedDict, dataclass, "
                "primitive or list[...] of those"
            ) from None
        self.wrapped = schema.get("type") != "object" or "properties" not in schema
        if self.wrapped:
            defs = schema.pop("$defs", None)
            schema = {"type": "object", "properties": {_WRAP_KEY: schema},
                      "required": [_WRAP_KEY]}
            if defs:
                schema["$defs"] = defs
        self.schema: dict[str, Any] = schema

    def definition(self) -> ToolDefinition:
        return ToolDefinition(name=FINAL_RESULT, description=_DESCRIPTION,
                              input_schema=self.schema)

    def validate(self, arguments: Mapping[str, Any]) -> Any:
        """The validated value, or ``ToolError`` with a message meant for the model."""
        data: Any = dict(arguments or {})
        if self.wrapped:
            if _WRAP_KEY not in data:
                raise ToolError(
                    f"Invalid final_result arguments: missing {_WRAP_KEY!r}; call "
                    f"final_result with {{{_WRAP_KEY!r}: <value>}} matching the schema."
                )
            data = data[_WRAP_KEY]
        try:
            return self.adapter.validate_python(data)
        except ValidationError as exc:
            raise ToolError(
                "Invalid final_result arguments: "
                + _explain(exc)
                + ". Call final_result again with arguments matching its schema."
            ) from None

    def __repr__(self) -> str:
        return f"OutputSpec({_name(self.output_type)})"


class FinalResultTool(Tool):
    """The ``final_result`` tool for one ``OutputSpec``; its data is the validated value."""

    name = FINAL_RESULT
    description = _DESCRIPTION
    concurrent = False

    def __init__(self, spec: OutputSpec) -> None:
        self.spec = spec
        self.input_schema = spec.schema  # type: ignore[misc]

    def definition(self) -> ToolDefinition:
        return self.spec.definition()

    def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> ToolResult:
        value = self.spec.validate(input)
        return ToolResult(content="Final result received.", data=value)


def output_spec(output_type: Any) -> OutputSpec | None:
    """``None`` for no structured output, else a validated ``OutputSpec`` (ConfigError)."""
    if output_type is None:
        return None
    if isinstance(output_type, OutputSpec):
        return output_type
    try:
        cached = _SPECS.get(output_type)
    except TypeError:  # unhashable (an Annotated with a dict, say): build it each time
        return OutputSpec(output_type)
    if cached is None:
        cached = _SPECS[output_type] = OutputSpec(output_type)
    return cached


_SPECS: dict[Any, OutputSpec] = {}  # a type's spec is built once (map runs thousands)


def agent_error(result: Result) -> AgentError:
    """The error ``run`` raises for a failed Result: typed when the output never validated."""
    if result.status == "error" and (result.error or "").startswith(OUTPUT_ERROR_PREFIX):
        return OutputValidationError(result)
    return AgentError(result)


def _name(tp: Any) -> str:
    return getattr(tp, "__name__", None) or repr(tp)


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in err["loc"]) or "value"
        text = f"{where}: {err['msg']}"
        if err["type"] != "missing" and "input" in err:
            got = json.dumps(err["input"], default=repr)
            text += f" (got {got[:80] + '...' if len(got) > 80 else got})"
        parts.append(text)
    return "; ".join(parts)
