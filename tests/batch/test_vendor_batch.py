"""abatch_complete over real HTTP on 127.0.0.1 against FakeProviderServer's batch endpoints:
Anthropic Message Batches and OpenAI Batch (Responses and Chat Completions providers)."""

from __future__ import annotations

import asyncio
import json
import logging
import time

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alloy_nb import model_metadata
from alloy_nb.batch import _vendor, _vendor_api
from alloy_nb.batch._vendor import BATCH_PRICE_FACTOR, BatchProgress, abatch_complete
from alloy_nb.errors import (
    AuthenticationError,
    BadRequestError,
    BatchFailed,
    BatchItemCanceled,
    BatchItemError,
    BatchItemExpired,
    ConfigError,
    ProviderError,
)
from alloy_nb.messages import user
from alloy_nb.providers import Anthropic, Demo, OpenAI, OpenAICompat, ProviderRequest, Scripted
from alloy_nb.providers.base import Completion
from alloy_nb.testing import FakeProviderServer, reply

KEY = "sk-test-batch-9d8c7b6a5f4e"
VENDORS = ["anthropic", "openai-responses", "openai-chat"]
FAST = 0.005  # poll interval (s): the fake ends a batch after a few GETs


def make(vendor: str, url: str, key: str = KEY):
    if vendor == "anthropic":
        return Anthropic(api_key=key, base_url=url, model="claude-sonnet-4-6")
    if vendor == "openai-responses":
        return OpenAI(api_key=key, base_url=url + "/v1", model="gpt-5.4")
    return OpenAICompat(api_key=key, base_url=url, model="gpt-4o")


def reqs(n: int) -> list[ProviderRequest]:
    return [ProviderRequest(messages=[user(f"question {i}")], system="be brief") for i in range(n)]


def run(provider, requests, **kw):
    kw.setdefault("poll_interval_s", FAST)
    return asyncio.run(abatch_complete(provider, requests, **kw))


def text(c: Completion | ProviderError) -> str:
    assert isinstance(c, Completion), c
    return "".join(getattr(b, "text", "") for b in c.message.content)


@pytest.fixture
def srv():
    with FakeProviderServer() as s:
        yield s
    assert not s.errors, s.errors


def sent_items(srv: FakeProviderServer) -> list[tuple[str, dict]]:
    (batch,) = srv.batches.batches.values()
    return batch.items


# ----------------------------------------------------------------- alignment and bodies


@pytest.mark.parametrize("vendor", VENDORS)
def test_results_align_with_requests_although_served_in_reverse(srv, vendor):
    p = make(vendor, srv.url)
    srv.batches.plan(polls=2)
    out = run(p, reqs(5))
    assert [text(c) for c in out] == [f"answer to: question {i}" for i in range(5)]
    (batch,) = srv.batches.batches.values()
    served = [line["custom_id"] for line in batch.results]
    assert served == [cid for cid, _ in reversed(batch.items)]  # out of order on the wire


@pytest.mark.parametrize("vendor", VENDORS)
def test_each_item_body_is_exactly_what_complete_would_send(srv, vendor):
    p = make(vendor, srv.url)
    rs = reqs(3)
    run(p, rs)
    bodies = [body for _, body in sent_items(srv)]
    assert bodies == [p.build_body(r, stream=False) for r in rs]
    assert all("stream" not in b for b in bodies)
    if vendor != "anthropic":
        (batch,) = srv.batches.batches.values()
        want = "/v1/responses" if vendor == "openai-responses" else "/v1/chat/completions"
        assert batch.endpoint == want
        create = next(r for r in srv.requests if r.path == "/v1/batches")
        assert create.json == {
            "input_file_id": batch.input_file_id,
            "endpoint": want,
            "completion_window": "24h",
        }


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_batch_answer_equals_the_live_one_at_half_the_price(srv, vendor):
    p = make(vendor, srv.url)
    (rq,) = reqs(1)
    srv.add(reply.text("answer to: question 0"))
    live = asyncio.run(p.complete(rq))
    (batched,) = run(p, [rq])
    assert isinstance(batched, Completion)
    assert batched.message == live.message
    assert batched.stop_reason == live.stop_reason == "end_turn"
    assert batched.raw_stop_reason == live.raw_stop_reason
    tokens = {"estimated_cost_cents", "priced"}
    assert batched.usage.model_dump(exclude=tokens) == live.usage.model_dump(exclude=tokens)
    info = model_metadata.lookup(p.model)
    assert info is not None and info.input_price is not None
    full = live.usage.with_cost(
        info.input_price, info.output_price, info.cache_read_price, info.cache_write_price
    )
    assert full.estimated_cost_cents > 0
    assert batched.usage.estimated_cost_cents == pytest.approx(
        full.estimated_cost_cents * BATCH_PRICE_FACTOR
    )
    assert batched.usage.priced


