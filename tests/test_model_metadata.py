"""Model metadata: catalogue windows (spec §6.2, conformance H125, K142–K145), prices,
suffix patterns, routing decorations and user overrides."""

from __future__ import annotations

import re

import pytest

from alloy_nb.model_metadata import (
    DEFAULT_CONTEXT_WINDOW,
    ModelInfo,
    catalog,
    context_window,
    lookup,
)
from alloy_nb.usage import Usage


@pytest.mark.parametrize(
    ("model", "window"),
    [
        # K142 exact and dated
        ("claude-opus-4-6", 200_000),
        ("gpt-5.4", 1_050_000),
        ("grok-4-fast-reasoning", 2_000_000),
        ("claude-haiku-4-5-20251015", 200_000),
        ("gpt-5.2-2025-12-11", 400_000),
        ("gemini-3-pro-preview-11-2025", 1_048_576),
        # H125
        ("claude-opus-4-6-20251015", 200_000),
        ("gpt-5-2025-08-07", 400_000),
        ("gpt-5.4-2026-03-05", 1_050_000),
        ("gemini-flash-latest", 1_048_576),
        ("grok-3-mini", 131_072),
        ("grok-3-fast", 131_072),
        ("gemini-2.5-flash-lite", 1_048_576),
        ("gemini-2.5-flash-preview-05-2025", 1_048_576),
        ("o3-pro", 200_000),
        ("grok-code-fast-1", 256_000),
    ],
)
def test_reference_windows(model, window):
    assert context_window(model) == window
    assert lookup(model).context_window == window


def test_unknown_model():  # K142, H125
    assert lookup("unknown-model") is None
    assert context_window("unknown-model") == DEFAULT_CONTEXT_WINDOW == 200_000
    assert context_window(None) == 200_000
    assert lookup("") is None


def test_family_suffixes_do_not_leak():
    # "gpt-5" must not claim gpt-5.4 or gpt-5-mini; "o3" must not claim o3-mini
    assert lookup("gpt-5.4-2026-03-05").name == "gpt-5.4"
    assert lookup("gpt-5-mini-2025-08-07").name == "gpt-5-mini"
    assert lookup("gpt-4o-mini-2024-07-18").name == "gpt-4o-mini"
    assert lookup("claude-sonnet-4-5-20250929").name == "claude-sonnet-4-5"
    assert lookup("claude-sonnet-4-20250514").name == "claude-sonnet-4"
    assert lookup("claude-opus-4-0").name == "claude-opus-4"
    assert lookup("o3-mini") is None
    assert lookup("gpt-5.4-turbo") is None


@pytest.mark.parametrize(
    ("model", "name"),
    [
        ("anthropic/claude-sonnet-4.6", "claude-sonnet-4-6"),  # OpenRouter spelling
        ("anthropic/claude-3.7-sonnet", "claude-3-7-sonnet"),
        ("openai/gpt-4.1-mini", "gpt-4.1-mini"),
        ("models/gemini-2.5-pro", "gemini-2.5-pro"),  # Gemini's resource names
        ("x-ai/grok-4", "grok-4"),
        ("deepseek/deepseek-chat", "deepseek-chat"),
        ("mistralai/mistral-large-latest", "mistral-large"),
        ("codestral-2501", "codestral"),
        ("anthropic.claude-3-7-sonnet-20250219-v1:0", "claude-3-7-sonnet"),  # Bedrock
        ("claude-3-5-haiku-latest", "claude-3-5-haiku"),
    ],
)
def test_routing_decorations(model, name):
    assert lookup(model).name == name


def test_free_variants_cost_nothing():
    info = lookup("openai/gpt-4o-mini:free")
    assert info.name == "gpt-4o-mini" and info.input_price == 0.0 and info.output_price == 0.0


def test_catalog_coverage_and_prices():  # K144
    names = {m.name for m in catalog()}
    assert {"claude-sonnet-4-6", "grok-code-fast-1"} <= names
    wanted = {
        "claude-opus-4-6", "claude-sonnet-4-6", "claude-haiku-4-5", "claude-3-7-sonnet",
        "claude-3-5-haiku", "gpt-5", "gpt-5.4", "gpt-5-mini", "gpt-5-nano", "gpt-4.1",
        "gpt-4.1-mini", "gpt-4.1-nano", "gpt-4o", "gpt-4o-mini", "o3", "o4-mini",
        "gemini-2.5-pro", "gemini-2.5-flash", "gemini-2.5-flash-lite", "grok-4", "grok-3",
        "grok-3-mini", "deepseek-chat", "deepseek-reasoner", "mistral-large", "mistral-medium",
        "mistral-small", "codestral",
    }
    assert wanted <= names
    for name in wanted:
        info = lookup(name)
        assert info.input_price is not None and info.output_price is not None, name
        assert info.output_price >= info.input_price, name
        if info.cache_read_price is not None:
            assert info.cache_read_price < info.input_price, name


def test_prices_feed_usage_cost():
    info = lookup("claude-sonnet-4-6")
    usage = Usage(input_tokens=1_000_000, output_tokens=1_000_000).with_cost(
        info.input_price, info.output_price, info.cache_read_price, info.cache_write_price
    )
    assert usage.estimated_cost_cents == pytest.approx(1800)  # §1.7 example, $3 + $15


def test_catalog_order_first_match_wins():
    names = [m.name for m in catalog()]
    assert names[:3] == ["o3-pro", "gemini-flash-latest", "claude-opus-4-6"]


# --- overrides (K143, K145) -------------------------------------------------------------


