"""Tools over the notebook's variables: list them, inspect one, and (opt-in) run Python.

They work on any Mapping at ``context["namespace"]`` (``alloy_nb.jupyter`` puts the kernel's
``user_ns`` there) and import nothing from IPython; pandas and numpy are touched only when a
value already is one. Every answer is capped so a big DataFrame cannot flood the context.
"""

from __future__ import annotations

import ast
import asyncio
import contextlib
import difflib
import inspect
import io
import itertools
import linecache
import os
import reprlib
import sys
import threading
import traceback
import types
import warnings
from collections import Counter
from collections.abc import Iterator, Mapping
from contextvars import ContextVar
from typing import Any, ClassVar

from alloy_nb.errors import ToolError
from alloy_nb.redact import is_secret_name, redact_secrets
from alloy_nb.tools._wait import waiting_for_person
from alloy_nb.tools.base import Tool, ToolResult

__all__ = [
    "MAX_CHARS",
    "MAX_VARIABLES",
    "InspectVariable",
    "ListVariables",
    "RunPython",
    "notebook_tools",
]

MAX_CHARS = 8_000  # ≈ 2 000 tokens per answer
MAX_VARIABLES = 200
_HIDDEN = frozenset({"In", "Out", "exit", "quit", "get_ipython"})
_REDACTED = "[redacted: the name looks like a secret]"
_TABLE = {"max_cols": 20, "max_colwidth": 40}


class ListVariables(Tool):
    """The user's variables with type and size; skips ``_names``, modules and IPython's own."""

    name = "list_variables"
    description = (
        "List the variables defined in the user's notebook, with each one's type and size "
        "(shape, length). Use inspect_variable for details of one."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "include_functions": {
                "type": "boolean",
                "description": "Also list functions and classes (default: false)",
                "default": False,
            }
        },
    }

    def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> str:
        namespace = _namespace(context)
        with_functions = input.get("include_functions") is True
        rows = [
            f"{name}: {_type_name(value)} — {_REDACTED if _secret(name) else _brief(value)}"
            for name, value in list(namespace.items())
            if _is_user_variable(name, value, with_functions)
        ]
        if not rows:
            return "No user variables are defined in the notebook."
        text = "\n".join(rows[:MAX_VARIABLES])
        if len(rows) > MAX_VARIABLES:
            text += f"\n... and {len(rows) - MAX_VARIABLES} more"
        return _cap(text)


class InspectVariable(Tool):
    """Type, size and a content summary of one variable, within ``MAX_CHARS``.

    DataFrames: shape, dtypes, missing values, ``head()`` and ``describe()``; arrays: shape,
    dtype, min/max/mean; containers: length and a preview. Never a full ``repr``.
    """

    name = "inspect_variable"
    description = (
        "Describe one notebook variable: type and size; for a pandas DataFrame its shape, "
        "dtypes, missing values, head and describe(); for a numpy array shape, dtype and "
        "statistics; for lists and dicts the length and a preview."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "name": {
                "type": "string",
                "description": "Variable name; attribute access such as df.columns is allowed",
            }
        },
        "required": ["name"],
    }

    def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> str:
        name = input.get("name")
        if not isinstance(name, str) or not name.strip():
            raise ToolError("name must be a non-empty string")
        value = _lookup(_namespace(context), name.strip())
        header = f"name: {name.strip()}\ntype: {_type_name(value)}\n"
        if any(_secret(part) for part in name.strip().split(".")):
            return header + f"value: {_REDACTED}"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # pandas/numpy statistics warn on odd data
            return _cap(header + _describe(value))


class RunPython(Tool):
    """Execute code in the namespace like a notebook cell; opt-in and approved per call.

    ``context["approve"]`` (sync or async ``(tool_name, code) -> bool``, e.g. the widget's
    approval card) is asked first; without one, ``context["allow_run_python"] is True`` is
    required. Runs on the event loop's thread (like a cell, not in a worker thread), prints
    are captured per run, top-level ``await`` works, and errors come back as error results.
    """

    name = "run_python"
    description = (
        "Run Python code in the user's notebook namespace; variables persist between calls. "
        "Returns printed output and the value of the last expression, like a notebook cell."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {"code": {"type": "string", "description": "Python source to execute"}},
        "required": ["code"],
    }
    concurrent = False  # code mutates shared state; never two at once

    async def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> ToolResult:
        code = input.get("code")
        if not isinstance(code, str) or not code.strip():
            raise ToolError("code must be a non-empty string")
        namespace = _namespace(context)
        if not isinstance(namespace, dict):
            raise ToolError("run_python needs a dict namespace (exec requires one)")
        await self._approve(code, context)
        return await _run(code, namespace)

    async def _approve(self, code: str, context: Mapping[str, Any]) -> None:
        approve = context.get("approve")
        if approve is None:
            if context.get("allow_run_python") is not True:
                raise ToolError(
                    "run_python is disabled: it executes code in the user's notebook. Enable "
                    "it with context={'allow_run_python': True}, or supply "
                    "context['approve'] = approve(tool_name, code) -> bool to confirm each call."
                )
            return
        try:
            with waiting_for_person():  # not the tool's time: duration_ms leaves it out
                verdict = approve(self.name, code)
                if inspect.isawaitable(verdict):
                    verdict = await verdict
        except Exception as exc:
            raise ToolError(f"Approval failed ({exc!r}); the code was not run") from exc
        if verdict is not True:  # only an explicit True approves: "no", 0, None deny
            raise ToolError("Denied by user")


