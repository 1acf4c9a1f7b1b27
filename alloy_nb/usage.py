"""Token usage and its estimated cost.

Prices come from ``model_metadata``; this module only adds and prices numbers. A cost is
honest: when any part of a total came from a model without a known price, the total says
so (``priced`` is False) instead of pretending to be complete.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, computed_field

__all__ = ["Usage"]


class Usage(BaseModel):
    model_config = ConfigDict(frozen=True)

    input_tokens: int = 0
    output_tokens: int = 0
    cache_read_input_tokens: int = 0
    cache_creation_input_tokens: int = 0
    estimated_cost_cents: float = 0.0
    priced: bool = True  # False when some tokens had no known price

    @computed_field  # type: ignore[prop-decorator]
    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens

    def __add__(self, other: Usage) -> Usage:
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=self.input_tokens + other.input_tokens,
            output_tokens=self.output_tokens + other.output_tokens,
            cache_read_input_tokens=self.cache_read_input_tokens + other.cache_read_input_tokens,
            cache_creation_input_tokens=self.cache_creation_input_tokens
            + other.cache_creation_input_tokens,
            estimated_cost_cents=self.estimated_cost_cents + other.estimated_cost_cents,
            priced=self.priced and other.priced,
        )

    def __sub__(self, other: Usage) -> Usage:
        """What was spent between two running totals: ``later - earlier``.

        Counters and cost never go below zero (a total replaced by a smaller one spent
        nothing); ``priced`` is the later total's, so an unpriced part stays flagged.
        """
        if not isinstance(other, Usage):
            return NotImplemented
        return Usage(
            input_tokens=max(0, self.input_tokens - other.input_tokens),
            output_tokens=max(0, self.output_tokens - other.output_tokens),
            cache_read_input_tokens=max(
                0, self.cache_read_input_tokens - other.cache_read_input_tokens
            ),
            cache_creation_input_tokens=max(
                0, self.cache_creation_input_tokens - other.cache_creation_input_tokens
            ),
            estimated_cost_cents=max(0.0, self.estimated_cost_cents - other.estimated_cost_cents),
            priced=self.priced,
        )

    def merge(self, raw: dict[str, Any]) -> Usage:
        """Add a provider's usage mapping; missing keys count as 0."""
        def count(key: str) -> int:
            return int(raw.get(key) or 0)

        return self + Usage(
            input_tokens=count("input_tokens"),
            output_tokens=count("output_tokens"),
            cache_read_input_tokens=count("cache_read_input_tokens"),
            cache_creation_input_tokens=count("cache_creation_input_tokens"),
        )

    def with_cost(
        self,
        input_per_million: float | None,
        output_per_million: float | None,
        cache_read_per_million: float | None = None,
        cache_write_per_million: float | None = None,
    ) -> Usage:
        """Price this usage (US dollars per million tokens in, cents out); replaces the cost.

        ``None`` prices mark the usage unpriced (cost 0, ``priced=False``) unless there are
        no tokens at all.
        """
        if input_per_million is None or output_per_million is None:
            return self.model_copy(
                update={"estimated_cost_cents": 0.0, "priced": self.total_tokens == 0}
            )
        cr = input_per_million * 0.1 if cache_read_per_million is None else cache_read_per_million
        cw = (
            input_per_million * 1.25 if cache_write_per_million is None else cache_write_per_million
        )
        cents = (
            self.input_tokens * input_per_million
            + self.output_tokens * output_per_million
            + self.cache_read_input_tokens * cr
            + self.cache_creation_input_tokens * cw
        ) * 100 / 1_000_000
        return self.model_copy(update={"estimated_cost_cents": cents, "priced": True})

    @property
    def cost_label(self) -> str:
        """``"$0.0123"``, ``"≥ $0.0123 (partly unpriced)"`` or ``"unpriced"``."""
        dollars = self.estimated_cost_cents / 100
        if self.priced:
            return f"${dollars:.4f}"
        if self.estimated_cost_cents:
            return f"≥ ${dollars:.4f} (partly unpriced)"
        return "unpriced"

    def __str__(self) -> str:
        return (
            f"{self.input_tokens:,} in / {self.output_tokens:,} out tokens, {self.cost_label}"
        )
