"""The agent loop: compaction → hooks → model call → tools → repeat, over explicit state.

No I/O of its own and no UI: effects come in through the config (provider, tools,
middleware) and go out as events through the emitter. ``api`` and ``Session`` wrap it.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
import logging
import time
from collections.abc import Callable, Iterable
from typing import Any, NoReturn

from alloy_nb import model_metadata, telemetry
from alloy_nb.agent.config import AgentConfig
from alloy_nb.agent.executor import execute_tools
from alloy_nb.agent.retry import DEADLINE_HEADROOM_S, call_with_retry
from alloy_nb.compaction import MESSAGE_OVERHEAD, estimate_tokens, maybe_compact
from alloy_nb.errors import AlloyError, PromptTooLongError, ProviderError
from alloy_nb.events import CompactionPayload, Emitter, ErrorStage, Listener, new_id
from alloy_nb.messages import (
    ToolResultBlock,
    ToolUseBlock,
    assistant,
    repair_history,
    tool_results,
    user,
)
from alloy_nb.middleware import Halt, Hook, run_hook
from alloy_nb.output import FINAL_RESULT, OUTPUT_ERROR_PREFIX, OUTPUT_RETRIES
from alloy_nb.providers.base import (
    Completion,
    DeltaKind,
    Provider,
    ProviderRequest,
    UsageMeter,
    metering,
)
from alloy_nb.result import ToolCall
from alloy_nb.state import AgentState, StateStatus
from alloy_nb.usage import Usage

__all__ = ["CONTINUATION_PROMPT", "new_emitter", "run_loop"]

log = logging.getLogger("alloy_nb")

#: User message appended when the model ends its turn before calling ``until_tool``.
CONTINUATION_PROMPT = (
    "You ended your turn without calling the `{tool}` tool. Please call the `{tool}` tool "
    "now; the task is not complete until you do."
)


def new_emitter(
    config: AgentConfig,
    state: AgentState | None = None,
    *,
    correlation_id: str | None = None,
    listeners: Iterable[Listener] = (),
) -> Emitter:
    """An emitter for one run, delivering to ``config.on_event`` and ``listeners``.

    Correlation id: the explicit one, else ``context["request_id"]``, else
    ``context["correlation_id"]`` (strings only), else ``"run_<random>"``.
    """
    ctx = {**config.context, **(state.context if state is not None else {})}
    if correlation_id is None:
        for key in ("request_id", "correlation_id"):
            if isinstance(ctx.get(key), str):
                correlation_id = ctx[key]
                break
    found = [config.on_event, *listeners]
    return Emitter(correlation_id or f"run_{new_id()}", [f for f in found if f is not None])


#: Ends the partial answer kept in history when a streaming run is cancelled.
INTERRUPTED_MARK = "[interrupted by the user]"


def _price(usage: Usage, model: str | None, overrides: dict[str, Any]) -> Usage:
    info = model_metadata.lookup(model, overrides) if model else None
    if info is None:
        return usage.with_cost(None, None)
    return usage.with_cost(
        info.input_price, info.output_price, info.cache_read_price, info.cache_write_price
    )


class _Stop(Exception):
    """Raised by a helper once the run's final status and error are on the state; it
    unwinds the current turn, which ends the loop. Never leaves ``_Loop``."""


class _Loop:
    """One ``run_loop`` call: the state, the emitter and the per-run deadline.

    ``_run`` is the loop: one model turn per iteration. Each helper either returns (go
    on) or stops the run with ``_stop``/``_fail``/a halting hook, which raise ``_Stop``.
    """

    def __init__(self, config: AgentConfig, state: AgentState, emitter: Emitter,
                 streaming: bool, on_chunk: Callable[[str], object] | None) -> None:
        self.state = state
        self.emitter = emitter
        self.streaming = streaming
        self.on_chunk = on_chunk
        self.unpriced_warned = False
        self.partial: list[str] = []  # text streamed in the turn now running
        self.meter: UsageMeter | None = None  # usage of replies that never completed
        self.output_misses = 0  # output_type: turns without a valid final_result
        self.deadline = time.monotonic() + config.timeout_ms / 1000 - DEADLINE_HEADROOM_S
        state.config = config
        if config.context:
            state.context = {**config.context, **state.context}

    @property
    def config(self) -> AgentConfig:
        config = self.state.config  # middleware may swap it between turns
        assert config is not None, "the loop set state.config"
        return config

    # ---- outcomes -------------------------------------------------------------------

    def _end(self, status: StateStatus, error: str | None = None) -> None:
        self.state.status = status
        self.state.error = error

    def _stop(self, status: StateStatus, error: str | None = None) -> NoReturn:
        self._end(status, error)
        raise _Stop

    async def _hook(self, hook: Hook) -> None:
        """Run a threading hook; a ``Halt`` stops the run."""
        if not self.config.middleware:
            return
        out = await run_hook(self.config.middleware, hook, self.state)
        if isinstance(out, Halt):
            self._stop("halted", f"Halted by middleware: {out.reason}")
        if out is not self.state:  # a replacement state: adopt it, callers hold ours
            for f in dataclasses.fields(AgentState):
                setattr(self.state, f.name, getattr(out, f.name))

    async def _fail(self, err: Exception, kind: ErrorStage = "provider") -> NoReturn:
        """Stop with status ``error`` (an ``on_error`` hook that halts wins)."""
        self._end("error", str(err))
        self.emitter.emit("error", {
            "error": str(err), "type": type(err).__name__, "stage": kind,
            "retryable": isinstance(err, ProviderError) and err.retryable,
        }, turn=self.state.turn + 1)
        await self._hook("on_error")
        raise _Stop

    # ---- the loop -------------------------------------------------------------------

    async def _run(self) -> None:
        """One model turn per iteration until a limit or a helper stops the run."""
        self.state.status = "running"
        self.state.error = None
        while not self._limit_reached():
            with telemetry.turn_span(self.state.turn + 1):
                try:
                    await self._turn()
                except _Stop:  # caught inside the span: a normal end, not a span error
                    return

    def _limit_reached(self) -> bool:
        """True, with the final status set, once ``max_turns`` or the budget is spent."""
        state, config = self.state, self.config
        if state.turn >= config.max_turns:
            self._end("max_turns")
            return True
        budget = config.max_budget_cents
        if budget is not None and state.usage.estimated_cost_cents > budget:
            cost = state.usage.estimated_cost_cents
            self._end(
                "budget_exceeded",
                f"Budget exceeded: estimated cost {cost:.4f} cents > max_budget_cents {budget}",
            )
            return True
        return False

    async def _turn(self) -> None:
        """Compaction, hooks, the model call, then tools or the end of the answer."""
        await self._compact()
        await self._hook("before_completion")
        completion = await self._model_call()
        calls = [b for b in completion.message.content if isinstance(b, ToolUseBlock)]
        if calls and completion.stop_reason == "tool_use":
            await self._tools(calls)
        elif completion.raw_stop_reason == "pause_turn" and not calls:
            pass  # a server tool paused a long turn: re-send the history to resume it
        else:
            if calls:  # cut off (max_tokens, length): never run a call whose arguments
                self._refuse_cut_off(calls, completion)  # may be partial
            await self._end_turn()

    # ---- the model call -------------------------------------------------------------

    async def _model_call(self) -> Completion:
        """The turn's completion, recorded; a provider failure stops the run."""
        config = self.config
        number = self.state.turn + 1
        self.emitter.emit("turn_start", {
            "model": config.model, "provider": config.provider.name,
        }, turn=number)
        try:
            completion, provider = await self._call(number)
        except PromptTooLongError as err:  # reference 0.10: force-compact, retry the turn once
            await self._compact(overflow=err)
            try:
                completion, provider = await self._call(number)
            except ProviderError as again:
                await self._fail(again)
        except ProviderError as err:
            self._keep_lost_usage()
            await self._fail(err)
        self._keep_lost_usage()  # attempts that failed mid-stream before a retry succeeded
        self._record(completion, provider)
        return completion

    async def _call(self, number: int) -> tuple[Completion, Provider]:
        config = self.config
        request = ProviderRequest(
            messages=list(self.state.messages), tools=config.tool_definitions,
            system=config.system_prompt,
        )
        with telemetry.provider_span(config, number) as span:
            completion, provider = await call_with_retry(
                config, request, self.emitter, turn=number, deadline=self.deadline,
                streaming=self.streaming, on_delta=self._delta_sink(number),
            )
            span.completion(completion, provider)
        return completion, provider

    def _delta_sink(self, turn: int) -> Callable[[DeltaKind, str], None]:
        emit, on_chunk = self.emitter.emit_delta, self.on_chunk

        partial = self.partial
        partial.clear()

        def sink(kind: DeltaKind, text: str) -> None:
            if kind == "text":
                partial.append(text)
                if on_chunk is not None:
                    try:
                        on_chunk(text)
                    except Exception:  # the user's callback: it must not end the run
                        log.exception("on_chunk callback raised; ignoring")
                emit("text_delta", text, turn=turn)
            else:
                emit("thinking_delta", text, turn=turn)

        return sink

    def _record(self, completion: Completion, provider: Provider) -> None:
        state, config = self.state, self.config
        self.partial.clear()
        state.messages.append(completion.message)
        state.turn += 1
        model = completion.model or provider.model or None
        state.model = model
        priced = _price(completion.usage, model, config.model_metadata_overrides)
        state.usage = state.usage + priced
        if not priced.priced and config.max_budget_cents is not None and not self.unpriced_warned:
            self.unpriced_warned = True  # otherwise the guard silently never fires
            log.warning(
                "max_budget_cents=%s cannot be enforced for model %r: its price is unknown, "
                "so its tokens add nothing to the estimated cost (add a price with "
                "model_metadata_overrides, or use max_turns to bound the run)",
                config.max_budget_cents, model,
            )
        self.emitter.emit("usage", {
            "usage": priced.model_dump(), "total": state.usage.model_dump(), "model": model,
        }, turn=state.turn)
        self.emitter.emit("turn_end", {
            "stop_reason": completion.stop_reason, "raw_stop_reason": completion.raw_stop_reason,
            "model": model, "request_id": completion.request_id,
        }, turn=state.turn)

    def _keep_lost_usage(self) -> None:
        """Add what cancelled or failed replies had reported (they were billed), so Result,
        Session.usage, the footer and the budget check count them."""
        lost = self.meter.take() if self.meter is not None else Usage()
        if not lost.total_tokens:
            return
        state, config = self.state, self.config
        model = config.model
        priced = _price(lost, model, config.model_metadata_overrides)
        state.usage = state.usage + priced
        self.emitter.emit("usage", {
            "usage": priced.model_dump(), "total": state.usage.model_dump(), "model": model,
            "incomplete": True,
        }, turn=state.turn + 1)

    # ---- after the reply ------------------------------------------------------------

    def _refuse_cut_off(self, calls: list[ToolUseBlock], completion: Completion) -> None:
        why = completion.raw_stop_reason or completion.stop_reason
        self.state.messages.append(tool_results(
            ToolResultBlock(tool_use_id=c.id, is_error=True,
                            content=f"Tool call not run: the reply was cut off ({why}).")
            for c in calls
        ))

    async def _tools(self, calls: list[ToolUseBlock]) -> None:
        await self._hook("after_tool_request")
        state = self.state
        outcome = await execute_tools(calls, self.config, state, self.emitter, turn=state.turn)
        if isinstance(outcome, Halt):
            self._stop("halted", f"Halted by middleware: {outcome.reason}")
        blocks, metas = outcome
        state.messages.append(tool_results(blocks))
        state.tool_calls.extend(metas)
        await self._hook("after_tool_execution")
        self._final_result(metas)

    def _final_result(self, metas: list[ToolCall]) -> None:
        """output_type: a valid ``final_result`` ends the run now (no extra model turn);
        too many invalid ones end it with an error."""
        if self.config.output_spec is None:
            return
        for meta in metas:
            if meta.name == FINAL_RESULT and meta.error is None:
                self.state.output = meta.structured_data
                self._stop("completed")
        failed = [m for m in metas if m.name == FINAL_RESULT]
        if failed:
            self._output_miss(failed[-1].error or "invalid arguments")

    def _output_miss(self, why: str) -> None:
        """Count one missed final answer; past the retries the run fails (typed error)."""
        self.output_misses += 1
        if self.output_misses > OUTPUT_RETRIES:
            self._stop("error", f"{OUTPUT_ERROR_PREFIX} after {OUTPUT_RETRIES} retries: {why}")

    async def _end_turn(self) -> None:
        """The model answered without (runnable) tool calls: ask again, or complete."""
        if self.config.output_spec is not None:  # a plain answer is not the final result
            self._output_miss("the model answered without calling final_result")
            self.state.messages.append(user(CONTINUATION_PROMPT.format(tool=FINAL_RESULT)))
            return
        target = self.config.until_tool
        if target and not any(c.name == target and c.error is None for c in self.state.tool_calls):
            self.state.messages.append(user(CONTINUATION_PROMPT.format(tool=target)))
            return
        await self._hook("after_completion")
        self._stop("completed")

    async def _compact(self, overflow: PromptTooLongError | None = None) -> None:
        """Compact when over budget; with ``overflow`` (the provider said the prompt is
        too long, so our estimate was low) force it down to half the estimate, and fail
        the run with ``overflow`` when nothing could be removed."""
        state, config = self.state, self.config
        max_tokens = config.max_tokens
        if overflow is not None:
            estimate = estimate_tokens(state.messages, config.system_prompt,
                                       message_overhead=MESSAGE_OVERHEAD)
            max_tokens = max(1, min(max_tokens, estimate // 2))
        try:
            outcome = await maybe_compact(
                state.messages, settings=config.compaction, max_tokens=max_tokens,
                provider=config.provider, system=config.system_prompt,
                force=overflow is not None,
            )
        except AlloyError as err:  # ProviderError, CompactionError: expected failures
            await self._fail(err, "compaction")
        except Exception as err:  # the provider's or a summariser's own bug: end as data
            log.exception("compaction failed")
            await self._fail(err, "compaction")
        if outcome is None:
            if overflow is not None:
                await self._fail(overflow)
            return
        state.messages = list(outcome.messages)
        state.usage = state.usage + _price(
            outcome.usage, config.model, config.model_metadata_overrides
        )
        payload: CompactionPayload = {
            "before_tokens": outcome.before_tokens, "after_tokens": outcome.after_tokens,
            "method": outcome.method, "removed_messages": outcome.removed_messages,
        }
        if overflow is not None:
            payload["forced"] = True  # the provider said "prompt is too long"
        self.emitter.emit("compaction", payload, turn=state.turn + 1)
        callback = config.compaction.on_compaction
        if callback is not None:
            try:
                out = callback(outcome)
                if inspect.isawaitable(out):
                    await out
            except Exception:  # the user's callback: it must not end the run
                log.exception("on_compaction callback raised; continuing")
        await self._hook("after_compaction")

    # ---- whole run ------------------------------------------------------------------

    def _finish(self) -> None:
        state = self.state
        state.messages = repair_history(state.messages)
        self.emitter.emit("done", {
            "status": state.status, "error": state.error, "turns": state.turn,
            "usage": state.usage.model_dump(),
        }, turn=state.turn)

    async def run(self) -> None:
        """``_run`` with lost usage metered, the history repaired and ``done`` emitted on
        every exit; cancellation and middleware bugs are recorded, then re-raised."""
        with metering() as self.meter:
            try:
                await self._run()
            except asyncio.CancelledError:
                self._keep_lost_usage()
                if self.partial:  # keep what the user already saw, marked, for the next turn
                    text = "".join(self.partial) + "\n\n" + INTERRUPTED_MARK
                    self.state.messages.append(assistant(text))
                    self.partial.clear()
                self._end("cancelled", "cancelled")
                self._finish()
                raise
            except Exception as exc:  # a middleware or callback bug: record it, then raise
                self._keep_lost_usage()
                if self.state.status == "running":
                    self._end("error", f"{type(exc).__name__}: {exc}")
                    self.emitter.emit("error", {
                        "error": self.state.error, "type": type(exc).__name__,
                        "stage": "middleware", "retryable": False,
                    }, turn=self.state.turn + 1)
                self._finish()
                raise
            self._finish()


async def run_loop(
    config: AgentConfig,
    state: AgentState,
    emitter: Emitter,
    *,
    streaming: bool = False,
    on_chunk: Callable[[str], object] | None = None,
) -> None:
    """Run the agent loop until it completes, stops, fails or is cancelled.

    Mutates ``state``. On every exit the history is repaired (valid to continue from) and
    a ``done`` event is emitted. Provider failures end the run as data (status
    ``error``); ``CancelledError`` sets status ``cancelled`` (usage kept) and is re-raised;
    a middleware bug (e.g. ``Block`` outside ``before_tool_call``) is recorded as status
    ``error`` and re-raised.
    """
    loop = _Loop(config, state, emitter, streaming, on_chunk)
    with telemetry.run_span(config, state):
        await loop.run()
