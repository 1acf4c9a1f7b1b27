"""Where a file tool may look: resolve a path against the working directory and confine it.

Confinement compares *real* paths (symlinks and ``..`` resolved) by path components, never
by string prefix. The file tools in ``tools/core`` call this; Bash does not (a shell cannot be
confined by path checks).
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Mapping, Sequence
from typing import Any

from alloy_nb.errors import ToolError

__all__ = [
    "allowed_roots",
    "os_reason",
    "require_regular_file",
    "resolve_path",
    "working_directory",
]


def working_directory(context: Mapping[str, Any]) -> str:
    """The absolute working directory: ``context["working_directory"]``, else the cwd."""
    wd = context.get("working_directory") or "."
    return os.path.abspath(os.path.expanduser(os.fspath(wd)))


def allowed_roots(context: Mapping[str, Any]) -> list[str]:
    """The directories a path must lie in.

    ``context["allowed_paths"]`` (a list, or one path) when given, relative entries resolved
    against the working directory; otherwise just the working directory. Not confining by
    default, as the reference does, would let a model read ``~/.ssh`` from a notebook, so
    the port confines to the working directory unless told otherwise (``["/"]`` opts out).
    """
    wd = working_directory(context)
    given = context.get("allowed_paths")
    if given is None:
        return [wd]
    entries: Sequence[Any] = [given] if isinstance(given, (str, os.PathLike)) else given
    return [os.path.normpath(os.path.join(wd, os.path.expanduser(os.fspath(p)))) for p in entries]


def resolve_path(path: Any, context: Mapping[str, Any]) -> str:
    """Return the absolute, normalised path, or raise ``ToolError`` if it is not allowed.

    The returned path keeps symlinks (it is what the user sees in messages); the check is
    made on its real path, so a link inside the root that points outside is refused.
    """
    if not isinstance(path, (str, os.PathLike)) or not os.fspath(path):
        raise ToolError(f"file_path must be a non-empty string, got {path!r}")
    if "\0" in str(os.fspath(path)):
        raise ToolError(f"file_path must not contain a NUL character, got {path!r}")
    wd = working_directory(context)
    resolved = os.path.normpath(os.path.join(wd, os.path.expanduser(os.fspath(path))))
    real = os.path.realpath(resolved)
    roots = allowed_roots(context)
    if any(_inside(real, os.path.realpath(root)) for root in roots):
        return resolved
    where = (
        f"the working directory {wd} (set allowed_paths in the context to allow others)"
        if context.get("allowed_paths") is None
        else "allowed directories: " + (", ".join(roots) or "(none)")
    )
    via = f" (it resolves to {real})" if real != resolved else ""
    raise ToolError(f"Path {resolved}{via} is outside {where}")


def require_regular_file(path: str, *, may_be_missing: bool = False) -> None:
    """Refuse FIFOs, devices and sockets at once: opening a FIFO blocks a
    thread until someone opens the other end, which no timeout can take back."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        if may_be_missing:
            return
        # from None: the model reads this message; FileNotFoundError says nothing more
        raise ToolError(f"File not found: {path}") from None
    except OSError as exc:
        raise ToolError(f"Cannot access {path}: {os_reason(exc)}") from exc
    if stat.S_ISDIR(mode):
        return  # opening fails at once with the reference's own eisdir message
    if not stat.S_ISREG(mode):
        kind = ("a FIFO" if stat.S_ISFIFO(mode) else "a socket" if stat.S_ISSOCK(mode)
                else "a device" if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
                else "not a regular file")
        raise ToolError(f"{path} is {kind}; only regular files can be written or edited")


def os_reason(exc: OSError) -> str:
    """``enoent (No such file or directory)``: the reference's atom plus the readable text."""
    code = errno.errorcode.get(exc.errno or 0, "")
    text = exc.strerror or str(exc)
    return f"{code.lower()} ({text})" if code else text


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([path, root]) == root
    except ValueError:  # different drives on Windows
        return False
