"""What counts as a secret in the environment, in one place.

Bash drops such variables from the environment it gives commands; the notebook view hides
their values if a tool prints them. Keys passed to providers are scrubbed by value in
``providers/_http.py``.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

__all__ = ["is_secret_name", "redact_env_values"]

_SECRET_NAME = re.compile(r"KEY|SECRET|TOKEN|PASSWORD|PASSWD|CREDENTIAL", re.IGNORECASE)
_MIN_SECRET_CHARS = 12  # shorter values are too likely to be ordinary words or numbers


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
