"""``mode="batch"``: one single-turn request per item sent through the vendor's batch API
(Anthropic Message Batches, OpenAI Batch) by ``_vendor.abatch_complete``, then each
Completion turned into a Result (text, priced usage, status) and output.

No tools but ``final_result`` (when ``output_type`` is set) and no second turn: an
invalid ``final_result`` cannot be retried, so it is that item's
``OutputValidationError``. Batch APIs bill half the list price; the estimate says so.
"""

from __future__ import annotations

import asyncio
import importlib
from typing import Any

from alloy_nb import model_metadata
from alloy_nb.batch._progress import Tracker
from alloy_nb.batch._result import BatchResult
from alloy_nb.batch._vendor_api import BATCH_PRICE_FACTOR, api_for
from alloy_nb.errors import AgentError, ConfigError, OutputValidationError, ToolError
from alloy_nb.messages import Message, ToolResultBlock, ToolUseBlock, tool_results, user
from alloy_nb.output import FINAL_RESULT, OUTPUT_ERROR_PREFIX
from alloy_nb.providers.base import Completion, ProviderRequest
from alloy_nb.result import Result

__all__ = ["run_vendor_batch"]


def _requests(plan: Any) -> list[ProviderRequest]:
    config = plan.config
    spec = config.output_spec
    tools = [spec.definition()] if spec is not None else []
    return [ProviderRequest(messages=[*plan.history, user(prompt)], tools=tools,
                            system=config.system_prompt) for prompt in plan.prompts]


def _check(plan: Any) -> None:
    if plan.config.tools:
        raise ConfigError("mode='batch' is single-turn and runs no tools: drop tools=[...] "
                          "(output_type still works, through final_result)")
    if plan.budget_cents is not None:
        raise ConfigError("max_budget_cents is not supported with mode='batch': the vendor "
                          "runs every item at once; the cost estimate is in the result")
    api_for(plan.config.provider)  # a ConfigError naming the providers batch mode supports


def to_result(plan: Any, request: ProviderRequest, completion: Completion
              ) -> tuple[Result, BaseException | None]:
    """One batch answer as a Result, and the error it stands for (None when usable)."""
    config = plan.config
    model = completion.model or config.model
    info = model_metadata.lookup(model, config.model_metadata_overrides) if model else None
    if info is None:
        usage = completion.usage.with_cost(None, None)
    else:
        usage = completion.usage.with_cost(info.input_price, info.output_price,
                                           info.cache_read_price, info.cache_write_price)
        usage = usage.model_copy(update={
            "estimated_cost_cents": usage.estimated_cost_cents * BATCH_PRICE_FACTOR})
    messages: list[Message] = [*request.messages, completion.message]
    output, error = None, None
    spec = config.output_spec
    if spec is not None:
        calls = [b for b in completion.message.content
                 if isinstance(b, ToolUseBlock) and b.name == FINAL_RESULT]
        if not calls:
            error = f"{OUTPUT_ERROR_PREFIX}: the model answered without calling final_result"
        else:
            try:
                output = spec.validate(calls[0].input)
            except ToolError as exc:
                error = f"{OUTPUT_ERROR_PREFIX} (batch mode cannot retry): {exc}"
        answered = [b for b in completion.message.content if isinstance(b, ToolUseBlock)]
        if answered:  # keep the history valid to continue from
            messages.append(tool_results(
                ToolResultBlock(tool_use_id=b.id, content="Final result received."
                                if error is None else (error or ""), is_error=error is not None)
                for b in answered))
    result = Result(text=completion.message.text, messages=messages, usage=usage,
                    status="error" if error else "completed", turns=1, error=error,
                    request_id=completion.request_id, model=model, output=output)
    if error is not None:
        return result, OutputValidationError(result)
    return result, None


async def run_vendor_batch(plan: Any, tracker: Tracker) -> BatchResult:
    from alloy_nb.batch._map import _Runner

    # looked up at call time, so a test can stand in for the vendor client
    vendor = importlib.import_module("alloy_nb.batch._vendor")

    _check(plan)
    runner = _Runner(plan, tracker)  # for the cache and the batch record
    batch = runner.batch
    todo = runner.load_cached()
    if not todo:
        return batch
    requests = _requests(plan)
    seen = {"done": 0, "failed": 0}

    def on_progress(p: Any) -> None:
        done = int(p.succeeded) + int(p.errored)
        new_failed = int(p.errored) - seen["failed"]
        new_done = done - seen["done"]
        if new_done > 0:
            tracker.item(count=new_done - max(new_failed, 0))
            if new_failed > 0:
                tracker.item(failed=True, count=new_failed)
        seen["done"], seen["failed"] = done, int(p.errored)
        tracker.running(int(p.processing))
        tracker.push()

    loop = asyncio.get_running_loop()
    started = loop.time()
    answers = await vendor.abatch_complete(
        plan.config.provider, [requests[i] for i in todo], on_progress=on_progress)
    if len(answers) != len(todo):
        raise RuntimeError(f"the batch client returned {len(answers)} answers for "
                           f"{len(todo)} requests")
    cost = 0.0
    for i, answer in zip(todo, answers, strict=True):
        if isinstance(answer, BaseException):
            batch.statuses[i] = "error"
            batch.errors[i] = answer
            continue
        result, err = to_result(plan, requests[i], answer)
        batch.results[i] = result
        cost += result.usage.estimated_cost_cents
        if err is None:
            batch.statuses[i] = "completed"
            if plan.cache is not None:
                plan.cache.put(plan.prompts[i], result)
        else:
            batch.statuses[i] = "error"
            batch.errors[i] = err if isinstance(err, AgentError) else AgentError(result)
    # the tracker's counts followed the vendor's reports; settle them on the outcome
    state = tracker.state
    state.done, state.running = len(plan.prompts), 0
    state.failed = len(batch.errors)
    state.cost_cents += cost
    batch.wall_s = loop.time() - started
    return batch
