"""Plain Python functions as tools: ``@tool`` and ``as_tool(fn)``.

The schema comes from the signature (types via pydantic) and the docstring (summary and
per-parameter descriptions); ``tools/base.py`` owns the protocol and the executor runs it.
"""

from __future__ import annotations

import functools
import inspect
import json
import re
import typing
from collections.abc import Callable, Mapping
from typing import Any, overload

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model
from pydantic_core import PydanticSerializationError, to_jsonable_python

from alloy_nb.errors import ConfigError, ToolError
from alloy_nb.tools.base import Tool, ToolResult

__all__ = ["AsyncFunctionTool", "FunctionTool", "as_tool", "tool"]

CONTEXT_PARAM = "context"
_NAME_RE = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_SECTION_RE = re.compile(
    r"^(args|arguments|parameters|params|keyword args|keyword arguments|other parameters|"
    r"returns?|yields?|raises?|examples?|notes?|see also|references|warnings?|attributes|"
    r"todo)\s*:?\s*$",
    re.IGNORECASE,
)
_PARAM_SECTIONS = {
    "args", "arguments", "parameters", "params", "keyword args", "keyword arguments",
    "other parameters",
}  # fmt: skip
_GOOGLE_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?:\(([^)]*)\))?\s*:\s*(.*)$")
_NUMPY_ITEM = re.compile(r"^\*{0,2}(\w+)\s*(?::\s*(.*))?$")
_SPHINX_PARAM = re.compile(r"^:param\s+(?:[^:]*\s)?(\w+)\s*:\s*(.*)$")


class FunctionTool(Tool):
    """A tool wrapping a sync function; calling the object still calls the function.

    Arguments are validated against a pydantic model built from the signature; a parameter
    named ``context`` receives the tool context instead of a model argument.
    """

    def __init__(
        self, fn: Callable[..., Any], *, name: str | None = None, description: str | None = None
    ) -> None:
        functools.update_wrapper(self, fn, updated=())
        self.fn = fn
        spec = _build_spec(fn, name, description)
        self.name = spec.name  # type: ignore[misc]
        self.description = spec.description  # type: ignore[misc]
        self.input_schema = spec.schema  # type: ignore[misc]
        self._spec = spec

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.fn(*args, **kwargs)

    def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> str | ToolResult:
        args, kwargs = self._spec.bind(input, context)
        return _to_output(self.fn(*args, **kwargs))

    def __repr__(self) -> str:
        return f"<tool {self.name} wrapping {getattr(self.fn, '__qualname__', self.fn)!r}>"


class AsyncFunctionTool(FunctionTool):
    """The same for ``async def`` functions: ``execute`` is awaited on the event loop."""

    async def execute(  # type: ignore[override]
        self, input: dict[str, Any], context: Mapping[str, Any]
    ) -> str | ToolResult:
        args, kwargs = self._spec.bind(input, context)
        return _to_output(await self.fn(*args, **kwargs))


@overload
def tool(fn: Callable[..., Any], /) -> FunctionTool: ...
@overload
def tool(
    *, name: str | None = None, description: str | None = None
) -> Callable[[Callable[..., Any]], FunctionTool]: ...


def tool(
    fn: Callable[..., Any] | None = None,
    /,
    *,
    name: str | None = None,
    description: str | None = None,
) -> FunctionTool | Callable[[Callable[..., Any]], FunctionTool]:
    """Decorate a function as a tool, bare (``@tool``) or with overrides (``@tool(name=...)``).

    The result is still callable as the function; see ``as_tool`` for what is refused.
    """
    if fn is not None:
        return _wrap(fn, name, description)
    return lambda f: _wrap(f, name, description)


def as_tool(
    fn: Callable[..., Any] | Tool | type[Tool],
    *,
    name: str | None = None,
    description: str | None = None,
) -> Tool:
    """Any tool-ish thing as a ``Tool``: instances pass through, classes are instantiated,
    functions (sync or async, or callable objects) are wrapped.

    Raises ``ConfigError`` naming the function and parameter for signatures that cannot be
    described to a model (``*args``, ``**kwargs``, names starting with ``_``, types pydantic
    cannot express). A parameter without annotation accepts any JSON value.
    """
    if isinstance(fn, Tool):
        return fn
    if isinstance(fn, type) and issubclass(fn, Tool):
        return fn()
    return _wrap(fn, name, description)