def notebook_tools(run_python: bool = False) -> list[Tool]:
    """The notebook tools; ``run_python`` only when asked for, as it executes code."""
    tools: list[Tool] = [ListVariables(), InspectVariable()]
    return [*tools, RunPython()] if run_python else tools


# -- namespace and naming ---------------------------------------------------------------


def _namespace(context: Mapping[str, Any]) -> Mapping[str, Any]:
    namespace = context.get("namespace")
    if not isinstance(namespace, Mapping):
        raise ToolError(
            "No notebook namespace: these tools read context['namespace'] (the Jupyter "
            "extension sets it; elsewhere pass context={'namespace': globals()})"
        )
    return namespace


def _is_user_variable(name: str, value: Any, with_functions: bool) -> bool:
    if name.startswith("_") or name in _HIDDEN or isinstance(value, types.ModuleType):
        return False
    if _is_environment(value):
        return False
    is_code = inspect.isroutine(value) or inspect.isclass(value) or isinstance(value, Tool)
    return with_functions or not is_code


def _secret(name: Any) -> bool:
    return isinstance(name, str) and is_secret_name(name)


def _is_environment(value: Any) -> bool:
    """``os.environ`` itself, or a mapping copied from it (``dict(os.environ)``)."""
    if value is os.environ or isinstance(value, type(os.environ)):
        return True
    if not isinstance(value, Mapping) or not 3 <= len(value) <= 10_000:
        return False
    try:
        same = sum(1 for k, v in value.items() if isinstance(k, str) and os.environ.get(k) == v)
    except Exception:
        return False
    return same >= 0.8 * len(value)


def _refuse(name: str, why: str) -> ToolError:
    return ToolError(f"Cannot inspect {name!r}: {why}")


def _lookup(namespace: Mapping[str, Any], name: str) -> Any:
    first, *attrs = name.split(".")
    for part in name.split("."):
        if part.startswith("_"):
            plain = "" if part == first else f"{part!r} is not a plain attribute name: "
            raise _refuse(name, plain + "private names (a leading underscore) are not shown")
    if first in _HIDDEN:
        raise _refuse(name, f"{first!r} belongs to IPython, not to the user's variables")
    if first not in namespace:
        close = difflib.get_close_matches(first, [str(k) for k in namespace], n=3)
        hint = f" Did you mean: {', '.join(close)}?" if close else ""
        raise ToolError(f"No variable named {first!r} in the notebook namespace.{hint}")
    value = namespace[first]
    for attr in attrs:
        _guard(name, value)
        if not attr.isidentifier() or attr.startswith("__"):
            raise ToolError(f"Cannot inspect {name!r}: {attr!r} is not a plain attribute name")
        try:
            value = getattr(value, attr)
        except Exception as exc:
            # from None: the message already quotes ``exc``
            raise ToolError(f"Cannot inspect {name!r}: {exc!r}") from None
    _guard(name, value)
    return value


def _guard(name: str, value: Any) -> None:
    """Modules (and what hangs off them) and the process environment are not user data."""
    if isinstance(value, types.ModuleType):
        raise _refuse(name, "modules and their internals are not notebook variables")
    if _is_environment(value):
        raise _refuse(name, "the process environment may hold API keys; it is never shown")


def _from(value: Any, package: str) -> bool:
    """Whether ``value`` is an instance of a class defined in ``package`` (no import needed)."""
    return any(c.__module__.split(".")[0] == package for c in type(value).__mro__)


def _type_name(value: Any) -> str:
    cls = type(value)
    top = cls.__module__.split(".")[0]
    return cls.__qualname__ if top == "builtins" else f"{top}.{cls.__qualname__}"


# -- summaries ---------------------------------------------------------------------------


