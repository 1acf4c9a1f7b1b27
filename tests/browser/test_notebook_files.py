"""Opening a tutorial notebook in JupyterLab does not mark it modified, and saving it
unchanged writes the same bytes (nbformat minor, metadata, cell ids, trailing newline).

The server root is a temp copy of ``notebooks/`` (the ``lab_root_dir`` fixture), so the
repository is never written. Before the fix, JupyterLab 4 marked every tutorial modified on
open: the files held ``language_info: {"name": "python"}`` and the kernel reports more.
"""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import pytest

from .conftest import lab_command, open_notebook, wait_for_kernel_idle

NAMES = ["01_quickstart.ipynb", "02_data_assistant.ipynb", "03_tools_and_middleware.ipynb",
         "04_sessions_and_background.ipynb", "05_teaching_the_loop.ipynb"]
DIRTY_TAB = ".lm-DockPanel-tabBar .lm-TabBar-tab.jp-mod-dirty"


@pytest.mark.parametrize("name", NAMES)
def test_opening_does_not_modify_and_saving_is_identical(jupyter_lab: Any, browser_page: Any,
                                                         name: str) -> None:
    path = jupyter_lab.root_dir / name
    _match_this_python(path)
    before = path.read_bytes()
    page = browser_page
    open_notebook(page, jupyter_lab, name)
    wait_for_kernel_idle(page)
    time.sleep(1.5)  # kernel info arrives, metadata settles
    assert page.locator(DIRTY_TAB).count() == 0, f"{name} is marked modified on open"
    lab_command(page, "docmanager:save")
    time.sleep(1.5)
    after = path.read_bytes()
    assert after == before, (name, before[-300:], after[-300:])


def _match_this_python(path: Path) -> None:
    """The files name the reference Python; on another interpreter Jupyter rightly updates
    ``language_info.version`` on open, so the temp copy names this one (nothing else)."""
    nb = json.loads(path.read_text(encoding="utf-8"))
    if nb["metadata"]["language_info"]["version"] != platform.python_version():
        nb["metadata"]["language_info"]["version"] = platform.python_version()
        path.write_text(json.dumps(nb, indent=1, sort_keys=True, ensure_ascii=False) + "\n",
                        encoding="utf-8")
