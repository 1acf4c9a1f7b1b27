"""alloy.map / amap on the local engine: item kinds, alignment, isolation, concurrency,
429 back-off, batch budget, cache_dir, cancellation and progress."""

from __future__ import annotations

import _thread
import asyncio
import threading
import time
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
from pydantic import BaseModel

import alloy_nb as alloy
from alloy_nb.batch import BatchResult, MapProgress
from alloy_nb.batch._limiter import AdaptiveLimiter
from alloy_nb.errors import AgentError, BatchInterrupted, ConfigError, ItemNotRun
from alloy_nb.providers import Anthropic
from alloy_nb.testing import FakeProviderServer, reply

from .conftest import PRICED, Echo


class Word(BaseModel):
    word: str
    length: int


def test_scalars_fill_item_and_results_align(echo: Echo) -> None:
    b = alloy.map("say {item}", ["a", "b", 3], provider=echo, progress=False)
    assert isinstance(b, BatchResult) and len(b) == 3
    assert b.outputs == ["echo: say a", "echo: say b", "echo: say 3"]
    assert [r.status for r in b.results] == ["completed"] * 3
    assert b.errors == {} and b.usage.input_tokens == 30


def test_dicts_dataframe_series_and_to_pandas(echo: Echo) -> None:
    b = alloy.map("{name} is {age}", [{"name": "Ann", "age": 3}], provider=echo,
                  progress=False)
    assert b.outputs == ["echo: Ann is 3"]
    df = pd.DataFrame({"island": ["Dream", "Biscoe"], "mass": [3000, 4000]},
                      index=["p1", "p2"])
    b = alloy.map("word {island}", df, provider=echo, output_type=Word, progress=False,
                  model_metadata_overrides=PRICED)
    assert b.outputs == [Word(word="Dream", length=5), Word(word="Biscoe", length=6)]
    out = b.to_pandas()
    assert list(out.index) == ["p1", "p2"]
    assert list(out.columns) == ["word", "length", "status", "error", "cost_cents"]
    assert out.loc["p2", "length"] == 6 and out.loc["p1", "status"] == "completed"
    assert out["cost_cents"].tolist() == pytest.approx([1.5, 1.5])
    assert b.cost_cents == pytest.approx(3.0) and b.cost == "$0.0300"
    s = pd.Series(["x", "yy"], index=[10, 20])
    b = alloy.map("w {item}", s, provider=echo, progress=False)
    assert list(b.to_pandas().index) == [10, 20]
    assert b.to_pandas()["output"].tolist() == ["echo: w x", "echo: w yy"]


def test_template_errors_are_config_errors(echo: Echo) -> None:
    with pytest.raises(ConfigError, match=r"\{colour\}.*it has: island"):
        alloy.map("{colour}", pd.DataFrame({"island": ["a"]}), provider=echo)
    with pytest.raises(ConfigError, match="positional"):
        alloy.map("{}", [1], provider=echo)
    with pytest.raises(ConfigError, match="items must be"):
        alloy.map("{item}", "abc", provider=echo)
    with pytest.raises(ConfigError, match="concurrency"):
        alloy.map("{item}", [1], provider=echo, concurrency=0)
    with pytest.raises(ConfigError, match="unknown option"):
        alloy.map("{item}", [1], provider=echo, max_turn=3)
    assert echo.prompts == []


def test_one_failing_item_never_stops_the_others(echo: Echo) -> None:
    b = alloy.map("{item}", ["ok1", "boom", "ok2"], provider=echo, progress=False,
                  retry_backoff_ms=1)
    assert b.outputs[0] == "echo: ok1" and b.outputs[2] == "echo: ok2"
    assert b.outputs[1] is None and list(b.errors) == [1]
    assert isinstance(b.errors[1], AgentError) and "bad item" in str(b.errors[1])
    assert b.statuses == ["completed", "error", "completed"]
    assert b.to_pandas()["error"].tolist()[1].startswith("AgentError")


def test_concurrency_is_a_ceiling_and_is_reached() -> None:
    p = Echo(delay=0.05)
    alloy.map("{item}", list(range(20)), provider=p, concurrency=4, progress=False)
    assert p.max_in_flight == 4


def test_429_lowers_concurrency_honours_retry_after_and_all_finish() -> None:
    script = [reply.status(429, retry_after=0.4) for _ in range(3)]
    script += [reply.delay(0.05, reply.text("fine")) for _ in range(12)]
    with FakeProviderServer(script) as srv:
        started = time.monotonic()
        b = alloy.map("{item}", list(range(12)), progress=False, concurrency=6,
                      provider=Anthropic(api_key="k", base_url=srv.url))
        took = time.monotonic() - started
    assert b.errors == {} and b.outputs == ["fine"] * 12
    assert b.rate_limited >= 1
    assert took >= 0.4  # Retry-After was honoured


