"""``alloy_nb.testing`` helpers (reference §8, conformance R195–R198)."""

from __future__ import annotations

import asyncio
import subprocess
import sys

import pytest

from alloy_nb import Halt
from alloy_nb.errors import RateLimitError
from alloy_nb.messages import assistant, user
from alloy_nb.testing import (
    assert_tool_called,
    error_response,
    last_text,
    refute_tool_called,
    run_with_responses,
    text_response,
    tool_calls,
    tool_response,
)


def test_conformance_R195_run_with_a_text_reply() -> None:
    result = run_with_responses("Hello", [text_response("Hi there!")])
    assert result.status == "completed" and last_text(result) == "Hi there!"
    assert result.turns == 1 and result.usage.input_tokens == 10


def test_conformance_R195_tool_then_text_runs_the_default_echo_tool() -> None:
    result = run_with_responses("Use echo", [tool_response("echo", {"text": "hi"}),
                                             text_response("Done!")])
    assert result.status == "completed" and last_text(result) == "Done!"
    assert result.messages[2].content[0].content == "Echo: hi"
    (call,) = tool_calls(result)
    assert call.id.startswith("call_") and len(call.id) > len("call_")


def test_conformance_R195_options_max_turns_and_system_prompt() -> None:
    endless = [tool_response("echo", {"text": "x"})] * 5
    result = run_with_responses("loop", endless, max_turns=2, system_prompt="Be brief")
    assert (result.status, result.turns) == ("max_turns", 2)
    assert run_with_responses("go", [text_response("x")] * 12).turns == 1
    default = run_with_responses("go", [tool_response("echo", {"text": "x"})] * 12)
    assert (default.status, default.turns) == ("max_turns", 10)  # reference default 10


def test_conformance_R195_errors_and_halts_are_returned_not_raised() -> None:
    failed = run_with_responses("go", [error_response("Rate limited")])
    assert (failed.status, failed.error) == ("error", "Rate limited")
    halted = run_with_responses("go", [text_response("x")],
                                middleware=[lambda hook, state: Halt("nope")])
    assert halted.status == "halted"
    retried = run_with_responses("go", [error_response(RateLimitError("slow", status_code=429)),
                                        text_response("ok")])
    assert retried.status == "completed" and last_text(retried) == "ok"


def test_conformance_R195_works_inside_a_running_event_loop() -> None:
    async def main() -> str | None:  # as in a notebook cell
        return last_text(run_with_responses("hi", [text_response("from a loop")]))

    assert asyncio.run(main()) == "from a loop"


def test_conformance_R196_assert_tool_called() -> None:
    result = run_with_responses("go", [tool_response("echo", {"message": "hello", "n": 1}),
                                       text_response("Done")])
    assert assert_tool_called(result, "echo").name == "echo"
    assert_tool_called(result, "echo", {"message": "hello"})
    with pytest.raises(AssertionError) as info:
        assert_tool_called(result, "nonexistent")
    assert str(info.value) == (
        "Expected tool nonexistent to be called, but only these tools were called: ['echo']")
    with pytest.raises(AssertionError, match=r"with input matching \{'message': 'bye'\}") as bad:
        assert_tool_called(result, "echo", {"message": "bye"})
    assert "'message': 'hello'" in str(bad.value)  # lists the inputs it did get


def test_conformance_R197_refute_tool_called() -> None:
    result = run_with_responses("go", [tool_response("echo", {"text": "x"}), text_response("k")])
    refute_tool_called(result, "bash")
    with pytest.raises(AssertionError) as info:
        refute_tool_called(result, "echo")
    assert str(info.value) == "Expected tool echo NOT to be called, but it was"


def test_conformance_R198_last_text_and_tool_calls_on_plain_data() -> None:
    assert last_text({"messages": []}) is None
    assert last_text(42) is None and tool_calls(42) == []
    assert last_text({"messages": [user("q"), assistant("a"), user("q2")]}) == "a"
    assert last_text({"messages": [{"role": "assistant", "content": []}]}) == ""
    two = run_with_responses("go", [tool_response("echo", {"text": "1"}),
                                    tool_response("echo", {"text": "2"}), text_response("k")])
    assert [c.name for c in tool_calls(two)] == ["echo", "echo"]
    assert tool_calls(run_with_responses("go", [text_response("k")])) == []


def test_importing_alloy_nb_testing_does_not_load_the_loop() -> None:
    code = ("import sys, alloy_nb.testing; "
            "print([m for m in ('alloy_nb.agent', 'alloy_nb.providers.scripted') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"


def test_docs_api_md_snippets_for_edit_call_and_helpers_run() -> None:
    import re
    from pathlib import Path

    text = (Path(__file__).resolve().parents[2] / "docs" / "api.md").read_text("utf-8")
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    runnable = [b for b in blocks if "EditCall" in b or "run_with_responses(" in b]
    assert len(runnable) == 2
    for code in runnable:
        exec(compile(code, "docs/api.md", "exec"), {})  # raises if a snippet is stale
