"""The one exception tree of alloy_nb.

Foreign exceptions (httpx, json) are translated at one boundary, ``providers/_http.py``;
everything else raises these. Whether a provider error is retried is a property of its
class, never of its message text.

    AlloyError
    ├── ConfigError (also ValueError)   bad option, provider spec, tool schema, misused hook
    ├── ProviderError                   .provider .model .request_id .retryable
    │   ├── ProviderHTTPError           .status_code .body .retry_after
    │   │   ├── AuthenticationError     401/403, never retried
    │   │   ├── BadRequestError         other 4xx, never retried
    │   │   ├── RateLimitError          429, retried, honours Retry-After
    │   │   └── OverloadedError         5xx/529, retried
    │   ├── ProviderConnectionError     connect/read timeouts and resets
    │   ├── StreamError                 malformed SSE, stream cut off, error event after 200
    │   └── ScriptExhausted             the Scripted provider ran out of replies
    ├── ToolError                       raised by tools; becomes an error tool_result
    ├── AgentError                      .result (status halted / error / cancelled)
    │   └── OutputValidationError       output_type: no valid final_result within the retries
    ├── ItemNotRun                      alloy.map: an item never ran (budget reached, interrupted)
    ├── BatchInterrupted                alloy.map interrupted; .result is the partial BatchResult
    ├── Busy                            send_message while running and max_pending == 0
    └── QueueFull                       send_message with the queue full
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from alloy_nb.result import Result

__all__ = [
    "AgentError",
    "AlloyError",
    "AuthenticationError",
    "BadRequestError",
    "BatchInterrupted",
    "Busy",
    "ConfigError",
    "ItemNotRun",
    "OutputValidationError",
    "OverloadedError",
    "ProviderConnectionError",
    "ProviderError",
    "ProviderHTTPError",
    "QueueFull",
    "RateLimitError",
    "ScriptExhausted",
    "StreamError",
    "ToolError",
]


class AlloyError(Exception):
    """Base of every error alloy_nb raises on purpose."""


class ConfigError(AlloyError, ValueError):
    """An option, provider spec, tool or middleware is misconfigured."""


class ProviderError(AlloyError):
    """A model call failed. ``retryable`` is decided by the subclass, not the message."""

    retryable: bool = False

    def __init__(
        self,
        message: str,
        *,
        provider: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.message = message
        self.provider = provider
        self.model = model
        self.request_id = request_id
        super().__init__(message)

    def __str__(self) -> str:
        where = ", ".join(
            f"{k}={v}"
            for k, v in (
                ("provider", self.provider),
                ("model", self.model),
                ("status", getattr(self, "status_code", None)),
                ("request_id", self.request_id),
            )
            if v is not None
        )
        return f"{self.message} ({where})" if where else self.message


class ProviderHTTPError(ProviderError):
    """The provider answered with an HTTP error status."""

    def __init__(
        self,
        message: str,
        *,
        status_code: int,
        body: str = "",
        retry_after: float | None = None,
        provider: str | None = None,
        model: str | None = None,
        request_id: str | None = None,
    ) -> None:
        self.status_code = status_code
        self.body = body
        self.retry_after = retry_after
        super().__init__(message, provider=provider, model=model, request_id=request_id)


class AuthenticationError(ProviderHTTPError):
    """401/403: the key is missing, wrong or lacks permission. Retrying cannot help."""


class BadRequestError(ProviderHTTPError):
    """Any other 4xx: the request itself is wrong."""


class RateLimitError(ProviderHTTPError):
    """429: slow down; ``retry_after`` (seconds) is honoured by the retry loop."""

    retryable = True


class OverloadedError(ProviderHTTPError):
    """5xx or Anthropic's 529: the service is struggling; worth another try."""

    retryable = True


class ProviderConnectionError(ProviderError):
    """Connecting or reading failed (refused, reset, timed out)."""

    retryable = True


class StreamError(ProviderError):
    """The response stream was malformed, cut off, or carried an error event."""

    def __init__(self, message: str, *, retryable: bool = False, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.retryable = retryable


class ScriptExhausted(ProviderError):
    """The Scripted provider was asked for more replies than it was given."""


class ToolError(AlloyError):
    """Raise from a tool to hand the model an error result with this message."""


class AgentError(AlloyError):
    """A run ended with status halted, error or cancelled; ``.result`` holds everything.

    The history on ``.result.messages`` is always valid to continue from.
    """

    def __init__(self, result: Result) -> None:
        self.result = result
        detail = result.error or result.status
        super().__init__(f"run ended with status {result.status!r}: {detail}")


class OutputValidationError(AgentError):
    """``output_type`` was set and the model gave no valid ``final_result`` within the
    retries; ``.result.error`` carries the last validation message."""


class ItemNotRun(AlloyError):
    """``alloy.map``: this item never ran (or was cancelled mid-run): the batch budget was
    reached or the batch was interrupted. Re-running with ``cache_dir`` runs only these."""


class BatchInterrupted(AlloyError):
    """``alloy.map`` was interrupted; ``.result`` is the partial ``BatchResult`` (finished
    items kept, the others ``cancelled`` or ``skipped``)."""

    def __init__(self, result: Any) -> None:
        self.result = result
        done = sum(1 for s in result.statuses if s not in ("cancelled", "skipped"))
        super().__init__(
            f"alloy.map interrupted: {done} of {len(result.statuses)} items finished; the "
            "partial BatchResult is on .result (with cache_dir, a re-run resumes)"
        )


class Busy(AlloyError):
    """``send_message`` while a request runs and ``max_pending`` is 0."""


class QueueFull(AlloyError):
    """``send_message`` when ``max_pending`` requests are already queued."""
