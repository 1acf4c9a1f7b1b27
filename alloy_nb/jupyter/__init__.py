"""The Jupyter layer: ``%alloy``/``%%alloy``, streaming views, and display hooks.

Loaded only by ``%load_ext alloy_nb`` (``alloy_nb.load_ipython_extension`` delegates
here); the core never imports it. Loading registers; unloading removes what was added.
"""

from __future__ import annotations

from typing import Any

from alloy_nb.errors import ControlError  # defined with the others; re-exported here

__all__ = ["DEFAULT", "TOOL_NAMES", "ControlError", "controller", "load_ipython_extension",
           "unload_ipython_extension"]

DEFAULT = "default"  # the session a bare %%alloy uses
TOOL_NAMES = ("read", "write", "edit", "bash", "notebook", "run_python")

_loaded: dict[int, Any] = {}  # id(shell) -> AlloyMagics


def load_ipython_extension(ip: Any) -> None:
    """Register the magics and the Session/Result display hooks (idempotent)."""
    if id(ip) in _loaded:
        return
    from alloy_nb.jupyter.display import register_formatters
    from alloy_nb.jupyter.magics import AlloyMagics

    magics = AlloyMagics(ip)
    ip.register_magics(magics)
    register_formatters(ip, chat=lambda session: magics.controller.chat(session))
    ip.events.register("post_run_cell", magics.after_cell)
    _loaded[id(ip)] = magics
    from alloy_nb.batch import set_notebook_reporter

    set_notebook_reporter(_map_progress)  # alloy.map's progress: a display in the notebook


def unload_ipython_extension(ip: Any) -> None:
    """Stop background runs, then remove the magics and display hooks."""
    magics = _loaded.pop(id(ip), None)
    if magics is None:
        return
    from alloy_nb.jupyter.display import unregister_formatters

    if magics.has_controller:
        magics.controller.cancel("all")
    if magics.after_cell in ip.events.callbacks["post_run_cell"]:
        ip.events.unregister("post_run_cell", magics.after_cell)
    for kind in ("line", "cell"):
        table = ip.magics_manager.magics[kind]
        if getattr(table.get("alloy"), "__self__", None) is magics:
            del table["alloy"]
    ip.magics_manager.registry.pop(type(magics).__name__, None)
    unregister_formatters(ip)
    from alloy_nb.batch import set_notebook_reporter

    set_notebook_reporter(None)


def _map_progress(total: int) -> Any:
    """The notebook display for ``alloy.map`` (loaded on the first map, not at load)."""
    from alloy_nb.jupyter.batch_progress import make_progress

    return make_progress(total)


def controller(shell: Any = None) -> Any:
    """The notebook's ``NotebookAgents`` (sessions, defaults, usage): the magics' Python API."""
    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    magics = _loaded.get(id(shell))
    if magics is None:
        raise RuntimeError("the alloy_nb extension is not loaded: run %load_ext alloy_nb")
    return magics.controller
