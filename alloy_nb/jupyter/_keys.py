"""Recognise an API key typed where a provider spec belongs (``%alloy provider sk-...``),
so the magic refuses it before it is saved in the notebook."""

from __future__ import annotations

import re

__all__ = ["looks_like_key"]

_KEYISH = re.compile(r"(^|[:=\s])(sk-|sk_|gsk_|xai-|AIza)[A-Za-z0-9_\-]{8,}|api_?key\s*=",
                     re.IGNORECASE)


def looks_like_key(text: str) -> bool:
    """A vendor key prefix, ``api_key=``, or one long token with no ``:`` or space."""
    return bool(_KEYISH.search(text)) or (len(text) > 40 and not re.search(r"[:\s]", text))
