"""The write tool: creates parents, overwrites, reports the resolved path (spec §3.5)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alloy_nb.errors import ToolError
from alloy_nb.tools.core import Write


def _write(tmp_path: Path, **input: object) -> str:
    return Write().execute(dict(input), {"working_directory": str(tmp_path)})


def test_definition() -> None:
    d = Write().definition()
    assert (d.name, d.description) == (
        "write",
        "Write content to a file. Creates parent directories if needed.",
    )
    assert d.input_schema["required"] == ["file_path", "content"]


def test_writes_and_reports_absolute_path(tmp_path: Path) -> None:
    out = _write(tmp_path, file_path="a.txt", content="hello\r\nworld")
    assert out == f"Successfully wrote to {tmp_path / 'a.txt'}"
    assert (tmp_path / "a.txt").read_bytes() == b"hello\r\nworld"


def test_creates_parent_directories(tmp_path: Path) -> None:
    _write(tmp_path, file_path="deep/er/f.txt", content="x")
    assert (tmp_path / "deep" / "er" / "f.txt").read_text() == "x"


def test_overwrites(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("old content")
    _write(tmp_path, file_path="f.txt", content="new")
    assert (tmp_path / "f.txt").read_text() == "new"


def test_empty_content_and_unicode(tmp_path: Path) -> None:
    _write(tmp_path, file_path="e.txt", content="")
    assert (tmp_path / "e.txt").read_text() == ""
    _write(tmp_path, file_path="u.txt", content="héllo ✓")
    assert (tmp_path / "u.txt").read_text(encoding="utf-8") == "héllo ✓"


def test_content_must_be_a_string(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="content must be a string"):
        _write(tmp_path, file_path="f.txt", content=None)


def test_cannot_create_directory(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    with pytest.raises(ToolError, match=r"^Cannot create directory: "):
        _write(tmp_path, file_path="file/sub/f.txt", content="x")


def test_write_failure(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    with pytest.raises(ToolError) as info:
        _write(tmp_path, file_path="dir", content="x")
    assert str(info.value).startswith(f"Failed to write to {tmp_path / 'dir'}: eisdir")


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores permissions")
def test_permission_denied(tmp_path: Path) -> None:
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(ToolError, match="eacces"):
            _write(tmp_path, file_path="ro/f.txt", content="x")
    finally:
        ro.chmod(0o700)


def test_confined(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="outside"):
        _write(tmp_path, file_path="../escape.txt", content="x")
    assert not (tmp_path.parent / "escape.txt").exists()
