"""Old home of the HTTP plumbing, kept as a re-export so existing imports keep working.

The code lives in three modules, one concern each: ``_transport.py`` (client per event loop,
keys, post/stream/send, the response-size cap), ``_vendor_errors.py`` (status and payload to
typed errors, Retry-After, x-should-retry) and ``_template.py`` (``HTTPProvider`` and its
hooks ``build_body``/``parse_reply``/``new_accumulator``). Import from those.
"""

from __future__ import annotations

from alloy_nb.errors import ProviderConfigError
from alloy_nb.providers._template import Accumulator, HTTPProvider, check_max_output_tokens
from alloy_nb.providers._transport import (
    ApiKey,
    Call,
    EventStream,
    auth_headers,
    open_stream,
    post_json,
    send,
)
from alloy_nb.providers._vendor_errors import (
    error_from_payload,
    retry_after,
    status_error,
    tool_arguments,
    unexpected_reply,
)

__all__ = [
    "Accumulator",
    "ApiKey",
    "Call",
    "EventStream",
    "HTTPProvider",
    "ProviderConfigError",
    "auth_headers",
    "check_max_output_tokens",
    "error_from_payload",
    "open_stream",
    "post_json",
    "retry_after",
    "send",
    "status_error",
    "tool_arguments",
    "unexpected_reply",
]
