"""Issue 10, done-when: a notebook with a blocking cell, a background cell, a tool call, an
approval and a chat runs in JupyterLab + Chromium, is saved, its kernel shut down, the page
reloaded, and every answer, tool card, verdict and chat turn is still there, rendered by
Jupyter's Markdown renderer, with no "Error displaying widget". (The chat's input box is the
one widget that outlives a run: reopened, it says the kernel is gone in its place.)

Selectors: ``button.alloy-stop`` (background Stop), ``.alloy-approval`` with
``button.alloy-approve`` (the approval card), ``.alloy-chat`` with ``.alloy-input textarea``
and ``button.alloy-send`` (the chat input). Answers are ``.jp-RenderedMarkdown`` outputs;
tool cards and approvals are ``details > summary`` inside them.

Screenshots (light and dark) go to ``$ALLOY_NB_SCREENSHOTS`` (default: the test's tmp dir).
"""

from __future__ import annotations

import os
import time
import urllib.request
from pathlib import Path
from typing import Any

from .conftest import (
    OUTPUT_SELECTOR,
    cell_output,
    lab_command,
    open_notebook,
    run_cell,
    wait_for_kernel_idle,
    write_notebook,
)

MD = f"{OUTPUT_SELECTOR}.jp-RenderedMarkdown"  # the output node is the renderer
RICH = ("Here is code:\\n\\n```python\\ndef square(n):\\n    return n * n\\n```\\n\\n"
        "A table:\\n\\n| name | value |\\n|:-----|------:|\\n| alpha | 1 |\\n| beta | 22 |\\n\\n"
        "And math: $e^{i\\\\pi} + 1 = 0$\\n\\n$$\\\\sum_{k=1}^{n} k = \\\\frac{n(n+1)}{2}$$")
CELLS = [
    "%load_ext alloy_nb\nfrom alloy_nb import Session\nfrom alloy_nb.providers.scripted import "
    "Scripted",
    f"p = Scripted(['{RICH}', Scripted.tool_calls(('run_python', {{'code': 'x * 2 + 2'}})),\n"
    "              'The tool said **42**.'], chunk_size=4, chunk_delay=0.004)\n"
    "%alloy provider p\n%alloy tools run_python\n%alloy approve ask\nx = 20",
    "%%alloy\nShow me code, a table and math.",
    "%%alloy --background -o job\nCompute x * 2 + 2 with Python.",
    "r = await job\nprint('status', r.status)",
    "chat = Session(provider=Scripted(['Hello from the **chat**.', 'Second chat reply.']))\nchat",
    "chat.chat('A turn from another cell');",
]


def _wait_text(loc: Any, text: str, timeout: float = 20_000) -> None:
    loc.filter(has_text=text).first.wait_for(state="visible", timeout=timeout)


def _shots_dir(tmp_path: Path) -> Path:
    out = Path(os.environ.get("ALLOY_NB_SCREENSHOTS", tmp_path))
    out.mkdir(parents=True, exist_ok=True)
    return out


def _every_output_text(page: Any) -> str:
    return "\n".join(page.locator(f".jp-NotebookPanel:visible {OUTPUT_SELECTOR}")
                     .all_inner_texts())


