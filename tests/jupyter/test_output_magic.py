"""``%%alloy --output-type NAME``: the Result's ``.output`` is a validated value of the type
held by notebook variable NAME; the type applies to that cell only."""

from __future__ import annotations

import pytest
from IPython.core.error import UsageError
from IPython.utils.capture import capture_output

import alloy_nb.jupyter as J
from alloy_nb.providers.scripted import Scripted

from .conftest import run

SETUP = """
from typing import Literal
from pydantic import BaseModel
class Label(BaseModel):
    kind: Literal["bug", "feature"]
    urgent: bool
"""


def test_output_type_binds_a_validated_value(shell) -> None:
    run(shell, SETUP)
    p = Scripted([Scripted.tool_calls(("final_result", {"kind": "bug", "urgent": True})),
                  "plain"])
    shell.user_ns["p"] = p
    with capture_output():
        run(shell, "%alloy provider p")
        run(shell, "%%alloy --output-type Label -o r\nThe app crashes on start\n")
        run(shell, "%%alloy -o r2\nthanks\n")
    out = shell.user_ns["r"].output
    assert type(out).__name__ == "Label" and out.kind == "bug" and out.urgent is True
    assert [t.name for t in p.calls[0].tools] == ["final_result"]
    assert p.calls[1].tools == [] and shell.user_ns["r2"].output is None
    assert J.controller(shell).session().config.output_type is None


def test_output_type_on_the_offline_demo(shell) -> None:
    run(shell, SETUP)
    with capture_output():
        run(shell, "%%alloy --output-type Label -o r\nurgent feature request\n")
    assert shell.user_ns["r"].output.kind in ("bug", "feature")


def test_output_type_usage_errors(shell) -> None:
    with pytest.raises(UsageError, match="no notebook variable named 'Nope'"):
        run(shell, "%%alloy --output-type Nope\nhi\n")
    run(shell, "class Opaque: pass")
    with pytest.raises(UsageError, match="Opaque"):
        run(shell, "%%alloy --output-type Opaque\nhi\n")
