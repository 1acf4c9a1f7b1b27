"""What counts as a secret in the environment, in one place.

Bash drops such variables from the environment it gives commands; the notebook view hides
their values if a tool prints them. Keys passed to providers are scrubbed by value in
``providers/_transport.py`` and ``providers/_vendor_errors.py`` (``Call.scrub``).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = [
    "has_key_shape", "is_secret_name", "redact_env_values", "redact_key_shapes", "redact_secrets",
]

_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_CHARS = 12  # shorter values are too likely to be ordinary words or numbers
# Values that look like API keys whatever they are called: OpenAI/Anthropic (sk-, sk-ant-,
# sk-proj-), Google (AIza), xAI (xai-), Groq (gsk_), GitHub (ghp_ …), bearer tokens.
_KEY_SHAPE = re.compile(
    r"\b(?:sk-[A-Za-z0-9_\-]{8,}|AIza[0-9A-Za-z_\-]{20,}|xai-[A-Za-z0-9_\-]{8,}"
    r"|gsk_[A-Za-z0-9]{8,}|gh[pousr]_[A-Za-z0-9]{16,}|hf_[A-Za-z0-9]{16,})"
    r"|\bBearer\s+[A-Za-z0-9._~+/=\-]{8,}",
    re.IGNORECASE,
)


def is_secret_name(name: str) -> bool:
    """True for ``*_API_KEY``, ``*_TOKEN``, ``*_SECRET``, passwords and credentials."""
    return bool(_SECRET_NAME.search(name))


def redact_env_values(text: str, env: Mapping[str, str] | None = None) -> str:
    """``text`` with the value of every secret-named variable of ``env`` (default: the
    process environment) replaced by ``[redacted]``."""
    for name, value in (os.environ if env is None else env).items():
        if len(value) >= _MIN_SECRET_CHARS and value in text and is_secret_name(name):
            text = text.replace(value, "[redacted]")
    return text


def has_key_shape(text: str) -> bool:
    """True when ``text`` contains something shaped like an API key (the rule below)."""
    return _KEY_SHAPE.search(text) is not None


def redact_key_shapes(text: str) -> str:
    """``text`` with every substring shaped like an API key (``sk-…``, ``sk-ant-…``,
    ``AIza…``, ``xai-…``, ``gsk_…``, ``Bearer …``) replaced by ``[redacted]``."""
    return _KEY_SHAPE.sub("[redacted]", text)


def redact_secrets(text: str, env: Mapping[str, str] | None = None) -> str:
    """Both rules: secret-named variables' values and key-shaped strings."""
    return redact_key_shapes(redact_env_values(text, env))