def test_an_unknown_model_is_marked_unpriced_not_free(srv):
    p = Anthropic(api_key=KEY, base_url=srv.url, model="claude-unknown-model-x")
    (c,) = run(p, reqs(1))
    assert isinstance(c, Completion)
    assert c.usage.priced is False and c.usage.estimated_cost_cents == 0


def test_no_requests_sends_nothing(srv):
    assert run(make("anthropic", srv.url), []) == []
    assert srv.requests == []


@pytest.mark.parametrize("provider", [Demo(), Scripted([])])
def test_other_providers_get_a_config_error_naming_the_supported_ones(provider):
    with pytest.raises(ConfigError) as e:
        run(provider, reqs(1))
    msg = str(e.value)
    assert type(provider).__name__ in msg
    assert "Anthropic" in msg and "OpenAI" in msg and "OpenAICompat" in msg


def test_a_negative_poll_interval_is_a_config_error(srv):
    with pytest.raises(ConfigError, match="poll_interval_s"):
        run(make("anthropic", srv.url), reqs(1), poll_interval_s=-1)


# ----------------------------------------------------------------- progress


@pytest.mark.parametrize("vendor", VENDORS)
def test_progress_is_reported_after_submit_each_poll_and_at_the_end(srv, vendor):
    seen: list[BatchProgress] = []
    srv.batches.plan(polls=4, errored={3: ("invalid_request_error", "bad")})
    run(make(vendor, srv.url), reqs(4), on_progress=seen.append)
    assert [s.polls for s in seen] == [0, 1, 2, 3, 4, 4]
    assert seen[0].processing == 4 and seen[0].succeeded == 0
    assert [s.done for s in seen] == [False] * 5 + [True]
    done = [s.succeeded + s.errored for s in seen]
    assert done == sorted(done) and done[1] < done[-1] == 4  # advances poll by poll
    last = seen[-1]
    assert (last.total, last.succeeded, last.errored, last.processing) == (4, 3, 1, 0)
    assert len({s.batch_id for s in seen}) == 1 and seen[0].batch_id
    assert all(s.total == 4 for s in seen)
    assert seen[-2].status == ("ended" if vendor == "anthropic" else "completed")


# ----------------------------------------------------------------- per-item errors


@pytest.mark.parametrize("vendor", VENDORS)
def test_an_errored_item_carries_the_vendors_type_and_message(srv, vendor):
    srv.batches.plan(
        errored={
            0: ("invalid_request_error", "max_tokens: too large for this model"),
            2: ("overloaded_error" if vendor == "anthropic" else "server_error", "busy"),
        }
    )
    out = run(make(vendor, srv.url), reqs(3))
    bad, good, busy = out
    assert isinstance(good, Completion)
    assert isinstance(bad, BatchItemError) and not isinstance(bad, BatchItemExpired)
    assert bad.error_type == "invalid_request_error"
    assert "max_tokens: too large for this model" in str(bad)
    assert bad.custom_id == "alloy-0" and bad.batch_id and bad.retryable is False
    assert bad.provider == make(vendor, srv.url).name
    assert isinstance(busy, BatchItemError) and busy.retryable is True
    if vendor != "anthropic":  # OpenAI keeps each failed request's HTTP status
        assert bad.status_code == 400 and busy.status_code == 500
        assert bad.request_id and bad.request_id.startswith("req_")


