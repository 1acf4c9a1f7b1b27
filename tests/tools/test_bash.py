"""The bash tool: output format, timeout and cancellation kill the group, env scrub, limits."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from alloy_nb.errors import ToolError
from alloy_nb.tools.core import Bash
from alloy_nb.tools.core.bash import (
    DEFAULT_TIMEOUT_MS,
    MAX_OUTPUT_BYTES,
    MAX_TIMEOUT_MS,
    effective_timeout,
    scrub_env,
)


def _bash(tmp_path: Path, command: str, **extra: Any) -> str:
    ctx: dict[str, Any] = {"working_directory": str(tmp_path), **extra.pop("context", {})}
    return asyncio.run(Bash().execute({"command": command, **extra}, ctx))


def _gone(pid: int) -> bool:
    """True when the process no longer exists or is a zombie waiting for init."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().rsplit(")", 1)[1].split()[0] == "Z"
    except FileNotFoundError:
        return True


def test_definition() -> None:
    d = Bash().definition()
    assert d.name == "bash"
    assert d.description.startswith("Execute a shell command and return its output.")
    assert d.input_schema["required"] == ["command"]
    assert d.input_schema["properties"]["timeout"]["default"] == 10_000


def test_output_and_exit_code(tmp_path: Path) -> None:
    assert _bash(tmp_path, "echo hello") == "hello\n\nexit code: 0"
    assert _bash(tmp_path, "echo oops >&2; exit 3") == "oops\n\nexit code: 3"


def test_runs_bash_in_the_working_directory(tmp_path: Path) -> None:
    assert _bash(tmp_path, "pwd") == f"{tmp_path}\n\nexit code: 0"
    assert _bash(tmp_path, "echo $0").startswith("bash")


def test_restricted_by_default(tmp_path: Path) -> None:
    out = _bash(tmp_path, "cd /")
    assert "restricted" in out and not out.endswith("exit code: 0")
    out = _bash(tmp_path, "echo hi > f.txt")
    assert "restricted" in out
    assert not (tmp_path / "f.txt").exists()
    assert _bash(tmp_path, "echo hi >&2").endswith("exit code: 0")


def test_unrestricted_on_request(tmp_path: Path) -> None:
    out = _bash(tmp_path, "echo hi > f.txt; cat f.txt", context={"bash_restricted": False})
    assert out == "hi\n\nexit code: 0"


def test_missing_working_directory(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="Working directory does not exist"):
        asyncio.run(Bash().execute({"command": "true"}, {"working_directory": str(tmp_path / "x")}))


def test_empty_command_refused(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="command must be a non-empty string"):
        _bash(tmp_path, "  ")


def test_effective_timeout() -> None:
    assert effective_timeout({}, {}) == DEFAULT_TIMEOUT_MS == 10_000
    assert effective_timeout({"timeout": 500}, {}) == 500
    assert effective_timeout({"timeout": 60_000}, {}) == 60_000
    assert effective_timeout({"timeout": 10**9}, {}) == MAX_TIMEOUT_MS == 600_000
    assert effective_timeout({"timeout": 0}, {}) == DEFAULT_TIMEOUT_MS
    # kept just under the executor's timeout, so Bash (not the executor) ends the command
    assert effective_timeout({"timeout": 60_000}, {"tool_timeout_ms": 30_000}) == 29_750
    assert effective_timeout({"timeout": 60_000}, {"tool_timeout_ms": 800}) == 720
    assert effective_timeout({"timeout": 500}, {"tool_timeout_ms": 30_000}) == 500
    with pytest.raises(ToolError, match="timeout must be an integer"):
        effective_timeout({"timeout": "soon"}, {})


def test_timeout_kills_the_process_group_promptly(tmp_path: Path) -> None:
    command = "sleep 30 & echo $! > pid; echo started; wait"
    t0 = time.monotonic()
    with pytest.raises(ToolError) as info:
        _bash(tmp_path, command, timeout=500,
              context={"bash_restricted": False, "bash_sandbox": False})
    assert time.monotonic() - t0 < 5
    msg = str(info.value)
    assert msg.startswith("Command timed out after 500ms. The process may have started a server")
    assert "Try a non-blocking approach." in msg
    assert "started" in msg  # partial output is kept
    pid = int((tmp_path / "pid").read_text())
    deadline = time.monotonic() + 2
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(pid), "the backgrounded child survived the timeout"


def test_cancellation_kills_the_child(tmp_path: Path) -> None:
    async def scenario() -> int:
        task = asyncio.create_task(
            Bash().execute(
                {"command": "sleep 30 & echo $! > pid; wait", "timeout": 60_000},
                {"working_directory": str(tmp_path), "bash_restricted": False,
                 "bash_sandbox": False},
            )
        )
        while not (tmp_path / "pid").exists() or not (tmp_path / "pid").read_text():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        return int((tmp_path / "pid").read_text())

    t0 = time.monotonic()
    pid = asyncio.run(asyncio.wait_for(scenario(), 10))
    assert time.monotonic() - t0 < 5
    deadline = time.monotonic() + 2
    while not _gone(pid) and time.monotonic() < deadline:
        time.sleep(0.02)
    assert _gone(pid), "the child survived cancellation"


