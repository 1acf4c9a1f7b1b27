"""The bubblewrap (``bwrap``) sandbox Bash runs commands in, and the probe that says it works.

Why bubblewrap: restricted bash (``bash -r``) is escaped by ``sh -c``, ``env bash -c`` or
``python3 -c``, and a child of the kernel can read the kernel's environment (API keys) in
``/proc/$PPID/environ``. Namespaces close that: a new PID namespace with a fresh ``/proc``
cannot see the kernel, a read-only root cannot be written outside the working directory and a
private ``/tmp``, and dropped capabilities stop root from remounting anything writable.
"""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
from collections.abc import Mapping

__all__ = ["INSTALL_HINT", "bwrap_argv", "sandbox_available"]

INSTALL_HINT = (
    "install bubblewrap (Debian/Ubuntu: `apt-get install bubblewrap`; Fedora: "
    "`dnf install bubblewrap`); it also needs unprivileged user namespaces or root"
)


def _runtime_dirs() -> list[str]:
    """Jupyter's runtime directories: kernel connection files hold the HMAC key that lets a
    local process run code in the kernel (and so read its environment); hide them."""
    home = os.path.expanduser("~")
    data = os.environ.get("XDG_DATA_HOME") or os.path.join(home, ".local", "share")
    found = [os.environ.get("JUPYTER_RUNTIME_DIR", ""), os.path.join(data, "jupyter", "runtime"),
             os.path.join(home, "Library", "Jupyter", "runtime")]
    return [d for d in dict.fromkeys(found) if d and os.path.isdir(d)]


#: Sockets that hand out root or the user's session (container engines, the session bus): a
#: read-only mount does not stop ``connect()``, so they are covered with /dev/null or a tmpfs.
_HIDDEN_SOCKETS = ["/run/docker.sock", "/var/run/docker.sock", "/run/podman/podman.sock",
                   "/run/containerd/containerd.sock", "/run/dbus/system_bus_socket"]
_HIDDEN_DIRS = ["/run/user"]


def _hidden(cwd: str) -> list[str]:
    out: list[str] = []
    seen: set[str] = set()
    for path in _HIDDEN_SOCKETS:
        real = os.path.realpath(path)
        if os.path.exists(real) and not os.path.isdir(real) and real not in seen:
            seen.add(real)
            out += ["--ro-bind", "/dev/null", real]
    for path in [*_HIDDEN_DIRS, *_runtime_dirs()]:
        real = os.path.realpath(path)
        if os.path.isdir(real) and real not in seen and not _inside(cwd, real):
            seen.add(real)
            out += ["--tmpfs", real]
    return out


def bwrap_argv(argv: list[str], cwd: str, *, network: bool = True) -> list[str]:
    """``argv`` wrapped in bwrap: read-only root, fresh /dev and /proc, private /tmp, ``cwd``
    writable, new PID/IPC/UTS (and, without ``network``, net) namespaces, no capabilities;
    Jupyter's runtime directory and privileged sockets hidden."""
    bwrap = shutil.which("bwrap") or "bwrap"
    out = [bwrap, "--ro-bind", "/", "/", "--dev", "/dev", "--proc", "/proc", "--tmpfs", "/tmp",
           *_hidden(cwd), "--bind", cwd, cwd, "--chdir", cwd,
            "--unshare-pid", "--unshare-ipc", "--unshare-uts", "--cap-drop", "ALL",
            "--die-with-parent", "--new-session"]
    if not network:
        out.append("--unshare-net")
    return [*out, "--", *argv]


def _inside(path: str, root: str) -> bool:
    try:
        return os.path.commonpath([os.path.realpath(path), os.path.realpath(root)]) == (
            os.path.realpath(root))
    except ValueError:
        return False


@functools.cache
def sandbox_available(network: bool = True) -> bool:
    """Whether bwrap exists and can build the sandbox here (checked once per process: a
    container may lack user namespaces even with bwrap installed)."""
    if shutil.which("bwrap") is None:
        return False
    argv = bwrap_argv(["true"], "/", network=network)
    try:
        done = subprocess.run(argv, stdin=subprocess.DEVNULL, capture_output=True,
                              timeout=10, env=_probe_env(os.environ))
    except (OSError, subprocess.SubprocessError):
        return False
    return done.returncode == 0


def _probe_env(env: Mapping[str, str]) -> dict[str, str]:
    return {k: v for k, v in env.items() if k in ("PATH", "LANG", "HOME")}
