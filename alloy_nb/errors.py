"""The one exception tree of alloy_nb.

Foreign exceptions (httpx, json) are translated at one boundary, ``providers/_vendor_errors.py``;
everything else raises these. Whether a provider error is retried is a property of its
class, never of its message text. The vendor may overrule the class for one error (an
``x-should-retry`` header, a per-day quota that no wait clears, a batch item's error type):
that goes through ``ProviderError.override_retryable`` and nowhere else, and the reason is
kept on ``.retry_override``.

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
    │   ├── StreamError                 malformed SSE or reply, error event after 200, never retried
    │   │   ├── TransientStreamError    stream cut off, unparsable tool call, transient error event
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
    │   ├── OutputValidationError       output_type: no valid final_result within the retries
    │   └── CellError                   a %%alloy run failed; shown as one line in Jupyter
    ├── ItemNotRun                      alloy.map: an item never ran (budget reached, interrupted)
    ├── BatchInterrupted                alloy.map interrupted; .result is the partial BatchResult
    ├── ControlError (also ValueError)  bad %alloy input; the magics show it as a UsageError
    ├── PromptError (also KeyError)     a {name} in a %%alloy prompt does not resolve
    ├── RunNotFinished (also RuntimeError)  handle.result() on a background run still going
    ├── Busy                            send_message while running and max_pending == 0
    └── QueueFull                       send_message with the queue full

    KeyboardInterrupt
    └── RunInterrupted                  the kernel's interrupt stopped a blocking %%alloy run
                                        (not an AlloyError: ``except Exception`` must not catch it)

The Jupyter layer's exceptions live here too (no IPython import is needed to define them);
``alloy_nb.jupyter`` re-exports them from their old places.
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
    "BatchInterrupted",
    "BatchItemCanceled",
    "BatchItemError",
    "BatchItemExpired",
    "Busy",
    "ConfigError",
    "ItemNotRun",
    "OutputValidationError",
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
    """The class's verdict; an instance differs only through ``override_retryable``."""
    retry_override: str | None = None
    """Why this instance's ``retryable`` differs from its class's (None: it does not)."""

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

    def override_retryable(self, retryable: bool, *, reason: str) -> None:
        """The one way an instance departs from its class's ``retryable``: the vendor's own
        verdict (``x-should-retry``, a batch item's error type) or a fact the class cannot
        know (a per-day quota). ``reason`` is kept on ``.retry_override``."""
        self.retryable = retryable
        self.retry_override = reason


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
    """The response (streamed or whole) was malformed or carried an error event after
    HTTP 200. Not retried; ``TransientStreamError`` is the kind worth another try.

    ``retryable=`` is accepted for code written before that class existed; it goes through
    ``override_retryable``."""

    def __init__(self, message: str, *, retryable: bool | None = None, **kw: Any) -> None:
        super().__init__(message, **kw)
        if retryable is not None and retryable != type(self).retryable:
            self.override_retryable(retryable, reason="given to the constructor")


class TransientStreamError(StreamError):
    """Nothing was wrong with the request, so another try may succeed: the stream was cut
    off before its end, the model produced an unparsable tool call, or the vendor reported
    an overloaded/server/rate-limit error inside a 200 reply."""

    retryable = True


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
        if retryable is not None and retryable != type(self).retryable:
            # the vendor's error type or status decides for one item (see override_retryable)
            self.override_retryable(retryable, reason=f"batch item error {error_type!r}")


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


class CellError(AgentError):
    """A ``%%alloy`` run failed: shown as one short line instead of a long traceback."""

    shown = True  # the view above already shows the error; the traceback only points there

    def _render_traceback_(self) -> list[str]:  # IPython's hook; no IPython import needed
        r = self.result
        hint = "the history is valid: fix the cause and run the cell again"
        if self.shown:  # each error is shown once: in the run's output, not again here
            return [f"AgentError: the run ended with status {r.status!r} (the reason is "
                    f"shown above; {hint}; `-o VAR` keeps the Result)"]
        return [f"AgentError: the run ended with status {r.status!r}: {r.error or r.status}",
                f"({hint}; `-o VAR` keeps the Result)"]


class ControlError(AlloyError, ValueError):
    """Bad input from the notebook; the magics show it as a ``UsageError``."""


class PromptError(AlloyError, KeyError):
    """A ``{name}`` in the prompt does not resolve in the notebook namespace."""

    def __str__(self) -> str:
        return str(self.args[0])


class RunNotFinished(AlloyError, RuntimeError):
    """``handle.result()`` on a background run that is still going (``await`` it instead)."""


class RunInterrupted(KeyboardInterrupt):
    """The kernel's interrupt stopped a blocking run; shown as one line, not a traceback."""

    def _render_traceback_(self) -> list[str]:
        return ["KeyboardInterrupt: the run was stopped. The partial answer is kept above and "
                "the conversation can continue in the next cell."]


__all__ += [
    "CellError",
    "ControlError",
    "PromptError",
    "RunInterrupted",
    "RunNotFinished",
    "TransientStreamError",
]
