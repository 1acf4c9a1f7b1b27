"""``context["approve"]`` for ``run_python``: ask the person at the notebook before code runs.

Background runs show an Approve / Deny card (the kernel is idle, so clicks arrive).
Blocking runs cannot receive clicks (the kernel processes no comm messages while a cell
runs), so they ask through the kernel's stdin with ``input()``; front ends without stdin
(nbclient, papermill) get a refusal the model is told about. ``%alloy approve`` sets the
policy: ``ask`` (default), ``always`` or ``never``.
"""

from __future__ import annotations

import asyncio
import builtins
import logging
import time
from typing import Any

__all__ = ["POLICIES", "Approver"]

log = logging.getLogger("alloy_nb")

POLICIES = ("ask", "always", "never")
_SHOWN_LINES = 40


class Approver:
    """Callable ``(tool_name, code) -> bool | Awaitable[bool]`` bound to one session.

    The notebook controller sets ``mode`` (``"blocking"`` / ``"background"``) and ``view``
    before each run; a session runs one request at a time, so one slot is enough.
    """

    def __init__(self, policy: str = "ask") -> None:
        self.policy = policy
        self.mode = "blocking"
        self.view: Any = None
        self.log: list[tuple[str, bool]] = []  # (tool name, allowed) per request

    def __call__(self, tool_name: str, code: str) -> bool | asyncio.Future[bool]:
        if self.policy == "always":
            return self._record(tool_name, True, code, " (approve policy: always)")
        if self.policy == "never":
            return self._record(tool_name, False, code, " (approve policy: never)")
        if self.mode == "background" and hasattr(self.view, "add"):
            return self._card(tool_name, code)
        if self.mode == "background":
            print(f"[alloy] {tool_name} needs approval, but this background run has no "
                  "widgets to ask with; denied. Run the cell without --background to be asked.")
            return self._record(tool_name, False, code, " (no one to ask)")
        return self._ask_blocking(tool_name, code)

    def _ask_blocking(self, tool_name: str, code: str) -> bool:
        """Ask on stdin with the tool card already drawn; afterwards the verdict (and how
        long the person took) joins the transcript and the prompt's log is cleared, so the
        finished cell reads top to bottom: card, verdict, result, answer."""
        _quietly(getattr(self.view, "flush", None))  # the card is drawn before the question
        started = time.monotonic()
        ok, reason = _ask_stdin(tool_name, code)
        took = time.monotonic() - started
        how = (f" (not run: {reason})" if reason else
               f" by you (you took {took:.1f} s; not counted in the tool's time)")
        self._record(tool_name, ok, code, how)
        _quietly(getattr(self.view, "redisplay", None))  # drop the prompt's log
        return ok

    def _record(self, tool_name: str, ok: bool, code: str = "", how: str = "") -> bool:
        self.log.append((tool_name, ok))
        tell = getattr(self.view, "approval", None)  # the verdict goes into the transcript
        if callable(tell):
            tell(tool_name, code, ok, how)
        return ok

    def _card(self, tool_name: str, code: str) -> asyncio.Future[bool]:
        from alloy_nb.jupyter.widgets import ApprovalCard

        future: asyncio.Future[bool] = asyncio.get_running_loop().create_future()

        def decide(ok: bool) -> None:
            self._record(tool_name, ok, code)
            if not future.done():
                future.set_result(ok)

        card = ApprovalCard(tool_name, code, decide)
        self.view.add(card.widget)

        def cancelled(f: asyncio.Future[bool]) -> None:
            if f.cancelled():  # the run was stopped: the card must not wait for a click
                card._click(False)

        future.add_done_callback(cancelled)
        return future


def _ask_stdin(tool_name: str, code: str) -> tuple[bool, str | None]:
    """Show the code and ask y/N on stdin: (allowed, why nobody could answer)."""
    lines = code.splitlines()
    shown = "\n".join(f"    {line}" for line in lines[:_SHOWN_LINES])
    if len(lines) > _SHOWN_LINES:
        shown += f"\n    … ({len(lines) - _SHOWN_LINES} more lines)"
    print(f"[alloy] {tool_name} wants to run this code in your notebook:\n{shown}", flush=True)
    try:
        answer = builtins.input("Run it? [y/N] ")
    except Exception as exc:  # StdinNotImplementedError, EOFError: nobody can answer
        return False, (f"this front end cannot ask ({type(exc).__name__}); "
                       "`%alloy approve always` allows code without asking")
    return answer.strip().lower() in ("y", "yes"), None


def _quietly(fn: Any) -> None:
    """Call a view hook if it exists; drawing must never decide whether code runs."""
    if callable(fn):
        try:
            fn()
        except Exception:
            log.exception("alloy_nb: drawing the approval failed")
