"""AgentConfig.from_options: defaults, validation, provider/tool/middleware resolution."""

from __future__ import annotations

from typing import Any

import pytest

from alloy_nb import model_metadata
from alloy_nb.agent import AgentConfig
from alloy_nb.agent.config import OPTION_NAMES
from alloy_nb.compaction import Compaction
from alloy_nb.errors import ConfigError
from alloy_nb.middleware import Middleware
from alloy_nb.providers.scripted import Scripted
from alloy_nb.tools.base import Tool

API_OPTIONS = {
    "provider", "tools", "system_prompt", "max_turns", "max_tokens", "compaction",
    "middleware", "working_directory", "context", "max_pending", "model_metadata_overrides",
    "until_tool", "max_retries", "retry_backoff_ms", "timeout_ms", "tool_timeout_ms",
    "max_budget_cents", "fallback_providers", "on_event",
    "output_type",
}


class Echo(Tool):
    name = "echo"
    description = "Echo"

    def execute(self, input: dict[str, Any], context: Any) -> str:
        return str(input)


def test_option_names_match_api_md() -> None:
    assert set(OPTION_NAMES) == API_OPTIONS


def test_defaults() -> None:
    provider = Scripted()
    c = AgentConfig.from_options(provider=provider)
    assert c.provider is provider
    assert (c.tools, c.system_prompt, c.max_turns, c.middleware) == ([], None, 25, [])
    assert (c.working_directory, c.context, c.max_pending) == (".", {}, 0)
    assert (c.max_retries, c.retry_backoff_ms, c.timeout_ms, c.tool_timeout_ms) == (
        3, 1000, 120_000, 120_000)
    assert (c.max_budget_cents, c.fallback_providers, c.on_event, c.until_tool) == (
        None, [], None, None)
    assert c.max_tokens == 200_000 and not c.max_tokens_explicit  # unknown model
    assert isinstance(c.compaction, Compaction)
    assert c.model_metadata_overrides == {}


def test_unknown_option_lists_valid_ones() -> None:
    with pytest.raises(ConfigError, match="max_turn") as info:
        AgentConfig.from_options(provider=Scripted(), max_turn=3)
    assert "Did you mean 'max_turns'" in str(info.value)
    assert "tool_timeout_ms" in str(info.value)


def test_messages_is_not_a_config_option() -> None:
    with pytest.raises(ConfigError, match="history"):
        AgentConfig.from_options(provider=Scripted(), messages=[])


def test_provider_is_required() -> None:
    with pytest.raises(ConfigError, match="provider is required"):
        AgentConfig.from_options()
    with pytest.raises(ConfigError, match="cannot use 42 as a provider"):
        AgentConfig.from_options(provider=42)


def test_provider_from_class_pair_and_string() -> None:
    assert isinstance(AgentConfig.from_options(provider=Scripted).provider, Scripted)
    pair = AgentConfig.from_options(provider=(Scripted, {"model": "m1"})).provider
    assert isinstance(pair, Scripted) and pair.model == "m1"
    by_name = AgentConfig.from_options(provider="anthropic:claude-sonnet-4-6")
    assert by_name.provider.model == "claude-sonnet-4-6"
    with pytest.raises(ConfigError):
        AgentConfig.from_options(provider="nonsense:thing")


def test_max_tokens_follows_model_window_unless_explicit() -> None:
    window = model_metadata.lookup("gpt-5.4").context_window
    c = AgentConfig.from_options(provider=Scripted(model="gpt-5.4"))
    assert c.max_tokens == window and not c.max_tokens_explicit
    c = AgentConfig.from_options(provider=Scripted(model="mine"),
                                 model_metadata_overrides={"mine": 32_000})
    assert c.max_tokens == 32_000
    explicit = AgentConfig.from_options(provider=Scripted(model="gpt-5.4"), max_tokens=50_000)
    assert explicit.max_tokens == 50_000 and explicit.max_tokens_explicit
    # with_provider re-derives a derived budget and keeps an explicit one
    claude = model_metadata.lookup("claude-sonnet-4-6").context_window
    assert c.with_provider(Scripted(model="claude-sonnet-4-6")).max_tokens == claude
    assert explicit.with_provider(Scripted(model="claude-sonnet-4-6")).max_tokens == 50_000


