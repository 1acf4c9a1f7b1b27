"""Recognise an API key typed where a provider spec belongs (``%alloy provider sk-...``),
so the magic refuses it before it is saved in the notebook."""

from __future__ import annotations

import re

from alloy_nb.redact import has_key_shape

__all__ = ["looks_like_key"]

# beyond the shared key shapes: Stripe-style ``sk_…`` (too common a prefix to redact in
# tool output, but never a provider spec) and an ``api_key=`` assignment
_KEYISH = re.compile(r"(^|[:=\s])sk_[A-Za-z0-9_\-]{8,}|api_?key\s*=", re.IGNORECASE)


def looks_like_key(text: str) -> bool:
    """A vendor key shape (``alloy_nb.redact``), ``api_key=``, or one long token with no
    ``:`` or space."""
    return (has_key_shape(text) or bool(_KEYISH.search(text))
            or (len(text) > 40 and not re.search(r"[:\s]", text)))
