"""The notebook's ``alloy.map`` progress: one display (``display_id``) updated in place
at most a few times a second, ending as static text (HTML + plain), never a widget, so
a finished notebook shows it everywhere (GitHub, nbconvert, VS Code) with no widget state.

Registered with the core by ``%load_ext alloy_nb`` (``install``); the core only knows
the ``Reporter`` protocol. Updates may come from the ``_sync`` loop thread: Jupyter routes
``update_display_data`` by display id, not by the thread's parent message.
"""

from __future__ import annotations

import html
import threading
import time
from typing import Any

from alloy_nb.batch import MapProgress
from alloy_nb.jupyter.display import frontend

__all__ = ["NotebookProgress", "make_progress"]

_MIN_INTERVAL_S = 0.25


def _html(p: MapProgress) -> str:
    pct = 100.0 * p.done / p.total if p.total else 100.0
    ok = p.done - p.failed
    colour = "#c62828" if p.failed and p.finished else "#2e7d32"
    bar = "" if p.finished else (
        f'<div style="background:#e0e0e0;width:24em;height:0.7em;border-radius:3px">'
        f'<div style="background:{colour};width:{pct:.1f}%;height:100%;border-radius:3px">'
        "</div></div>"
    )
    return (f'<div class="alloy-map-progress" style="font-family:monospace">{bar}'
            f"{html.escape(p.line())} ({ok} ok)</div>")


class NotebookProgress:
    """A ``Reporter`` drawing into one display slot of the current cell."""

    def __init__(self, total: int) -> None:
        from alloy_nb.jupyter._ipython import display

        self.lock = threading.Lock()
        self.last = 0.0
        first = MapProgress(total=total)
        self.handle = display(self._bundle(first), raw=True, display_id=True)

    @staticmethod
    def _bundle(p: MapProgress) -> dict[str, str]:
        return {"text/plain": p.line(), "text/html": _html(p)}

    def update(self, progress: MapProgress) -> None:
        now = time.monotonic()
        with self.lock:
            if now - self.last < _MIN_INTERVAL_S:
                return
            self.last = now
        if self.handle is not None:
            self.handle.update(self._bundle(progress), raw=True)

    def close(self, progress: MapProgress) -> None:
        if self.handle is not None:  # the last word: static text, the bar dropped
            self.handle.update(self._bundle(progress), raw=True)


def make_progress(total: int) -> Any:
    """A notebook display inside a kernel; None elsewhere (the core uses stderr)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    if shell is None or frontend(shell) != "widget":
        return None
    return NotebookProgress(total)
