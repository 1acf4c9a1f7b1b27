"""Session: the long-lived agent — a persistent history, a request queue, subscribers.

It wraps ``agent.run_loop`` and never grows a loop of its own. How one request runs lives
in ``_session_runner``, save/load and the Markdown export in ``_session_store``.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from alloy_nb import _session_store, _sync
from alloy_nb._session_jobs import Job, await_future
from alloy_nb._session_runner import SessionRunner, _now
from alloy_nb.agent import AgentConfig
from alloy_nb.errors import AgentError, Busy, ConfigError, QueueFull
from alloy_nb.events import Emitter, Event, new_id
from alloy_nb.messages import Message, Prompt, prompt_message, repair_history
from alloy_nb.middleware import Halt, run_hook
from alloy_nb.result import Result
from alloy_nb.state import AgentState
from alloy_nb.usage import Usage

__all__ = ["Prompt", "Session", "SessionFileError", "SessionSnapshot"]

log = logging.getLogger("alloy_nb")
SessionSnapshot = _session_store.SessionSnapshot
SessionFileError = _session_store.SessionFileError
Subscriber = Callable[[Event], Any]


def _timeout(value: Any) -> float | None:
    """A per-call timeout in seconds: None (wait as long as it takes) or a number >= 0."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise ConfigError(f"timeout must be None or a number of seconds >= 0, got {value!r}")
    return float(value)


