"""Path resolution and confinement: the working directory by default, or allowed_paths."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from alloy_nb.errors import ToolError
from alloy_nb.tools._paths import allowed_roots, os_reason, resolve_path


def test_relative_paths_join_the_working_directory(tmp_path: Path) -> None:
    ctx = {"working_directory": str(tmp_path)}
    assert resolve_path("a.txt", ctx) == str(tmp_path / "a.txt")
    assert resolve_path("./sub/../b.txt", ctx) == str(tmp_path / "b.txt")


def test_absolute_path_inside_is_allowed(tmp_path: Path) -> None:
    ctx = {"working_directory": str(tmp_path)}
    assert resolve_path(str(tmp_path / "x" / "y.txt"), ctx) == str(tmp_path / "x" / "y.txt")


def test_missing_working_directory_means_cwd(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    assert resolve_path("f.txt", {}) == str(tmp_path / "f.txt")
    assert resolve_path("f.txt", {"working_directory": None}) == str(tmp_path / "f.txt")


def test_dotdot_escape_is_refused(tmp_path: Path) -> None:
    wd = tmp_path / "project"
    wd.mkdir()
    with pytest.raises(ToolError) as info:
        resolve_path("../secret.txt", {"working_directory": str(wd)})
    msg = str(info.value)
    assert str(tmp_path / "secret.txt") in msg
    assert "outside the working directory" in msg and str(wd) in msg


def test_absolute_path_outside_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match="/etc/passwd is outside"):
        resolve_path("/etc/passwd", {"working_directory": str(tmp_path)})


def test_prefix_sibling_is_not_inside(tmp_path: Path) -> None:
    (tmp_path / "proj").mkdir()
    (tmp_path / "project2").mkdir()
    ctx = {"working_directory": str(tmp_path / "proj")}
    with pytest.raises(ToolError, match="outside"):
        resolve_path(str(tmp_path / "project2" / "f"), ctx)


def test_symlink_escape_is_refused(tmp_path: Path) -> None:
    wd, outside = tmp_path / "wd", tmp_path / "outside"
    wd.mkdir()
    outside.mkdir()
    (outside / "secret.txt").write_text("s")
    (wd / "link").symlink_to(outside)
    (wd / "file_link").symlink_to(outside / "secret.txt")
    ctx = {"working_directory": str(wd)}
    with pytest.raises(ToolError, match=r"resolves to .*outside"):
        resolve_path("link/secret.txt", ctx)
    with pytest.raises(ToolError, match="outside"):
        resolve_path("file_link", ctx)


def test_symlink_inside_is_allowed(tmp_path: Path) -> None:
    (tmp_path / "real").mkdir()
    (tmp_path / "alias").symlink_to(tmp_path / "real")
    ctx = {"working_directory": str(tmp_path)}
    assert resolve_path("alias/f.txt", ctx) == str(tmp_path / "alias" / "f.txt")


def test_allowed_paths_list(tmp_path: Path) -> None:
    wd, data, other = tmp_path / "wd", tmp_path / "data", tmp_path / "other"
    for d in (wd, data, other):
        d.mkdir()
    ctx = {"working_directory": str(wd), "allowed_paths": [str(data), "../wd"]}
    assert resolve_path(str(data / "x.csv"), ctx) == str(data / "x.csv")
    assert resolve_path("local.txt", ctx) == str(wd / "local.txt")
    with pytest.raises(ToolError) as info:
        resolve_path(str(other / "x"), ctx)
    msg = str(info.value)
    assert "is outside allowed directories" in msg
    assert str(data) in msg and str(wd) in msg


def test_allowed_paths_replaces_the_working_directory(tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    ctx = {"working_directory": str(tmp_path), "allowed_paths": [str(data)]}
    with pytest.raises(ToolError, match="outside allowed directories"):
        resolve_path("top.txt", ctx)
    assert allowed_roots(ctx) == [str(data)]


def test_allowed_paths_root_opts_out(tmp_path: Path) -> None:
    ctx = {"working_directory": str(tmp_path), "allowed_paths": ["/"]}
    assert resolve_path("/etc/hostname", ctx) == "/etc/hostname"


def test_empty_allowed_paths_allows_nothing(tmp_path: Path) -> None:
    with pytest.raises(ToolError, match=r"\(none\)"):
        resolve_path("a", {"working_directory": str(tmp_path), "allowed_paths": []})


def test_bad_path_values(tmp_path: Path) -> None:
    for bad in ("", None, 3):
        with pytest.raises(ToolError, match="file_path must be a non-empty string"):
            resolve_path(bad, {"working_directory": str(tmp_path)})


def test_os_reason_names_the_errno() -> None:
    assert os_reason(FileNotFoundError(2, os.strerror(2))) == "enoent (No such file or directory)"