def test_tools_classes_instances_and_functions() -> None:
    def shout(text: str) -> str:
        """Upper-case the text."""
        return text.upper()

    c = AgentConfig.from_options(provider=Scripted(), tools=[Echo, shout])
    assert [t.name for t in c.tools] == ["echo", "shout"]
    assert isinstance(c.tools[0], Echo)
    assert [d.name for d in c.tool_definitions] == ["echo", "shout"]
    assert c.tool_definitions[1].description == "Upper-case the text."
    assert set(c.tools_by_name) == {"echo", "shout"}
    swapped = c.model_copy(update={"tools": [Echo()]})
    assert [d.name for d in swapped.tool_definitions] == ["echo"]  # no stale cache


def test_tool_errors() -> None:
    with pytest.raises(ConfigError, match="share the name 'echo'"):
        AgentConfig.from_options(provider=Scripted(), tools=[Echo, Echo()])
    with pytest.raises(ConfigError, match="is not a tool"):
        AgentConfig.from_options(provider=Scripted(), tools=["read"])
    with pytest.raises(ConfigError, match="must be a list"):
        AgentConfig.from_options(provider=Scripted(), tools=Echo)


def test_until_tool_must_name_a_tool() -> None:
    with pytest.raises(ConfigError, match="until_tool='submit'"):
        AgentConfig.from_options(provider=Scripted(), tools=[Echo], until_tool="submit")
    assert AgentConfig.from_options(provider=Scripted(), tools=[Echo],
                                    until_tool="echo").until_tool == "echo"


def test_middleware_forms() -> None:
    def fn(hook: str, state: Any) -> Any:
        return state

    c = AgentConfig.from_options(provider=Scripted(), middleware=[Middleware, Middleware(), fn])
    assert isinstance(c.middleware[0], Middleware) and c.middleware[2] is fn
    with pytest.raises(ConfigError, match="is not middleware"):
        AgentConfig.from_options(provider=Scripted(), middleware=[42])


def test_compaction_dict_or_object() -> None:
    c = AgentConfig.from_options(provider=Scripted(), compaction={"reserve_tokens": 1000})
    assert c.compaction.reserve_tokens == 1000
    obj = Compaction(keep_recent_tokens=5)
    assert AgentConfig.from_options(provider=Scripted(), compaction=obj).compaction is obj
    with pytest.raises(ConfigError, match="compaction"):
        AgentConfig.from_options(provider=Scripted(), compaction={"reserve_tokens": -1})
    with pytest.raises(ConfigError, match="compaction"):
        AgentConfig.from_options(provider=Scripted(), compaction=7)


def test_invalid_values_raise_config_error() -> None:
    with pytest.raises(ConfigError, match="max_turns"):
        AgentConfig.from_options(provider=Scripted(), max_turns=-1)
    with pytest.raises(ConfigError, match="on_event must be a callable"):
        AgentConfig.from_options(provider=Scripted(), on_event="print")


def test_c58_fallback_providers_parsed() -> None:
    c = AgentConfig.from_options(
        provider=Scripted(),
        fallback_providers=[(Scripted, {"model": "a"}), Scripted(model="b")],
    )
    assert [p.model for p in c.fallback_providers] == ["a", "b"]
    assert AgentConfig.from_options(provider=Scripted()).fallback_providers == []


def test_none_means_default_for_collections() -> None:
    c = AgentConfig.from_options(provider=Scripted(), tools=None, context=None, max_tokens=None)
    assert c.tools == [] and c.context == {} and c.max_tokens == 200_000


def test_config_is_immutable() -> None:
    c = AgentConfig.from_options(provider=Scripted())
    with pytest.raises(Exception, match="frozen"):
        c.max_turns = 3  # type: ignore[misc]
