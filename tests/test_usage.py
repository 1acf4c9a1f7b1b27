"""Usage arithmetic and cost (spec §1.7, conformance S for Usage)."""

from __future__ import annotations

import pytest

from alloy_nb.usage import Usage


def test_defaults_and_total() -> None:
    u = Usage()
    assert (u.input_tokens, u.output_tokens, u.estimated_cost_cents, u.total_tokens) == (0, 0, 0, 0)
    assert Usage(input_tokens=3, output_tokens=4).total_tokens == 7


def test_add_and_merge() -> None:
    a = Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=1,
              estimated_cost_cents=1.5)
    b = Usage(input_tokens=1, output_tokens=2, cache_creation_input_tokens=3,
              estimated_cost_cents=0.5, priced=False)
    s = a + b
    assert (s.input_tokens, s.output_tokens, s.cache_read_input_tokens,
            s.cache_creation_input_tokens) == (11, 7, 1, 3)
    assert s.estimated_cost_cents == 2.0 and not s.priced
    m = Usage(input_tokens=1).merge({"input_tokens": 9, "output_tokens": None})
    assert (m.input_tokens, m.output_tokens) == (10, 0)


@pytest.mark.parametrize(("inp", "out", "cents"), [
    (1_000_000, 1_000_000, 1800),
    (100_000, 50_000, 105),
    (1_000, 0, 0.3),
    (0, 500, 0.75),
    (0, 0, 0),
])
def test_cost_examples(inp: int, out: int, cents: float) -> None:
    u = Usage(input_tokens=inp, output_tokens=out, estimated_cost_cents=99).with_cost(3, 15)
    assert u.estimated_cost_cents == pytest.approx(cents) and u.priced


def test_unpriced_is_honest() -> None:
    u = Usage(input_tokens=10).with_cost(None, None)
    assert not u.priced and u.cost_label == "unpriced"
    assert Usage().with_cost(None, None).priced  # nothing to price
    partly = Usage(input_tokens=1_000_000).with_cost(3, 15) + u
    assert partly.cost_label.startswith("≥ $3.0000")
    assert str(Usage(input_tokens=1234, output_tokens=5).with_cost(3, 15)).startswith(
        "1,234 in / 5 out tokens, $")


def test_sub_is_what_was_spent_between_two_totals() -> None:
    before = Usage(input_tokens=10, output_tokens=5, cache_read_input_tokens=2,
                   cache_creation_input_tokens=1, estimated_cost_cents=1.0)
    spent = Usage(input_tokens=7, output_tokens=3, cache_read_input_tokens=4,
                  cache_creation_input_tokens=6, estimated_cost_cents=0.25, priced=False)
    after = before + spent
    assert after - before == spent  # every field, priced included (the later total's)
    assert (after - before).priced is False
    assert before - before == Usage()


def test_sub_never_goes_below_zero_and_rejects_other_types() -> None:
    small, big = Usage(input_tokens=1, estimated_cost_cents=0.1), Usage(
        input_tokens=5, output_tokens=2, cache_read_input_tokens=3,
        cache_creation_input_tokens=4, estimated_cost_cents=1.0)
    assert small - big == Usage()
    with pytest.raises(TypeError):
        _ = small - 3  # type: ignore[operator]
