"""Is this vendor error "the prompt does not fit the model's context window"?

One small function every provider's error mapping calls (``_vendor_errors.status_error`` and
``_vendor_errors.error_from_payload``; the native Gemini provider too), so the loop can react with
``PromptTooLongError`` (force-compact, retry once) instead of a plain bad request. The
test is deliberately narrow: a request that is wrong for another reason (a bad
``max_tokens``, a bad parameter) must stay a ``BadRequestError``.

Shapes recognised (recorded or documented bodies; see ``tests/parity/test_prompt_too_long``):

- Anthropic 400 ``invalid_request_error``: "prompt is too long: 219898 tokens > 200000
  maximum"; "input length and `max_tokens` exceed context limit: 189136 + 20000 > 204648".
- OpenAI Chat and Responses ``code: context_length_exceeded`` ("This model's maximum
  context length is …", "Your input exceeds the context window of this model …"), as an
  HTTP 400 or as a streamed ``error`` / ``response.failed`` event.
- Compatible vendors: OpenRouter/vLLM/DeepSeek/Groq "maximum context length is …",
  Mistral "… too large for model with 32768 maximum context length", xAI "maximum prompt
  length is …", llama.cpp ``exceed_context_size_error``, LM Studio "context length of
  only …".
- Gemini 400 ``INVALID_ARGUMENT``: "The input token count (1200000) exceeds the maximum
  number of tokens allowed (1048576)."
"""

from __future__ import annotations

import json
import re
from typing import Any

__all__ = ["is_prompt_too_long"]

_CODES = frozenset({"context_length_exceeded", "exceed_context_size_error",
                    "context_window_exceeded", "prompt_too_long"})
_TEXT = re.compile(
    r"prompt is too long"
    r"|prompt too long"
    r"|maximum context length"
    r"|context length exceeded"
    r"|exceeds? the context window"
    r"|context window (?:is )?exceeded"
    r"|exceed context limit"
    r"|maximum prompt length"
    r"|input token count.{0,40}exceeds the maximum"
    r"|exceeds the available context size"
    r"|context length of only"
    r"|too large for model with \d+ maximum context",
    re.IGNORECASE,
)
# statuses that can never mean "too long": auth, rate limits (OpenAI's 429 "Request too
# large … tokens per min" is a rate limit, not a window), server trouble
_NEVER = frozenset({401, 403, 429})


def _strings(value: Any, depth: int = 0) -> list[str]:
    """Every string inside a decoded error payload (messages, codes, types)."""
    if depth > 6:
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v, depth + 1)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v, depth + 1)]
    return []


def is_prompt_too_long(status_code: int | None, body: Any) -> bool:
    """True when an error says the request's prompt exceeds the model's context window.

    ``status_code`` is the HTTP status (None for an error that arrived inside a 200
    stream); ``body`` is the raw body (``bytes``/``str``, JSON or not) or the decoded
    payload. Only 4xx statuses other than 401/403/429 (or no status) can qualify.
    """
    if status_code is not None and (not 400 <= status_code < 500 or status_code in _NEVER):
        return False
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body)
        except (ValueError, RecursionError):  # not JSON, or absurdly nested
            return bool(_TEXT.search(body))
    texts = _strings(body)
    return any(t.strip().lower() in _CODES for t in texts) or any(
        _TEXT.search(t) for t in texts
    )