def _wrap(fn: Any, name: str | None, description: str | None) -> FunctionTool:
    if not callable(fn):
        raise ConfigError(f"A tool must be a function or a Tool, got {fn!r}")
    is_async = inspect.iscoroutinefunction(fn) or inspect.iscoroutinefunction(type(fn).__call__)
    cls = AsyncFunctionTool if is_async else FunctionTool
    return cls(fn, name=name, description=description)


class _Spec:
    """What ``as_tool`` learned from a signature: schema, validator and how to call ``fn``."""

    def __init__(
        self,
        name: str,
        description: str,
        model: type[BaseModel],
        params: list[tuple[str, str, bool]],
        wants_context: bool,
    ) -> None:
        self.name = name
        self.description = description
        self.model = model
        self.params = params  # (field name, parameter name, positional-only)
        self.wants_context = wants_context
        self.schema = _strip_titles(model.model_json_schema())

    def bind(
        self, input: Mapping[str, Any] | None, context: Mapping[str, Any]
    ) -> tuple[list[Any], dict[str, Any]]:
        try:
            validated = self.model.model_validate(dict(input or {}))
        except ValidationError as exc:
            # from None: _explain(exc) is the validation error, phrased for the model
            raise ToolError(f"Invalid arguments for {self.name}: {_explain(exc)}") from None
        args: list[Any] = []
        kwargs: dict[str, Any] = {}
        for field, param, positional in self.params:
            value = getattr(validated, field)
            if positional:
                args.append(value)
            else:
                kwargs[param] = value
        if self.wants_context:
            kwargs[CONTEXT_PARAM] = context
        return args, kwargs


def _build_spec(fn: Callable[..., Any], name: str | None, description: str | None) -> _Spec:
    label = getattr(fn, "__qualname__", None) or getattr(fn, "__name__", None) or repr(fn)
    tool_name = name or getattr(fn, "__name__", None) or type(fn).__name__
    if not _NAME_RE.match(tool_name):
        raise ConfigError(
            f"Tool name {tool_name!r} (from {label}) must be 1-64 letters, digits, '_' or '-'; "
            "pass one with @tool(name=...)"
        )
    try:
        signature = inspect.signature(fn)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"Cannot read the signature of {label}: {exc}") from exc
    hints = _type_hints(fn, label)
    summary, param_docs = _parse_docstring(inspect.getdoc(fn) or "")
    fields: dict[str, Any] = {}
    params: list[tuple[str, str, bool]] = []
    wants_context = False
    for index, (pname, p) in enumerate(signature.parameters.items()):
        if p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD):
            star = "*" if p.kind is p.VAR_POSITIONAL else "**"
            raise ConfigError(
                f"Cannot make a tool of {label}: parameter {star}{pname} cannot be described "
                "to a model; list each argument explicitly"
            )
        if pname == CONTEXT_PARAM:
            if p.kind is p.POSITIONAL_ONLY:
                raise ConfigError(f"{label}: parameter 'context' must not be positional-only")
            wants_context = True
            continue
        if pname.startswith("_"):
            raise ConfigError(
                f"Cannot make a tool of {label}: parameter {pname!r} starts with '_'; "
                "rename it or give it a default and drop it from the tool"
            )
        default = ... if p.default is p.empty else p.default
        field = f"arg{index}"
        fields[field] = (
            hints.get(pname, Any),
            Field(default, alias=pname, description=param_docs.get(pname)),
        )
        params.append((field, pname, p.kind is p.POSITIONAL_ONLY))
    config = ConfigDict(extra="forbid", arbitrary_types_allowed=False, protected_namespaces=())
    try:
        model = create_model(f"{tool_name}_args", __config__=config, **fields)
        spec = _Spec(tool_name, description or summary, model, params, wants_context)
    except ConfigError:
        raise
    except Exception as exc:  # pydantic cannot build or describe one of the types
        raise ConfigError(
            f"Cannot make a tool of {label}: unsupported parameter type ({exc})"
        ) from exc
    return spec


