"""The reference's core tools: ``Read``, ``Write``, ``Edit`` and ``Bash``.

File tools are confined by ``tools/_paths.py``; notebook tools live in ``tools/notebook.py``.
"""

from __future__ import annotations

from alloy_nb.tools.base import Tool
from alloy_nb.tools.core.bash import Bash
from alloy_nb.tools.core.edit import Edit
from alloy_nb.tools.core.read import Read
from alloy_nb.tools.core.write import Write

__all__ = ["Bash", "Edit", "Read", "Write", "core_tools"]


def core_tools() -> list[Tool]:
    """One fresh instance of each core tool, in the reference's order."""
    return [Read(), Write(), Edit(), Bash()]
