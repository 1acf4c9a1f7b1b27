"""Tools the model can call: the protocol, function tools, and (in subpackages) the core
file/shell tools and the notebook-namespace tools.

The loop runs tools through ``agent/executor.py``; providers see them only as ``ToolDefinition``.
"""

from __future__ import annotations

from alloy_nb.errors import ToolError
from alloy_nb.tools.base import Tool, ToolResult
from alloy_nb.tools.function import as_tool, tool

__all__ = ["Tool", "ToolError", "ToolResult", "as_tool", "tool"]
