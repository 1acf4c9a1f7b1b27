"""What every finished Session request used, process-wide, however it was sent.

A notebook's ``%alloy usage`` must count requests made from any code path
(``Session.chat`` in a Python cell, ``send_message``, a ``%%alloy`` cell, the chat box,
one-shot ``alloy.run``), not only the ones its magics started, so each Session reports
here when a request ends (``RequestQueue._complete`` in ``session/_queue.py``) and so
does ``api._Job``. Entries are small and append-only; nothing here imports the notebook layer.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

from alloy_nb.usage import Usage

__all__ = ["Entry", "clear", "entries", "record", "record_request", "record_run"]


@dataclass(frozen=True, slots=True)
class Entry:
    """One finished request: whose, which provider/model, how it ended, what it used."""

    session_id: str
    session_name: str | None
    provider: str
    model: str
    status: str
    usage: Usage


_lock = threading.Lock()
_entries: list[Entry] = []


def record(entry: Entry) -> None:
    with _lock:
        _entries.append(entry)


def record_request(session: Any, result: Any) -> None:
    """Record a Session's finished request (its own share: ``result.run_usage``)."""
    config = session.config
    usage = getattr(result, "run_usage", None)
    record(Entry(
        session_id=session.id, session_name=session.name,
        provider=str(getattr(config.provider, "name", "") or type(config.provider).__name__),
        model=result.model or config.model, status=result.status,
        usage=usage if isinstance(usage, Usage) else Usage(),
    ))


def record_run(config: Any, result: Any) -> None:
    """Record a one-shot ``run``/``stream`` (no session: ``session_id`` is empty)."""
    record(Entry(
        session_id="", session_name=None,
        provider=str(getattr(config.provider, "name", "") or type(config.provider).__name__),
        model=result.model or config.model, status=result.status, usage=result.usage,
    ))


def entries() -> list[Entry]:
    """A copy of every entry so far, oldest first."""
    with _lock:
        return list(_entries)


def clear() -> None:
    """Forget everything (tests; a kernel normally keeps its whole account)."""
    with _lock:
        _entries.clear()
