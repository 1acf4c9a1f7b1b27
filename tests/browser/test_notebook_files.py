"""Opening a tutorial notebook in JupyterLab does not mark it modified, and saving it
unchanged writes the same bytes (nbformat minor, metadata, cell ids, trailing newline).

The server root is a temp copy of ``notebooks/`` (the ``lab_root_dir`` fixture), so the
repository is never written. Before the fix, JupyterLab 4 marked every tutorial modified on
open: the files held ``language_info: {"name": "python"}`` and the kernel reports more.
"""

from __future__ import annotations

import json
import os
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


APPROVAL_CELLS = [
    "%load_ext alloy_nb\nfrom alloy_nb.providers.scripted import Scripted\n"
    "p = Scripted([Scripted.tool_calls(('run_python', {'code': 'answer_value = 6 * 7'})),"
    " 'The value is **42**.', 'Again: **42**.'], chunk_delay=0.01, model='claude-sonnet-4-6')\n"
    "%alloy provider p\n%alloy tools run_python",
    "%%alloy\nplease compute the value",
    "import alloy_nb as alloy\n"
    "tutor = alloy.Session(provider=Scripted(['from Python'], model='claude-sonnet-4-6'))\n"
    "tutor.chat('hi');\n%alloy usage",
    "%%alloy\nand again?",
]


def test_blocking_approval_leaves_one_transcript_and_usage_renders(
        jupyter_lab: Any, browser_page: Any, tmp_path: Path) -> None:
    """Card first, then JupyterLab's y/N box; after the answer the prompt's log is gone and
    the saved cell holds only the transcript's Markdown outputs: card, verdict, answer."""
    from .conftest import OUTPUT_SELECTOR, cell_output, run_cell, write_notebook

    write_notebook(jupyter_lab.root_dir, "approval_doc.ipynb", APPROVAL_CELLS)
    page = browser_page
    open_notebook(page, jupyter_lab, "approval_doc.ipynb")
    run_cell(page, 0)
    cell = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(1)
    cell.locator(".jp-InputPrompt").first.click()
    page.keyboard.press("Escape")
    page.keyboard.press("Control+Enter")
    stdin = cell.locator(".jp-Stdin-input")
    stdin.wait_for(state="visible", timeout=30_000)
    tool_card = cell.locator(f"{OUTPUT_SELECTOR} details > summary").filter(
        has_text="🔧 run_python")
    assert tool_card.count() == 1  # drawn before the question
    page.screenshot(path=str(tmp_path / "approval_asking.png"), full_page=True)
    stdin.fill("y")
    stdin.press("Enter")
    page.wait_for_function(
        "(el) => /\\[\\d+\\]/.test(el.querySelector('.jp-InputPrompt').textContent)",
        arg=cell.element_handle(), timeout=30_000)
    wait_for_kernel_idle(page)
    area = cell_output(page, 1)
    text = area.inner_text()
    logs = area.locator(".jp-Stdin, .jp-RenderedText[data-mime-type*='vnd.jupyter.std']")
    assert logs.count() == 0, text  # no prompt log, no echo of the answer
    assert area.locator(".jupyter-widgets").count() == 0, text
    assert "Run it?" not in text and "wants to run this code" not in text
    assert "approved by you" in text and "42" in text
    run_cell(page, 2)
    table = cell_output(page, 2).locator("table")
    table.wait_for(timeout=15_000)  # %alloy usage renders as a Markdown table
    assert "tutor" in table.inner_text() and "claude-sonnet-4-6" in table.inner_text()
    assert "total" in table.inner_text()  # not swallowed by "$...$" read as LaTeX math
    assert cell_output(page, 2).locator("mjx-container, .MathJax").count() == 0
    run_cell(page, 3)  # a footer with two costs: "$… (session $…)" is not LaTeX either
    footer = cell_output(page, 3).locator("sub").filter(has_text="(session $")
    footer.wait_for(timeout=15_000)
    assert cell_output(page, 3).locator("mjx-container, .MathJax").count() == 0
    page.screenshot(path=str(tmp_path / "approval_done.png"), full_page=True)
    shots = Path(os.environ.get("ALLOY_NB_SCREENSHOTS") or tmp_path)
    shots.mkdir(parents=True, exist_ok=True)
    for theme in ("Light", "Dark"):  # the finished blocking cell, for a person to look at
        lab_command(page, "apputils:change-theme", {"theme": f"JupyterLab {theme}"})
        page.wait_for_function(f"() => document.body.dataset.jpThemeLight === "
                               f"'{str(theme == 'Light').lower()}'")
        time.sleep(0.5)
        cell.screenshot(path=str(shots / f"approval_blocking_{theme.lower()}.png"))
    lab_command(page, "apputils:change-theme", {"theme": "JupyterLab Light"})
    lab_command(page, "docmanager:save")
    time.sleep(1.5)
    saved = json.loads((jupyter_lab.root_dir / "approval_doc.ipynb").read_text())
    outputs = saved["cells"][1]["outputs"]
    assert {o["output_type"] for o in outputs} == {"display_data"}, outputs
    md = "\n".join("".join(o["data"].get("text/markdown", "")) for o in outputs)
    assert md.index("🔧 run_python") < md.index("approved by you") < md.index("**42**")
