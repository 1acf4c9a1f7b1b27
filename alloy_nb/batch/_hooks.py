"""Where the notebook layer plugs its ``alloy.map`` progress display into the core.

Kept import-free (no pydantic) so ``%load_ext alloy_nb`` can register without loading
the core. ``factory(total)`` returns a reporter, or None when it cannot show one here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

__all__ = ["notebook_reporter", "set_notebook_reporter"]

_factory: Callable[[int], Any] | None = None


def set_notebook_reporter(factory: Callable[[int], Any] | None) -> None:
    global _factory
    _factory = factory


def notebook_reporter() -> Callable[[int], Any] | None:
    return _factory
