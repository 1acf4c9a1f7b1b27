"""One-shot runs: ``run``, ``stream`` and their async twins ``arun``, ``astream``.

Each builds an ``AgentConfig``, an ``AgentState`` and an emitter, runs the loop once and
turns the final state into a ``Result``. The long-lived agent is ``session.Session``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from alloy_nb import _ledger
from alloy_nb._sync import run_sync
from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.errors import AgentError, ConfigError
from alloy_nb.messages import Message, Prompt, prompt_message, repair_history
from alloy_nb.output import agent_error
from alloy_nb.result import Result
from alloy_nb.state import AgentState

__all__ = ["arun", "astream", "run", "stream"]


def _history(prompt: Prompt, messages: Sequence[Any] | None) -> list[Message]:
    history = [m if isinstance(m, Message) else Message.model_validate(m) for m in messages or []]
    message = prompt_message(prompt)
    if message is not None:
        history.append(message)
    if not history:
        raise ConfigError("nothing to send: pass a prompt, or messages=[...] with a history")
    return repair_history(history)


def _checked(result: Result) -> Result:
    """``completed``/``max_turns``/``budget_exceeded`` return; anything else raises."""
    if result.ok:
        return result
    raise agent_error(result)


class _Job:
    """One prepared run: config, state and emitter, ready to go sync or async."""

    def __init__(self, prompt: Prompt, options: dict[str, Any], *, streaming: bool = False,
                 on_chunk: Callable[[str], Any] | None = None) -> None:
        if on_chunk is not None and not callable(on_chunk):
            raise ConfigError(f"on_chunk must be a callable taking a str, got {on_chunk!r}")
        messages = options.pop("messages", None)
        self.config = AgentConfig.from_options(**options)
        self.state = AgentState(messages=_history(prompt, messages))
        self.emitter = new_emitter(self.config, self.state)
        self.streaming = streaming
        self.on_chunk = on_chunk

    async def run(self) -> Result:
        """Run the loop; a cancelled caller gets ``CancelledError`` (asyncio semantics)."""
        try:
            await run_loop(self.config, self.state, self.emitter,
                           streaming=self.streaming, on_chunk=self.on_chunk)
        finally:  # counted however it ended (%alloy usage)
            _ledger.record_run(self.config, self.state.to_result())
        return _checked(self.state.to_result())

    def run_blocking(self) -> Result:
        """Run to completion from sync code; Ctrl-C/kernel interrupt cancels the run and
        raises ``AgentError`` (status ``cancelled``) carrying the partial Result."""
        try:
            return run_sync(self.run())
        except KeyboardInterrupt as exc:
            raise AgentError(self.state.to_result()) from exc


async def arun(prompt: Prompt = None, /, **options: Any) -> Result:
    """Run the agent on ``prompt`` (after ``messages=`` history) and return the Result.

    Raises ``AgentError`` for status halted/error/cancelled (``.result`` has the rest).
    """
    return await _Job(prompt, options).run()


async def astream(prompt: Prompt, on_chunk: Callable[[str], Any] | None = None, /,
                  **options: Any) -> Result:
    """Like ``arun``, streaming: ``on_chunk`` gets each text delta as it arrives."""
    return await _Job(prompt, options, streaming=True, on_chunk=on_chunk).run()


def run(prompt: Prompt = None, /, **options: Any) -> Result:
    """Blocking ``arun``; works in scripts and inside a running (notebook) event loop."""
    return _Job(prompt, options).run_blocking()


def stream(prompt: Prompt, on_chunk: Callable[[str], Any] | None = None, /,
           **options: Any) -> Result:
    """Blocking ``astream``: ``on_chunk`` gets each text delta as it arrives."""
    return _Job(prompt, options, streaming=True, on_chunk=on_chunk).run_blocking()
