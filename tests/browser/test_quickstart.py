"""The quickstart in a real JupyterLab + Chromium: the widget view streams, shows a tool card,
and the Stop button of a ``--background`` run stops it and leaves the kernel usable.

Cells are found by their source (not by index), so the notebook can grow without breaking
this test. No API key reaches the server (the fixture strips them): the offline Demo answers.

Selectors this test relies on (widget authors: keep them, or update this test):

* ``.jp-OutputArea-output.jp-RenderedMarkdown``  the answer: Markdown outputs rendered by
                                 Jupyter (one per group of paragraphs, the footer last)
* ``details`` / ``summary``      a tool card inside them; the summary holds the tool name
* ``.alloy-footer``              the live status line of a background run (a widget)
* ``button.alloy-stop``          the Stop button of a background run (gone once it ends)
"""

from __future__ import annotations

import json
import re
import time
from typing import Any

from .conftest import (
    OUTPUT_SELECTOR,
    cell_output,
    open_notebook,
    run_cell,
    wait_for_kernel_idle,
)

NOTEBOOK = "01_quickstart.ipynb"
MD = f"{OUTPUT_SELECTOR}.jp-RenderedMarkdown"  # the output node is the Markdown renderer
STDERR = f'{OUTPUT_SELECTOR}[data-mime-type="application/vnd.jupyter.stderr"]'
TIME_BUDGET_S = 60.0
_NONBLANK = re.compile(r"\S")

# Records the distinct lengths of the answer text of one cell's widget, at every DOM change,
# so the test sees the text grow (streaming) and not only its final value.
_OBSERVE_JS = """(cell) => {
    const seen = [];
    const measure = () => {
        const n = [...cell.querySelectorAll('.jp-OutputArea-output.jp-RenderedMarkdown')]
            .map(e => e.textContent).join('').length;
        if (n === 0) return;
        if (seen.length === 0 || seen[seen.length - 1] !== n) seen.push(n);
    };
    const obs = new MutationObserver(measure);
    obs.observe(cell, {subtree: true, childList: true, characterData: true, attributes: true});
    cell.__alloyLengths = seen;
    cell.__alloyObserver = obs;
}"""
_COLLECT_JS = """(cell) => {
    if (cell.__alloyObserver) cell.__alloyObserver.disconnect();
    return cell.__alloyLengths || [];
}"""


def _code_cells(path: Any) -> list[tuple[int, str]]:
    """``(index among all cells, source)`` of each code cell; DOM cells use the same index."""
    nb = json.loads(path.read_text())
    return [
        (i, "".join(c["source"]) if isinstance(c["source"], list) else c["source"])
        for i, c in enumerate(nb["cells"])
        if c["cell_type"] == "code"
    ]


def _find(cells: list[tuple[int, str]], pred: Any, what: str, after: int = -1) -> int:
    for i, src in cells:
        if i > after and pred(src):
            return i
    raise AssertionError(f"{NOTEBOOK} has no {what} cell (after cell {after})")


def _is_cell_magic(src: str, *flags: str) -> bool:
    first = src.lstrip().splitlines()[0] if src.strip() else ""
    return first.startswith("%%alloy") and all(f in first for f in flags)


def _output_text(page: Any, index: int) -> str:
    try:
        return cell_output(page, index).inner_text(timeout=2_000)
    except Exception as exc:  # diagnosis only
        return f"<no output text: {exc}>"


def _wait_in_cell(
    page: Any,
    index: int,
    selector: str,
    what: str,
    *,
    has_text: str | re.Pattern[str] | None = None,
    timeout: float = 15_000,
) -> Any:
    """Wait for ``selector`` (optionally containing ``has_text``) in cell ``index``'s output;
    on timeout fail with what the cell did show instead."""
    loc = cell_output(page, index).locator(selector)
    if has_text is not None:
        loc = loc.filter(has_text=has_text)
    try:
        loc.first.wait_for(state="visible", timeout=timeout)
    except Exception:
        raise AssertionError(
            f"cell {index}: {what} did not appear ({selector!r}"
            f"{f' with text {has_text!r}' if has_text else ''}). The cell shows:\n"
            f"{_output_text(page, index)}"
        ) from None
    return loc.first


def _stderr_of(page: Any, indices: list[int]) -> dict[int, str]:
    found = {}
    for i in indices:
        errs = cell_output(page, i).locator(STDERR)
        if errs.count():
            found[i] = "\n".join(errs.all_inner_texts())[:600]
    return found


