"""alloy_nb: send messages to any LLM, run its tool calls, loop until done — in Jupyter too.

The names below are the public API (``shared/API.md``). They load on first use, so
``import alloy_nb`` stays fast and never imports IPython or ipywidgets; the notebook
layer (``alloy_nb.jupyter``) loads only through ``%load_ext alloy_nb``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from alloy_nb._version import __version__ as __version__
from alloy_nb.errors import (
    AgentError,
    Busy,
    ConfigError,
    ProviderError,
    QueueFull,
    SessionFileError,
    ToolError,
)

if TYPE_CHECKING:
    from alloy_nb.api import arun, astream, run, stream
    from alloy_nb.batch import amap, map
    from alloy_nb.compaction import Compaction
    from alloy_nb.events import Event
    from alloy_nb.messages import Message
    from alloy_nb.middleware import Block, EditCall, Halt, Middleware
    from alloy_nb.result import Result
    from alloy_nb.session import Session
    from alloy_nb.tools.base import Tool, ToolResult
    from alloy_nb.tools.function import tool
    from alloy_nb.usage import Usage

__all__ = [
    "AgentError",
    "Block",
    "Busy",
    "Compaction",
    "ConfigError",
    "EditCall",
    "Event",
    "Halt",
    "Message",
    "Middleware",
    "ProviderError",
    "QueueFull",
    "Result",
    "Session",
    "SessionFileError",
    "Tool",
    "ToolError",
    "ToolResult",
    "Usage",
    "amap",
    "arun",
    "astream",
    "load_ipython_extension",
    "map",
    "run",
    "stream",
    "tool",
    "unload_ipython_extension",
]

# name -> module that defines it; imported on first attribute access (PEP 562)
_LAZY: dict[str, str] = {
    "arun": "alloy_nb.api",
    "astream": "alloy_nb.api",
    "run": "alloy_nb.api",
    "stream": "alloy_nb.api",
    "Block": "alloy_nb.middleware",
    "EditCall": "alloy_nb.middleware",
    "Halt": "alloy_nb.middleware",
    "Middleware": "alloy_nb.middleware",
    "Compaction": "alloy_nb.compaction",
    "Event": "alloy_nb.events",
    "Message": "alloy_nb.messages",
    "Result": "alloy_nb.result",
    "Usage": "alloy_nb.usage",
    "Session": "alloy_nb.session",
    "Tool": "alloy_nb.tools.base",
    "ToolResult": "alloy_nb.tools.base",
    "tool": "alloy_nb.tools.function",
    "map": "alloy_nb.batch",
    "amap": "alloy_nb.batch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'alloy_nb' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value  # later lookups skip this function
    return value


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})


def load_ipython_extension(ip: Any) -> None:
    """``%load_ext alloy_nb``: register the ``%alloy``/``%%alloy`` magics and displays."""
    from alloy_nb.jupyter import load_ipython_extension as load

    load(ip)


def unload_ipython_extension(ip: Any) -> None:
    """``%unload_ext alloy_nb``."""
    from alloy_nb.jupyter import unload_ipython_extension as unload

    unload(ip)