def test_saved_notebook_reopens_with_every_answer(jupyter_lab, browser_page, tmp_path):
    page = browser_page
    write_notebook(jupyter_lab.root_dir, "document.ipynb", CELLS)
    open_notebook(page, jupyter_lab, "document.ipynb")
    for i in range(3):
        run_cell(page, i)

    # ---- blocking: Jupyter renders the Markdown (highlighted code, table, math) ---------
    out = cell_output(page, 2)
    _wait_text(out.locator(MD), "✓ completed")
    assert out.locator(f"{MD} pre code, {MD} .cm-s-jupyter, {MD} .highlight").count() >= 1
    assert out.locator(f"{MD} table td").filter(has_text="alpha").count() == 1
    assert out.locator(f"{MD} .MathJax, {MD} mjx-container, {MD} .katex").count() >= 1, \
        out.inner_html()[:2000]
    assert out.locator(".widget-html, .jupyter-widgets").count() == 0  # no widget at all

    # ---- background: Stop while it runs, an approval card, then static ------------------
    run_cell(page, 3)
    out3 = cell_output(page, 3)
    card = out3.locator(".alloy-approval").first
    card.wait_for(state="visible", timeout=15_000)
    assert out3.locator("button.alloy-stop").count() == 1
    assert "x * 2 + 2" in card.inner_text()
    wait_for_kernel_idle(page, 10_000)
    page.locator(".jp-NotebookPanel:visible .jp-Cell").nth(3).screenshot(
        path=str(_shots_dir(tmp_path) / "issue10_live_background_card.png"))
    card.locator("button.alloy-approve").click()
    _wait_text(out3.locator(MD), "The tool said")
    _wait_text(out3.locator(MD), "✓ completed")
    assert out3.locator("button.alloy-stop").count() == 0  # gone once the run ended
    assert out3.locator(".alloy-approval").count() == 0  # replaced by its verdict
    assert "✋ run_python: ✓ approved" in out3.inner_text()
    summary = out3.locator(f"{MD} details summary").filter(has_text="🔧 run_python")
    assert summary.count() == 1
    summary.first.click()  # the tool card opens
    _wait_text(out3.locator(f"{MD} details[open] pre"), "42")
    run_cell(page, 4)
    _wait_text(cell_output(page, 4).locator(OUTPUT_SELECTOR), "status completed")

    # ---- chat: Shift+Enter adds a line, Enter sends; a turn from another cell appears ---
    run_cell(page, 5)
    chat = cell_output(page, 5).locator(".alloy-chat").first
    chat.wait_for(state="visible", timeout=15_000)
    box = chat.locator(".alloy-input textarea").first
    box.click()
    box.type("First line")
    box.press("Shift+Enter")
    box.type("second line")
    assert box.input_value() == "First line\nsecond line"
    box.press("Enter")
    conversation = cell_output(page, 5).locator(MD)
    _wait_text(conversation, "Hello from the chat.")
    assert box.input_value() == ""
    run_cell(page, 6)
    _wait_text(conversation, "A turn from another cell")
    _wait_text(conversation, "Second chat reply.")
    assert conversation.locator("blockquote").count() >= 2  # user turns look different
    wait_for_kernel_idle(page, 10_000)

    shots = _shots_dir(tmp_path)
    _cells_shot(page, shots, "light")
    lab_command(page, "apputils:change-theme", {"theme": "JupyterLab Dark"})
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'false'")
    time.sleep(0.5)
    _cells_shot(page, shots, "dark")
    lab_command(page, "apputils:change-theme", {"theme": "JupyterLab Light"})
    page.wait_for_function("() => document.body.dataset.jpThemeLight === 'true'")

    # ---- save, shut the kernel down, reload ---------------------------------------------
    lab_command(page, "docmanager:save")
    page.wait_for_function(
        "() => !window.jupyterapp.shell.currentWidget.context.model.dirty", timeout=10_000)
    kernel_id = page.evaluate(
        "() => window.jupyterapp.shell.currentWidget.sessionContext.session.kernel.id")
    request = urllib.request.Request(jupyter_lab.api(f"/api/kernels/{kernel_id}"),
                                     method="DELETE")
    with urllib.request.urlopen(request, timeout=20) as reply:
        assert reply.status == 204
    open_notebook(page, jupyter_lab, "document.ipynb")
    page.locator(MD).filter(has_text="Second chat reply.").first.wait_for(timeout=20_000)
    # The chat's input box is the one widget that outlives a run: once JupyterLab gives up
    # on its model ("Loading widget..." first, then an error), our note takes its place.
    # Wait for that, so the checks below run after every widget output has settled.
    cell_output(page, 5).filter(has_text="run this cell again to chat").wait_for(
        timeout=30_000
    )
    time.sleep(0.5)
    text = _every_output_text(page)
    for shown in ("square", "alpha", "beta", "✓ completed", "The tool said", "🔧 run_python",
                  "✋ run_python: ✓ approved", "First line", "second line",
                  "Hello from the chat.", "A turn from another cell", "Second chat reply."):
        assert shown in text, shown
    # The chat's input box is the one widget that outlives a run (there is nothing to
    # type into otherwise): saved while the kernel ran, it says so in its place.
    assert "Error displaying widget" not in text
    assert page.locator("text=Error displaying widget").count() == 0
    assert "run this cell again to chat" in cell_output(page, 5).inner_text()
    _cells_shot(page, shots, "reopened")


def _cells_shot(page: Any, shots: Path, name: str) -> None:
    """Screenshots of the run cells (element shots scroll Lab's notebook as needed)."""
    cells = page.locator(".jp-NotebookPanel:visible .jp-Cell")
    for i, what in ((2, "blocking"), (3, "background"), (5, "chat")):
        cells.nth(i).screenshot(path=str(shots / f"issue10_{name}_{what}.png"))