def _type_hints(fn: Callable[..., Any], label: str) -> dict[str, Any]:
    target: Any = fn
    if isinstance(fn, functools.partial):
        target = fn.func
    elif inspect.isclass(fn):
        target = fn.__init__
    elif not (inspect.isfunction(fn) or inspect.ismethod(fn)):
        target = type(fn).__call__
    try:
        return typing.get_type_hints(target, include_extras=True)
    except Exception as exc:
        raise ConfigError(f"Cannot resolve the type hints of {label}: {exc}") from exc


def _parse_docstring(doc: str) -> tuple[str, dict[str, str]]:
    """Split a Google, NumPy or Sphinx docstring into its description and parameter texts.

    ``doc`` is already dedented (``inspect.getdoc``), so section headers sit at column 0.
    """
    lines = doc.splitlines()
    descr: list[str] = []
    params: dict[str, str] = {}
    section: str | None = None  # None (description), "params", "sphinx" or "other"
    numpy = False
    current: str | None = None
    item_indent = 0
    i = 0
    while i < len(lines):
        line, stripped = lines[i], lines[i].strip()
        indent = len(line) - len(line.lstrip())
        i += 1
        underline = i < len(lines) and len(lines[i].strip()) > 2 and not lines[i].strip("- \t")
        header = _SECTION_RE.match(stripped)
        if header and indent == 0 and (stripped.endswith(":") or underline):
            section = "params" if header.group(1).lower() in _PARAM_SECTIONS else "other"
            numpy, current = underline, None
            i += 1 if underline else 0
            continue
        sphinx = _SPHINX_PARAM.match(stripped)
        if sphinx:
            section, current = "sphinx", sphinx.group(1)
            params[current] = sphinx.group(2).strip()
        elif stripped.startswith(":") and section in (None, "sphinx"):
            section, current = "other", None
        elif section is None:
            descr.append(line)
        elif not stripped or section == "other":
            continue
        elif section == "params" and (current is None or indent <= item_indent):
            item = (_NUMPY_ITEM if numpy else _GOOGLE_ITEM).match(stripped)
            if item:
                current, item_indent = item.group(1), indent
                params[current] = "" if numpy else item.group(3).strip()
        elif current is not None:
            params[current] = f"{params[current]} {stripped}".strip()
    return "\n".join(descr).strip(), {k: v for k, v in params.items() if v}


def _strip_titles(schema: Any) -> Any:
    """Drop pydantic's auto ``title`` keys (noise to a model) but keep property names."""
    if isinstance(schema, dict):
        out: dict[str, Any] = {}
        for key, value in schema.items():
            if key == "title" and isinstance(value, str):
                continue
            if key in ("properties", "$defs", "definitions", "patternProperties") and isinstance(
                value, dict
            ):
                out[key] = {k: _strip_titles(v) for k, v in value.items()}
            else:
                out[key] = _strip_titles(value)
        return out
    if isinstance(schema, list):
        return [_strip_titles(v) for v in schema]
    return schema


def _explain(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors(include_url=False):
        where = ".".join(str(p) for p in err["loc"]) or "input"
        text = f"{where}: {err['msg']}"
        if err["type"] != "missing" and "input" in err:
            got = repr(err["input"])
            text += f" (got {got[:80] + '...' if len(got) > 80 else got})"
        parts.append(text)
    return "; ".join(parts)


def _to_output(value: Any) -> str | ToolResult:
    """Strings and ToolResults pass through; anything else is JSON (repr as a last resort)."""
    if isinstance(value, (str, ToolResult)):
        return value
    try:
        return json.dumps(to_jsonable_python(value), ensure_ascii=False)
    except (PydanticSerializationError, TypeError, ValueError):
        return repr(value)