@pytest.mark.parametrize("vendor", VENDORS)
def test_expired_items_are_typed_and_the_rest_are_kept(srv, vendor):
    srv.batches.plan(expired=[1, 2])
    seen: list[BatchProgress] = []
    out = run(make(vendor, srv.url), reqs(4), on_progress=seen.append)
    assert isinstance(out[0], Completion) and isinstance(out[3], Completion)
    for e in out[1:3]:
        assert isinstance(e, BatchItemExpired) and e.retryable
    assert seen[-1].expired == 2
    if vendor == "anthropic":
        assert out[1].error_type == "expired"  # type: ignore[union-attr]
        assert seen[-1].status == "ended"
    else:  # per-item expiry happens when the whole batch's 24 h window closes
        assert out[1].error_type == "batch_expired"  # type: ignore[union-attr]
        assert seen[-1].status == "expired"


def test_anthropic_canceled_items_are_typed(srv):
    srv.batches.plan(canceled=[0])
    out = run(make("anthropic", srv.url), reqs(2))
    assert isinstance(out[0], BatchItemCanceled) and isinstance(out[1], Completion)
    assert out[0].error_type == "canceled"


def test_items_missing_from_the_results_are_errors_not_holes(srv, monkeypatch):
    """A result line that never arrives (or is unreadable) is an error at its index."""
    p = make("anthropic", srv.url)
    real = _vendor_api._jsonl

    def drop_first(raw: bytes):
        return real(b"not json\n" + raw)[1:]

    monkeypatch.setattr(_vendor_api, "_jsonl", drop_first)
    out = run(p, reqs(3))
    # served in reverse, so the dropped first line is the last item's
    assert [type(o) for o in out] == [Completion, Completion, BatchItemError]
    assert out[2].error_type == "missing_result"  # type: ignore[union-attr]


# ----------------------------------------------------------------- whole-batch failure


@pytest.mark.parametrize("vendor", ["openai-responses", "openai-chat"])
def test_a_failed_openai_batch_raises_batch_failed_with_the_reason(srv, vendor):
    srv.batches.plan(fail="model gpt-9 does not exist", polls=3)
    with pytest.raises(BatchFailed) as e:
        run(make(vendor, srv.url), reqs(2))
    assert "model gpt-9 does not exist" in str(e.value)
    assert e.value.batch_id and e.value.batch_id.startswith("batch_")
    assert not any(r.path.endswith("/content") for r in srv.requests)  # nothing to fetch


def test_an_openai_input_the_server_rejects_names_the_line(srv, monkeypatch):
    """The fake validates the JSONL as OpenAI does: a duplicated custom_id fails the whole
    batch, and the reason names the line."""

    class Duplicating(_vendor_api.OpenAIBatches):
        async def submit(self, items):
            return await super().submit([*items, items[0]])

    p = make("openai-chat", srv.url)
    monkeypatch.setattr(_vendor, "api_for", lambda _p: Duplicating(p, "/v1/chat/completions"))
    with pytest.raises(BatchFailed, match=r"custom_id is missing or duplicated \(line 3\)"):
        run(p, reqs(2))


def test_an_anthropic_batch_the_api_rejects_raises_its_http_error(srv):
    srv.batches.plan(fail="requests.0.params.model: unknown model")
    with pytest.raises(BadRequestError) as e:
        run(make("anthropic", srv.url), reqs(2))
    assert e.value.status_code == 400
    assert "unknown model" in str(e.value)


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_refused_key_is_an_authentication_error_without_retries(srv, vendor):
    srv.batches.fail_next("create", 401, message="invalid x-api-key", times=3)
    with pytest.raises(AuthenticationError):
        run(make(vendor, srv.url), reqs(1))
    creates = [r for r in srv.requests if r.method == "POST" and "batches" in r.path]
    assert len(creates) == 1


# ----------------------------------------------------------------- retries