def test_environment_is_scrubbed(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FAKE_API_KEY", "sk-fake-123")
    monkeypatch.setenv("GITHUB_TOKEN", "ghp-fake")
    monkeypatch.setenv("DB_PASSWORD", "hunter2")
    monkeypatch.setenv("MY_SECRET", "s3")
    monkeypatch.setenv("HARMLESS_SETTING", "visible")
    out = _bash(tmp_path, "env")
    for leaked in ("FAKE_API_KEY", "sk-fake-123", "GITHUB_TOKEN", "hunter2", "MY_SECRET"):
        assert leaked not in out
    assert "HARMLESS_SETTING=visible" in out
    assert "PATH=" in out


def test_scrub_rule() -> None:
    env = {"A_API_KEY": "1", "x_token": "2", "S_SECRET": "3", "PASSWORD": "4", "PATH": "/bin"}
    assert scrub_env(env) == {"PATH": "/bin"}


def test_long_output_is_truncated_keeping_head_and_tail(tmp_path: Path) -> None:
    out = _bash(tmp_path, "printf 'A%.0s' $(seq 20000); printf 'B%.0s' $(seq 20000)")
    assert out.endswith("\nexit code: 0")
    assert "... [truncated 10000 bytes] ..." in out
    body = out.rsplit("\nexit code:", 1)[0]
    assert body.startswith("A" * 100) and body.endswith("B" * 100)
    assert len(body) <= MAX_OUTPUT_BYTES + 100


def test_output_at_the_limit_is_whole(tmp_path: Path) -> None:
    out = _bash(tmp_path, f"printf 'x%.0s' $(seq {MAX_OUTPUT_BYTES})")
    assert out == "x" * MAX_OUTPUT_BYTES + "\nexit code: 0"


def test_custom_executor(tmp_path: Path) -> None:
    seen: list[tuple[str, str]] = []

    def run(command: str, cwd: str) -> tuple[str, int]:
        seen.append((command, cwd))
        return "fake output", 7

    assert _bash(tmp_path, "ls", context={"bash_executor": run}) == "fake output\nexit code: 7"
    assert seen == [("ls", str(tmp_path))]


def test_custom_executor_crash_and_timeout(tmp_path: Path) -> None:
    def crash(command: str, cwd: str) -> tuple[str, int]:
        raise RuntimeError("boom")

    async def hang(command: str, cwd: str) -> tuple[str, int]:
        await asyncio.sleep(10)
        return "", 0

    with pytest.raises(ToolError, match=r"Executor crashed: RuntimeError\(.boom.\)"):
        _bash(tmp_path, "ls", context={"bash_executor": crash})
    with pytest.raises(ToolError, match=r"^Command timed out after 100ms\.$"):
        _bash(tmp_path, "ls", timeout=100, context={"bash_executor": hang})


def test_custom_executor_output_is_capped(tmp_path: Path) -> None:
    def chatty(command: str, cwd: str) -> tuple[str, int]:
        return "q" * (MAX_OUTPUT_BYTES + 5), 0

    out = _bash(tmp_path, "x", context={"bash_executor": chatty})
    assert "... [truncated 5 bytes] ..." in out


def test_tool_timeout_ms_of_the_run_ends_the_command_with_its_partial_output(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    """Through the loop, a run's tool_timeout_ms below the command's timeout: Bash stops the
    command itself and reports its output. It used to never see tool_timeout_ms, lose the
    race to the executor, and return a bare "Tool execution crashed" (plus asyncio noise)."""
    import alloy_nb as alloy
    from alloy_nb.providers import Scripted

    p = Scripted([Scripted.tool_calls(("bash", {"command": "echo partial; sleep 20"})), "ok"])
    t0 = time.monotonic()
    # 3 s: Bash stops 250 ms before the executor would (at 800 ms the margin was 80 ms,
    # which a loaded CI machine can lose)
    r = alloy.run("go", provider=p, tools=[Bash], tool_timeout_ms=3000,
                  working_directory=str(tmp_path), context={"bash_restricted": False})
    assert time.monotonic() - t0 < 10
    content = r.messages[2].content[0].content  # type: ignore[union-attr]
    assert content.startswith("Command timed out after 2750ms.")
    assert "partial" in content
    assert "never retrieved" not in caplog.text


def test_cancelling_a_running_command_logs_no_unretrieved_exception(
    tmp_path: Path, caplog: pytest.LogCaptureFixture,
) -> None:
    async def go() -> None:
        task = asyncio.ensure_future(Bash().execute(
            {"command": "echo hi; sleep 20"},
            {"working_directory": str(tmp_path), "bash_restricted": False}))
        await asyncio.sleep(0.3)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        await asyncio.sleep(0.05)

    asyncio.run(go())
    import gc

    gc.collect()
    assert "never retrieved" not in caplog.text
