"""The HTTP plumbing is three modules with one concern each, every HTTP provider fills the
same three template hooks, and the old ``_http`` import path still names the same objects."""

from __future__ import annotations

import ast
import inspect
from pathlib import Path

import pytest

from alloy_nb.providers import _http, _template, _transport, _vendor_errors
from alloy_nb.providers.anthropic import Anthropic
from alloy_nb.providers.gemini import Gemini
from alloy_nb.providers.openai import OpenAI
from alloy_nb.providers.openai_compat import OpenAICompat

HOOKS = ("build_body", "parse_reply", "new_accumulator")
PROVIDERS = (Anthropic, OpenAI, OpenAICompat, Gemini)


@pytest.mark.parametrize("cls", PROVIDERS, ids=lambda c: c.__name__)
def test_every_http_provider_fills_the_same_hooks(cls: type[_template.HTTPProvider]) -> None:
    assert issubclass(cls, _template.HTTPProvider)
    for hook in HOOKS:
        assert hook in vars(cls), f"{cls.__name__} does not define {hook}"
    # no provider keeps a private spelling of a hook beside the shared one
    assert not {"_parse", "_accumulator", "_build_body"} & set(vars(cls))
    assert not inspect.isabstract(cls)


def test_the_batch_client_calls_the_shared_hooks() -> None:
    import alloy_nb.batch._vendor as vendor
    import alloy_nb.batch._vendor_api as vendor_api

    src = Path(vendor.__file__).read_text() + Path(vendor_api.__file__).read_text()
    called = {n.attr for n in ast.walk(ast.parse(src)) if isinstance(n, ast.Attribute)}
    assert {"build_body", "parse_reply"} <= called
    assert not {"_parse", "_accumulator"} & called


def _imported_modules(module: object) -> set[str]:
    """Modules imported at run time (top-level statements; ``if TYPE_CHECKING`` skipped)."""
    tree = ast.parse(Path(inspect.getfile(module)).read_text())  # type: ignore[arg-type]
    return {n.module for n in tree.body if isinstance(n, ast.ImportFrom) and n.module}


def test_each_module_keeps_to_its_concern() -> None:
    # error mapping needs no client and no template; the wire needs no template
    assert not {"alloy_nb.providers._transport", "alloy_nb.providers._template"} & (
        _imported_modules(_vendor_errors)
    )
    assert "alloy_nb.providers._template" not in _imported_modules(_transport)
    # only the transport builds clients
    for module in (_vendor_errors, _template):
        assert "AsyncClient(" not in Path(inspect.getfile(module)).read_text()


def test_the_old_import_path_names_the_same_objects() -> None:
    for name in _http.__all__:
        obj = getattr(_http, name)
        modules = (_transport, _vendor_errors, _template)
        homes = [m for m in modules if getattr(m, name, None) is obj]
        assert homes or obj.__module__ == "alloy_nb.errors", name