def _brief(value: Any) -> str:
    """One short phrase of size: shape for tables and arrays, length for containers."""
    try:
        if _from(value, "pandas") and hasattr(value, "shape") and len(value.shape) == 2:
            return f"{value.shape[0]} rows × {value.shape[1]} columns"
        if _from(value, "pandas") and hasattr(value, "dtype"):
            return f"{len(value)} values, dtype {value.dtype}"
        if _from(value, "numpy") and hasattr(value, "shape") and value.shape != ():
            return f"shape {tuple(value.shape)}, dtype {value.dtype}"
        if isinstance(value, (str, bytes)):
            return f"len {len(value)}: {_repr(value, 40)}"
        if isinstance(value, (list, tuple, dict, set, frozenset)):
            return f"len {len(value)}"
    except Exception:  # a broken __len__ or shape must not break the listing
        pass
    return _repr(value, 60)


def _describe(value: Any) -> str:
    if _from(value, "pandas") and hasattr(value, "describe") and hasattr(value, "dtypes"):
        return _describe_frame(value) if getattr(value, "ndim", 0) == 2 else _describe_series(value)
    if _from(value, "numpy") and hasattr(value, "dtype") and hasattr(value, "shape"):
        return _describe_array(value)
    if _from(value, "pandas"):  # Index, Categorical, ...: pandas bounds its own repr
        return f"size: {_brief(value)}\nrepr:\n{value!r}"
    if isinstance(value, str):
        return f"len: {len(value)} chars, {value.count(chr(10)) + 1} lines\nvalue:\n{value}"
    if isinstance(value, Mapping):
        items = [
            f"  {_repr(k, 60)}: {_type_name(v)} — {_REDACTED if _secret(k) else _brief(v)}"
            for k, v in itertools.islice(value.items(), 30)
        ]
        more = f"\n  ... and {len(value) - 30} more" if len(value) > 30 else ""
        return f"len: {len(value)}\nitems:\n" + "\n".join(items) + more
    if isinstance(value, (list, tuple, set, frozenset)):
        kinds = Counter(_type_name(v) for v in itertools.islice(value, 10_000))
        preview = "\n".join(f"  {_repr(v, 200)}" for v in itertools.islice(value, 10))
        more = f"\n  ... and {len(value) - 10} more" if len(value) > 10 else ""
        kinds_text = ", ".join(f"{k} ×{n}" for k, n in kinds.most_common(5)) or "-"
        return f"len: {len(value)}\nelement types: {kinds_text}\nfirst items:\n{preview}{more}"
    if callable(value):
        try:
            signature = str(inspect.signature(value))
        except (TypeError, ValueError):
            signature = "(...)"
        doc = inspect.getdoc(value) or ""
        return f"signature: {getattr(value, '__name__', '')}{signature}\ndoc: {doc}"
    public = [a for a in dir(value) if not a.startswith("_")][:40]
    return f"repr: {_repr(value, 2000)}\nattributes: {', '.join(public) or '-'}"


def _describe_frame(df: Any) -> str:
    rows, cols = df.shape
    dtypes = list(df.dtypes.items())
    missing = df.isna().sum()
    lines = [f"shape: {rows} rows × {cols} columns", f"memory: {_bytes(df.memory_usage().sum())}"]
    lines.append("dtypes:")
    lines += [f"  {col}: {dtype}" for col, dtype in dtypes[:50]]
    lines.append("missing values per column:")
    lines += [
        f"  {col}: {int(n)}" + (f" ({100 * int(n) / rows:.1f}%)" if rows else "")
        for col, n in list(missing.items())[:50]
    ]
    if cols > 50:
        lines.append(f"  ... and {cols - 50} more columns")
    lines += ["head(5):", df.head(5).to_string(**_TABLE)]
    with contextlib.suppress(Exception):  # describe() refuses frames without columns
        lines += ["describe():", df.describe(include="all").to_string(**_TABLE)]
    return "\n".join(lines)


def _describe_series(s: Any) -> str:
    lines = [f"length: {len(s)}", f"dtype: {s.dtype}", f"missing values: {int(s.isna().sum())}"]
    lines += ["head(5):", s.head(5).to_string()]
    with contextlib.suppress(Exception):
        lines += ["describe():", s.describe().to_string()]
    return "\n".join(lines)


def _describe_array(a: Any) -> str:
    import numpy as np

    lines = [f"shape: {tuple(a.shape)}", f"dtype: {a.dtype}", f"size: {a.size}"]
    lines.append(f"memory: {_bytes(a.nbytes)}")
    numeric = np.issubdtype(a.dtype, np.number) or a.dtype == np.bool_
    if a.size and numeric and not np.issubdtype(a.dtype, np.complexfloating):
        with contextlib.suppress(Exception):
            lines.append(f"min: {np.nanmin(a)}  max: {np.nanmax(a)}  mean: {np.nanmean(a):.6g}")
        if np.issubdtype(a.dtype, np.floating):
            lines.append(f"NaN count: {int(np.isnan(a).sum())}")
    preview = np.array2string(a, threshold=60, edgeitems=3, max_line_width=120)
    return "\n".join([*lines, "values:", preview])


