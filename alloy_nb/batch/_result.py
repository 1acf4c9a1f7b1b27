"""``BatchResult``: what ``alloy.map`` returns, aligned with the items."""

from __future__ import annotations

import dataclasses
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from alloy_nb.result import Result
from alloy_nb.usage import Usage

__all__ = ["BatchResult", "ItemStatus"]

#: Per item: a Result status, or ``cached`` (from ``cache_dir``), ``skipped`` (never
#: started: budget reached), ``cancelled`` (interrupted) or ``error`` (no Result at all).
ItemStatus = str


class BatchResult(BaseModel):
    """One entry per item, in input order.

    ``outputs[i]`` is ``results[i].output`` with ``output_type``, else ``results[i].text``;
    None where item ``i`` failed (its exception is ``errors[i]``).
    """

    model_config = ConfigDict(arbitrary_types_allowed=True)

    prompts: list[str]
    results: list[Result | None]
    errors: dict[int, BaseException] = Field(default_factory=dict)
    statuses: list[ItemStatus]
    structured: bool = False  # output_type was set
    index: Any = None  # the input's pandas index, when it had one
    rate_limited: int = 0  # 429 answers seen (each lowered concurrency for a while)
    wall_s: float = 0.0

    @property
    def outputs(self) -> list[Any]:
        out: list[Any] = []
        for i, r in enumerate(self.results):
            if r is None or i in self.errors:
                out.append(None)
            else:
                out.append(r.output if self.structured else r.text)
        return out

    @property
    def usage(self) -> Usage:
        """Summed over items that ran now (cached items cost nothing this time)."""
        total = Usage()
        for r, status in zip(self.results, self.statuses, strict=True):
            if r is not None and status != "cached":
                total = total + r.usage
        return total

    @property
    def cost_cents(self) -> float:
        return self.usage.estimated_cost_cents

    @property
    def cost(self) -> str:
        """``"$0.0123"``, or says so when part of it is unpriced."""
        return self.usage.cost_label

    @property
    def ok(self) -> bool:
        return not self.errors

    def to_pandas(self) -> Any:
        """One row per item on the input's index: BaseModel/dataclass/dict outputs spread
        into columns (else one ``output`` column), then ``status``, ``error``, ``cost_cents``."""
        import pandas as pd

        rows = []
        for i, value in enumerate(self.outputs):
            r = self.results[i]
            row = _columns(value, self.structured)
            err = self.errors.get(i)
            row["status"] = self.statuses[i]
            row["error"] = None if err is None else f"{type(err).__name__}: {err}"
            row["cost_cents"] = 0.0 if r is None or self.statuses[i] == "cached" else (
                r.usage.estimated_cost_cents)
            rows.append(row)
        index = self.index if self.index is not None else pd.RangeIndex(len(rows))
        return pd.DataFrame(rows, index=index)

    def __len__(self) -> int:
        return len(self.results)

    def _summary(self) -> str:
        n = len(self.results)
        counts: dict[str, int] = {}
        for s in self.statuses:
            counts[s] = counts.get(s, 0) + 1
        parts = ", ".join(f"{v} {k}" for k, v in sorted(counts.items()))
        return (f"{n} items: {parts}; {len(self.errors)} failed; "
                f"{self.usage}; {self.wall_s:.1f} s")

    def __repr__(self) -> str:
        return f"BatchResult({self._summary()})"

    def __str__(self) -> str:
        return self.__repr__()

    def _repr_markdown_(self) -> str:
        lines = [f"**BatchResult** {self._summary()}"]
        for i, err in list(self.errors.items())[:5]:
            lines.append(f"- item {i}: `{type(err).__name__}`: {str(err)[:200]}")
        if len(self.errors) > 5:
            lines.append(f"- … and {len(self.errors) - 5} more in `.errors`")
        return "\n".join(lines)


def _columns(value: Any, structured: bool) -> dict[str, Any]:
    if structured:
        if isinstance(value, BaseModel):
            return value.model_dump()
        if dataclasses.is_dataclass(value) and not isinstance(value, type):
            return dataclasses.asdict(value)
        if isinstance(value, dict):
            return {str(k): v for k, v in value.items()}
    return {"output": value}
