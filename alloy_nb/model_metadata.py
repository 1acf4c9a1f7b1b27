"""Context windows and prices of known models; the one place such numbers live.

(Interface stub owned by the session/compaction work: ``lookup`` and ``ModelInfo`` are the
contract; the catalog is extended there.)
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

__all__ = ["DEFAULT_CONTEXT_WINDOW", "ModelInfo", "lookup"]

DEFAULT_CONTEXT_WINDOW = 200_000


class ModelInfo(BaseModel):
    """Prices are US dollars per million tokens; ``None`` means unknown (unpriced)."""

    model_config = ConfigDict(frozen=True)

    name: str
    context_window: int
    input_price: float | None = None
    output_price: float | None = None
    cache_read_price: float | None = None
    cache_write_price: float | None = None


_CATALOG: dict[str, ModelInfo] = {
    "claude-sonnet-4-6": ModelInfo(
        name="claude-sonnet-4-6", context_window=200_000, input_price=3.0, output_price=15.0
    ),
    "gpt-5.4": ModelInfo(
        name="gpt-5.4", context_window=400_000, input_price=1.25, output_price=10.0
    ),
}


def lookup(model: str, overrides: Mapping[str, Any] | None = None) -> ModelInfo | None:
    """Metadata for ``model`` (exact name, then dated-snapshot suffixes), or None."""
    if overrides and model in overrides:
        o = overrides[model]
        if isinstance(o, int):
            base = _CATALOG.get(model)
            return (base or ModelInfo(name=model, context_window=o)).model_copy(
                update={"context_window": o}
            )
        return ModelInfo(name=model, context_window=int(o.get("limit", DEFAULT_CONTEXT_WINDOW)))
    return _CATALOG.get(model)
