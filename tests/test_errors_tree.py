"""errors.py is the one home of the public exceptions, its drawn tree is the real one, and
retryability is decided by class, overridden only through ``override_retryable``."""

from __future__ import annotations

import ast
import importlib
import re
from pathlib import Path

import pytest

import alloy_nb.errors as errors
from alloy_nb.errors import (
    AuthenticationError,
    BadRequestError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    StreamError,
    TransientStreamError,
)
from alloy_nb.providers._transport import Call
from alloy_nb.providers._vendor_errors import error_from_payload, status_error, tool_arguments

PKG = Path(errors.__file__).parent
# Public exception classes that are someone else's to move (the hot-path branch owns
# agent/executor.py); each entry says why it is not in errors.py yet.
_ELSEWHERE = {"ToolExit": "agent/executor.py: internal signal, owned by the executor"}


def _exception_classes(tree: ast.AST) -> list[ast.ClassDef]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef) and not node.name.startswith("_"):
            bases = [ast.unparse(b) for b in node.bases]
            if any(re.search(r"(Error|Exception|Interrupt|Exhausted|Failed|Busy|Full)\b|"
                             r"(Error|Interrupted|NotFinished)$", b) for b in bases):
                out.append(node)
    return out


def test_every_public_exception_class_is_defined_in_errors_py() -> None:
    stray = []
    for path in sorted(PKG.rglob("*.py")):
        if path.name == "errors.py" and path.parent == PKG:
            continue
        for cls in _exception_classes(ast.parse(path.read_text())):
            if cls.name not in _ELSEWHERE:
                stray.append(f"{path.relative_to(PKG)}:{cls.lineno} {cls.name}")
    assert stray == []


def _drawn_tree() -> dict[str, str]:
    """Class name -> parent name, read from the box drawing in errors.py's docstring."""
    doc = errors.__doc__ or ""
    parents: dict[str, str] = {}
    stack: list[tuple[int, str]] = []
    for line in doc.splitlines():
        m = re.match(r"^(\s*)((?:│   |    )*)(?:├── |└── )?([A-Z]\w+)", line)
        if not m or not re.search(r"[├└]── |^\s*[A-Z]\w+$|^\s*[A-Z]\w+\s*$", line):
            continue
        depth = len(m[2]) // 4 + (1 if re.search(r"[├└]── ", line) else 0)
        name = m[3]
        while stack and stack[-1][0] >= depth:
            stack.pop()
        if stack:
            parents[name] = stack[-1][1]
        stack.append((depth, name))
    return parents


def test_the_drawn_tree_is_the_real_one() -> None:
    drawn = _drawn_tree()
    assert len(drawn) > 25  # the parser read the drawing, not nothing
    for name, parent in drawn.items():
        cls = getattr(errors, name)
        base = getattr(errors, parent, None) or getattr(__builtins__, parent, None)
        if base is None:
            base = {"KeyboardInterrupt": KeyboardInterrupt}[parent]
        assert base in cls.__mro__[1:], f"{name} is drawn under {parent}"
    defined = {
        n for n, v in vars(errors).items()
        if isinstance(v, type) and issubclass(v, BaseException) and v.__module__ == errors.__name__
    }
    assert defined - set(drawn) == {"AlloyError"}  # every class is drawn; the root has no parent
    assert set(errors.__all__) == defined


def test_old_import_paths_still_work() -> None:
    from alloy_nb.errors import CellError, ControlError, PromptError, RunInterrupted, RunNotFinished

    assert importlib.import_module("alloy_nb.jupyter").ControlError is ControlError
    assert importlib.import_module("alloy_nb.jupyter._control").CellError is CellError
    assert importlib.import_module("alloy_nb.jupyter._prompt").PromptError is PromptError
    runner = importlib.import_module("alloy_nb.jupyter.runner")
    assert runner.RunInterrupted is RunInterrupted and runner.RunNotFinished is RunNotFinished
    assert importlib.import_module("alloy_nb.providers._http").ProviderConfigError is (
        errors.ProviderConfigError
    )
    # an interrupt must stay out of ``except Exception``; the rest are AlloyErrors
    assert not issubclass(RunInterrupted, Exception)
    assert issubclass(PromptError, KeyError) and str(PromptError("no x")) == "no x"