@pytest.mark.parametrize("vendor", VENDORS)
def test_429_and_503_on_control_requests_are_retried_honouring_retry_after(srv, vendor):
    srv.batches.fail_next("create", 429, retry_after=0.3)
    srv.batches.fail_next("retrieve", 503, retry_after=0.05, times=2)
    download = "results" if vendor == "anthropic" else "download"
    srv.batches.fail_next(download, 429, retry_after=0.05)
    if vendor != "anthropic":
        srv.batches.fail_next("upload", 429, retry_after=0.05)
    start = time.monotonic()
    out = run(make(vendor, srv.url), reqs(2))
    waited = time.monotonic() - start
    assert [text(c) for c in out] == ["answer to: question 0", "answer to: question 1"]
    creates = [r for r in srv.requests if r.method == "POST" and r.path.endswith("batches")]
    assert len(creates) == 2  # one 429, one accepted
    assert waited >= 0.3  # the Retry-After of the 429 was waited out
    assert len(srv.batches.batches) == 1


def test_retries_give_up_with_the_last_error(srv, monkeypatch):
    monkeypatch.setattr(_vendor_api, "_CONTROL_RETRIES", 2)
    srv.batches.fail_next("create", 429, retry_after=0.01, times=5)
    with pytest.raises(ProviderError) as e:
        run(make("anthropic", srv.url), reqs(1))
    assert getattr(e.value, "status_code", None) == 429
    assert len([r for r in srv.requests if r.method == "POST"]) == 3


# ----------------------------------------------------------------- cancellation


