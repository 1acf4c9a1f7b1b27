"""Finding 9 (issue 9): NUL in a path is a ToolError; Write and Edit refuse FIFOs, devices,
and sockets at once instead of blocking a thread (directories: the reference's eisdir)."""

from __future__ import annotations

import os
import socket
import time
from pathlib import Path
from typing import Any

import pytest

import alloy_nb as alloy
from alloy_nb.errors import ToolError
from alloy_nb.providers.scripted import Scripted
from alloy_nb.tools.core import Edit, Read, Write


@pytest.mark.parametrize("tool", [Read(), Write(), Edit()])
def test_finding9_nul_in_path_is_a_tool_error(tmp_path: Path, tool: Any) -> None:
    args = {"file_path": "a\0b.txt", "content": "x", "old_string": "a", "new_string": "b"}
    with pytest.raises(ToolError, match="NUL"):
        tool.execute(args, {"working_directory": str(tmp_path)})


def test_finding9_write_and_edit_refuse_a_fifo_at_once(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    ctx = {"working_directory": str(tmp_path)}
    t0 = time.monotonic()
    with pytest.raises(ToolError, match="FIFO"):
        Write().execute({"file_path": "pipe", "content": "x"}, ctx)
    with pytest.raises(ToolError, match="FIFO"):
        Edit().execute({"file_path": "pipe", "old_string": "a", "new_string": "b"}, ctx)
    with pytest.raises(ToolError):
        Read().execute({"file_path": "pipe"}, ctx)
    assert time.monotonic() - t0 < 1


def test_finding9_devices_sockets_and_directories_refused(tmp_path: Path) -> None:
    sock_path = tmp_path / "s.sock"
    sock = socket.socket(socket.AF_UNIX)
    sock.bind(str(sock_path))
    try:
        ctx = {"working_directory": str(tmp_path), "allowed_paths": ["/"]}
        with pytest.raises(ToolError, match="device"):
            Write().execute({"file_path": "/dev/null", "content": "x"}, ctx)
        with pytest.raises(ToolError, match="socket"):
            Edit().execute({"file_path": str(sock_path), "old_string": "a", "new_string": "b"}, ctx)
        (tmp_path / "d").mkdir()
        with pytest.raises(ToolError, match="eisdir"):
            Write().execute({"file_path": "d", "content": "x"}, ctx)
    finally:
        sock.close()


def test_finding9_fifo_in_a_run_is_an_error_result_and_no_thread_stays_blocked(
    tmp_path: Path,
) -> None:
    os.mkfifo(tmp_path / "pipe")
    import threading

    before = threading.active_count()
    provider = Scripted([Scripted.tool_calls(("write", {"file_path": "pipe", "content": "x"})),
                         "ok"])
    t0 = time.monotonic()
    result = alloy.run("go", provider=provider, tools=[Write], working_directory=str(tmp_path),
                       tool_timeout_ms=5000)
    assert time.monotonic() - t0 < 2
    (block,) = [b for m in result.messages for b in m.content if b.type == "tool_result"]
    assert block.is_error and "FIFO" in block.content
    time.sleep(0.1)
    assert threading.active_count() <= before + 1  # the private loop thread at most
