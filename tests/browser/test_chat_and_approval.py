"""The chat widget of a displayed Session and the Approve / Deny card of ``run_python``, clicked
in a real JupyterLab + Chromium. The offline Demo provider answers (the fixture strips keys).

Selectors this test relies on (widget authors: keep them, or update this test):

* ``.alloy-chat``              the chat's input box (a displayed ``Session``); the
                               conversation is the Markdown output above it: user turns
                               are ``blockquote``s under "You", replies under "Assistant"
* ``.alloy-input``             the text box (an ipywidgets Textarea: a ``textarea`` inside)
* ``.alloy-send``              the Send button (a ``button``)
* ``.jp-RenderedMarkdown`` outputs, ``details``/``summary`` tool cards: see test_quickstart.py
* ``.alloy-approval``          the approval card, with ``.alloy-approve`` / ``.alloy-deny``
                               buttons and the code in a ``pre``; replaced by its verdict

Cells are addressed by index: these tests write their own small notebooks.
"""

from __future__ import annotations

import re
import time
from typing import Any

from .conftest import (
    OUTPUT_SELECTOR,
    cell_output,
    open_notebook,
    run_cell,
    wait_for_kernel_idle,
    write_notebook,
)

TIME_BUDGET_S = 60.0
STDERR = f'{OUTPUT_SELECTOR}[data-mime-type="application/vnd.jupyter.stderr"]'
CHAT = f"{OUTPUT_SELECTOR} .alloy-chat"
MD = f"{OUTPUT_SELECTOR}.jp-RenderedMarkdown"  # the output node is the Markdown renderer
SETUP = "%load_ext alloy_nb"


def _output_text(page: Any, index: int) -> str:
    try:
        return cell_output(page, index).inner_text(timeout=2_000)
    except Exception as exc:  # diagnosis only
        return f"<no output text: {exc}>"


def _wait(loc: Any, page: Any, index: int, what: str, timeout: float = 15_000) -> Any:
    """Wait for ``loc`` (inside cell ``index``) to be visible; else fail with what the cell
    shows instead."""
    try:
        loc.first.wait_for(state="visible", timeout=timeout)
    except Exception:
        raise AssertionError(
            f"cell {index}: {what} did not appear. The cell shows:\n{_output_text(page, index)}"
        ) from None
    return loc.first


def _printed(page: Any, index: int, pattern: str) -> str:
    """Run cell ``index`` and return its output once it matches ``pattern``."""
    run_cell(page, index, timeout=15_000)
    out = cell_output(page, index).locator(OUTPUT_SELECTOR).filter(has_text=re.compile(pattern))
    return _wait(out, page, index, f"output matching {pattern!r}", 10_000).inner_text()


def _no_stderr(page: Any, indices: range) -> None:
    found = {}
    for i in indices:
        errs = cell_output(page, i).locator(STDERR)
        if errs.count():
            found[i] = "\n".join(errs.all_inner_texts())[:600]
    assert not found, f"cells wrote errors: {found}"


# --------------------------------------------------------------------------- chat


def _conversation(page: Any, index: int) -> Any:
    return cell_output(page, index).locator(MD).first


def _ask_in_chat(page: Any, chat: Any, index: int, question: str, n: int) -> Any:
    """Type ``question``, click Send, wait until the conversation holds reply ``n + 1``."""
    box = chat.locator(".alloy-input textarea").first
    box.fill(question)
    chat.locator("button.alloy-send").first.click()
    conversation = _conversation(page, index)
    _wait(cell_output(page, index).locator(MD).filter(has_text=f"{2 * (n + 1)} messages"),
          page, index, f"the conversation with reply {n + 1}")
    assert box.input_value() == "", "Send should empty the text box"
    return conversation


def test_chat_widget_sends_and_keeps_history(jupyter_lab, browser_page):
    t0 = time.monotonic()
    page = browser_page
    write_notebook(jupyter_lab.root_dir, "chat_widget.ipynb", [
        SETUP,
        "import alloy_nb; from alloy_nb.providers.demo import Demo; "
        "s = alloy_nb.Session(provider=Demo())",
        "s",
        "print(len(s.messages), s.messages[-1].text[:6])",
        "print(len(s.messages), s.messages[-1].text[:6])",
        "s",
    ])  # fmt: skip
    open_notebook(page, jupyter_lab, "chat_widget.ipynb")
    for i in range(3):
        run_cell(page, i)
    chat = _wait(cell_output(page, 2).locator(CHAT), page, 2, "the chat input box")
    conversation = _wait(cell_output(page, 2).locator(MD).filter(has_text="alloy ·"), page, 2,
                         "the conversation")
    users = conversation.locator("blockquote").filter(has_not_text="ⓘ")  # not the banner
    assert users.count() == 0, "a new session has no history"

    # ---- first question: the user's message and the answer appear --------------------
    _ask_in_chat(page, chat, 2, "What is 6*7?", 0)
    assert users.count() == 1 and "What is 6*7?" in users.first.inner_text(), (
        conversation.inner_text()
    )
    assert "42" in conversation.inner_text(), conversation.inner_text()
    # the conversation reached the Session, not only the view
    printed = _printed(page, 3, r"^\d+ ")
    assert printed.strip() == "2 **42**", printed

    # ---- second question: the conversation grows, the history is kept -----------------
    _ask_in_chat(page, chat, 2, "And what is 5+5?", 1)
    assert users.count() == 2, conversation.inner_text()
    assert "And what is 5+5?" in users.nth(1).inner_text()
    assert re.search(r"42.*10", conversation.inner_text(), re.S), conversation.inner_text()
    printed = _printed(page, 4, r"^\d+ ")
    assert printed.strip() == "4 **10**", printed

    # ---- displaying the Session again shows the whole conversation ---------------------
    run_cell(page, 5)
    _wait(cell_output(page, 5).locator(CHAT), page, 5, "the second chat input box")
    history = _conversation(page, 5)
    assert history.locator("blockquote").filter(has_not_text="ⓘ").count() == 2, \
        history.inner_text()
    assert history.inner_text().count("Assistant") == 2, history.inner_text()
    assert re.search(r"42.*10", history.inner_text(), re.S), history.inner_text()

    wait_for_kernel_idle(page, 10_000)
    _no_stderr(page, range(6))
    assert time.monotonic() - t0 < TIME_BUDGET_S


