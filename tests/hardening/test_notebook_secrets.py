"""Finding 3 (issue 9): the notebook tools never hand the model a secret."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

import alloy_nb as alloy
from alloy_nb.errors import ToolError
from alloy_nb.providers.scripted import Scripted
from alloy_nb.redact import redact_key_shapes
from alloy_nb.tools.notebook import InspectVariable, ListVariables, RunPython

ENV_SECRET = "sk-ant-api03-" + "Z" * 40


class _Obj:
    def __init__(self) -> None:
        self._secret = "hidden-value-123456"
        self.api_key = "plain-looking-value-123456"
        self.name = "visible"


@pytest.fixture
def ns(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    monkeypatch.setenv("ANTHROPIC_API_KEY", ENV_SECRET)
    return {
        "os": os, "sys": sys, "env": os.environ, "env_copy": dict(os.environ),
        "_token": "tok-private-123456", "o": _Obj(), "In": ["x"], "Out": {},
        "__builtins__": __builtins__,
        "config": {"openai_api_key": "abcdefghijklmnop123", "model": "gpt", "n": 3},
        "note": f"the key is {ENV_SECRET} and sk-proj-abcdefghijklmnop and AIza" + "b" * 35,
        "OPENAI_API_KEY": "value-without-a-shape-123456",
        "headers": {"authorization": "Bearer abcdefghijklmnopqrstuvwxyz"},
        "df_like": [1, 2, 3],
    }


def _inspect(ns: dict[str, Any], name: str) -> str:
    return InspectVariable().execute({"name": name}, {"namespace": ns})


@pytest.mark.parametrize("name", [
    "os.environ", "os", "env", "env_copy", "_token", "o._secret", "__builtins__", "In", "Out",
    "sys.modules", "o.__dict__",
])
def test_finding3_inspect_variable_refuses_private_ipython_module_and_environ(
    ns: dict[str, Any], name: str
) -> None:
    with pytest.raises(ToolError, match=r"Cannot inspect"):
        _inspect(ns, name)


def test_finding3_secret_named_values_and_key_shapes_are_redacted(ns: dict[str, Any]) -> None:
    out = _inspect(ns, "config")
    assert "abcdefghijklmnop123" not in out and "[redacted" in out and "model" in out
    out = _inspect(ns, "o.api_key")
    assert "plain-looking-value" not in out and "redacted" in out
    assert "visible" in _inspect(ns, "o.name")
    out = _inspect(ns, "note")
    assert ENV_SECRET not in out and "sk-proj-abcdefghijklmnop" not in out
    assert "AIza" + "b" * 35 not in out and "the key is" in out
    out = _inspect(ns, "OPENAI_API_KEY")
    assert "value-without-a-shape" not in out
    out = _inspect(ns, "headers")
    assert "abcdefghijklmnopqrstuvwxyz" not in out
    listing = ListVariables().execute({}, {"namespace": ns})
    for leaked in (ENV_SECRET, "value-without-a-shape", "tok-private", "hidden-value"):
        assert leaked not in listing
    assert "env_copy" not in listing and "config" in listing


def test_finding3_run_python_output_to_the_model_is_redacted(ns: dict[str, Any]) -> None:
    provider = Scripted([
        Scripted.tool_calls(("run_python", {"code": "import os\nprint(os.environ)"})),
        "done",
    ])
    result = alloy.run("go", provider=provider, tools=[RunPython],
                       context={"namespace": ns, "allow_run_python": True})
    (block,) = [b for m in result.messages for b in m.content if b.type == "tool_result"]
    assert ENV_SECRET not in block.content and "environ" in block.content


def test_finding3_key_shapes() -> None:
    for key in ("sk-ant-api03-abcdefgh", "sk-proj-abcdefgh12", "AIza" + "x" * 35,
                "xai-abcdefghijkl", "gsk_abcdefghijkl", "Bearer abcdefghijkl"):
        assert redact_key_shapes(f"k={key} end") == "k=[redacted] end", key
    assert redact_key_shapes("desk-top risk-free sk-1 Bearer") == "desk-top risk-free sk-1 Bearer"
