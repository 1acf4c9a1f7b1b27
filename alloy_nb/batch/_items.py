"""Items → prompts: scalars fill ``{item}``, dicts fill ``{key}``, DataFrame rows fill
``{column}``, a Series fills ``{item}``. Keeps the input's index for ``to_pandas``."""

from __future__ import annotations

import string
from collections.abc import Iterable, Mapping
from typing import Any

from pydantic import BaseModel, ConfigDict

from alloy_nb.errors import ConfigError

__all__ = ["Prepared", "prepare"]


class Prepared(BaseModel):
    """The expanded prompts, aligned with the items, and the index to label them with."""

    model_config = ConfigDict(arbitrary_types_allowed=True)

    prompts: list[str]
    index: Any = None  # a pandas Index for DataFrame/Series input, else None (0..n-1)
    kind: str = "list"


def _is_pandas(obj: Any, name: str) -> bool:
    return type(obj).__module__.startswith("pandas") and type(obj).__name__ == name


def prepare(template: str, items: Any) -> Prepared:
    """Expand ``template`` once per item; a missing field is a ``ConfigError`` naming it."""
    if not isinstance(template, str):
        raise ConfigError(f"the template must be a str with {{fields}}, got {template!r}")
    if isinstance(items, str | bytes) or items is None:
        raise ConfigError(
            f"items must be a list/iterable, dicts, a DataFrame or a Series, got {items!r}"
        )
    fields = _fields(template)
    if _is_pandas(items, "DataFrame"):
        columns = [str(c) for c in items.columns]
        rows = [dict(zip(columns, row, strict=True))
                for row in items.itertuples(index=False, name=None)]
        prompts = [_fill(template, fields, row, i, "column") for i, row in enumerate(rows)]
        return Prepared(prompts=prompts, index=items.index, kind="dataframe")
    if _is_pandas(items, "Series"):
        prompts = [_fill(template, fields, {"item": v}, i, "field")
                   for i, v in enumerate(items.tolist())]
        return Prepared(prompts=prompts, index=items.index, kind="series")
    if isinstance(items, Mapping) or not isinstance(items, Iterable):
        raise ConfigError(
            "items must be a list/iterable of scalars or dicts, a DataFrame or a Series, "
            f"got {type(items).__name__}"
        )
    prompts = []
    for i, item in enumerate(items):
        values = dict(item) if isinstance(item, Mapping) else {"item": item}
        prompts.append(_fill(template, fields, values, i, "key"))
    return Prepared(prompts=prompts, kind="list")


def _fields(template: str) -> set[str]:
    try:
        parsed = list(string.Formatter().parse(template))
    except ValueError as exc:  # from None: the message quotes the parse error
        raise ConfigError(
            f"invalid template {template!r}: {exc} (use {{{{ }}}} for literal braces)"
        ) from None
    names = set()
    for _, field, _, _ in parsed:
        if field is not None:
            if field == "" or field.isdigit():
                raise ConfigError(
                    f"the template {template!r} has a positional field {{{field}}}; name it "
                    "({item}, a dict key or a column)"
                )
            names.add(field.split(".", 1)[0].split("[", 1)[0])
    return names


def _fill(template: str, fields: set[str], values: dict[str, Any], i: int, what: str) -> str:
    missing = sorted(fields - values.keys())
    if missing:
        have = ", ".join(sorted(values)) or "none"
        raise ConfigError(
            f"item {i}: the template uses {{{missing[0]}}} but the item has no such {what} "
            f"(it has: {have})"
        )
    try:
        return template.format_map(values)
    except (KeyError, AttributeError, IndexError, ValueError, TypeError) as exc:
        # from None: the message quotes the formatting error
        raise ConfigError(f"item {i}: cannot fill the template: {exc}") from None
