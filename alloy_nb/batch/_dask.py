"""``engine="dask"``: partitions of items run with ``amap`` on the workers of the current
``dask.distributed`` Client, gathered back in order; ``cache_dir`` is shared.

Workers receive the ``run`` options by pickle (cloudpickle), so the provider must be
picklable: a spec string such as ``"anthropic:MODEL"`` always is. Results come back as
plain data (Result JSON, output, error class and message) and are rebuilt here.
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from alloy_nb.batch._progress import Tracker
from alloy_nb.batch._result import BatchResult
from alloy_nb.errors import AgentError, AlloyError, ConfigError, ItemNotRun
from alloy_nb.result import Result

__all__ = ["run_dask"]

Row = tuple[dict[str, Any] | None, Any, str, tuple[str, str] | None]


def _client() -> Any:
    try:
        from distributed import Client
    except ImportError:
        # from None: a missing package is the whole story
        raise ConfigError("engine='dask' needs dask.distributed: pip install "
                          "'alloy_nb[dask]'") from None
    try:
        return Client.current()  # type: ignore[no-untyped-call]  # distributed is untyped
    except ValueError:
        # from None: "no current client" is the whole story
        raise ConfigError("engine='dask' runs on the current dask.distributed Client: create "
                          "one first, e.g. Client(LocalCluster())") from None


def _run_partition(prompts: list[str], options: dict[str, Any], history: list[Any],
                   concurrency: int, cache_dir: Any) -> list[Row]:
    """On a worker: run these prompts with the local engine; plain-data rows back."""
    from alloy_nb.batch._map import _amap

    items = [{"p": p} for p in prompts]
    opts = {k: v for k, v in options.items() if k != "output_type"}
    if history:
        opts["messages"] = history
    batch = asyncio.run(_amap("{p}", items, concurrency=concurrency, cache_dir=cache_dir,
                              engine=None, progress=False, mode="live",
                              output_type=options.get("output_type"), options=opts))
    rows: list[Row] = []
    for i, r in enumerate(batch.results):
        err = batch.errors.get(i)
        rows.append((
            None if r is None else r.model_dump(mode="json", exclude={"output"}),
            None if r is None else r.output,
            batch.statuses[i],
            None if err is None else (type(err).__name__, str(err)),
        ))
    return rows


def _rebuild(row: Row) -> tuple[Result | None, str, BaseException | None]:
    data, output, status, err = row
    result = None
    if data is not None:
        result = Result.model_validate(data)
        result.output = output
    if err is None:
        return result, status, None
    name, message = err
    if result is not None and name in ("AgentError", "OutputValidationError"):
        from alloy_nb.output import agent_error

        return result, status, agent_error(result) if name != "AgentError" else AgentError(
            result)
    if name == "ItemNotRun":
        return result, status, ItemNotRun(message)
    return result, status, AlloyError(f"{name}: {message}")


async def run_dask(plan: Any, tracker: Tracker) -> BatchResult:
    from alloy_nb.batch._map import _Runner

    if plan.mode != "live":
        raise ConfigError("engine='dask' runs live requests; mode='batch' already runs on "
                          "the vendor's side (drop engine='dask')")
    if plan.budget_cents is not None:
        raise ConfigError("max_budget_cents is not supported with engine='dask' (workers "
                          "cannot share a running total); bound each item with max_turns")
    client = _client()
    runner = _Runner(plan, tracker)
    batch = runner.batch
    todo = runner.load_cached()
    if not todo:
        return batch
    workers = max(1, len(client.scheduler_info().get("workers", {})))
    parts = min(len(todo), workers * 4)
    chunks = [todo[k::parts] for k in range(parts)]
    per_worker = max(1, plan.concurrency // workers)
    stop = threading.Event()
    futures: dict[Any, list[int]] = {}
    for chunk in chunks:
        fut = client.submit(_run_partition, [plan.prompts[i] for i in chunk],
                            plan.options, plan.history, per_worker,
                            None if plan.cache_dir is None else str(plan.cache_dir),
                            pure=False)
        futures[fut] = chunk

    def gather() -> None:
        from distributed import as_completed

        for fut in as_completed(list(futures)):  # type: ignore[no-untyped-call]
            if stop.is_set():
                return
            chunk = futures[fut]
            try:
                rows = fut.result()
            except Exception as exc:  # the partition itself failed (pickling, worker)
                for i in chunk:
                    batch.statuses[i] = "error"
                    batch.errors[i] = AlloyError(f"dask partition failed: {exc!r}")
                    tracker.item(failed=True)
                continue
            for i, row in zip(chunk, rows, strict=True):
                result, status, err = _rebuild(row)
                batch.results[i], batch.statuses[i] = result, status
                if err is not None:
                    batch.errors[i] = err
                cost = result.usage.estimated_cost_cents if result is not None else 0.0
                tracker.item(failed=err is not None, cost_cents=cost)

    try:
        await asyncio.to_thread(gather)
    except asyncio.CancelledError:
        stop.set()
        client.cancel(list(futures))
        runner.mark_unfinished()
        raise
    return batch
