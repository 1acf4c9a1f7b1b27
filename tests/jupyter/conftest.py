"""A real ``InteractiveShell`` with the extension loaded, reset between tests.

The shell has terminal semantics (no running loop in cells, no kernel), so runs draw as
plain text unless a test forces widgets with ``%alloy display widget``. Kernel behaviour
is covered by ``test_kernel.py`` against a real ipykernel.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from IPython.core.interactiveshell import InteractiveShell

from alloy_nb import _ledger
from alloy_nb.jupyter import display as _display


@pytest.fixture(scope="session")
def _shell() -> InteractiveShell:
    return InteractiveShell.instance()


@pytest.fixture
def shell(_shell: InteractiveShell) -> Iterator[InteractiveShell]:
    """The shell with ``%load_ext alloy_nb`` done; namespace and extension fresh per test."""
    _shell.reset(new_session=False)
    _ledger.clear()  # %alloy usage counts the whole process; each test starts from zero
    _shell.run_line_magic("load_ext", "alloy_nb")
    try:
        yield _shell
    finally:
        _shell.run_line_magic("unload_ext", "alloy_nb")
        _display.set_frontend(None)
        _shell.reset(new_session=False)


def run(shell: InteractiveShell, code: str) -> Any:
    """Run a cell; re-raise what it raised so a failing cell fails the test loudly."""
    result = shell.run_cell(code)
    if result.error_before_exec is not None:
        raise result.error_before_exec
    if result.error_in_exec is not None:
        raise result.error_in_exec
    return result.result
