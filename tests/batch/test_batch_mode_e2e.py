"""alloy.map(mode="batch") end to end: the map glue (``_batch_mode``) driving the real vendor
batch client (``_vendor``) over HTTP on 127.0.0.1 against FakeProviderServer's batch
endpoints. The unit tests of each half are test_batch_mode.py and test_vendor_batch.py."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel

import alloy_nb as alloy
from alloy_nb import model_metadata
from alloy_nb.batch import _vendor
from alloy_nb.errors import BatchItemExpired, OutputValidationError
from alloy_nb.providers import Anthropic, OpenAI, OpenAICompat
from alloy_nb.testing import FakeProviderServer, reply

KEY = "sk-test-e2e-batch-1234567890"


class Mood(BaseModel):
    mood: Literal["happy", "sad"]


def _provider(vendor: str, url: str):
    if vendor == "anthropic":
        return Anthropic(api_key=KEY, base_url=url, model="claude-sonnet-4-6")
    if vendor == "openai-responses":
        return OpenAI(api_key=KEY, base_url=url + "/v1", model="gpt-5.4")
    return OpenAICompat(api_key=KEY, base_url=url, model="gpt-4o")


@pytest.fixture(autouse=True)
def fast_polls(monkeypatch: pytest.MonkeyPatch) -> None:
    real = _vendor.abatch_complete

    async def fast(provider, requests, **kw):
        kw["poll_interval_s"] = 0.005
        return await real(provider, requests, **kw)

    monkeypatch.setattr(_vendor, "abatch_complete", fast)


@pytest.mark.parametrize("vendor", ["anthropic", "openai-responses", "openai-chat"])
def test_map_batch_mode_typed_outputs_aligned_and_half_priced(vendor: str) -> None:
    items = ["sunny day", "rain again", "picnic", "weird one", "expire me"]
    with FakeProviderServer() as srv:
        srv.batches.plan(
            polls=2,
            replies={
                0: reply.tool_calls(("final_result", {"mood": "happy"}), usage=(100, 10)),
                1: reply.tool_calls(("final_result", {"mood": "sad"}), usage=(100, 10)),
                2: reply.tool_calls(("final_result", {"mood": "happy"}), usage=(100, 10)),
                3: reply.tool_calls(("final_result", {"mood": "furious"}), usage=(100, 10)),
            },
            expired=[4],
        )
        out = alloy.map("How does '{item}' feel?", items, provider=_provider(vendor, srv.url),
                        output_type=Mood, mode="batch", progress=False)
        assert not srv.errors, srv.errors
        (batch,) = srv.batches.batches.values()
        assert len(batch.items) == len(items)  # one batch, every item in it
        # each item carried the final_result tool and its own prompt
        assert all("final_result" in str(body) for _, body in batch.items)
    assert [o.mood if o else None for o in out.outputs] == ["happy", "sad", "happy", None, None]
    assert isinstance(out.errors[3], OutputValidationError)
    assert isinstance(out.errors[4], BatchItemExpired)
    assert set(out.errors) == {3, 4}
    # cost: half the list price of the tokens the four answered items used
    info = model_metadata.lookup(_provider(vendor, "http://127.0.0.1:9").model)
    assert info is not None and info.input_price is not None
    full = sum(r.usage.input_tokens for r in out.results if r is not None) * info.input_price
    full += sum(r.usage.output_tokens for r in out.results if r is not None) * info.output_price
    assert out.usage.input_tokens == 400 and out.usage.output_tokens == 40
    assert out.usage.estimated_cost_cents == pytest.approx(full / 1e6 * 100 * 0.5)
    assert KEY not in repr(out.errors)
