"""The ``bash`` tool: run one shell command in the working directory, with a timeout.

The child gets its own process group (killed whole on timeout or cancellation) and an
environment without secrets. Where bubblewrap works it runs in the sandbox of
``tools/_sandbox.py``; without it, restricted bash is a convenience, not a security boundary.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import os
import signal
from collections.abc import Mapping
from typing import Any, ClassVar

from alloy_nb.errors import ToolError
from alloy_nb.messages import ToolDefinition
from alloy_nb.redact import is_secret_name
from alloy_nb.tools._paths import working_directory
from alloy_nb.tools._sandbox import INSTALL_HINT, bwrap_argv, sandbox_available
from alloy_nb.tools.base import Tool
from alloy_nb.tools.core.read import int_arg

__all__ = [
    "DEFAULT_TIMEOUT_MS",
    "MAX_OUTPUT_BYTES",
    "MAX_TIMEOUT_MS",
    "NOT_A_BOUNDARY",
    "Bash",
    "sandbox_note",
    "scrub_env",
]

DEFAULT_TIMEOUT_MS = 10_000
MAX_TIMEOUT_MS = 600_000
MAX_OUTPUT_BYTES = 30_000
_OUTER_MARGIN_MS = 250
#: Said wherever Bash runs without the sandbox (tool description, README, notebook).
NOT_A_BOUNDARY = (
    "restricted mode (bash -r) is NOT a security boundary: commands can read the whole "
    "machine, write outside the working directory and reach the network"
)
_TIMED_OUT = (
    "Command timed out after {t}ms. The process may have started a server, entered an "
    "infinite loop, or is waiting for input. Try a non-blocking approach."
)


class Bash(Tool):
    """Run ``bash -rc COMMAND`` (restricted, as the reference; ``bash_restricted=False`` in
    the context gives ``bash -c``); stderr is merged into stdout and the exit code appended.

    ``context["bash_sandbox"]``: ``"auto"`` (default) runs it inside bubblewrap when that
    works here, else unsandboxed; ``True`` requires the sandbox (a ToolError saying how to
    install it otherwise); ``False`` never sandboxes. ``context["bash_network"] = False``
    takes the network away (sandbox only). ``context["bash_executor"]``, a (sync or async)
    ``(command, working_dir) -> (output, exit_code)``, replaces the shell altogether.
    """

    name = "bash"
    description = (
        "Execute a shell command and return its output. Runs in a bubblewrap sandbox when "
        "available (read-only system, writable working directory and /tmp); otherwise "
        + NOT_A_BOUNDARY + "."
    )
    input_schema: ClassVar[dict[str, Any]] = {
        "type": "object",
        "properties": {
            "command": {"type": "string", "description": "The shell command to execute"},
            "timeout": {
                "type": "integer",
                "description": "Timeout in milliseconds (default: 10000)",
                "default": DEFAULT_TIMEOUT_MS,
            },
        },
        "required": ["command"],
    }

    async def execute(self, input: dict[str, Any], context: Mapping[str, Any]) -> str:
        command = input.get("command")
        if not isinstance(command, str) or not command.strip():
            raise ToolError("command must be a non-empty string")
        timeout_ms = effective_timeout(input, context)
        cwd = working_directory(context)
        executor = context.get("bash_executor")
        if callable(executor):
            output, code = await _run_executor(executor, command, cwd, timeout_ms)
        else:
            if not os.path.isdir(cwd):
                raise ToolError(f"Working directory does not exist: {cwd}")
            flags = "-c" if context.get("bash_restricted") is False else "-rc"
            argv = ["bash", flags, command]
            network = context.get("bash_network") is not False
            mode = context.get("bash_sandbox", "auto")
            if await asyncio.to_thread(_use_sandbox, mode, network):  # probes bwrap once
                argv = bwrap_argv(argv, os.path.realpath(cwd), network=network)
            output, code = await _run_shell(argv, cwd, timeout_ms)
        return f"{output}\nexit code: {code}"

    def definition(self) -> ToolDefinition:
        """The description sent to the model says which mode this machine gives."""
        if sandbox_available():
            text = ("Execute a shell command and return its output. By default it runs in a "
                    "sandbox: the system is read-only; only the working directory and /tmp "
                    "are writable.")
        else:
            text = f"Execute a shell command and return its output. Note: {NOT_A_BOUNDARY}."
        return ToolDefinition(name=self.name, description=text, input_schema=self.input_schema)


def sandbox_note() -> str:
    """One line for people choosing Bash in a notebook: which mode this machine gives."""
    if sandbox_available():
        return ("bash: commands run in a bubblewrap sandbox (read-only system, writable "
                "working directory and /tmp, no access to the kernel's environment)")
    return f"bash: WARNING, no bubblewrap sandbox here: {NOT_A_BOUNDARY}; {INSTALL_HINT}"


def _use_sandbox(mode: object, network: bool) -> bool:
    """Decide from ``context["bash_sandbox"]`` whether to wrap the command in bwrap."""
    if mode is False:
        if not network:
            raise ToolError("bash_network=False needs the sandbox, but bash_sandbox is False")
        return False
    if mode not in ("auto", True):
        raise ToolError(f"bash_sandbox must be 'auto', True or False, got {mode!r}")
    if sandbox_available(network):
        return True
    if mode is True:
        raise ToolError(
            f"bash_sandbox=True but the bubblewrap sandbox is unavailable: {INSTALL_HINT}"
        )
    if not network:
        raise ToolError("bash_network=False needs the bubblewrap sandbox, which is unavailable: "
                        + INSTALL_HINT)
    return False


def effective_timeout(input: Mapping[str, Any], context: Mapping[str, Any]) -> int:
    """``min(input timeout or 10 000, 600 000)`` in ms, kept just under the executor's own
    ``context["tool_timeout_ms"]`` (which the loop puts in every tool context).

    The reference honours the model's value since 0.8; the cap keeps a model from parking
    the kernel, and finishing a little before the executor's timeout (by
    ``min(250 ms, 10 %)``) lets Bash kill the command itself and keep its partial output,
    instead of losing the race and being cancelled with nothing to show.
    """
    asked = int_arg(input, "timeout", DEFAULT_TIMEOUT_MS)
    timeout = min(asked if asked > 0 else DEFAULT_TIMEOUT_MS, MAX_TIMEOUT_MS)
    outer = context.get("tool_timeout_ms")
    if isinstance(outer, int) and not isinstance(outer, bool) and outer > 0:
        timeout = min(timeout, max(1, outer - min(_OUTER_MARGIN_MS, outer // 10)))
    return timeout


def scrub_env(env: Mapping[str, str]) -> dict[str, str]:
    """Drop every variable whose name contains KEY, SECRET, TOKEN, PASSWORD, PASSWD or
    CREDENTIAL (case-insensitive; this covers ``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``)."""
    return {k: v for k, v in env.items() if not is_secret_name(k)}


async def _run_shell(argv: list[str], cwd: str, timeout_ms: int) -> tuple[str, int]:
    proc = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=scrub_env(os.environ),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.STDOUT,
        start_new_session=True,  # own process group, so a kill reaches every descendant
    )
    sink = _Capped(MAX_OUTPUT_BYTES)
    stdout = proc.stdout
    assert stdout is not None

    async def finish() -> None:  # one coroutine, not gather(): a cancelled gather's
        await sink.drain(stdout)  # children log "exception was never retrieved"
        await proc.wait()

    try:
        await asyncio.wait_for(finish(), timeout_ms / 1000)
    except asyncio.TimeoutError:
        await _kill(proc)
        partial = sink.text()
        tail = f"\n\nOutput before the timeout:\n{partial}" if partial else ""
        # from None: a timeout is the whole story; TimeoutError adds no detail
        raise ToolError(_TIMED_OUT.format(t=timeout_ms) + tail) from None
    except BaseException:  # cancelled (Stop, interrupt, tool timeout): leave nothing running
        await asyncio.shield(_kill(proc))
        raise
    return sink.text(), proc.returncode if proc.returncode is not None else -1


async def _kill(proc: asyncio.subprocess.Process) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(proc.pid, signal.SIGKILL)
    await proc.wait()


async def _run_executor(executor: Any, command: str, cwd: str, timeout_ms: int) -> tuple[str, int]:
    async def call() -> Any:
        if inspect.iscoroutinefunction(executor):
            return await executor(command, cwd)
        return await asyncio.to_thread(executor, command, cwd)

    try:
        output, code = await asyncio.wait_for(call(), timeout_ms / 1000)
    except asyncio.TimeoutError:
        # from None: a timeout is the whole story; TimeoutError adds no detail
        raise ToolError(f"Command timed out after {timeout_ms}ms.") from None
    except Exception as exc:
        raise ToolError(f"Executor crashed: {exc!r}") from exc
    sink = _Capped(MAX_OUTPUT_BYTES)
    sink.feed(str(output).encode())
    return sink.text(), int(code)


class _Capped:
    """Keep the first and last ``limit/2`` bytes of a stream, counting what falls between."""

    def __init__(self, limit: int) -> None:
        self.limit, self.half, self.total = limit, limit // 2, 0
        self.head, self.tail = bytearray(), bytearray()

    async def drain(self, stream: asyncio.StreamReader) -> None:
        while chunk := await stream.read(65536):
            self.feed(chunk)

    def feed(self, chunk: bytes) -> None:
        self.total += len(chunk)
        self.head += chunk[: self.limit - len(self.head)]
        self.tail += chunk
        del self.tail[: max(len(self.tail) - self.half, 0)]

    def text(self) -> str:
        if self.total <= self.limit:
            return self.head.decode("utf-8", errors="replace")
        head = self.head[: self.half].decode("utf-8", errors="replace")
        tail = self.tail.decode("utf-8", errors="replace")
        return f"{head}\n... [truncated {self.total - 2 * self.half} bytes] ...\n{tail}"