# --------------------------------------------------------------------------- approval


def _card(page: Any, index: int, code: str) -> Any:
    card = _wait(
        cell_output(page, index).locator(".alloy-approval"), page, index, "the approval card"
    )
    assert code in card.locator("pre").first.inner_text(), card.inner_text()
    assert "run_python" in card.inner_text(), card.inner_text()
    # the run waits for the click: nothing ran yet, the status line still says running
    footer = cell_output(page, index).locator(".alloy-footer").first
    assert "running" in footer.inner_text(), footer.inner_text()
    return card


def _finished(page: Any, index: int) -> Any:
    _wait(
        cell_output(page, index).locator(MD).filter(has_text="completed"),
        page,
        index,
        "the completed footer",
    )
    return cell_output(page, index)


def _answer(run: Any) -> str:
    return "".join(run.locator(MD).all_inner_texts())


def _tool_card_body(run: Any) -> tuple[str, str]:
    card = run.locator(f"{MD} details").filter(has_text="🔧").first
    header = card.locator("summary").first
    title = header.inner_text()
    header.click()
    card.locator("pre").first.wait_for(state="visible", timeout=5_000)
    return title, "\n".join(card.locator("pre").all_inner_texts())


def test_approval_card_approve_and_deny(jupyter_lab, browser_page):
    t0 = time.monotonic()
    page = browser_page
    # A session the extension builds (%alloy tools run_python) is wired to the notebook
    # namespace and the approval card; `-s calc` names it (no `calc` variable exists).
    write_notebook(jupyter_lab.root_dir, "approval_card.ipynb", [
        SETUP,
        "%alloy provider demo\n%alloy tools run_python\n%alloy approve ask\nx = 20",
        '%%alloy -s calc --background -o job\nUse run_python with "x * 2 + 2"',
        "print('status', (await job).status)",
        '%%alloy -s calc --background -o job2\nUse run_python with "y = 1"',
        "print('status', (await job2).status, 'y' in globals(), x)",
    ])  # fmt: skip
    open_notebook(page, jupyter_lab, "approval_card.ipynb")
    run_cell(page, 0)
    run_cell(page, 1)

    # ---- Approve: the code runs and its value reaches the answer -----------------------
    run_cell(page, 2)  # --background returns at once; the kernel is idle, clicks arrive
    card = _card(page, 2, "x * 2 + 2")
    wait_for_kernel_idle(page, 10_000)
    card.locator("button.alloy-approve").click()
    verdict = cell_output(page, 2).locator(MD).filter(has_text="run_python: ✓ approved")
    _wait(verdict, page, 2, "the verdict in place of the card", 10_000)
    assert cell_output(page, 2).locator(".alloy-approval").count() == 0
    run = _finished(page, 2)
    answer = _answer(run)
    assert "42" in answer, answer
    title, body = _tool_card_body(run)
    assert "run_python" in title and "✓" in title, title
    assert "42" in body, body
    assert "completed" in _printed(page, 3, "status")

    # ---- Deny: the tool card shows the refusal, and nothing ran -------------------------
    run_cell(page, 4)
    card = _card(page, 4, "y = 1")
    wait_for_kernel_idle(page, 10_000)
    card.locator("button.alloy-deny").click()
    verdict = cell_output(page, 4).locator(MD).filter(has_text="run_python: ✗ denied")
    _wait(verdict, page, 4, "the verdict in place of the card", 10_000)
    run = _finished(page, 4)
    title, body = _tool_card_body(run)
    assert "run_python" in title and "✗" in title, title
    assert "Denied by user" in body, body
    assert "Denied by user" in _answer(run)
    printed = _printed(page, 5, "status")
    assert printed.strip() == "status completed False 20", printed

    wait_for_kernel_idle(page, 10_000)
    _no_stderr(page, range(6))
    assert time.monotonic() - t0 < TIME_BUDGET_S


def test_approval_card_for_a_session_variable(jupyter_lab, browser_page):
    page = browser_page
    write_notebook(jupyter_lab.root_dir, "approval_session_var.ipynb", [
        SETUP,
        "import alloy_nb; from alloy_nb.providers.demo import Demo; "
        "from alloy_nb.tools.notebook import RunPython; "
        "s = alloy_nb.Session(provider=Demo(), tools=[RunPython()]); x = 20",
        '%%alloy -s s --background -o job\nUse run_python with "x * 2 + 2"',
    ])  # fmt: skip
    open_notebook(page, jupyter_lab, "approval_session_var.ipynb")
    for i in range(3):
        run_cell(page, i)
    card = cell_output(page, 2).locator(".alloy-approval")
    done = cell_output(page, 2).locator(MD).filter(has_text="completed")
    card.or_(done).first.wait_for(state="visible", timeout=15_000)
    assert card.count() == 1, f"no approval card; the cell shows:\n{_output_text(page, 2)}"
    _card(page, 2, "x * 2 + 2")