def _repr(value: Any, limit: int) -> str:
    short = reprlib.Repr()
    short.maxstring = short.maxother = limit
    short.maxlist = short.maxtuple = short.maxdict = short.maxset = 10
    try:
        return short.repr(value)
    except Exception as exc:
        return f"<repr failed: {exc!r}>"


def _bytes(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if n < 1024:
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024
    return f"{n:.1f} TB"


def _cap(text: str, limit: int = MAX_CHARS) -> str:
    """Bounded and scrubbed: nothing shaped like a key, nor any secret variable's value,
    goes back to the model."""
    text = redact_secrets(text)
    if len(text) <= limit:
        return text
    return f"{text[:limit]}\n... [truncated {len(text) - limit} chars] ..."


# -- running code ------------------------------------------------------------------------

_sink: ContextVar[io.StringIO | None] = ContextVar("alloy_nb_run_python_sink", default=None)
_install_lock = threading.Lock()
_installed = 0
_counter = itertools.count(1)


class _Redirect:
    """Stand-in for ``sys.stdout``/``sys.stderr``: writes made inside a ``run_python`` call
    (its context) go to that call's buffer, all others to the stream it replaced.

    ``contextlib.redirect_stdout`` would be process-wide and swallow other cells' output.
    """

    def __init__(self, original: Any) -> None:
        self._original = original

    def write(self, text: str) -> int:
        sink = _sink.get()
        return sink.write(text) if sink is not None else self._original.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def flush(self) -> None:
        if _sink.get() is None:
            self._original.flush()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._original, name)


@contextlib.contextmanager
def _capture(buffer: io.StringIO) -> Iterator[None]:
    global _installed
    with _install_lock:
        if _installed == 0:
            sys.stdout, sys.stderr = _Redirect(sys.stdout), _Redirect(sys.stderr)
        _installed += 1
    token = _sink.set(buffer)
    try:
        yield
    finally:
        _sink.reset(token)
        with _install_lock:
            _installed -= 1
            if _installed == 0:
                if isinstance(sys.stdout, _Redirect):
                    sys.stdout = sys.stdout._original
                if isinstance(sys.stderr, _Redirect):
                    sys.stderr = sys.stderr._original


async def _run(code: str, namespace: dict[str, Any]) -> ToolResult:
    """Exec ``code`` like a cell: all but a trailing expression, then that expression's value."""
    filename = f"<run_python-{next(_counter)}>"
    linecache.cache[filename] = (len(code), None, code.splitlines(True), filename)
    buffer = io.StringIO()
    flags = ast.PyCF_ALLOW_TOP_LEVEL_AWAIT
    value: Any = None
    error: str | None = None
    with _capture(buffer):
        try:
            tree = ast.parse(code, filename=filename)
            last = tree.body.pop() if tree.body and isinstance(tree.body[-1], ast.Expr) else None
            await _eval(compile(tree, filename, "exec", flags=flags), namespace)
            if last is not None:
                expr = ast.Expression(last.value)  # type: ignore[attr-defined]
                value = await _eval(compile(expr, filename, "eval", flags=flags), namespace)
        except Exception as exc:
            error = _traceback_tail(exc, filename)
        except asyncio.CancelledError:
            cancelling = getattr(asyncio.current_task(), "cancelling", None)  # 3.11+
            if cancelling is None or cancelling():
                raise  # the run was stopped: not the code's error to report
            error = "CancelledError raised by the code\n"
        except BaseException as exc:  # SystemExit, KeyboardInterrupt too: the code's own error
            error = _traceback_tail(exc, filename)
    output = buffer.getvalue()
    if error is not None:
        return ToolResult(content=_cap(f"{output}{error}"), is_error=True)
    if value is not None:
        output += f"{'' if not output or output.endswith(chr(10)) else chr(10)}Out: "
        output += _repr(value, 4000) if not _from(value, "pandas") else str(value)
    return ToolResult(content=_cap(output or "(no output)"))


async def _eval(code: types.CodeType, namespace: dict[str, Any]) -> Any:
    result = eval(code, namespace)
    if code.co_flags & inspect.CO_COROUTINE:  # the source itself used top-level await
        result = await result
    return result


def _traceback_tail(exc: BaseException, filename: str, limit: int = 3000) -> str:
    """The traceback from the user's code on (our frames dropped), last ``limit`` chars."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename != filename:
        tb = tb.tb_next
    text = "".join(traceback.format_exception(type(exc), exc, tb))
    if len(text) <= limit:
        return text
    return f"... [truncated {len(text) - limit} chars] ...\n{text[-limit:]}"