def test_retryable_is_assigned_only_by_the_override_mechanism() -> None:
    writes = []
    for path in sorted(PKG.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text())):
            targets = node.targets if isinstance(node, ast.Assign) else (
                [node.target] if isinstance(node, (ast.AugAssign, ast.AnnAssign)) else [])
            for t in targets:
                if isinstance(t, ast.Attribute) and t.attr == "retryable":
                    writes.append(f"{path.relative_to(PKG)}:{node.lineno}")
    # the one write: ProviderError.override_retryable
    assert len(writes) == 1 and writes[0].startswith("errors.py:")


def call() -> Call:
    return Call("acme", "m-1", "http://127.0.0.1:1/v1/x", {}, None)


@pytest.mark.parametrize(
    ("status", "cls"),
    [(429, RateLimitError), (503, OverloadedError), (400, BadRequestError),
     (401, AuthenticationError)],
)
def test_without_a_vendor_verdict_the_class_decides(status: int, cls: type[ProviderError]) -> None:
    err = status_error(call(), status, {}, b"{}")
    assert type(err) is cls
    assert err.retryable is cls.retryable and "retryable" not in vars(err)
    assert err.retry_override is None


def test_x_should_retry_goes_through_override_retryable_and_says_so() -> None:
    no = status_error(call(), 529, {"x-should-retry": "false"}, b"{}")
    assert not no.retryable and no.retry_override == "x-should-retry: false"
    assert OverloadedError.retryable  # the class is untouched
    yes = status_error(call(), 409, {"x-should-retry": "true"}, b"{}")
    assert yes.retryable and yes.retry_override == "x-should-retry: true"
    agreeing = status_error(call(), 503, {"x-should-retry": "true"}, b"{}")
    assert agreeing.retryable and agreeing.retry_override is None  # nothing overridden
    key = status_error(call(), 401, {"x-should-retry": "true"}, b"{}")
    assert not key.retryable and key.retry_override is None


def test_stream_errors_are_retryable_by_class() -> None:
    transient = error_from_payload(call(), {"error": {"type": "overloaded_error"}}, "r")
    assert type(transient) is TransientStreamError and transient.retry_override is None
    fatal = error_from_payload(call(), {"error": {"type": "invalid_request_error"}}, "r")
    assert type(fatal) is StreamError and not fatal.retryable
    with pytest.raises(TransientStreamError):
        tool_arguments(call(), "f", "{not json", None, lenient=False)
    # the old keyword still works, through the same mechanism
    legacy = StreamError("x", retryable=True)
    assert legacy.retryable and legacy.retry_override == "given to the constructor"


def test_a_gemini_per_day_quota_is_overridden_with_a_reason() -> None:
    from alloy_nb.providers.gemini import _refine_http_error

    body = b'{"error":{"code":429,"status":"RESOURCE_EXHAUSTED","message":"RequestsPerDay"}}'
    err = _refine_http_error(status_error(call(), 429, {}, body))
    assert type(err) is RateLimitError and not err.retryable
    assert err.retry_override == "per-day quota exhausted"
    per_minute = body.replace(b"PerDay", b"PerMinute")
    assert _refine_http_error(status_error(call(), 429, {}, per_minute)).retryable


def _from_none_without_reason(path: Path) -> list[int]:
    lines = path.read_text().splitlines()
    bad = []
    for i, line in enumerate(lines):
        if re.search(r"\bfrom None\b", line) and not line.lstrip().startswith("#"):
            start = i
            while start > 0 and "raise" not in lines[start]:
                start -= 1
            window = lines[max(0, start - 2): i + 1]
            if not any("from None:" in w or "# from None" in w for w in window):
                bad.append(i + 1)
    return bad


@pytest.mark.parametrize("sub", ["providers", "tools", "batch", "_sync.py", "errors.py"])
def test_every_from_none_says_why_the_cause_is_dropped(sub: str) -> None:
    root = PKG / sub
    paths = [root] if root.is_file() else sorted(root.rglob("*.py"))
    bad = {str(p.relative_to(PKG)): n for p in paths if (n := _from_none_without_reason(p))}
    assert bad == {}
