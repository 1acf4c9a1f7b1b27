"""``amap``/``map``: run one prompt per item, concurrently, isolated, cached, budgeted.

Each item is an independent single run of the agent loop (``agent.run_loop``) on one
shared ``AgentConfig`` built once. ``_Plan`` holds what every engine needs; the local
engine is ``_Runner``; ``engine="dask"`` and ``mode="batch"`` live in their own modules.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import Any

from alloy_nb import model_metadata
from alloy_nb._sync import run_sync
from alloy_nb.agent import AgentConfig, new_emitter, run_loop
from alloy_nb.batch._cache import ItemCache, config_fingerprint
from alloy_nb.batch._items import prepare
from alloy_nb.batch._limiter import AdaptiveLimiter
from alloy_nb.batch._progress import Tracker, make_reporter
from alloy_nb.batch._result import BatchResult
from alloy_nb.errors import AgentError, BatchInterrupted, ConfigError, ItemNotRun
from alloy_nb.messages import Message, user
from alloy_nb.output import agent_error
from alloy_nb.result import Result
from alloy_nb.state import AgentState

__all__ = ["amap", "map"]

_ENGINES = (None, "local", "dask")
_MODES = ("live", "batch")


class _Plan:
    """Everything about one batch that does not change while it runs."""

    def __init__(self, template: str, items: Any, *, concurrency: int, cache_dir: Any,
                 output_type: Any, mode: str, options: dict[str, Any]) -> None:
        if isinstance(concurrency, bool) or not isinstance(concurrency, int) or concurrency < 1:
            raise ConfigError(f"concurrency must be an int >= 1, got {concurrency!r}")
        if mode not in _MODES:
            raise ConfigError(f"mode must be 'live' or 'batch', got {mode!r}")
        prepared = prepare(template, items)
        self.prompts = prepared.prompts
        self.index = prepared.index
        self.concurrency = concurrency
        self.mode = mode
        self.output_type = output_type
        self.cache_dir = cache_dir
        options = dict(options)
        for bad in ("on_chunk", "stream"):
            if bad in options:
                raise ConfigError(f"{bad} is not an option of map: items do not stream")
        self.budget_cents: float | None = options.pop("max_budget_cents", None)
        history = options.pop("messages", None) or []
        self.history = [m if isinstance(m, Message) else Message.model_validate(m)
                        for m in history]
        self.options = {**options, "output_type": output_type}  # for workers (Dask)
        self.config = AgentConfig.from_options(**self.options)
        if self.budget_cents is not None:
            _check_budget(self.budget_cents, self.config)
        self.cache = None
        if cache_dir is not None:
            spec = self.config.output_spec
            self.cache = ItemCache(cache_dir, config_fingerprint(self.config, self.history, mode),
                                   spec.adapter if spec is not None else None)

    @property
    def structured(self) -> bool:
        return self.output_type is not None

    def new_batch(self) -> BatchResult:
        n = len(self.prompts)
        return BatchResult(prompts=self.prompts, results=[None] * n, statuses=["pending"] * n,
                           structured=self.structured, index=self.index)


def _check_budget(budget: Any, config: AgentConfig) -> None:
    if isinstance(budget, bool) or not isinstance(budget, int | float) or budget < 0:
        raise ConfigError(f"max_budget_cents must be a number >= 0, got {budget!r}")
    info = model_metadata.lookup(config.model, config.model_metadata_overrides)
    if info is None or info.input_price is None or info.output_price is None:
        raise ConfigError(
            f"max_budget_cents cannot be enforced: the price of model {config.model!r} is "
            "unknown (add input_price/output_price with model_metadata_overrides)"
        )


def item_outcome(result: Result, structured: bool) -> BaseException | None:
    """The error an item's Result stands for, or None when it is a usable answer."""
    if not result.ok:
        return agent_error(result)
    if structured and result.output is None:
        return AgentError(result)  # e.g. max_turns before a final_result
    return None


