"""mode="batch" glue: requests built per item, Completions turned into Results and
outputs, errors kept per item. The vendor batch client (``alloy_nb.batch._vendor``,
another branch) is replaced here by a stand-in ``abatch_complete`` with its interface."""

from __future__ import annotations

import sys
import types
from collections.abc import Callable, Sequence
from typing import Any, Literal

import pytest
from pydantic import BaseModel

import alloy_nb as alloy
import alloy_nb.batch
from alloy_nb.errors import ConfigError, OutputValidationError, ProviderError
from alloy_nb.messages import Message, TextBlock, ToolUseBlock
from alloy_nb.providers import Anthropic, OpenAI
from alloy_nb.providers.base import Completion, ProviderRequest
from alloy_nb.providers.demo import Demo
from alloy_nb.usage import Usage


class Mood(BaseModel):
    mood: Literal["happy", "sad"]


class Progress(BaseModel):  # the vendor module's BatchProgress fields
    total: int
    succeeded: int
    errored: int
    processing: int


class ItemExpired(ProviderError):
    pass


def answer(prompt: str, with_tool: bool) -> Completion | ProviderError:
    usage = Usage(input_tokens=1_000_000, output_tokens=0)
    if "expire" in prompt:
        return ItemExpired("item expired before it ran", provider="anthropic")
    if with_tool:
        args: dict[str, Any] = {"mood": "sad" if "rain" in prompt else "happy"}
        if "weird" in prompt:
            args = {"mood": "furious"}
        block: Any = ToolUseBlock(id="t1", name="final_result", input=args)
        return Completion(stop_reason="tool_use", usage=usage, model="claude-sonnet-4-6",
                          message=Message(role="assistant", content=[block]))
    return Completion(stop_reason="end_turn", usage=usage, model="claude-sonnet-4-6",
                      message=Message(role="assistant",
                                      content=[TextBlock(text=f"re: {prompt}")]))


@pytest.fixture
def vendor(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    seen: dict[str, Any] = {"calls": []}

    async def abatch_complete(provider: Any, requests: Sequence[ProviderRequest], *,
                              poll_interval_s: float = 5.0,
                              on_progress: Callable[[Any], None] | None = None
                              ) -> list[Completion | ProviderError]:
        seen["calls"].append((provider, list(requests)))
        n = len(requests)
        if on_progress is not None:
            on_progress(Progress(total=n, succeeded=0, errored=0, processing=n))
        out = [answer(r.messages[-1].text or "", bool(r.tools)) for r in requests]
        if on_progress is not None:
            bad = sum(isinstance(o, ProviderError) for o in out)
            on_progress(Progress(total=n, succeeded=n - bad, errored=bad, processing=0))
        return out

    module = types.ModuleType("alloy_nb.batch._vendor")
    module.abatch_complete = abatch_complete  # type: ignore[attr-defined]
    monkeypatch.setitem(sys.modules, "alloy_nb.batch._vendor", module)
    monkeypatch.setattr(alloy_nb.batch, "_vendor", module, raising=False)
    return seen


def test_requests_results_outputs_and_errors(vendor: dict[str, Any]) -> None:
    seen: list[Any] = []
    p = Anthropic(api_key="k")
    b = alloy.map("Weather: {item}", ["sun", "rain", "expire", "weird"], provider=p,
                  mode="batch", output_type=Mood, system_prompt="Be kind.",
                  progress=seen.append)
    provider, requests = vendor["calls"][0]
    assert provider is p and len(requests) == 4
    assert [r.messages[-1].text for r in requests][:2] == ["Weather: sun", "Weather: rain"]
    assert all(len(r.messages) == 1 and r.system == "Be kind." for r in requests)
    assert [t.name for t in requests[0].tools] == ["final_result"]
    assert b.outputs[:2] == [Mood(mood="happy"), Mood(mood="sad")]
    assert b.outputs[2:] == [None, None]
    assert isinstance(b.errors[2], ItemExpired)
    assert isinstance(b.errors[3], OutputValidationError)
    assert "furious" in (b.errors[3].result.error or "")
    assert b.statuses == ["completed", "completed", "error", "error"]
    r = b.results[0]
    assert r is not None and r.turns == 1 and r.status == "completed"
    # 1M input tokens of claude-sonnet-4-6 at half the list price
    from alloy_nb import model_metadata

    price = model_metadata.lookup("claude-sonnet-4-6").input_price  # type: ignore[union-attr]
    assert r.usage.estimated_cost_cents == pytest.approx(price * 100 * 0.5)
    assert r.messages[-1].tool_result_blocks  # history valid to continue from
    final = seen[-1]
    assert final.finished and final.done == 4 and final.failed == 2


def test_plain_text_mode_and_cache(vendor: dict[str, Any], tmp_path: Any) -> None:
    p = OpenAI(api_key="k")
    b = alloy.map("{item}", ["a", "b"], provider=p, mode="batch", cache_dir=tmp_path,
                  progress=False)
    assert b.outputs == ["re: a", "re: b"] and vendor["calls"][0][1][0].tools == []
    again = alloy.map("{item}", ["a", "b", "c"], provider=p, mode="batch",
                      cache_dir=tmp_path, progress=False)
    assert [r.messages[-1].text for r in vendor["calls"][1][1]] == ["c"]
    assert again.statuses == ["cached", "cached", "completed"]


def test_batch_mode_refuses_what_it_cannot_do(vendor: dict[str, Any]) -> None:
    def add(a: int, b: int) -> int:
        """Add."""
        return a + b

    with pytest.raises(ConfigError, match="no tools"):
        alloy.map("{item}", [1], provider=Anthropic(api_key="k"), mode="batch", tools=[add])
    with pytest.raises(ConfigError, match="batch mode supports"):
        alloy.map("{item}", [1], provider=Demo(), mode="batch")
    with pytest.raises(ConfigError, match="mode"):
        alloy.map("{item}", [1], provider=Demo(), mode="bulk")
    assert vendor["calls"] == []
