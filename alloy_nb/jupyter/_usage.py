"""``%alloy usage``: every request of every session in this kernel, as one aligned table.

The numbers come from the core's ledger (``alloy_nb._ledger``), which each Session feeds
when a request ends, so ``session.chat()`` from Python, the chat box, ``%%alloy`` cells
and stopped runs all count, with the tokens the provider reported; one-shot
``alloy.run``/``stream`` calls are one row, "alloy.run". Rows are per
session/provider/model; a model without a known price is said to be unpriced, and a
total that includes one says it is a lower bound.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from alloy_nb import _ledger
from alloy_nb.usage import Usage

__all__ = ["UsageTable", "usage_table"]

_COLUMNS = ("session", "provider", "model", "requests", "stopped/failed", "in", "out",
            "cache read", "cache write", "cost")
_NUMERIC = {"requests", "stopped/failed", "in", "out", "cache read", "cache write"}
_STOPPED = ("cancelled", "error", "halted")


@dataclass
class _Row:
    session: str
    provider: str
    model: str
    requests: int = 0
    stopped: int = 0
    usage: Usage = field(default_factory=Usage)

    def cells(self) -> list[str]:
        u = self.usage
        return [self.session, self.provider, self.model, f"{self.requests:,}",
                f"{self.stopped:,}", f"{u.input_tokens:,}", f"{u.output_tokens:,}",
                f"{u.cache_read_input_tokens:,}", f"{u.cache_creation_input_tokens:,}",
                u.cost_label]


@dataclass
class UsageTable:
    """What ``%alloy usage`` shows: ``text/plain`` (aligned columns) and Markdown."""

    rows: list[_Row]
    total: _Row
    unpriced: list[str]
    empty_note: str = ""

    def text(self) -> str:
        if not self.rows:
            return self.empty_note
        table = [list(_COLUMNS), *(r.cells() for r in self.rows), self.total.cells()]
        widths = [max(len(line[i]) for line in table) for i in range(len(_COLUMNS))]
        out = []
        for n, line in enumerate(table):
            if n == len(table) - 1:
                out.append("  ".join("-" * w for w in widths))
            out.append("  ".join(
                cell.rjust(w) if _COLUMNS[i] in _NUMERIC else cell.ljust(w)
                for i, (cell, w) in enumerate(zip(line, widths, strict=True))
            ).rstrip())
        return "\n".join(out + self._notes())

    def markdown(self) -> str:
        if not self.rows:
            return self.empty_note
        align = ["---:" if c in _NUMERIC else ":---" for c in _COLUMNS]
        lines = ["| " + " | ".join(_COLUMNS) + " |", "| " + " | ".join(align) + " |"]
        for r in self.rows:
            lines.append("| " + " | ".join(_md(c) for c in r.cells()) + " |")
        total = ["**" + _md(c) + "**" if c else "" for c in self.total.cells()]
        lines.append("| " + " | ".join(total) + " |")
        notes = [_md(n) for n in self._notes()]
        return "\n".join(lines + (["", *notes] if notes else []))

    def _notes(self) -> list[str]:
        if not self.unpriced:
            return []
        return [f"unpriced: no known price for {', '.join(self.unpriced)}; their tokens are "
                "counted above but not in the cost, so the total cost is a lower bound."]

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, str]:
        return {"text/plain": self.text(), "text/markdown": self.markdown()}

    def __str__(self) -> str:
        return self.text()


def _md(cell: str) -> str:
    """A table cell: ``|`` escaped, and ``$`` too (two on a line render as LaTeX math in
    JupyterLab and nbconvert)."""
    return cell.replace("|", "\\|").replace("$", "\\$")


def usage_table(names: Mapping[str, str], only: str | None = None) -> UsageTable:
    """Group the ledger by session/provider/model. ``names`` maps session ids to the name
    the notebook knows them by (``%%alloy -s NAME``, a variable); ``only`` filters."""
    rows: dict[tuple[str, str, str], _Row] = {}
    for e in _ledger.entries():
        name = (names.get(e.session_id) or e.session_name
                or (f"session {e.session_id[:8]}" if e.session_id else "alloy.run"))
        if only is not None and only not in (name, e.session_id, e.session_name):
            continue
        key = (name, e.provider, e.model)
        row = rows.get(key) or rows.setdefault(key, _Row(*key))
        row.requests += 1
        row.stopped += e.status in _STOPPED
        row.usage = row.usage + e.usage
    ordered = list(rows.values())
    total = _Row("total", "", "", sum(r.requests for r in ordered),
                 sum(r.stopped for r in ordered), sum((r.usage for r in ordered), Usage()))
    unpriced = [f"{r.provider}:{r.model}" for r in ordered if not r.usage.priced]
    note = "no requests yet" + (f" in session {only!r}" if only else "")
    return UsageTable(ordered, total, list(dict.fromkeys(unpriced)), note)