async def _cancel_after_first_poll(provider, srv, n=3):
    polled = asyncio.Event()

    def progress(p: BatchProgress) -> None:
        if p.polls >= 1:
            polled.set()

    task = asyncio.ensure_future(
        abatch_complete(provider, reqs(n), poll_interval_s=FAST, on_progress=progress)
    )
    await asyncio.wait_for(polled.wait(), 10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


@pytest.mark.parametrize("vendor", VENDORS)
def test_cancelling_the_caller_cancels_the_remote_batch(srv, vendor):
    srv.batches.plan(polls=10_000)
    asyncio.run(_cancel_after_first_poll(make(vendor, srv.url), srv))
    (batch,) = srv.batches.batches.values()
    assert srv.batches.cancelled == [batch.id]
    cancel = [r for r in srv.requests if r.path.endswith("/cancel")]
    assert len(cancel) == 1 and cancel[0].method == "POST"
    assert batch.id in cancel[0].path


@pytest.mark.parametrize("vendor", ["anthropic", "openai-chat"])
def test_cancelled_while_submitting_still_cancels_the_batch_once_it_exists(srv, vendor):
    """The create landed but its reply had not arrived when the caller was cancelled: the
    client waits for the id (bounded) and cancels that batch."""
    srv.batches.plan(polls=10_000).slow_create(0.4)

    async def go() -> None:
        task = asyncio.ensure_future(
            abatch_complete(make(vendor, srv.url), reqs(2), poll_interval_s=FAST)
        )
        while not srv.batches.batches:
            await asyncio.sleep(0.01)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task

    asyncio.run(go())
    (batch,) = srv.batches.batches.values()
    assert srv.batches.cancelled == [batch.id]
    assert batch.gets == 0  # it was never polled


@pytest.mark.parametrize("vendor", VENDORS)
def test_a_batch_cancelled_elsewhere_keeps_its_answers_and_types_the_rest(srv, vendor):
    """Someone cancels the batch in the vendor's console after one item ran."""
    srv.batches.plan(polls=4)
    p = make(vendor, srv.url)

    def cancel_in_console(progress: BatchProgress) -> None:
        if progress.polls == 1:
            path = "/v1/messages/batches" if vendor == "anthropic" else "/v1/batches"
            auth = {"x-api-key": KEY, "anthropic-version": "2023-06-01",
                    "authorization": f"Bearer {KEY}"}
            r = httpx.post(f"{srv.url}{path}/{progress.batch_id}/cancel", headers=auth)
            assert r.status_code == 200

    out = run(p, reqs(4), on_progress=cancel_in_console)
    assert isinstance(out[0], Completion)
    assert all(isinstance(o, BatchItemCanceled) for o in out[1:])
    (batch,) = srv.batches.batches.values()
    assert batch.gets == 2  # the poll after the cancel saw the batch end


def test_a_failed_remote_cancel_is_logged_and_the_cancellation_still_propagates(srv, caplog):
    srv.batches.plan(polls=10_000)
    srv.batches.fail_next("cancel", 400, message="cannot cancel")
    with caplog.at_level(logging.WARNING, logger="alloy_nb"):
        asyncio.run(_cancel_after_first_poll(make("anthropic", srv.url), srv))
    assert "could not cancel" in caplog.text
    assert KEY not in caplog.text


def test_a_progress_callback_that_raises_cancels_the_remote_batch(srv):
    srv.batches.plan(polls=10_000)

    def boom(p: BatchProgress) -> None:
        if p.polls == 2:
            raise RuntimeError("callback bug")

    with pytest.raises(RuntimeError, match="callback bug"):
        run(make("openai-chat", srv.url), reqs(2), on_progress=boom)
    assert len(srv.batches.cancelled) == 1


def test_a_batch_that_ended_is_not_cancelled_when_fetching_fails(srv):
    srv.batches.fail_next("results", 404, message="gone")
    with pytest.raises(BadRequestError):
        run(make("anthropic", srv.url), reqs(1))
    assert srv.batches.cancelled == []


# ----------------------------------------------------------------- secrets


@pytest.mark.parametrize("vendor", VENDORS)
def test_the_key_never_appears_in_errors_progress_or_logs(srv, vendor, caplog):
    secret = "sk-very-secret-0123456789abcdef"
    p = make(vendor, srv.url, key=secret)
    srv.batches.plan(errored={0: ("invalid_request_error", f"your key {secret} is odd")})
    srv.batches.fail_next("retrieve", 429, retry_after=0.01, message=f"slow down {secret}")
    seen: list[BatchProgress] = []
    with caplog.at_level(logging.DEBUG, logger="alloy_nb"):
        out = run(p, reqs(2), on_progress=seen.append)
        srv.batches.fail_next("create", 400, message=f"rejected key {secret}")
        with pytest.raises(BadRequestError) as e:
            run(p, reqs(1))
    assert isinstance(out[0], BatchItemError)
    texts = [str(out[0]), repr(out[0]), str(e.value), repr(e.value), e.value.body, caplog.text]
    texts += [repr(s) for s in seen] + [repr(p)]
    assert "[redacted]" in str(out[0]) and "[redacted]" in str(e.value)
    for t in texts:
        assert secret not in t
    # and the key did go to the server, in the vendor's auth header only
    auth = srv.requests[0].headers
    assert secret in (auth.get("x-api-key") or auth.get("authorization") or "")


def test_results_url_on_another_host_is_not_fetched_with_the_key(srv):
    api = _vendor_api.AnthropicBatches(make("anthropic", srv.url))
    foreign = {"results_url": "https://evil.example/v1/messages/batches/b1/results"}
    assert api._results_path("b1", foreign) == "/v1/messages/batches/b1/results"
    own = {"results_url": f"{srv.url}/v1/messages/batches/b1/results?x=1"}
    assert api._results_path("b1", own) == "/v1/messages/batches/b1/results?x=1"


# ----------------------------------------------------------------- untrusted results


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner,
                                                                 max_size=3),
    max_leaves=12,
)
_result_like = st.fixed_dictionaries(
    {"custom_id": st.sampled_from(["alloy-0", "alloy-1"])},
    optional={
        "result": st.fixed_dictionaries(
            {"type": st.sampled_from(["succeeded", "errored", "expired", "canceled", "x"])},
            optional={"message": _json_values, "error": _json_values},
        ),
        "response": st.one_of(
            _json_values,
            st.fixed_dictionaries(
                {"status_code": st.sampled_from([200, 400, 500]), "body": _json_values}
            ),
        ),
        "error": _json_values,
    },
)


