"""Explicit opt-in to ``nest_asyncio``: never applied by alloy_nb itself.

alloy_nb does not need it (blocking calls run on a private loop thread); this helper only
exists for notebooks whose *own* code calls ``asyncio.run`` inside a running kernel loop.
"""

from __future__ import annotations

import asyncio
import sys
import threading
import warnings

__all__ = ["enable_nest_asyncio"]

_applied = False
_lock = threading.Lock()


def enable_nest_asyncio(*, quiet: bool = False) -> bool:
    """Patch asyncio (process-wide, irreversibly) so ``asyncio.run`` nests in a running loop.

    Returns True when this call applied the patch, False when it was already applied.

    Prefer not to. alloy_nb's own sync calls (``alloy_nb.run``, ``Session.chat``,
    ``%%alloy``) work in a kernel without it, and top-level ``await`` works everywhere.
    Known breakages once applied (see the team's reference notes, jupyter.md §0/§1.5):

    * the ``nest_asyncio`` project is archived and unmaintained; ipykernel moved to a fork;
    * ``anyio.run()`` fails with "Already running asyncio in this thread";
    * httpx / ``AsyncAnthropic`` have been reported to hang under it;
    * on Python 3.12+ the patched ``asyncio.run`` rejects ``loop_factory=``;
    * on Python 3.14 ``asyncio.current_task()`` returns None, so anyio/httpx crash;
    * with ipykernel 7 it has been reported to corrupt per-message contexts
      ("cannot enter context", "Task was destroyed but it is pending");
    * uvloop cannot be patched at all (ValueError);
    * the patch is process-wide and cannot be undone: restart the kernel to remove it.

    ``quiet=True`` skips the warning that repeats this list in short.
    """
    global _applied
    with _lock:
        if _applied:
            return False
        loop = _running_loop()
        if loop is not None and type(loop).__module__.startswith("uvloop"):
            raise RuntimeError("nest_asyncio cannot patch uvloop; nothing was changed")
        try:
            import nest_asyncio  # lazily: importing alloy_nb must not touch asyncio
        except ImportError as exc:  # pragma: no cover - it is a declared dependency
            raise RuntimeError("nest_asyncio is not installed: pip install nest-asyncio") from exc
        if not quiet:
            warnings.warn(_warning_text(), RuntimeWarning, stacklevel=2)
        if loop is not None:
            nest_asyncio.apply(loop)
        else:
            nest_asyncio.apply()
        _applied = True
        return True


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


def _warning_text() -> str:
    risks = ["it is unmaintained", "anyio.run() stops working",
             "it is process-wide and cannot be undone (restart the kernel)"]
    if sys.version_info >= (3, 12):
        risks.append("asyncio.run(loop_factory=...) is rejected on Python 3.12+")
    if sys.version_info >= (3, 14):
        risks.append("httpx/anyio crash on Python 3.14 (current_task() is None)")
    if "ipykernel" in sys.modules:
        risks.append("ipykernel 7 per-message contexts have been reported to break")
    return "nest_asyncio applied: " + "; ".join(risks) + ". alloy_nb itself does not need it."
