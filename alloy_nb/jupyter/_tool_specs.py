"""The magics' tool lists (``--tools read,bash``, ``%alloy tools notebook``): names parsed
and checked, then fresh tool instances built, notebook tools marked for the main thread."""

from __future__ import annotations

from typing import Any

from alloy_nb.jupyter import TOOL_NAMES, ControlError, runner

__all__ = ["build_tools", "parse_tools"]


def parse_tools(spec: str) -> list[str]:
    """``"read, bash"`` → ``["read", "bash"]``; ``none``/``off``/empty → no tools."""
    names = [n.strip().lower() for n in spec.replace(" ", ",").split(",") if n.strip()]
    if names in (["none"], ["off"], []):
        return []
    unknown = [n for n in names if n not in TOOL_NAMES]
    if unknown:
        raise ControlError(f"unknown tool name(s): {', '.join(unknown)}; "
                           f"choose from {', '.join(TOOL_NAMES)} (or none)")
    return list(dict.fromkeys(names))


def build_tools(names: list[str]) -> list[Any]:
    """Fresh tool instances; notebook tools run on the main thread in blocking cells."""
    tools: list[Any] = []
    if {"read", "write", "edit", "bash"} & set(names):
        from alloy_nb.tools import core

        classes = {"read": core.Read, "write": core.Write, "edit": core.Edit, "bash": core.Bash}
        tools += [classes[n]() for n in names if n in classes]
    if "notebook" in names or "run_python" in names:
        from alloy_nb.tools.notebook import InspectVariable, ListVariables, RunPython

        if "notebook" in names:
            tools += [runner.on_main_thread(ListVariables()),
                      runner.on_main_thread(InspectVariable())]
        if "run_python" in names:
            tools.append(runner.on_main_thread(RunPython()))
    return tools