def test_override_exact_custom_model():
    assert context_window("acme-reasoner", {"acme-reasoner": 512_000}) == 512_000
    assert context_window("acme-reasoner-2", {"acme-reasoner": 512_000}) == 200_000


def test_limit_only_override_reuses_family_suffixes_and_prices():
    overrides = {"gpt-5.4": 900_000}
    assert context_window("gpt-5.4-2026-03-05", overrides) == 900_000
    info = lookup("gpt-5.4", overrides)
    assert info.input_price == lookup("gpt-5.4").input_price


def test_override_with_regex_suffix():
    rx = {"acme-reasoner": {"limit": 640_000, "suffix_patterns": ["", r"^-\d{4}\.\d{2}$"]}}
    assert context_window("acme-reasoner-2026.03", rx) == 640_000
    compiled = {"acme-reasoner": {"limit": 640_000, "suffix_patterns": [re.compile(r"-v\d")]}}
    assert context_window("acme-reasoner-v2", compiled) == 640_000
    assert context_window("acme-reasoner", compiled) == 200_000  # "" not listed


def test_override_keyword_list_forms_and_prices():
    assert context_window("acme", [("acme", [("limit", 64_000)])]) == 64_000
    info = lookup("acme", {"acme": {"limit": 10_000, "input_price": 1, "output_price": 2.5}})
    assert info == ModelInfo(name="acme", context_window=10_000, input_price=1.0, output_price=2.5)


def test_invalid_overrides_are_ignored():
    bad = {"gpt-5.4": -1, "x": "big", "y": True, 7: 100, "z": {"limit": 0}}
    assert context_window("gpt-5.4", bad) == 1_050_000
    assert context_window("x", bad) == 200_000
    assert context_window("y", bad) == 200_000
    assert context_window("gpt-5.4", "nonsense") == 1_050_000  # type: ignore[arg-type]


def test_override_wins_over_catalog():
    overrides = {"claude-sonnet-4-6": 1_000_000}
    assert context_window("claude-sonnet-4-6-20260101", overrides) == 1_000_000


def test_offline_demo_costs_nothing_and_says_so() -> None:
    from alloy_nb.model_metadata import lookup
    from alloy_nb.usage import Usage

    info = lookup("demo")
    assert info is not None and info.input_price == 0.0 and info.output_price == 0.0
    usage = Usage(input_tokens=100, output_tokens=50).with_cost(info.input_price, info.output_price)
    assert usage.priced and usage.cost_label == "$0.0000"


@pytest.mark.parametrize(
    ("model", "name"),
    [
        # dated snapshots and aliases, one or more per vendor
        ("claude-opus-4-5-20251101", "claude-opus-4-5"),
        ("claude-haiku-4-5-20251001", "claude-haiku-4-5"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("o4-mini-2025-04-16", "o4-mini"),
        ("o3-pro-2025-06-10", "o3-pro"),
        ("gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),  # -preview-MM-DD
        ("gemini-2.5-pro-preview-06-05", "gemini-2.5-pro"),
        ("gemini-2.5-flash-lite-preview-06-17", "gemini-2.5-flash-lite"),
        ("gemini-2.5-flash-preview-09-2025", "gemini-2.5-flash"),  # -preview-MM-YYYY
        ("grok-4-0709", "grok-4"),
        ("mistral-medium-2508", "mistral-medium"),
        ("mistral-large-2411", "mistral-large-2411"),
        # OpenRouter, Bedrock (regional and global inference profiles), Vertex
        ("x-ai/grok-4-fast", "grok-4-fast"),
        ("openai/gpt-5-chat-latest", "gpt-5-chat-latest"),
        ("google/gemini-2.5-flash-preview-05-20", "gemini-2.5-flash"),
        ("us.anthropic.claude-sonnet-4-5-20250929-v1:0", "claude-sonnet-4-5"),
        ("global.anthropic.claude-haiku-4-5-20251001-v1:0", "claude-haiku-4-5"),
        ("claude-sonnet-4-5@20250929", "claude-sonnet-4-5"),
        ("anthropic/claude-opus-4.1", "claude-opus-4-1"),
    ],
)
def test_dated_snapshots_and_routed_names_of_every_vendor(model, name):
    info = lookup(model)
    assert info is not None and info.name == name, model


def test_chat_latest_aliases_have_their_own_window():
    assert context_window("gpt-5-chat-latest") == 128_000
    assert context_window("gpt-5") == 400_000


def test_cache_tokens_are_priced_at_cache_rates():
    info = lookup("claude-sonnet-4-6")  # read $0.30, write $3.75 per million
    usage = Usage(cache_read_input_tokens=1_000_000, cache_creation_input_tokens=1_000_000)
    priced = usage.with_cost(info.input_price, info.output_price, info.cache_read_price,
                             info.cache_write_price)
    assert priced.estimated_cost_cents == pytest.approx(30 + 375) and priced.priced
    unknown = lookup("acme-model")
    assert unknown is None
    assert Usage(input_tokens=10).with_cost(None, None).cost_label == "unpriced"


def test_override_precedence_over_catalog_for_routed_and_dated_names():
    overrides = {"claude-sonnet-4-5": {"limit": 1_000_000, "input_price": 6.0}}
    info = lookup("us.anthropic.claude-sonnet-4-5-20250929-v1:0", overrides)
    assert (info.context_window, info.input_price, info.output_price) == (1_000_000, 6.0, 15.0)
    assert lookup("claude-sonnet-4-6", overrides).context_window == 200_000  # untouched
