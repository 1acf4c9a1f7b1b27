"""Finding 2 (issue 9): Bash cannot reach the kernel's secrets, inside bubblewrap.

The secret lives in this (the "kernel") process's environment; every escape the issue lists
is tried inside the sandbox, and none may print it or change a file outside the working
directory.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import pytest

from alloy_nb.errors import ToolError
from alloy_nb.tools import _sandbox
from alloy_nb.tools.core import Bash
from alloy_nb.tools.core.bash import NOT_A_BOUNDARY, sandbox_note

SECRET = "sk-ant-kernelside-" + "s3cr3t" * 4

needs_bwrap = pytest.mark.skipif(
    not _sandbox.sandbox_available(), reason="bubblewrap is not usable on this machine"
)


@pytest.fixture
def secret_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANTHROPIC_API_KEY", SECRET)


def _bash(wd: Path, command: str, **context: Any) -> str:
    ctx = {"working_directory": str(wd), **context}
    return asyncio.run(Bash().execute({"command": command}, ctx))


_ESCAPES = [
    "tr '\\0' '\\n' < /proc/$PPID/environ",
    "cat /proc/*/environ | tr '\\0' '\\n'",
    "sh -c 'env'",
    "env bash -c 'tr \"\\0\" \"\\n\" < /proc/$PPID/environ; env'",
    "python3 -c 'import os; print(dict(os.environ)); "
    "print(open(\"/proc/%d/environ\" % os.getppid()).read())'",
    "for p in /proc/[0-9]*; do cat $p/environ 2>/dev/null; done | tr '\\0' '\\n'",
]


@needs_bwrap
@pytest.mark.parametrize("command", _ESCAPES)
def test_finding2_proc_environ_unreachable_in_sandbox(
    tmp_path: Path, secret_env: None, command: str
) -> None:
    for restricted in (True, False):
        out = _bash(tmp_path, command, bash_restricted=restricted)
        assert SECRET not in out
        assert "s3cr3t" not in out


@needs_bwrap
def test_finding2_sandbox_namespaces_and_readonly_root(tmp_path: Path) -> None:
    out = _bash(tmp_path, "echo pid=$$; ls /proc | grep -c '^[0-9]'", bash_restricted=False)
    assert "pid=2" in out or "pid=1" in out  # a fresh PID namespace: the kernel is not there
    out = _bash(tmp_path, "touch /etc/alloy_probe; touch /usr/alloy_probe", bash_restricted=False)
    assert "Read-only file system" in out and not os.path.exists("/etc/alloy_probe")
    out = _bash(tmp_path, "mount -o remount,rw / && echo REMOUNTED", bash_restricted=False)
    assert "REMOUNTED" not in out  # no capabilities, even as root
    cmd = "echo hi > made.txt; echo tmp > /tmp/x; cat /tmp/x"
    out = _bash(tmp_path, cmd, bash_restricted=False)
    assert (tmp_path / "made.txt").read_text() == "hi\n" and "tmp" in out
    assert not Path("/tmp/x").exists() or Path("/tmp/x").read_text() != "tmp\n"


@needs_bwrap
def test_finding2_dotdot_and_hard_links_cannot_write_outside(tmp_path: Path) -> None:
    import tempfile

    base = Path(tempfile.mkdtemp(dir="/var/tmp"))  # on the read-only root inside the sandbox
    try:
        _dotdot_and_links(base)
    finally:
        shutil.rmtree(base, ignore_errors=True)


def _dotdot_and_links(base: Path) -> None:
    wd = base / "wd"
    wd.mkdir()
    outside = base / "outside.txt"
    outside.write_text("original\n")
    _bash(wd, "echo pwned > ../outside.txt", bash_sandbox=False, bash_restricted=False)
    assert outside.read_text() == "pwned\n"  # without the sandbox this escape works
    outside.write_text("original\n")
    for restricted in (True, False):
        cmds = [
            "echo pwned > ../outside.txt",
            "sh -c 'echo pwned > ../outside.txt'",
            "env bash -c 'echo pwned >> ../outside.txt'",
            "python3 -c 'open(\"../outside.txt\", \"w\").write(\"pwned\")'",
            "ln ../outside.txt link && echo pwned > link",
            f"python3 -c 'import os; os.link(\"{outside}\", \"l2\"); "
            "open(\"l2\", \"w\").write(\"pwned\")'",
        ]
        for cmd in cmds:
            _bash(wd, cmd, bash_restricted=restricted)
    assert outside.read_text() == "original\n"


@needs_bwrap
def test_finding2_network_can_be_taken_away(tmp_path: Path) -> None:
    import socket

    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(1)
    port = srv.getsockname()[1]
    code = (f"python3 -c 'import socket; socket.create_connection((\"127.0.0.1\", {port}), 2);"
            " print(\"CONNECTED\")'")
    try:
        assert "CONNECTED" in _bash(tmp_path, code, bash_restricted=False)
        out = _bash(tmp_path, code, bash_restricted=False, bash_network=False)
        assert "CONNECTED" not in out
    finally:
        srv.close()


@needs_bwrap
def test_finding2_jupyter_runtime_dir_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tempfile

    runtime = Path(tempfile.mkdtemp(dir="/var/tmp"))  # not under the sandbox's private /tmp
    try:
        (runtime / "kernel-1.json").write_text('{"key": "hmac-secret"}')
        wd = tmp_path / "wd"
        wd.mkdir()
        command = f"cat {runtime}/kernel-1.json"
        assert "hmac-secret" in _bash(wd, command, bash_restricted=False)  # readable...
        monkeypatch.setenv("JUPYTER_RUNTIME_DIR", str(runtime))
        assert "hmac-secret" not in _bash(wd, command, bash_restricted=False)  # ...until hidden
    finally:
        shutil.rmtree(runtime, ignore_errors=True)


@needs_bwrap
def test_finding2_sandboxed_children_die_on_cancel(tmp_path: Path) -> None:
    marker = "31.4159"

    async def scenario() -> None:
        task = asyncio.create_task(Bash().execute(
            {"command": f"sleep {marker} & echo started > started; wait", "timeout": 60_000},
            {"working_directory": str(tmp_path), "bash_restricted": False},
        ))
        while not (tmp_path / "started").exists():
            await asyncio.sleep(0.02)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(asyncio.wait_for(scenario(), 10))

    def alive() -> bool:
        for pid in os.listdir("/proc"):
            try:
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    if marker.encode() in f.read():
                        with open(f"/proc/{pid}/stat") as s:
                            if s.read().rsplit(")", 1)[1].split()[0] != "Z":
                                return True
            except (OSError, IndexError):
                continue
        return False

    deadline = time.monotonic() + 3
    while alive() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not alive()


def test_finding2_sandbox_true_without_bwrap_names_the_fix(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None)
    _sandbox.sandbox_available.cache_clear()
    try:
        with pytest.raises(ToolError, match="apt-get install bubblewrap"):
            _bash(tmp_path, "echo hi", bash_sandbox=True)
        with pytest.raises(ToolError, match="bash_network=False needs the bubblewrap sandbox"):
            _bash(tmp_path, "echo hi", bash_network=False)
        # auto falls back to restricted mode, and says plainly it is no boundary
        assert _bash(tmp_path, "echo hi") == "hi\n\nexit code: 0"
        assert NOT_A_BOUNDARY in Bash().definition().description
        assert "NOT a security boundary" in sandbox_note()
    finally:
        _sandbox.sandbox_available.cache_clear()


def test_finding2_sandbox_false_and_bad_values(tmp_path: Path) -> None:
    assert _bash(tmp_path, "echo hi", bash_sandbox=False) == "hi\n\nexit code: 0"
    with pytest.raises(ToolError, match="bash_sandbox must be"):
        _bash(tmp_path, "echo hi", bash_sandbox="yes")
    with pytest.raises(ToolError, match="needs the sandbox"):
        _bash(tmp_path, "echo hi", bash_sandbox=False, bash_network=False)


def test_finding2_docs_say_restricted_mode_is_no_boundary() -> None:
    root = Path(__file__).resolve().parents[2]
    readme = (root / "README.md").read_text()
    safety = " ".join(readme.split("## Safety", 1)[1].split("\n## ", 1)[0].split())
    assert "not a security boundary" in safety and "bubblewrap" in safety
    assert "bubblewrap" in (root / "scripts" / "setup").read_text()
    assert "not a security boundary" in Bash.description.lower()
    notebook = json.loads((root / "notebooks" / "03_tools_and_middleware.ipynb").read_text())
    text = " ".join(" ".join("".join(c["source"]) for c in notebook["cells"]).split())
    assert "not a security boundary" in text


def test_issue9_docs_security_states_the_threat_model() -> None:
    text = (Path(__file__).resolve().parents[2] / "docs" / "security.md").read_text()
    flat = " ".join(text.split())
    for must in ("`read`", "`write`, `edit`", "`bash`", "`inspect_variable`", "`run_python`",
                 "**sandbox**", "**restricted**", "Not a security boundary",
                 "alloy_nb.redact", "is_secret_name", "redact_key_shapes",
                 "What is and is not a boundary", "SessionFileError", "max_response_bytes"):
        assert must in flat, must


@needs_bwrap
def test_finding2_privileged_sockets_are_hidden(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import socket
    import tempfile

    outside = Path(tempfile.mkdtemp(dir="/var/tmp"))  # not under the sandbox's private /tmp
    path = outside / "engine.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen(5)
    wd = tmp_path / "wd"
    wd.mkdir()
    code = (f"python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); "
            f"s.connect(\"{path}\"); print(\"CONNECTED\")'")
    try:
        # a read-only bind alone does not stop connect(): that is why sockets are hidden
        assert "CONNECTED" in _bash(wd, code, bash_restricted=False)
        monkeypatch.setattr(_sandbox, "_HIDDEN_SOCKETS", [str(path)])
        assert "CONNECTED" not in _bash(wd, code, bash_restricted=False)
    finally:
        server.close()
        shutil.rmtree(outside, ignore_errors=True)
