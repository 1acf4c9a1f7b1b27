"""End-to-end proof that the browser harness works: Lab + kernel + ipywidgets comms."""

from __future__ import annotations

import time

from .conftest import open_notebook, run_cell, wait_for_text, write_notebook

WIDGET_CELL = (
    "import ipywidgets as w\n"
    'b = w.Button(description="Click me")\n'
    'lbl = w.Label("before")\n'
    'b.on_click(lambda _: setattr(lbl, "value", "after-click"))\n'
    "w.VBox([b, lbl])"
)


def test_widget_button_round_trip(jupyter_lab, browser_page):
    t0 = time.monotonic()
    write_notebook(jupyter_lab.root_dir, "smoke_widgets.ipynb", [WIDGET_CELL])
    page = browser_page

    open_notebook(page, jupyter_lab, "smoke_widgets.ipynb")
    cell = run_cell(page, 0)

    # A real widget view (not the "VBox(children=...)" text fallback) with a real button.
    out = cell.locator(".jp-OutputArea-output")
    out.locator(".jupyter-widgets").first.wait_for()
    button = out.locator('button:has-text("Click me")')
    button.wait_for()
    wait_for_text(page, "before")

    # Click -> comm message to the kernel -> on_click -> state update back to the view.
    button.click()
    wait_for_text(page, "after-click", timeout=15_000)

    assert time.monotonic() - t0 < 60
