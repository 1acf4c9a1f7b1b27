"""The environment variables that carry provider API keys, and an environment without them.

Tests and demos start kernels, servers and subprocesses; none of them may see a real key.
"""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["API_KEY_ENV_VARS", "without_api_keys"]

API_KEY_ENV_VARS: tuple[str, ...] = (
    "ANTHROPIC_API_KEY",
    "OPENAI_API_KEY",
    "OPENROUTER_API_KEY",
    "GEMINI_API_KEY",
    "GOOGLE_API_KEY",
    "XAI_API_KEY",
    "DEEPSEEK_API_KEY",
    "MISTRAL_API_KEY",
    "GROQ_API_KEY",
    "TOGETHER_API_KEY",
)


def without_api_keys(env: Mapping[str, str]) -> dict[str, str]:
    """A copy of ``env`` with every provider key variable removed."""
    return {k: v for k, v in env.items() if k not in API_KEY_ENV_VARS}