class _Runner:
    """The local engine: a dispatcher starting items in order under the limiter."""

    def __init__(self, plan: _Plan, tracker: Tracker) -> None:
        self.plan = plan
        self.tracker = tracker
        self.batch = plan.new_batch()
        self.limiter = AdaptiveLimiter(plan.concurrency)
        self.spent_cents = 0.0
        self.states: dict[int, AgentState] = {}

    def load_cached(self) -> list[int]:
        """Fill in cached items; the indices still to run."""
        cache, batch = self.plan.cache, self.batch
        todo = []
        for i, prompt in enumerate(self.plan.prompts):
            hit = cache.get(prompt) if cache is not None else None
            if hit is None:
                todo.append(i)
            else:
                batch.results[i], batch.statuses[i] = hit, "cached"
                self.tracker.item(cached=True)
        return todo

    async def run(self, todo: list[int]) -> BatchResult:
        started = time.monotonic()
        tasks: set[asyncio.Task[None]] = set()
        try:
            for n, i in enumerate(todo):
                await self.limiter.acquire()
                budget = self.plan.budget_cents
                if budget is not None and self.spent_cents > budget:
                    self.limiter.release(ok=False)
                    self.skip(todo[n:], f"max_budget_cents={budget} reached (spent "
                                        f"{self.spent_cents:.4f} cents) before it started")
                    break
                task = asyncio.create_task(self.one(i))
                tasks.add(task)
                task.add_done_callback(tasks.discard)
                self.tracker.running(self.limiter.in_flight)
            while tasks:
                await asyncio.wait(set(tasks))
        except asyncio.CancelledError:
            for task in tasks:
                task.cancel()
            if tasks:
                await asyncio.wait(set(tasks), timeout=2.0)
            self.mark_unfinished()
            raise
        finally:
            self.batch.rate_limited = self.limiter.rate_limited
            self.batch.wall_s = time.monotonic() - started
        return self.batch

    def skip(self, indices: list[int], why: str) -> None:
        for i in indices:
            self.batch.statuses[i] = "skipped"
            self.batch.errors[i] = ItemNotRun(f"item {i} not run: {why}")
            self.tracker.item(failed=True)

    def mark_unfinished(self) -> None:
        """After an interrupt: in-flight items become ``cancelled``, the rest ``skipped``."""
        for i, status in enumerate(self.batch.statuses):
            if status == "pending":
                state = self.states.get(i)
                if state is not None:
                    self.batch.results[i] = state.to_result()
                    self.batch.statuses[i] = "cancelled"
                    self.batch.errors[i] = ItemNotRun(f"item {i} cancelled while running")
                else:
                    self.batch.statuses[i] = "skipped"
                    self.batch.errors[i] = ItemNotRun(f"item {i} not run: the batch was "
                                                      "interrupted")

    def listen(self, event: Any) -> None:
        if event.event == "retry" and event.payload.get("error_type") == "RateLimitError":
            self.limiter.on_rate_limit((event.payload.get("delay_ms") or 0) / 1000)

    async def one(self, i: int) -> None:
        plan, batch = self.plan, self.batch
        state = AgentState(messages=[*plan.history, user(plan.prompts[i])])
        self.states[i] = state
        emitter = new_emitter(plan.config, state, listeners=[self.listen])
        ok = False
        result: Result | None = None
        try:
            await run_loop(plan.config, state, emitter)
            result = state.to_result()
            err = item_outcome(result, plan.structured)
        except asyncio.CancelledError:
            self.limiter.release(ok=False)
            raise
        except Exception as exc:  # a tool or middleware bug: this item only
            result, err = state.to_result(), exc
        batch.results[i] = result
        batch.statuses[i] = result.status if err is None or not result.ok else "error"
        if err is None:
            ok = True
            if plan.cache is not None:
                plan.cache.put(plan.prompts[i], result)
        else:
            batch.errors[i] = err
        del self.states[i]
        self.spent_cents += result.usage.estimated_cost_cents
        self.limiter.release(ok=ok)
        self.tracker.running(self.limiter.in_flight)
        self.tracker.item(failed=not ok, cost_cents=result.usage.estimated_cost_cents,
                          priced=result.usage.priced)


async def _amap(template: str, items: Any, *, concurrency: int, cache_dir: Any, engine: Any,
                progress: Any, output_type: Any, mode: str, options: dict[str, Any],
                sink: Callable[[Any], None] | None = None) -> BatchResult:
    if engine not in _ENGINES:
        raise ConfigError(f"engine must be None, 'local' or 'dask', got {engine!r}")
    plan = _Plan(template, items, concurrency=concurrency, cache_dir=cache_dir,
                 output_type=output_type, mode=mode, options=options)
    tracker = Tracker(make_reporter(progress, len(plan.prompts)), len(plan.prompts))
    try:
        if engine == "dask":
            from alloy_nb.batch._dask import run_dask

            return await run_dask(plan, tracker)
        if mode == "batch":
            from alloy_nb.batch._batch_mode import run_vendor_batch

            return await run_vendor_batch(plan, tracker)
        runner = _Runner(plan, tracker)
        if sink is not None:
            sink(runner)
        return await runner.run(runner.load_cached())
    finally:
        tracker.close()


async def amap(template: str, items: Any, *, concurrency: int = 8, cache_dir: Any = None,
               engine: str | None = None, progress: Any = True, output_type: Any = None,
               mode: str = "live", **run_options: Any) -> BatchResult:
    """Run ``template`` once per item and return a ``BatchResult`` aligned with the items.

    Items: scalars (``{item}``), dicts (``{key}``), a DataFrame (rows, ``{column}``) or a
    Series (``{item}``). At most ``concurrency`` items run at once (a 429 lowers that
    and honours Retry-After, then it recovers); a failing item never stops the others;
    ``max_budget_cents`` bounds the whole batch (no new item starts past it);
    ``cache_dir`` stores finished items so a re-run asks only for the rest. Other
    keyword arguments are ``run`` options, applied to every item. Cancelling cancels
    the in-flight items (finished ones stay in ``cache_dir``) and re-raises.
    """
    return await _amap(template, items, concurrency=concurrency, cache_dir=cache_dir,
                       engine=engine, progress=progress, output_type=output_type, mode=mode,
                       options=run_options)


def map(template: str, items: Any, *, concurrency: int = 8, cache_dir: Any = None,
        engine: str | None = None, progress: Any = True, output_type: Any = None,
        mode: str = "live", **run_options: Any) -> BatchResult:
    """Blocking ``amap``; works in scripts and inside a running notebook loop.

    An interrupt (Ctrl-C, the kernel's ■) cancels the in-flight items and raises
    ``BatchInterrupted`` whose ``.result`` is the partial ``BatchResult``: finished items
    kept, the others ``cancelled``/``skipped`` (and finished ones are in ``cache_dir``).
    """
    holder: list[_Runner] = []
    try:
        return run_sync(_amap(template, items, concurrency=concurrency, cache_dir=cache_dir,
                              engine=engine, progress=progress, output_type=output_type,
                              mode=mode, options=run_options, sink=holder.append))
    except KeyboardInterrupt as exc:
        if not holder:
            raise
        runner = holder[0]
        runner.mark_unfinished()
        raise BatchInterrupted(runner.batch) from exc