def test_quickstart_streams_tool_card_and_stop(jupyter_lab, browser_page):
    t0 = time.monotonic()
    page = browser_page
    cells = _code_cells(jupyter_lab.root_dir / NOTEBOOK)
    ask = _find(cells, _is_cell_magic, "%%alloy")
    # the first %%alloy cell after the one that defines a @tool (via --tools or -s SESSION)
    tool_def = _find(cells, lambda s: "@tool" in s, "@tool definition")
    with_tool = _find(
        cells,
        lambda s: _is_cell_magic(s) and "--background" not in s,
        "%%alloy cell using the tool",
        after=tool_def,
    )
    background = _find(
        cells, lambda s: _is_cell_magic(s, "--background"), "%%alloy --background", after=with_tool
    )
    waiter = _find(
        cells,
        lambda s: "await " in s and "status" in s,
        "`await <handle>` + status",
        after=background,
    )

    open_notebook(page, jupyter_lab, NOTEBOOK)

    # ---- (1) the answer streams into the widget -------------------------------------
    ran: list[int] = []
    for i, _src in cells:
        if i >= with_tool:
            break
        run_cell(page, i)
        ran.append(i)
    answer = _wait_in_cell(page, ask, MD, "the answer as Markdown", has_text="391")
    assert "391" in answer.inner_text()
    footer = _wait_in_cell(page, ask, MD, "the footer", has_text="completed")
    assert "demo" in footer.inner_text()
    assert cell_output(page, ask).locator(".jupyter-widgets").count() == 0  # nothing live

    # The tool cell streams for ~0.5 s (Demo paces its chunks): watch the text grow.
    tool_cell = page.locator(".jp-NotebookPanel:visible .jp-Notebook .jp-Cell").nth(with_tool)
    tool_cell.evaluate(_OBSERVE_JS)
    run_cell(page, with_tool)
    ran.append(with_tool)
    _wait_in_cell(page, with_tool, MD, "the completed footer", has_text="completed")
    final = cell_output(page, with_tool).locator(MD)
    final_text = "".join(final.all_text_contents())
    lengths = tool_cell.evaluate(_COLLECT_JS)
    assert "42" in final_text, final_text
    intermediate = sorted({n for n in lengths if 0 < n < len(final_text)})
    assert len(intermediate) >= 2, (
        f"the answer did not stream: text lengths seen {lengths}, final {len(final_text)}"
    )

    # ---- (2) the tool card: name in the title, arguments and result when opened -----
    card = _wait_in_cell(page, with_tool, f"{MD} details", "the tool card", has_text="add")
    header = card.locator("summary").first
    assert re.search(r"\badd\b", header.inner_text()), header.inner_text()
    assert "✓" in header.inner_text(), header.inner_text()
    contents = card.locator("pre").first
    assert not contents.is_visible(), "the tool card should start collapsed"
    header.click()
    contents.wait_for(state="visible", timeout=5_000)
    body = "\n".join(card.locator("pre").all_inner_texts())
    assert "arguments" in body and "result" in body, body
    assert re.search(r'"a":\s*2\b', body) and re.search(r'"b":\s*40\b', body), body
    assert "42" in body, body

    # ---- (3) Stop a background run ------------------------------------------------
    for i, _src in cells:
        if with_tool < i <= background:
            run_cell(page, i)
            ran.append(i)
    stop = _wait_in_cell(page, background, "button.alloy-stop", "the Stop button")
    # it really is running: some text streamed, the footer says so, the cell returned
    _wait_in_cell(page, background, f"{MD}:not(:has(blockquote))", "streamed text",
                  has_text=_NONBLANK)  # an answer output, not the demo banner
    run_footer = cell_output(page, background).locator(".alloy-footer").first
    assert "running" in run_footer.inner_text(), run_footer.inner_text()
    wait_for_kernel_idle(page, 10_000)  # --background returned at once

    stop.click()
    _wait_in_cell(
        page, background, MD, "the interrupted status",
        has_text=re.compile(r"turns \d+ .*⏹ interrupted"), timeout=10_000,
    )
    _wait_in_cell(page, background, MD, "the interruption notice",
                  has_text="the partial answer above was kept")
    texts = cell_output(page, background).locator(MD)
    partial = "".join(texts.all_text_contents())
    assert partial.strip(), "the partial answer should be kept"
    page.wait_for_timeout(600)  # the slow Demo would add ~3 chunks meanwhile
    assert "".join(texts.all_text_contents()) == partial, "the text kept growing after Stop"
    assert cell_output(page, background).locator("button.alloy-stop").count() == 0

    # The kernel is idle and usable, and the run's Result says it was cancelled.
    wait_for_kernel_idle(page, 10_000)
    run_cell(page, waiter, timeout=15_000)
    ran.append(waiter)
    _wait_in_cell(page, waiter, OUTPUT_SELECTOR, "the awaited status", has_text="cancelled")
    wait_for_kernel_idle(page, 10_000)

    errors = _stderr_of(page, ran)
    assert not errors, f"cells wrote errors: {errors}"
    assert time.monotonic() - t0 < TIME_BUDGET_S
