"""The one exception tree of alloy_nb.

Foreign exceptions (httpx, json) are translated at one boundary, ``providers/_vendor_errors.py``;
everything else raises these. Whether a provider error is retried is a property of its
class, never of its message text.

    AlloyError
    ├── ConfigError (also ValueError)   bad option, provider spec, tool schema, misused hook
    │   ├── MiddlewareReturnError (also TypeError)  a hook returned something unusable
    │   ├── SessionFileError            a session file that cannot be loaded (names the file)
    │   └── ProviderConfigError (also ProviderError)  no API key / unusable base_url at call time
    ├── ProviderError                   .provider .model .request_id .retryable
    │   ├── ProviderHTTPError           .status_code .body .retry_after
    │   │   ├── AuthenticationError     401/403, never retried
    │   │   ├── BadRequestError         other 4xx, never retried
    │   │   │   └── PromptTooLongError  the prompt exceeds the model's context window
    │   │   ├── RateLimitError          429, retried, honours Retry-After
    │   │   └── OverloadedError         5xx/529, retried
    │   ├── ProviderConnectionError     connect/read timeouts and resets
    │   ├── StreamError                 malformed SSE, stream cut off, error event after 200
    │   │   └── ResponseTooLargeError   the reply passed the provider's max_response_bytes
    │   ├── ScriptExhausted             the Scripted provider ran out of replies
    │   └── BatchError                  vendor batch APIs (mode="batch"); .batch_id
    │       ├── BatchFailed             the whole batch failed (validation) or vanished
    │       └── BatchItemError          one item errored; .custom_id .error_type .status_code
    │           ├── BatchItemExpired    not processed before the batch's window closed
    │           └── BatchItemCanceled   the batch was cancelled before the item ran
    ├── ToolError                       raised by tools; becomes an error tool_result
    ├── CompactionError                 summarising failed and the fallback is "error"
    ├── AgentError                      .result (status halted / error / cancelled)
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
    "BatchError",
    "BatchFailed",
    "BatchItemCanceled",
    "BatchItemError",
    "BatchItemExpired",
    "Busy",
    "ConfigError",
    "OverloadedError",
    "PromptTooLongError",
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


class PromptTooLongError(BadRequestError):
    """The prompt does not fit the model's context window ("prompt is too long",
    ``context_length_exceeded``). Not retried as is: the loop force-compacts the history
    and retries the turn once; a second failure ends the run with status ``error``."""


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


class BatchError(ProviderError):
    """A vendor batch (Anthropic Message Batches, OpenAI Batch) went wrong; ``batch_id``
    names the remote batch so it can be looked up in the vendor's console."""

    def __init__(self, message: str, *, batch_id: str | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        self.batch_id = batch_id


class BatchFailed(BatchError):
    """The whole batch failed (OpenAI ``failed``: its input did not validate) or ended
    without results; no item has an answer."""


class BatchItemError(BatchError):
    """One item of a batch failed; ``error_type`` is the vendor's own word for it
    (``invalid_request_error``, ``overloaded_error``, ``batch_expired`` …). Retryable when
    that type or ``status_code`` says the failure was transient."""

    def __init__(
        self,
        message: str,
        *,
        custom_id: str,
        error_type: str | None = None,
        status_code: int | None = None,
        retryable: bool | None = None,
        **kw: Any,
    ) -> None:
        super().__init__(message, **kw)
        self.custom_id = custom_id
        self.error_type = error_type
        self.status_code = status_code
        if retryable is not None:
            self.retryable = retryable


class BatchItemExpired(BatchItemError):
    """The batch's processing window (24 h) closed before this item ran; worth re-sending."""

    retryable = True


class BatchItemCanceled(BatchItemError):
    """The batch was cancelled before this item ran."""


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


class Busy(AlloyError):
    """``send_message`` while a request runs and ``max_pending`` is 0."""


class QueueFull(AlloyError):
    """``send_message`` when ``max_pending`` requests are already queued."""


class ProviderConfigError(ConfigError, ProviderError):
    """A provider found its configuration unusable at request time (no API key, a base_url
    httpx cannot use).

    A ConfigError (the fix is configuration) that is also a non-retryable ProviderError, so
    the loop ends the run as data with this message instead of treating it as a crash.
    """


class MiddlewareReturnError(ConfigError, TypeError):
    """A hook returned something other than a state, ``Halt`` or (where allowed) ``Block``."""


class SessionFileError(ConfigError):
    """A session file that cannot be loaded: unreadable, not UTF-8, not JSON (or nested too
    deeply), not a session, or from a newer alloy_nb. The message names the file."""


class CompactionError(AlloyError):
    """Summarising failed and ``Compaction.fallback`` is ``"error"``."""


class ResponseTooLargeError(StreamError):
    """The reply grew past the provider's ``max_response_bytes``; reading stopped there."""


__all__ += [
    "CompactionError",
    "MiddlewareReturnError",
    "ProviderConfigError",
    "ResponseTooLargeError",
    "SessionFileError",
]
