"""Typed handles on the IPython functions this layer calls (IPython ships them untyped).

Only signatures live here: each forwards to IPython unchanged. The display functions
import ``IPython.display`` on first call, as the call sites did before.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from typing import Any, Protocol, TypeVar, cast

from IPython.core import magic as _magic
from IPython.core import magic_arguments as _magic_arguments

__all__ = ["Decorator", "argument", "clear_output", "display", "line_cell_magic",
           "magic_arguments", "parse_argstring", "update_display"]

F = TypeVar("F", bound=Callable[..., Any])


class Decorator(Protocol):
    """Returns the function it decorates (with attributes added)."""

    def __call__(self, fn: F, /) -> F: ...


def line_cell_magic(fn: F) -> F:
    """``@line_cell_magic`` on a ``Magics`` method (IPython's accepts a name too, hence
    its union return type; here it is always the function)."""
    return cast(F, _magic.line_cell_magic(fn))


def magic_arguments() -> Decorator:
    """``@magic_arguments()``: the function gets an argparse parser (and ``%name?`` help)."""
    return cast(Decorator, cast(Callable[[], Any], _magic_arguments.magic_arguments)())


def argument(*args: Any, **kwargs: Any) -> Decorator:
    """``@argument(...)``: one option of that parser (``argparse.add_argument``'s args)."""
    make = cast(Callable[..., Any], _magic_arguments.argument)
    return cast(Decorator, make(*args, **kwargs))


def parse_argstring(magic_func: Callable[..., Any], argstring: str) -> argparse.Namespace:
    parse = cast(Callable[[Callable[..., Any], str], argparse.Namespace],
                 _magic_arguments.parse_argstring)
    return parse(magic_func, argstring)


def display(*objs: Any, **kwargs: Any) -> Any:
    from IPython import display as _display

    show: Callable[..., Any] = _display.display
    return show(*objs, **kwargs)


def update_display(obj: Any, *, display_id: str, **kwargs: Any) -> None:
    from IPython import display as _display

    cast(Callable[..., Any], _display.update_display)(obj, display_id=display_id, **kwargs)


def clear_output(wait: bool = False) -> None:
    from IPython import display as _display

    cast(Callable[..., Any], _display.clear_output)(wait=wait)