class Session(SessionRunner):
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
        super().__init__(repair_history(
            [m if isinstance(m, Message) else Message.model_validate(m) for m in messages or []]
        ))

    # ---- state --------------------------------------------------------------------------

    @property
    def messages(self) -> list[Message]:
        """A copy of the history (while a request runs: up to its prompt)."""
        with self._lock:
            return list(self._messages)

    @property
    def usage(self) -> Usage:
        with self._lock:
            return self._usage

    @property
    def history(self) -> list[Result]:
        """One Result per finished request, oldest first (kept across ``reset``)."""
        with self._lock:
            return list(self._history)

    @property
    def last_result(self) -> Result | None:
        with self._lock:
            return self._history[-1] if self._history else None

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
        with self._lock:
            return self._active.request_id if self._active else None

    def health(self) -> dict[str, Any]:
        """Status without waiting: ``running`` while a request runs; after a background
        request its final status and turns, after a chat ``idle`` and 0 (reference §7.7)."""
        with self._lock:
            active = self._active
            status, turns = self._last
            if active is not None:
                status = "running"
                turns = active.state.turn if active.state is not None else 0
            return {
                "id": self.id, "name": self.name, "status": status, "busy": active is not None,
                "request_id": active.request_id if active else None, "turns": turns,
                "message_count": len(self._messages), "usage": self._usage,
                "uptime_ms": max(1, int((time.monotonic() - self._born) * 1000)),
                "pending_count": len(self._pending), "max_pending": self._config.max_pending,
                "model": self._config.model,
            }

    # ---- chat ---------------------------------------------------------------------------

    async def achat(self, prompt: Prompt = None, *, request_id: str | None = None,
                    on_event: Callable[[Event], Any] | None = None,
                    timeout: float | None = None, output_type: Any = None) -> Result:
        """Send ``prompt`` and wait for the answer; the history is kept for the next call.

        Raises ``AgentError`` (with the Result) for status halted/error/cancelled and
        ``Busy`` while a background request runs. ``timeout`` (seconds, reference §7.2)
        bounds the wait: when it expires the caller gets ``TimeoutError`` while the request
        keeps running in the background, like one from ``send_message`` (its id is
        ``request_id`` or ``current_request_id``; ``wait``, ``result`` and
        ``cancel_request`` take it). A request still waiting for an earlier chat when time
        is up never starts.
        """
        timeout = _timeout(timeout)
        job = self._job(prompt, request_id, "chat", on_event=on_event, output_type=output_type)
        return await self._chat(job, timeout)

    async def astream_chat(self, prompt: Prompt, on_chunk: Callable[[str], Any] | None = None,
                           *, request_id: str | None = None,
                           on_event: Callable[[Event], Any] | None = None,
                           timeout: float | None = None, output_type: Any = None) -> Result:
        """``achat`` streaming: ``on_chunk`` gets each text delta as it arrives."""
        timeout = _timeout(timeout)
        job = self._job(prompt, request_id, "chat", True, on_chunk, on_event, output_type)
        return await self._chat(job, timeout)

    def chat(self, prompt: Prompt = None, *, request_id: str | None = None,
             on_event: Callable[[Event], Any] | None = None,
             timeout: float | None = None, output_type: Any = None) -> Result:
        """Blocking ``achat``; works inside a running notebook loop. An interrupt cancels
        the request and raises ``AgentError`` (status cancelled, history kept). On
        ``timeout`` (seconds) ``TimeoutError`` is raised and the request keeps running on
        the private loop thread (see ``achat``)."""
        timeout = _timeout(timeout)
        job = self._job(prompt, request_id, "chat", on_event=on_event, output_type=output_type)
        return self._blocking(job, timeout)

    def stream_chat(self, prompt: Prompt, on_chunk: Callable[[str], Any] | None = None, *,
                    request_id: str | None = None,
                    on_event: Callable[[Event], Any] | None = None,
                    timeout: float | None = None, output_type: Any = None) -> Result:
        """Blocking ``astream_chat``."""
        timeout = _timeout(timeout)
        job = self._job(prompt, request_id, "chat", True, on_chunk, on_event, output_type)
        return self._blocking(job, timeout)

    def _job(self, prompt: Prompt, request_id: str | None, kind: Any, streaming: bool = False,
             on_chunk: Callable[[str], Any] | None = None,
             on_event: Callable[[Event], Any] | None = None,
             output_type: Any = None) -> Job:
        if output_type is not None:
            from alloy_nb.output import output_spec

            output_spec(output_type)  # an unusable type fails here, in the caller
        if on_chunk is not None and not callable(on_chunk):
            raise ConfigError(f"on_chunk must be a callable taking a str, got {on_chunk!r}")
        message = prompt_message(prompt)
        return Job(request_id or new_id(16), message, kind, streaming, on_chunk, on_event,
                   output_type=output_type)

    def _blocking(self, job: Job, timeout: float | None = None) -> Result:
        try:
            return _sync.run_sync(self._chat(job, timeout))
        except KeyboardInterrupt as exc:
            done = job.future.done()
            result = job.future.result() if done else Result(
                messages=self.messages, usage=self.usage, status="cancelled",
                error="cancelled", request_id=job.request_id)
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
        job = self._job(prompt, request_id, "background", streaming, on_chunk, on_event)
        with self._lock:
            if self._active is None and not self._pending:
                self._register(job)
                start = True
            else:
                limit = self._config.max_pending
                if limit == 0:
                    raise Busy(f"session {self.id} is running request "
                               f"{self._active.request_id if self._active else '?'} and "
                               "max_pending is 0; wait, cancel it, or set max_pending")
                if len(self._pending) >= limit:
                    raise QueueFull(f"session {self.id} already has {limit} queued requests")
                old = self._jobs.get(job.request_id)
                if old is not None and not old.finished:
                    raise ConfigError(f"request id {job.request_id!r} is already in use")
                self._jobs[job.request_id] = job
                self._pending.append(job)
                start = False
        if start:
            self._launch(job)
        return job.request_id

    def cancel_request(self, request_id: str) -> bool:
        """Cancel a running request (its task is cancelled; history repaired, usage kept)
        or remove a queued one. True when found, False for unknown or finished ids."""
        with self._lock:
            job = self._jobs.get(request_id)
            if job is None or job.finished:
                return False
            if job is self._active:
                job.cancel_requested = True
            elif job in self._pending:
                self._pending.remove(job)
                job.finished = True
            else:
                return False
        if not job.finished:
            job.cancel_task()
            return True
        result = Result(messages=self.messages, usage=self.usage, status="cancelled",
                        error="cancelled", request_id=request_id)
        result = result.model_copy(update={"cancelled_phase": "queued"})
        self._complete(job, result, Emitter(request_id))
        return True

    def cancel(self) -> bool:
        """Cancel the running request, if any (the queue is left alone)."""
        rid = self.current_request_id
        return rid is not None and self.cancel_request(rid)

    def wait(self, request_id: str, timeout: float | None = None) -> Result:
        """Block until a request has finished and return its Result (never raises for a
        failed run). From code running on the request's own loop, ``await result()``."""
        job = self._get(request_id)
        if not job.future.done():
            try:
                running = asyncio.get_running_loop()
            except RuntimeError:
                running = None
            with self._lock:
                loop = job.loop or (self._active.loop if self._active else None)
            if running is not None and (loop is None or loop is running):
                raise RuntimeError(
                    "session.wait() would block the event loop this request runs on; "
                    "use `await session.result(request_id)` instead")
        return job.future.result(timeout)

    async def result(self, request_id: str, timeout: float | None = None) -> Result:
        """Await a request's Result from any loop; cancelling the await leaves it running."""
        job = self._get(request_id)
        await asyncio.wait_for(await_future(job.future), timeout)
        return job.future.result()

    def _get(self, request_id: str) -> Job:
        with self._lock:
            job = self._jobs.get(request_id)
        if job is None:
            raise KeyError(f"no request {request_id!r} in session {self.id}")
        return job

    # ---- subscribers --------------------------------------------------------------------

    def subscribe(self, callback: Subscriber) -> Callable[[], None]:
        """Call ``callback(event)`` for every event and final result (see the class
        docstring); returns a function that unsubscribes. Callbacks run on the thread of
        the loop running the request; one that raises is logged and ignored."""
        if not callable(callback):
            raise ConfigError(f"subscribe needs a callable taking an Event, got {callback!r}")
        with self._lock:
            self._subscribers.append(callback)

        def unsubscribe() -> None:
            with self._lock:
                if callback in self._subscribers:
                    self._subscribers.remove(callback)

        return unsubscribe

    # ---- model, reset, close ------------------------------------------------------------

    def set_model(self, provider: Any) -> None:
        """Switch provider (any spec ``run`` accepts); history, usage and options stay. The
        context budget follows the new model unless ``max_tokens`` was given explicitly."""
        with self._lock:
            self._check_idle("switch the model")
            self._config = self._config.with_provider(provider)

    def configure(self, **options: Any) -> None:
        """Change loop options between requests (``tools``, ``system_prompt``, ``max_turns``,
        ``provider`` …); validated like the constructor, and history and usage stay."""
        with self._lock:
            self._check_idle("reconfigure the session")
            self._config = self._config.replace(**options)

    def reset(self) -> None:
        """Forget the history (and the queue); ``usage``, ``id`` and ``history`` stay."""
        with self._lock:
            self._check_idle("reset the session")
            self._messages = []
            self._pending.clear()
            self._last = ("idle", 0)
            self.updated_at = _now()

    async def aclose(self) -> None:
        """Cancel queued and running requests, run ``session_end`` middleware, then (once)
        ``on_shutdown(session)``. A ``session_id`` that ``session_end`` puts in the
        context becomes ``session.id`` first (reference §7.8); ``on_shutdown`` errors are
        logged, never raised."""
        with self._lock:
            queued = list(self._pending)
            active = self._active
        for job in queued:
            self.cancel_request(job.request_id)
        if active is not None:
            self.cancel_request(active.request_id)
            await await_future(active.future)
        if self._config.middleware:
            state = AgentState(messages=self.messages, usage=self.usage, config=self._config,
                               context={**self._context, "session_id": self.id})
            try:
                out = await run_hook(self._config.middleware, "session_end", state)
                if isinstance(out, Halt):
                    log.warning("session_end middleware halted: %s", out.reason)
                else:
                    self._adopt_session_id(out.context)
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
        return _session_store.snapshot(self)

    def save(self, path: str | Path) -> Path:
        """Write ``snapshot()`` as JSON (atomically). Never writes keys or ``context``."""
        return _session_store.save(self.snapshot(), path)

    @classmethod
    def load(cls, path: str | Path, provider: Any = None, **options: Any) -> Session:
        """A Session continuing a saved one. ``provider`` defaults to the saved provider and
        model (``"anthropic:MODEL"``…, key from the environment); options as ``Session``."""
        return _session_store.load(cls, path, provider, options)

    def export_markdown(self, path: str | Path | None = None) -> str:
        """The conversation as Markdown (thinking collapsed, tool calls/results fenced)."""
        return _session_store.export_markdown(self, path)

    def __repr__(self) -> str:
        health = self.health()
        label = f", name={self.name!r}" if self.name else ""
        return (f"Session(id={self.id!r}{label}, model={health['model']!r}, "
                f"messages={health['message_count']}, status={health['status']!r})")
