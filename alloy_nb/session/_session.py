"""Session: the long-lived agent — a persistent history, a request queue, subscribers.

It wraps ``agent.run_loop`` and never grows a loop of its own. It validates what callers
pass and composes a ``RequestQueue`` (``_queue``: how one request runs and what it leaves);
save/load and the Markdown export live in ``_store``.
"""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from alloy_nb import _sync
from alloy_nb.agent import AgentConfig
from alloy_nb.errors import AgentError, ConfigError
from alloy_nb.events import Event, new_id
from alloy_nb.messages import Message, Prompt, prompt_message, repair_history
from alloy_nb.middleware import Halt, run_hook
from alloy_nb.result import Result
from alloy_nb.session import _store
from alloy_nb.session._queue import RequestQueue, Subscriber
from alloy_nb.session._request import RequestKind, SessionRequest
from alloy_nb.session._store import SessionSnapshot
from alloy_nb.state import AgentState
from alloy_nb.usage import Usage

__all__ = ["Session"]

log = logging.getLogger("alloy_nb")


def _timeout(value: object) -> float | None:
    """A per-call timeout in seconds: None (wait as long as it takes) or a number >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"timeout must be None or a number of seconds >= 0, got {value!r}")
    return float(value)


def _overrides(provider: Any, tools: Sequence[Any] | None, system_prompt: str | None,
               max_turns: int | None) -> dict[str, Any]:
    """The per-request options a caller gave (None: the session's own)."""
    given = {"provider": provider, "tools": tools, "system_prompt": system_prompt,
             "max_turns": max_turns}
    return {k: v for k, v in given.items() if v is not None}


class Session:
    """A conversation that keeps its history across calls; every option of ``run`` plus
    ``id``, ``name``, ``messages`` (initial history) and ``metadata``.

    One request runs at a time. ``chat``/``achat`` wait for an earlier chat and raise
    ``Busy`` while a background request runs; ``send_message`` starts a background request
    (queued FIFO up to ``max_pending``). A failed or cancelled request leaves a repaired,
    valid history and the queue moves on.

    Subscribers (``subscribe``) receive every ``Event`` of every request, correlated by
    request id, and then one ``Event`` with ``event == "result"`` and ``payload ==
    {"request_id": id, "result": Result}`` per finished request (cancelled queued ones
    included). ``usage`` is the running total over the session's life: ``reset()`` keeps
    it (reference §0.11), so a ``Result.usage`` from a session is cumulative too; the
    request's own share is ``result.run_usage``.
    """

    def __init__(
        self,
        *,
        id: str | None = None,
        name: str | None = None,
        messages: Sequence[Message | dict[str, Any]] | None = None,
        metadata: dict[str, Any] | None = None,
        on_shutdown: Callable[[Session], Any] | None = None,
        **options: Any,
    ) -> None:
        if on_shutdown is not None and not callable(on_shutdown):
            raise ConfigError(
                f"on_shutdown must be a callable taking the session, got {on_shutdown!r}")
        self._on_shutdown = on_shutdown
        self._shut_down = False
        self._config = AgentConfig.from_options(**options)
        sid = self._config.context.get("session_id")
        self.id: str = id or (sid if isinstance(sid, str) and sid else new_id(16))
        self.name = name
        self.metadata: dict[str, Any] = dict(metadata or {})
        self._queue = RequestQueue(self, repair_history(
            [m if isinstance(m, Message) else Message.model_validate(m) for m in messages or []]
        ))
        self.created_at: datetime = self._queue.updated_at

    @property
    def updated_at(self) -> datetime:
        """When a request last finished (or the history was reset)."""
        return self._queue.updated_at

    @updated_at.setter
    def updated_at(self, value: datetime) -> None:
        self._queue.updated_at = value

    def _restore(self, usage: Usage, created_at: datetime, updated_at: datetime) -> None:
        """Continue a saved session's usage and timestamps (``load``)."""
        self._queue.restore(usage, updated_at)
        self.created_at = created_at

    # ---- state --------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """A copy of the history (while a request runs: up to its prompt)."""
        return self._queue.messages

    @property
    def usage(self) -> Usage:
        return self._queue.usage

    @property
    def history(self) -> list[Result]:
        """One Result per finished request, oldest first (kept across ``reset``)."""
        return self._queue.history

    @property
    def last_result(self) -> Result | None:
        return self._queue.last_result

    @property
    def config(self) -> AgentConfig:
        return self._config

    @property
    def model(self) -> str:
        return self._config.model

    @property
    def max_tokens(self) -> int:
        """The context budget compaction works to (derived from the model unless given)."""
        return self._config.max_tokens

    @property
    def current_request_id(self) -> str | None:
        return self._queue.active_id

    def health(self) -> dict[str, Any]:
        """Status without waiting: ``running`` while a request runs; after a background
        request its final status and turns, after a chat ``idle`` and 0 (reference §7.7)."""
        queue = self._queue.status()
        return {
            "id": self.id, "name": self.name, "status": queue["status"],
            "busy": queue["busy"], "request_id": queue["request_id"], "turns": queue["turns"],
            "message_count": queue["message_count"], "usage": queue["usage"],
            "uptime_ms": queue["uptime_ms"], "pending_count": queue["pending_count"],
            "max_pending": self._config.max_pending, "model": self._config.model,
        }

    # ---- chat ---------------------------------------------------------------------------

    async def achat(self, prompt: Prompt = None, *, request_id: str | None = None,
                    on_event: Callable[[Event], Any] | None = None,
                    timeout: float | None = None, output_type: Any = None,
                    provider: Any = None, tools: Sequence[Any] | None = None,
                    system_prompt: str | None = None, max_turns: int | None = None) -> Result:
        """Send ``prompt`` and wait for the answer; the history is kept for the next call.

        ``provider``, ``tools``, ``system_prompt``, ``max_turns`` and ``output_type`` apply
        to this request only (validated like the constructor's options, so a bad one
        raises ``ConfigError`` here); the session's own options never change, so another
        request, even one running at the same time, never sees them.

        Raises ``AgentError`` (with the Result) for status halted/error/cancelled and
        ``Busy`` while a background request runs. ``timeout`` (seconds, reference §7.2)
        bounds the wait: when it expires the caller gets ``TimeoutError`` while the request
        keeps running in the background, like one from ``send_message`` (its id is
        ``request_id`` or ``current_request_id``; ``wait``, ``result`` and
        ``cancel_request`` take it). A request still waiting for an earlier chat when time
        is up never starts.
        """
        timeout = _timeout(timeout)
        request = self._request(prompt, request_id, "chat", on_event=on_event,
                                output_type=output_type,
                                overrides=_overrides(provider, tools, system_prompt, max_turns))
        return await self._queue.chat(request, timeout)

    async def astream_chat(self, prompt: Prompt, on_chunk: Callable[[str], Any] | None = None,
                           *, request_id: str | None = None,
                           on_event: Callable[[Event], Any] | None = None,
                           timeout: float | None = None, output_type: Any = None,
                           provider: Any = None, tools: Sequence[Any] | None = None,
                           system_prompt: str | None = None,
                           max_turns: int | None = None) -> Result:
        """``achat`` streaming: ``on_chunk`` gets each text delta as it arrives."""
        timeout = _timeout(timeout)
        request = self._request(prompt, request_id, "chat", True, on_chunk, on_event, output_type,
                                _overrides(provider, tools, system_prompt, max_turns))
        return await self._queue.chat(request, timeout)

    def chat(self, prompt: Prompt = None, *, request_id: str | None = None,
             on_event: Callable[[Event], Any] | None = None,
             timeout: float | None = None, output_type: Any = None,
             provider: Any = None, tools: Sequence[Any] | None = None,
             system_prompt: str | None = None, max_turns: int | None = None) -> Result:
        """Blocking ``achat`` (same per-request options); works inside a running notebook
        loop. An interrupt cancels the request and raises ``AgentError`` (status cancelled,
        history kept). On ``timeout`` (seconds) ``TimeoutError`` is raised and the request
        keeps running on the private loop thread (see ``achat``)."""
        timeout = _timeout(timeout)
        request = self._request(prompt, request_id, "chat", on_event=on_event,
                                output_type=output_type,
                                overrides=_overrides(provider, tools, system_prompt, max_turns))
        return self._blocking(request, timeout)

    def stream_chat(self, prompt: Prompt, on_chunk: Callable[[str], Any] | None = None, *,
                    request_id: str | None = None,
                    on_event: Callable[[Event], Any] | None = None,
                    timeout: float | None = None, output_type: Any = None,
                    provider: Any = None, tools: Sequence[Any] | None = None,
                    system_prompt: str | None = None, max_turns: int | None = None) -> Result:
        """Blocking ``astream_chat``."""
        timeout = _timeout(timeout)
        request = self._request(prompt, request_id, "chat", True, on_chunk, on_event, output_type,
                                _overrides(provider, tools, system_prompt, max_turns))
        return self._blocking(request, timeout)

    def _request(self, prompt: Prompt, request_id: str | None, kind: RequestKind,
                 streaming: bool = False, on_chunk: Callable[[str], Any] | None = None,
                 on_event: Callable[[Event], Any] | None = None,
                 output_type: Any = None,
                 overrides: dict[str, Any] | None = None) -> SessionRequest:
        if output_type is not None:
            from alloy_nb.output import output_spec

            output_spec(output_type)  # an unusable type fails here, in the caller
        if overrides:
            self._config.replace(**overrides)  # validated now, in the caller; applied per run
        if on_chunk is not None and not callable(on_chunk):
            raise ConfigError(f"on_chunk must be a callable taking a str, got {on_chunk!r}")
        message = prompt_message(prompt)
        return SessionRequest(request_id or new_id(16), message, kind, streaming, on_chunk,
                              on_event, output_type=output_type, overrides=dict(overrides or {}))

    def _blocking(self, request: SessionRequest, timeout: float | None = None) -> Result:
        try:
            return _sync.run_sync(self._queue.chat(request, timeout))
        except KeyboardInterrupt as exc:
            done = request.future.done()
            result = request.future.result() if done else Result(
                messages=self.messages, usage=self.usage, status="cancelled",
                error="cancelled", request_id=request.request_id)
            raise AgentError(result) from exc

    # ---- background requests ------------------------------------------------------------

    def send_message(self, prompt: Prompt, *, request_id: str | None = None,
                     streaming: bool = False, on_chunk: Callable[[str], Any] | None = None,
                     on_event: Callable[[Event], Any] | None = None) -> str:
        """Start ``prompt`` in the background (or queue it) and return its request id.

        Runs on the current event loop when there is one (a notebook's), else on the
        private loop thread. Raises ``Busy`` when a request runs and ``max_pending`` is 0,
        ``QueueFull`` when ``max_pending`` requests already wait.
        """
        request = self._request(prompt, request_id, "background", streaming, on_chunk,
                                on_event)
        self._queue.submit(request)
        return request.request_id

    def cancel_request(self, request_id: str) -> bool:
        """Cancel a running request (its task is cancelled; history repaired, usage kept)
        or remove a queued one. True when found, False for unknown or finished ids."""
        return self._queue.cancel(request_id)

    def cancel(self) -> bool:
        """Cancel the running request, if any (the queue is left alone)."""
        rid = self.current_request_id
        return rid is not None and self.cancel_request(rid)

    def wait(self, request_id: str, timeout: float | None = None) -> Result:
        """Block until a request has finished and return its Result (never raises for a
        failed run). From code running on the request's own loop, ``await result()``."""
        return self._queue.wait(request_id, timeout)

    async def result(self, request_id: str, timeout: float | None = None) -> Result:
        """Await a request's Result from any loop; cancelling the await leaves it running."""
        return await self._queue.result(request_id, timeout)

    # ---- subscribers --------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event and final result (see the class
        docstring); returns a function that unsubscribes. Callbacks run on the thread of
        the loop running the request; one that raises is logged and ignored."""
        if not callable(callback):
            raise ConfigError(f"subscribe needs a callable taking an Event, got {callback!r}")
        return self._queue.subscribe(callback)

    # ---- model, reset, close ------------------------------------------------------------

    def set_model(self, provider: Any) -> None:
        """Switch provider (any spec ``run`` accepts); history, usage and options stay. The
        context budget follows the new model unless ``max_tokens`` was given explicitly."""
        with self._queue.idle("switch the model"):
            self._config = self._config.with_provider(provider)

    def configure(self, **options: Any) -> None:
        """Change loop options between requests (``tools``, ``system_prompt``, ``max_turns``,
        ``provider`` …); validated like the constructor, and history and usage stay."""
        with self._queue.idle("reconfigure the session"):
            self._config = self._config.replace(**options)

    def reset(self) -> None:
        """Forget the history (and the queue); ``usage``, ``id`` and ``history`` stay."""
        self._queue.reset()

    async def aclose(self) -> None:
        """Cancel queued and running requests, run ``session_end`` middleware, then (once)
        ``on_shutdown(session)``. A ``session_id`` that ``session_end`` puts in the
        context becomes ``session.id`` first (reference §7.8); ``on_shutdown`` errors are
        logged, never raised."""
        await self._queue.cancel_all()
        if self._config.middleware:
            state = AgentState(messages=self.messages, usage=self.usage, config=self._config,
                               context={**self._queue.context, "session_id": self.id})
            try:
                out = await run_hook(self._config.middleware, "session_end", state)
                if isinstance(out, Halt):
                    log.warning("session_end middleware halted: %s", out.reason)
                else:
                    self._queue.adopt_session_id(out.context)
            except Exception:
                log.exception("session_end middleware raised; ignoring")
        await self._shutdown_callback()

    async def _shutdown_callback(self) -> None:
        if self._on_shutdown is None or self._shut_down:
            return
        self._shut_down = True
        try:
            out = self._on_shutdown(self)
            if inspect.isawaitable(out):
                await out
        except Exception:
            log.exception("on_shutdown callback raised; ignoring")

    def close(self) -> None:
        """Blocking ``aclose``."""
        _sync.run_sync(self.aclose())

    async def __aenter__(self) -> Session:
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.aclose()

    def __enter__(self) -> Session:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- persistence --------------------------------------------------------------------

    def snapshot(self) -> SessionSnapshot:
        """A key-free, JSON-ready picture: id, name, messages, usage, system prompt, model."""
        config = self._config
        health = self.health()
        return SessionSnapshot(
            id=self.id,
            name=self.name,
            messages=self.messages,
            usage=self.usage,
            system_prompt=config.system_prompt,
            model=config.model or None,
            provider=str(getattr(config.provider, "name", "") or "") or None,
            max_tokens=config.max_tokens if config.max_tokens_explicit else None,
            metadata={**self.metadata, "status": health["status"], "turns": health["turns"]},
            created_at=self.created_at,
            updated_at=self.updated_at,
        )

    def save(self, path: str | Path) -> Path:
        """Write ``snapshot()`` as JSON (atomically). Never writes keys or ``context``."""
        return _store.save(self.snapshot(), path)

    @classmethod
    def load(cls, path: str | Path, provider: Any = None, **options: Any) -> Session:
        """A Session continuing a saved one. ``provider`` defaults to the saved provider and
        model (``"anthropic:MODEL"``…, key from the environment); options as ``Session``."""
        snap = _store.read(path)
        provider, options = _store.restored_options(snap, path, provider, options)
        session = cls(provider=provider, id=snap.id, name=snap.name, messages=snap.messages,
                      metadata=_store.saved_metadata(snap), **options)
        session._restore(snap.usage, snap.created_at, snap.updated_at)
        return session

    def export_markdown(self, path: str | Path | None = None) -> str:
        """The conversation as Markdown (thinking collapsed, tool calls/results fenced)."""
        return _store.export_markdown(
            title=self.name or f"Session {self.id}", model=self.model, messages=self.messages,
            usage=self.usage, system_prompt=self._config.system_prompt, path=path)

    def __repr__(self) -> str:
        health = self.health()
        label = f", name={self.name!r}" if self.name else ""
        return (f"Session(id={self.id!r}{label}, model={health['model']!r}, "
                f"messages={health['message_count']}, status={health['status']!r})")
