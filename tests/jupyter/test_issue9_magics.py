"""Findings 10 and 2 (issue 9) through a real InteractiveShell: magic edge cases are
UsageErrors naming the problem; ``%alloy tools bash`` says which Bash mode this machine has."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

from alloy_nb.providers.scripted import Scripted
from alloy_nb.tools import _sandbox

from .conftest import run


class _Raising:
    @property
    def prop(self) -> str:
        raise ValueError("property exploded")

    def __repr__(self) -> str:
        raise RuntimeError("repr exploded")


def test_finding10_raising_property_or_repr_is_a_usage_error_naming_the_variable(shell) -> None:
    shell.user_ns["p"] = Scripted(["never"])
    run(shell, "%alloy provider p")
    shell.user_ns["thing"] = _Raising()
    with pytest.raises(UsageError, match=r"\{thing\.prop\}.*ValueError: property exploded"):
        run(shell, "%%alloy\nlook at {thing.prop}\n")
    with pytest.raises(UsageError, match=r"\{thing\}.*RuntimeError: repr exploded"):
        run(shell, "%%alloy\nlook at {thing}\n")
    assert shell.user_ns["p"].calls == []  # nothing was sent


@pytest.mark.parametrize(("line", "match"), [
    ('%%alloy --system "unbalanced\nhi\n', "cannot parse the options line"),
    ("%%alloy -o 1abc\nhi\n", "valid Python identifier"),
    ("%%alloy -o class\nhi\n", "not a keyword"),
    ("%%alloy -o a.b\nhi\n", "valid Python identifier"),
])
def test_finding10_bad_cell_options_are_usage_errors(shell, line: str, match: str) -> None:
    shell.user_ns["p"] = Scripted(["never"])
    run(shell, "%alloy provider p")
    with pytest.raises(UsageError, match=match):
        run(shell, line)
    assert shell.user_ns["p"].calls == []


def test_finding10_valid_output_name_still_binds(shell) -> None:
    shell.user_ns["p"] = Scripted(["fine"])
    run(shell, "%alloy provider p")
    with capture_output():
        run(shell, "%%alloy -o res_1\nhi\n")
    assert shell.user_ns["res_1"].text == "fine"


def test_finding2_tools_bash_says_which_mode(shell) -> None:
    with capture_output() as out:
        run(shell, "%alloy tools bash")
    if _sandbox.sandbox_available():
        assert "bubblewrap sandbox" in out.stdout
    else:
        assert "NOT a security boundary" in out.stdout