def test_limiter_halves_pauses_and_recovers() -> None:
    async def go() -> None:
        lim = AdaptiveLimiter(8)
        lim.on_rate_limit(0.2)
        lim.on_rate_limit(0.2)  # same burst: counted once
        assert lim.limit == 4 and lim.rate_limited == 2
        t = time.monotonic()
        await lim.acquire()
        assert time.monotonic() - t >= 0.15
        lim.release(ok=True)
        for _ in range(40):
            await lim.acquire()
            lim.release(ok=True)
        assert lim.limit == 8  # recovered to the ceiling, not beyond

    asyncio.run(go())


def test_batch_budget_stops_starting_new_items() -> None:
    p = Echo()
    b = alloy.map("{item}", list(range(10)), provider=p, concurrency=1, progress=False,
                  max_budget_cents=4.0, model_metadata_overrides=PRICED)
    ran = [s for s in b.statuses if s == "completed"]
    assert len(ran) == 3 and len(p.prompts) == 3  # 1.5 + 1.5 + 1.5 > 4: no 4th start
    assert all(isinstance(b.errors[i], ItemNotRun) for i in range(3, 10))
    assert set(b.statuses[3:]) == {"skipped"}
    with pytest.raises(ConfigError, match="price"):
        alloy.map("{item}", [1], provider=Echo(), max_budget_cents=1)


def test_cache_dir_reruns_only_missing_or_failed(tmp_path: Any) -> None:
    p = Echo()
    items = ["a", "boom", "c"]
    b1 = alloy.map("w {item}", items, provider=p, cache_dir=tmp_path, progress=False,
                   output_type=Word)
    assert len(p.prompts) == 3 and list(b1.errors) == [1]
    p2 = Echo(fail_on="never")
    b2 = alloy.map("w {item}", items, provider=p2, cache_dir=tmp_path, progress=False,
                   output_type=Word)
    assert p2.prompts == ["w boom"]  # only the failed one asked again
    assert b2.statuses == ["cached", "completed", "cached"]
    assert b2.outputs == [Word(word="a", length=1), Word(word="boom", length=4),
                          Word(word="c", length=1)]
    assert b2.usage.input_tokens == 10  # cached items cost nothing this time
    p3 = Echo()
    alloy.map("w {item}", items, provider=p3, cache_dir=tmp_path, progress=False,
              output_type=Word, system_prompt="Be brief.")
    assert len(p3.prompts) == 3  # an option that changes the answer is part of the key
    p4 = Echo()
    alloy.map("w {item}", items, provider=p4, cache_dir=tmp_path, progress=False)
    assert len(p4.prompts) == 3  # so is the output type


def test_cancelling_amap_keeps_finished_items_in_the_cache(tmp_path: Any) -> None:
    p = Echo(delay=0.1)

    async def go() -> None:
        task = asyncio.create_task(alloy.amap("{item}", list(range(20)), provider=p,
                                              concurrency=2, cache_dir=tmp_path,
                                              progress=False))
        for _ in range(500):  # until 4 items are stored (no fixed sleep: CI may be slow)
            if len(list(Path(tmp_path).rglob("*.json"))) >= 4:
                break
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    asked = len(p.prompts)
    assert 2 <= asked < 20
    p2 = Echo()
    b = alloy.map("{item}", list(range(20)), provider=p2, cache_dir=tmp_path, progress=False)
    cached = b.statuses.count("cached")
    assert cached >= 4 and len(p2.prompts) == 20 - cached and b.errors == {}


def test_interrupting_map_raises_with_the_partial_batch() -> None:
    p = Echo(delay=0.2)
    timer = threading.Timer(0.5, _thread.interrupt_main)
    timer.start()
    try:
        with pytest.raises(BatchInterrupted) as info:
            alloy.map("{item}", list(range(30)), provider=p, concurrency=2, progress=False)
    finally:
        timer.cancel()
    partial = info.value.result
    done = partial.statuses.count("completed")
    assert 2 <= done < 30
    assert set(partial.statuses) <= {"completed", "cancelled", "skipped"}
    assert all(isinstance(partial.errors[i], ItemNotRun)
               for i, s in enumerate(partial.statuses) if s != "completed")
    assert sum(o is not None for o in partial.outputs) == done


def test_progress_callback_and_stderr_bar(echo: Echo, capsys: Any) -> None:
    seen: list[MapProgress] = []
    alloy.map("{item}", ["a", "boom", "c"], provider=echo, progress=seen.append,
              retry_backoff_ms=1)
    final = seen[-1]
    assert final.finished and final.done == 3 and final.failed == 1 and final.total == 3
    alloy.map("{item}", ["a", "b"], provider=echo, progress=True)
    err = capsys.readouterr().err
    assert "alloy.map" in err and "2/2" in err


def test_empty_items_and_generators(echo: Echo) -> None:
    empty = alloy.map("{item}", [], provider=echo, progress=False)
    assert len(empty) == 0 and empty.outputs == [] and empty.errors == {}
    b = alloy.map("{item}", (x for x in "ab"), provider=echo, progress=False)
    assert b.outputs == ["echo: a", "echo: b"]


def test_amap_in_a_running_loop(echo: Echo) -> None:
    async def go() -> BatchResult:
        return await alloy.amap("{item}", ["x"], provider=echo, progress=False)

    assert asyncio.run(go()).outputs == ["echo: x"]
