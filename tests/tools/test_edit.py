"""The edit tool: unique-match rule, replace_all and the reference's error texts (spec §3.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alloy_nb.errors import ToolError
from alloy_nb.tools.core import Edit


def _edit(tmp_path: Path, **input: object) -> str:
    return Edit().execute(dict(input), {"working_directory": str(tmp_path)})


def test_definition() -> None:
    d = Edit().definition()
    assert (d.name, d.description) == ("edit", "Search and replace text in a file.")
    assert d.input_schema["required"] == ["file_path", "old_string", "new_string"]
    assert d.input_schema["properties"]["replace_all"]["default"] is False


def test_replaces_unique_match(tmp_path: Path) -> None:
    (tmp_path / "f.py").write_text("x = 1\ny = 2\n")
    out = _edit(tmp_path, file_path="f.py", old_string="y = 2", new_string="y = 3")
    assert out == f"Successfully edited {tmp_path / 'f.py'}"
    assert (tmp_path / "f.py").read_text() == "x = 1\ny = 3\n"


def test_no_match(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("abc")
    with pytest.raises(ToolError) as info:
        _edit(tmp_path, file_path="f.txt", old_string="zzz", new_string="y")
    assert str(info.value) == "No match found for the provided old_string in the file."


def test_ambiguous_without_replace_all(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("a a a")
    with pytest.raises(ToolError) as info:
        _edit(tmp_path, file_path="f.txt", old_string="a", new_string="b")
    assert str(info.value) == (
        "old_string appears 3 times (ambiguous). Use replace_all: true to replace all occurrences."
    )
    assert (tmp_path / "f.txt").read_text() == "a a a"


def test_replace_all(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("a a a")
    _edit(tmp_path, file_path="f.txt", old_string="a", new_string="b", replace_all=True)
    assert (tmp_path / "f.txt").read_text() == "b b b"


def test_non_overlapping_count(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("aaaa")  # "aa" overlaps 3 times, but 2 without overlap
    with pytest.raises(ToolError, match="old_string appears 2 times"):
        _edit(tmp_path, file_path="f.txt", old_string="aa", new_string="b")


def test_non_overlapping_single_match_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("aaa")
    _edit(tmp_path, file_path="f.txt", old_string="aa", new_string="b")
    assert (tmp_path / "f.txt").read_text() == "ba"


def test_line_endings_preserved(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"one\r\ntwo\r\n")
    _edit(tmp_path, file_path="f.txt", old_string="two", new_string="2")
    assert (tmp_path / "f.txt").read_bytes() == b"one\r\n2\r\n"


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ToolError) as info:
        _edit(tmp_path, file_path="nope.txt", old_string="a", new_string="b")
    assert (
        str(info.value)
        == f"Cannot read {tmp_path / 'nope.txt'}: enoent (No such file or directory)"
    )


def test_empty_old_string_refused(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("abc")
    with pytest.raises(ToolError, match="old_string must not be empty"):
        _edit(tmp_path, file_path="f.txt", old_string="", new_string="x")


def test_confined(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="outside"):
        _edit(tmp_path, file_path="/etc/hostname", old_string="a", new_string="b")
