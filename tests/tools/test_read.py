"""The read tool: numbering format, offset/limit, limits and error texts (spec §3.5)."""

from __future__ import annotations

from pathlib import Path

import pytest

from alloy_nb.errors import ToolError
from alloy_nb.tools.core import Read
from alloy_nb.tools.core.read import DEFAULT_LIMIT, MAX_LINE_CHARS, MAX_OUTPUT_CHARS


def _read(tmp_path: Path, **input: object) -> str:
    return Read().execute(dict(input), {"working_directory": str(tmp_path)})


def test_definition() -> None:
    d = Read().definition()
    assert d.name == "read"
    assert d.description == "Read a file from the filesystem. Returns contents with line numbers."
    assert d.input_schema["required"] == ["file_path"]
    assert set(d.input_schema["properties"]) == {"file_path", "offset", "limit"}


def test_numbered_lines(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("line 1\nline 2\nline 3\n")
    assert _read(tmp_path, file_path="f.txt") == "     1\tline 1\n     2\tline 2\n     3\tline 3\n"


def test_final_line_without_newline_counts_and_cr_is_kept(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"a\r\nb")
    assert _read(tmp_path, file_path="f.txt") == "     1\ta\r\n     2\tb\n"


def test_offset_and_limit(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("".join(f"line {i}\n" for i in range(1, 21)))
    out = _read(tmp_path, file_path="f.txt", offset=10, limit=2)
    assert out == "    10\tline 10\n    11\tline 11\n"


def test_width_grows_past_six_digits(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x\n" * 1_000_001)
    assert _read(tmp_path, file_path="f.txt", offset=10000, limit=1) == " 10000\tx\n"
    assert _read(tmp_path, file_path="f.txt", offset=1_000_000, limit=1) == "1000000\tx\n"


def test_default_limit_is_2000(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("x\n" * 2500)
    lines = _read(tmp_path, file_path="f.txt").splitlines()
    assert len(lines) == DEFAULT_LIMIT == 2000
    assert lines[-1] == "  2000\tx"


def test_empty_selection_and_clamping(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("a\nb\n")
    assert _read(tmp_path, file_path="f.txt", offset=5) == ""
    assert _read(tmp_path, file_path="f.txt", limit=0) == ""
    assert _read(tmp_path, file_path="f.txt", offset=-3, limit=1) == "     1\ta\n"
    assert _read(tmp_path, file_path="f.txt", limit=-1) == ""
    (tmp_path / "empty.txt").write_text("")
    assert _read(tmp_path, file_path="empty.txt") == ""


def test_numeric_strings_accepted_and_junk_refused(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("a\nb\n")
    assert _read(tmp_path, file_path="f.txt", offset="2") == "     2\tb\n"
    with pytest.raises(ToolError, match="offset must be an integer"):
        _read(tmp_path, file_path="f.txt", offset="two")


def test_missing_file_and_directory(tmp_path: Path) -> None:
    with pytest.raises(ToolError) as info:
        _read(tmp_path, file_path="nope.txt")
    expected = f"File does not exist or is not a readable file: {tmp_path / 'nope.txt'}"
    assert str(info.value) == expected
    with pytest.raises(ToolError, match="not a readable file"):
        _read(tmp_path, file_path=".")


def test_long_lines_are_cut(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_text("y" * (MAX_LINE_CHARS + 500) + "\n")
    out = _read(tmp_path, file_path="f.txt")
    assert out == f"     1\t{'y' * MAX_LINE_CHARS}... [truncated 500 chars]\n"


def test_a_huge_single_line_is_streamed_not_loaded(tmp_path: Path) -> None:
    """A 20 MB one-line file (minified JS, a JSON dump) used to be read into memory whole
    (bytes and str) just to keep its first 2 000 characters."""
    import tracemalloc

    size = 20_000_000
    with open(tmp_path / "big.json", "w") as f:
        f.write("é" + "x" * (size - 1) + "\nsecond\n")
    tracemalloc.start()
    try:
        out = _read(tmp_path, file_path="big.json")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 2_000_000
    first, second = out.splitlines()
    cut = size - MAX_LINE_CHARS
    assert first == f"     1\té{'x' * (MAX_LINE_CHARS - 1)}... [truncated {cut} chars]"
    assert second == "     2\tsecond"
    assert _read(tmp_path, file_path="big.json", offset=2) == "     2\tsecond\n"


@pytest.mark.parametrize("tail", ["", "\n"])
@pytest.mark.parametrize("n", [MAX_LINE_CHARS, MAX_LINE_CHARS + 1, 4 * MAX_LINE_CHARS + 7])
def test_line_cut_counts_multibyte_characters(tmp_path: Path, n: int, tail: str) -> None:
    (tmp_path / "f.txt").write_text("€" * n + tail, encoding="utf-8")  # 3 bytes each
    out = _read(tmp_path, file_path="f.txt")
    cut = n - MAX_LINE_CHARS
    marker = f"... [truncated {cut} chars]" if cut else ""
    assert out == f"     1\t{'€' * MAX_LINE_CHARS}{marker}\n"


def test_output_cap_says_where_to_continue(tmp_path: Path) -> None:
    line = "z" * 1000
    (tmp_path / "f.txt").write_text(f"{line}\n" * 500)
    out = _read(tmp_path, file_path="f.txt")
    assert len(out) < MAX_OUTPUT_CHARS + 200
    last = out.splitlines()[-1]
    assert "output limit" in last
    n = int(last.rsplit("offset=", 1)[1].rstrip("]"))
    assert out.splitlines()[-2].startswith(f"{n - 1:>6}\t")


def test_binary_files_are_refused(tmp_path: Path) -> None:
    (tmp_path / "b.bin").write_bytes(b"\x89PNG\0\0\x01")
    with pytest.raises(ToolError, match="binary"):
        _read(tmp_path, file_path="b.bin")


def test_invalid_utf8_is_replaced(tmp_path: Path) -> None:
    (tmp_path / "f.txt").write_bytes(b"caf\xe9\n")
    assert _read(tmp_path, file_path="f.txt") == "     1\tcaf\ufffd\n"


def test_confined(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="outside"):
        _read(tmp_path, file_path="/etc/passwd")