@settings(max_examples=150, deadline=None)
@given(lines=st.lists(_result_like | _json_values, max_size=4), junk=st.binary(max_size=30))
def test_any_results_file_gives_an_outcome_per_line_and_never_crashes(lines, junk):
    raw = b"\n".join(json.dumps(x).encode() for x in lines) + b"\n" + junk
    anth = _vendor_api.AnthropicBatches(Anthropic(api_key=KEY, base_url="http://127.0.0.1:9"))
    oai = _vendor_api.OpenAIBatches(
        OpenAICompat(api_key=KEY, model="gpt-4o", base_url="http://127.0.0.1:9"),
        "/v1/chat/completions",
    )
    for line in _vendor_api._jsonl(raw):
        for outcome in (
            anth._outcome(line["custom_id"], "b", line.get("result")),
            oai._outcome(line["custom_id"], "b", line),
        ):
            assert isinstance(outcome, (Completion, ProviderError))
            if isinstance(outcome, ProviderError):
                assert KEY not in str(outcome)


# ----------------------------------------------------------------- over one batch's limits


@pytest.fixture
def two_per_batch(monkeypatch):
    monkeypatch.setattr(_vendor_api.VendorApi, "max_items", 2)
    monkeypatch.setattr(_vendor_api.AnthropicBatches, "max_items", 2)


@pytest.mark.parametrize("vendor", ["anthropic", "openai-responses"])
def test_more_items_than_one_batch_takes_run_as_several_batches(srv, vendor, two_per_batch):
    seen: list[BatchProgress] = []
    srv.batches.plan(polls=2, errored={1: ("invalid_request_error", "bad")})
    out = run(make(vendor, srv.url), reqs(5), on_progress=seen.append)
    assert len(srv.batches.batches) == 3
    assert sorted(len(b.items) for b in srv.batches.batches.values()) == [1, 2, 2]
    assert [text(c) for c in out if isinstance(c, Completion)] == [
        f"answer to: question {i}" for i in (0, 2, 4)
    ]
    assert [type(o) for o in out] == [Completion, BatchItemError] * 2 + [Completion]
    assert [o.custom_id for o in out if isinstance(o, BatchItemError)] == ["alloy-1", "alloy-3"]
    assert all(s.total == 5 == s.succeeded + s.errored + s.processing for s in seen)
    last = seen[-1]
    assert last.done and (last.succeeded, last.errored, last.processing) == (3, 2, 0)
    assert sorted(last.batch_id.split(",")) == sorted(srv.batches.batches)  # type: ignore[union-attr]
    assert sum(s.done for s in seen) == 1


def test_one_batch_failing_cancels_its_siblings(srv, two_per_batch):
    srv.batches.plan(polls=10_000)
    srv.batches.fail_next("create", 400, message="no")
    with pytest.raises(BadRequestError):
        run(make("anthropic", srv.url), reqs(6))
    assert len(srv.batches.batches) == 2  # the third create was refused
    assert sorted(srv.batches.cancelled) == sorted(srv.batches.batches)


def test_batches_are_split_by_size_too():
    items = [(f"alloy-{i}", {"text": "x" * 1000}) for i in range(5)]
    chunks = _vendor._chunks(items, max_items=100, max_bytes=2500)
    assert [len(c) for c in chunks] == [2, 2, 1]
    assert [cid for c in chunks for cid, _ in c] == [cid for cid, _ in items]
    assert _vendor._chunks(items[:1], max_items=1, max_bytes=10) == [items[:1]]


def test_openai_items_without_a_line_take_the_batch_status():
    api = _vendor_api.OpenAIBatches(make("openai-chat", "http://127.0.0.1:9"), "")
    assert isinstance(api.missing("b", {"status": "expired"}, "alloy-0", 0), BatchItemExpired)
    assert isinstance(api.missing("b", {"status": "cancelled"}, "alloy-0", 0), BatchItemCanceled)
    other = api.missing("b", {"status": "completed"}, "alloy-0", 0)
    assert type(other) is BatchItemError and other.error_type == "missing_result"
