"""Budgets that work (reference 0.8 ``max_budget_cents``, spec §2.2/§10): override entries
carry prices beside ``limit``, and a budget on a model whose price is unknown is a
ConfigError naming the override to add (instead of a guard that never fires)."""

from __future__ import annotations

import pytest

import alloy_nb
from alloy_nb import Session
from alloy_nb.errors import ConfigError
from alloy_nb.model_metadata import is_priced, lookup
from alloy_nb.providers.scripted import Scripted


def _calls(n: int, usage: tuple[int, int] = (1_000_000, 0)) -> list:
    return [Scripted.tool_calls(("upper", {"text": "x"}), usage=usage)] * n


def upper(text: str) -> str:
    """Upper-case the text."""
    return text.upper()


def test_conformance_v08_price_only_override_makes_the_budget_fire() -> None:
    overrides = {"acme-1": {"input_price": 2.0, "output_price": 8.0}}
    assert lookup("acme-1", overrides).context_window == 200_000  # default window kept
    r = alloy_nb.run("go", provider=Scripted([*_calls(5), "done"], model="acme-1"),
                     tools=[upper], model_metadata_overrides=overrides, max_budget_cents=300)
    # each turn costs 1M input tokens x $2 = 200 cents: after turn 2 (400 > 300) it stops
    assert (r.status, r.turns) == ("budget_exceeded", 2)
    assert r.usage.priced and r.usage.estimated_cost_cents == pytest.approx(400)
    assert "Budget exceeded" in (r.error or "")


def test_conformance_v08_override_prices_beside_limit_including_cache_prices() -> None:
    overrides = {"acme-2": {"limit": 64_000, "input_price": 1.0, "output_price": 4.0,
                            "cache_read_price": 0.1, "cache_write_price": 1.25}}
    info = lookup("acme-2", overrides)
    assert (info.context_window, info.cache_read_price, info.cache_write_price) == (
        64_000, 0.1, 1.25)
    session = Session(provider=Scripted(["hi"], model="acme-2"),
                      model_metadata_overrides=overrides, max_budget_cents=100)
    assert session.max_tokens == 64_000
    assert not is_priced("acme-2", {"acme-2": {"limit": 64_000, "input_price": -1}})


def test_conformance_v08_budget_on_an_unpriced_model_is_a_config_error() -> None:
    with pytest.raises(ConfigError) as info:
        alloy_nb.run("go", provider=Scripted(["x"], model="acme-unknown"), max_budget_cents=5)
    msg = str(info.value)
    assert "max_budget_cents=5" in msg and "'acme-unknown'" in msg
    assert "model_metadata_overrides={'acme-unknown': {'input_price'" in msg


def test_conformance_v08_unpriced_fallback_or_switch_is_refused_too() -> None:
    with pytest.raises(ConfigError, match="'cheap-local'"):
        Session(provider=Scripted([], model="claude-sonnet-4-6"), max_budget_cents=5,
                fallback_providers=[Scripted([], model="cheap-local")])
    session = Session(provider=Scripted([], model="claude-sonnet-4-6"), max_budget_cents=5)
    with pytest.raises(ConfigError, match="'cheap-local'"):
        session.set_model(Scripted([], model="cheap-local"))
    assert session.model == "claude-sonnet-4-6"  # unchanged after the refusal
    session.set_model(Scripted([], model="gpt-5.4"))  # priced: fine
    assert session.model == "gpt-5.4"
