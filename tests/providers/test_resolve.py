"""``providers.resolve``: every accepted spec form, and clear errors for the rest."""

from __future__ import annotations

import pytest

import alloy_nb.providers as providers
from alloy_nb.errors import ConfigError
from alloy_nb.providers import Anthropic, Gemini, OpenAI, OpenAICompat, Provider, resolve


def test_instances_classes_and_pairs() -> None:
    p = Anthropic(api_key="test-key-r1")
    assert resolve(p) is p
    assert isinstance(resolve(Anthropic), Anthropic)
    q = resolve((OpenAI, {"model": "gpt-x", "api_key": "test-key-r2"}))
    assert isinstance(q, OpenAI) and q.model == "gpt-x"


@pytest.mark.parametrize(
    ("spec", "cls", "model"),
    [
        ("anthropic:claude-haiku-4-5", Anthropic, "claude-haiku-4-5"),
        ("openai:gpt-5.4", OpenAI, "gpt-5.4"),
        ("ollama:qwen3:0.6b", OpenAICompat, "qwen3:0.6b"),  # model names may hold colons
        ("openrouter:anthropic/claude-sonnet-4.5", OpenAICompat, "anthropic/claude-sonnet-4.5"),
        ("gemini:gemini-2.5-flash", Gemini, "gemini-2.5-flash"),  # native
        ("gemini-compat:gemini-2.5-flash", OpenAICompat, "gemini-2.5-flash"),
        ("xai:grok-4", OpenAICompat, "grok-4"),
        ("deepseek:deepseek-chat", OpenAICompat, "deepseek-chat"),
        ("mistral:mistral-large-latest", OpenAICompat, "mistral-large-latest"),
        ("groq:llama-3.3-70b-versatile", OpenAICompat, "llama-3.3-70b-versatile"),
        ("together:meta-llama/Llama-3-70b", OpenAICompat, "meta-llama/Llama-3-70b"),
    ],
)
def test_strings_resolve_without_a_key(spec: str, cls: type, model: str) -> None:
    p = resolve(spec)  # keys are only needed at the first request
    assert type(p) is cls and p.model == model


def test_presets_get_their_vendor_settings() -> None:
    p = resolve("groq:llama")
    assert isinstance(p, OpenAICompat) and "api.groq.com" in p.base_url
    assert p._key.env == ("GROQ_API_KEY",)


def test_openai_compat_needs_a_base_url(monkeypatch) -> None:
    with pytest.raises(ConfigError, match="OPENAI_BASE_URL"):
        resolve("openai-compat:local-model")
    monkeypatch.setenv("OPENAI_BASE_URL", "http://127.0.0.1:8080/v1")
    p = resolve("openai-compat:local-model")
    assert isinstance(p, OpenAICompat) and p.base_url == "http://127.0.0.1:8080/v1"


def test_demo_hook() -> None:
    from alloy_nb.providers.demo import Demo

    assert isinstance(resolve("demo"), Demo)


@pytest.mark.parametrize(
    "spec", ["anthropic", "anthropic:", "claude:opus", "nope:x", "", 42, ("anthropic", {}), None]
)
def test_bad_specs_list_the_valid_prefixes(spec) -> None:
    with pytest.raises(ConfigError) as exc:
        resolve(spec)
    for prefix in ("anthropic", "openai", "openai-compat", "ollama", "groq", "demo"):
        assert prefix in str(exc.value)


def test_exports_and_lazy_scripted() -> None:
    assert set(providers.__all__) >= {
        "Anthropic",
        "Compat",
        "Completion",
        "OpenAI",
        "OpenAICompat",
        "Provider",
        "ProviderRequest",
        "Scripted",
        "resolve",
    }
    assert issubclass(providers.Scripted, Provider)
    with pytest.raises(AttributeError):
        providers.NoSuchThing  # noqa: B018


def test_preset_names_match_the_presets_and_offline_runs_never_import_httpx() -> None:
    import subprocess
    import sys

    from alloy_nb import providers
    from alloy_nb.providers import openai_compat

    assert providers.PRESETS == openai_compat.PRESETS
    code = (
        "import sys, alloy_nb as a; from alloy_nb.providers.demo import Demo; "
        "a.run('What is 2+2?', provider=Demo(delay_s=0)); print('httpx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_gemini_is_native_and_the_compat_preset_keeps_its_own_name() -> None:
    native = resolve("gemini:gemini-3-flash-preview")
    assert isinstance(native, Gemini)
    assert native._key.env == ("GEMINI_API_KEY", "GOOGLE_API_KEY")
    assert native._url.endswith("/v1beta/models/gemini-3-flash-preview:generateContent")
    compat = resolve("gemini-compat:gemini-3-flash-preview")
    assert isinstance(compat, OpenAICompat) and compat.base_url.endswith("/v1beta/openai")
    with pytest.raises(ConfigError) as exc:
        resolve("nope:x")
    assert "gemini-compat" in str(exc.value)
