"""Model providers and ``resolve``, the one registry that knows all of them.

Each protocol lives in its own module (``anthropic``, ``openai``, ``openai_compat``,
``gemini``) and none imports another. All of them load on first use, so a run on the offline
``Scripted`` or ``Demo`` provider never imports httpx.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from alloy_nb.errors import ConfigError
from alloy_nb.providers.base import Completion, Provider, ProviderRequest

if TYPE_CHECKING:
    from alloy_nb.providers.anthropic import Anthropic
    from alloy_nb.providers.demo import Demo
    from alloy_nb.providers.gemini import Gemini
    from alloy_nb.providers.openai import OpenAI
    from alloy_nb.providers.openai_compat import Compat, OpenAICompat
    from alloy_nb.providers.scripted import Scripted

__all__ = [
    "Anthropic",
    "Compat",
    "Completion",
    "Demo",
    "Gemini",
    "OpenAI",
    "OpenAICompat",
    "Provider",
    "ProviderRequest",
    "Scripted",
    "resolve",
]

_LAZY = {
    "Anthropic": "alloy_nb.providers.anthropic",
    "OpenAI": "alloy_nb.providers.openai",
    "OpenAICompat": "alloy_nb.providers.openai_compat",
    "Compat": "alloy_nb.providers.openai_compat",
    "Scripted": "alloy_nb.providers.scripted",
    "Demo": "alloy_nb.providers.demo",
    "Gemini": "alloy_nb.providers.gemini",
}
#: ``OpenAICompat`` preset classmethods (a test keeps this equal to ``openai_compat.PRESETS``).
PRESETS = ("ollama", "openrouter", "gemini", "xai", "deepseek", "mistral", "groq", "together")
#: ``gemini:`` is the native provider; the OpenAI-compatible Gemini preset is ``gemini-compat:``.
PREFIXES = ("anthropic", "openai", "openai-compat", *PRESETS, "gemini-compat")


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def resolve(spec: Any) -> Provider:
    """Turn a provider spec into a provider instance.

    Accepts an instance (returned as is), a Provider subclass (``cls()``), a
    ``(cls, {config})`` pair (``cls(**config)``), ``"demo"``, or ``"PREFIX:MODEL"`` with
    PREFIX one of ``anthropic``, ``openai``, ``openai-compat`` (needs ``OPENAI_BASE_URL``),
    ``gemini`` (the native Gemini provider; ``gemini-compat`` is Gemini's OpenAI-compatible
    endpoint) or a preset (``ollama``, ``openrouter``, ``xai``, ``deepseek``, ``mistral``,
    ``groq``, ``together``). Keys are read from the environment at the first request, so a
    spec resolves before its key is set.
    """
    if isinstance(spec, Provider):
        return spec
    if isinstance(spec, type) and issubclass(spec, Provider):
        return spec()
    if isinstance(spec, tuple) and len(spec) == 2:
        cls, config = spec
        if isinstance(cls, type) and issubclass(cls, Provider) and isinstance(config, dict):
            return cls(**config)
    if isinstance(spec, str):
        return _from_string(spec.strip())
    raise ConfigError(f"not a provider spec: {spec!r}. {_HELP}")


_HELP = (
    "Use a Provider instance or class, a (class, {config}) pair, 'demo', or "
    "'PREFIX:MODEL' with PREFIX one of: " + ", ".join(PREFIXES) + "."
)


def _from_string(spec: str) -> Provider:
    # Imported here, not at the top: an offline run (demo, Scripted) never imports httpx.
    if spec == "demo":
        from alloy_nb.providers.demo import Demo

        return Demo()
    prefix, sep, model = spec.partition(":")
    prefix = prefix.lower()
    if not sep or not model or prefix not in PREFIXES:
        raise ConfigError(f"unknown provider spec {spec!r}. {_HELP}")
    if prefix == "anthropic":
        from alloy_nb.providers.anthropic import Anthropic

        return Anthropic(model=model)
    if prefix == "openai":
        from alloy_nb.providers.openai import OpenAI

        return OpenAI(model=model)
    if prefix == "gemini":  # native; the compat preset is "gemini-compat"
        from alloy_nb.providers.gemini import Gemini

        return Gemini(model=model)
    if prefix == "gemini-compat":
        prefix = "gemini"
    from alloy_nb.providers.openai_compat import OpenAICompat

    compat = OpenAICompat
    if prefix == "openai-compat":
        return compat(model=model)  # ConfigError unless OPENAI_BASE_URL is set
    preset = getattr(compat, prefix)
    result: Provider = preset(model)
    return result
