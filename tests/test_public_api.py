"""The front door: ``__all__`` is the API.md surface, sorted, resolvable, and cheap to import."""

from __future__ import annotations

import subprocess
import sys

import alloy_nb

API_NAMES = {
    "run", "stream", "arun", "astream", "Session", "Result", "Usage", "Message", "Event",
    "Middleware", "Halt", "Block", "EditCall", "AgentError", "Busy", "QueueFull", "ProviderError",
    "ToolError", "ConfigError", "Compaction", "tool", "Tool", "ToolResult",
    "load_ipython_extension", "unload_ipython_extension",
    "map", "amap",
}
API_NAMES |= {"SessionFileError"}  # API.md, second round (issue 9)


def test_all_is_sorted_and_complete() -> None:
    assert alloy_nb.__all__ == sorted(alloy_nb.__all__)
    assert set(alloy_nb.__all__) == API_NAMES


def test_every_name_resolves() -> None:
    for name in alloy_nb.__all__:
        assert getattr(alloy_nb, name) is not None, name
    assert set(alloy_nb.__all__) <= set(dir(alloy_nb))


def test_names_are_the_real_objects() -> None:
    from alloy_nb.api import run
    from alloy_nb.middleware import Halt
    from alloy_nb.tools.base import Tool

    assert alloy_nb.run is run and alloy_nb.Halt is Halt and alloy_nb.Tool is Tool
    assert isinstance(alloy_nb.__version__, str)


def test_unknown_attribute() -> None:
    try:
        alloy_nb.nope  # noqa: B018
    except AttributeError as exc:
        assert "nope" in str(exc)
    else:
        raise AssertionError("expected AttributeError")


def test_import_is_light_and_never_touches_jupyter() -> None:
    code = (
        "import sys, time; t = time.perf_counter(); import alloy_nb; "
        "dt = time.perf_counter() - t; "
        "bad = [m for m in ('IPython', 'ipywidgets', 'traitlets', 'ipykernel', 'comm', "
        "'httpx') if m in sys.modules]; "
        "assert not bad, bad; print(dt)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
    assert float(out.stdout) < 2.0  # generous: typically a few ms


def test_using_the_core_does_not_import_jupyter() -> None:
    code = (
        "import sys, alloy_nb; from alloy_nb.providers.scripted import Scripted; "
        "r = alloy_nb.run('hi', provider=Scripted(['x'])); assert r.text == 'x'; "
        "assert 'IPython' not in sys.modules and 'ipywidgets' not in sys.modules"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=False)
    assert out.returncode == 0, out.stderr
