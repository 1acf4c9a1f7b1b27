"""The provider template: ``HTTPProvider`` posts or streams a request body and parses the
reply, the same way for every vendor. A provider module supplies only the translation, through
three hooks with the same names everywhere:

- ``build_body(request, stream=...)``: our request as the vendor's JSON body;
- ``parse_reply(call, data, request_id)``: a whole JSON reply as a ``Completion``;
- ``new_accumulator(events, on_delta)``: an ``Accumulator`` that rebuilds a streamed reply.

The batch client (``alloy_nb/batch/_vendor_api.py``) reuses ``build_body`` and ``parse_reply``.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any, ClassVar, Protocol

from alloy_nb.errors import (
    ConfigError,
    ProviderConfigError,
    ProviderError,
    ProviderHTTPError,
    StreamError,
)
from alloy_nb.providers._sse import SSEEvent
from alloy_nb.providers._transport import (
    DEFAULT_MAX_RESPONSE_BYTES,
    ApiKey,
    Call,
    EventStream,
    auth_headers,
    open_stream,
    post_json,
)
from alloy_nb.providers._vendor_errors import trim, who
from alloy_nb.providers.base import (
    Completion,
    DeltaKind,
    OnDelta,
    Provider,
    ProviderRequest,
    report_lost_usage,
)
from alloy_nb.usage import Usage

__all__ = ["Accumulator", "HTTPProvider", "check_max_output_tokens"]


def check_max_output_tokens(value: Any) -> None:
    """A ConfigError at construction unless ``value`` is a positive integer."""
    if not isinstance(value, int) or value < 1:
        raise ConfigError(f"max_output_tokens must be a positive integer, got {value!r}")


class Accumulator(Protocol):
    """Rebuilds one streamed reply from its events, handing deltas on as they arrive."""

    def feed(self, event: SSEEvent) -> None:
        """Take one SSE event (deltas go to ``on_delta`` from here)."""

    def result(self) -> Completion:
        """The whole reply, once the stream ended; a StreamError if it was cut short."""

    def partial_usage(self) -> Usage:
        """The usage the vendor reported so far (kept, via ``report_lost_usage``, when the
        reply never completes)."""


class HTTPProvider(Provider):
    """What every HTTP provider does the same way: ``complete`` posts the body and parses
    the JSON reply; ``stream`` feeds the SSE events to an accumulator, or parses the reply
    as a whole when the server answered with plain JSON.

    Subclasses pass their endpoint, key and extra headers to ``__init__`` and supply the
    translation: ``build_body``, ``parse_reply`` and ``new_accumulator``.
    """

    supports_streaming = True
    auth_scheme: ClassVar[str] = "bearer"
    """How the key is sent: ``"x-api-key"`` or ``"bearer"`` (see ``auth_headers``)."""
    base_headers: ClassVar[Mapping[str, str]] = {"content-type": "application/json"}
    """Sent first; the caller's headers may override them, the auth header comes last."""
    max_response_bytes: int = DEFAULT_MAX_RESPONSE_BYTES
    """Largest reply read; set it on an instance to change it (ResponseTooLargeError past it)."""

    def __init__(
        self, model: str, base_url: str, path: str, key: ApiKey, headers: Mapping[str, str]
    ) -> None:
        self.model = model
        self.base_url = base_url.rstrip("/")
        if self.base_url.endswith("/v1") and path.startswith("/v1/"):
            path = path[3:]  # base URLs (OPENAI_BASE_URL above all) often end in /v1 already
        self._url = self.base_url + (path if path.startswith("/") else "/" + path)
        self._key = key
        self._headers = dict(headers)

    def missing_key(self) -> tuple[str, ...]:
        """The environment variables one of which must be set before a request can be
        sent; empty when a key is at hand (given, or in the environment) or none is needed.
        Lets a front end fail at configuration time instead of at the first request."""
        try:
            self._key.get(self.name, self.model)
        except ProviderConfigError:
            return self._key.env or ("api_key",)
        return ()

    def _call(self, *, stream: bool = False) -> Call:
        key = self._key.get(self.name, self.model)
        headers = {**self.base_headers, **self._headers, **auth_headers(self.auth_scheme, key)}
        return Call(self.name, self.model, self._endpoint(stream), headers, key,
                    self.max_response_bytes)

    def _endpoint(self, stream: bool) -> str:
        """The URL a request goes to; one for both unless the vendor streams elsewhere."""
        return self._url

    def refine_error(self, err: ProviderHTTPError) -> ProviderHTTPError:
        """The vendor's own reading of an HTTP error the shared mapping made (a status it
        uses differently, a wait given in the body); the default keeps it as it is."""
        return err

    @abstractmethod
    def build_body(self, request: ProviderRequest, *, stream: bool) -> dict[str, Any]:
        """The request body for ``request`` (shared by complete and stream)."""

    @abstractmethod
    def parse_reply(self, call: Call, data: Any, request_id: str | None) -> Completion:
        """A whole (non-streamed) JSON reply as a Completion."""

    @abstractmethod
    def new_accumulator(self, events: EventStream, on_delta: OnDelta) -> Accumulator:
        """A fresh accumulator for one streamed reply."""

    async def complete(self, request: ProviderRequest) -> Completion:
        call = self._call()
        body = self.build_body(request, stream=False)
        with self._refined():
            data, rid = await post_json(call, body, request.timeout_s)
        with _hostile(call, rid):
            return self.parse_reply(call, data, rid)

    async def stream(self, request: ProviderRequest, on_delta: OnDelta) -> Completion:
        call = self._call(stream=True)
        body = self.build_body(request, stream=True)
        with self._refined():
            async with open_stream(call, body, request.timeout_s) as events:
                if not events.is_sse:
                    data = await events.json()
                    with _hostile(call, events.request_id):
                        return self.parse_reply(call, data, events.request_id)
                return await self._consume(events, on_delta)

    @contextmanager
    def _refined(self) -> Iterator[None]:
        """HTTP errors leave through ``refine_error``."""
        try:
            yield
        except ProviderHTTPError as exc:
            refined = self.refine_error(exc)
            if refined is exc:
                raise
            # from None: the refined error carries the same fields (message, body, status)
            raise refined from None

    async def _consume(self, events: EventStream, on_delta: OnDelta) -> Completion:
        """Feed one stream's events to a fresh accumulator and return its Completion."""

        def checked(kind: DeltaKind, text: object) -> None:  # a non-text delta is malformed
            if not isinstance(text, str):
                raise TypeError(f"{kind} delta is a {type(text).__name__}, not text")
            try:
                on_delta(kind, text)
            except Exception as exc:  # the callback's own error: not a malformed event
                # from None: _CallbackFailed only carries ``exc`` (re-raised as itself below)
                raise _CallbackFailed(exc) from None

        acc = self.new_accumulator(events, checked)
        try:
            try:
                with _hostile(events.call, events.request_id):
                    async for event in events:
                        acc.feed(event)
                    return acc.result()
            except _CallbackFailed as failed:
                raise failed.error  # noqa: B904 - the callback's exception, as it was raised
        except BaseException:  # cancelled or failed: the tokens reported were billed
            report_lost_usage(_partial_usage(acc))
            raise


class _CallbackFailed(Exception):
    """Carries an ``on_delta`` exception past ``_hostile`` untouched."""

    def __init__(self, error: Exception) -> None:
        super().__init__(repr(error))
        self.error = error


@contextmanager
def _hostile(call: Call, request_id: str | None) -> Iterator[None]:
    """A reply whose JSON has the right syntax but the wrong shapes (a list where an object
    belongs, ``"abc"`` for a token count) is a StreamError, whatever the parser tripped on."""
    try:
        yield
    except ProviderError:
        raise
    except (AttributeError, TypeError, ValueError, KeyError, IndexError, OverflowError,
            RecursionError) as exc:
        raise StreamError(
            call.scrub(f"malformed reply from {call.provider}: {type(exc).__name__}: "
                       f"{trim(str(exc), 200)}"),
            **who(call, request_id),
        ) from exc


def _partial_usage(acc: Accumulator) -> Usage:
    try:
        usage = acc.partial_usage()
    except Exception:  # garbage usage in a broken stream: nothing to keep
        return Usage()
    return usage if isinstance(usage, Usage) else Usage()

