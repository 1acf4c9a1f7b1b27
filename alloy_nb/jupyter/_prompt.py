"""Strict ``{name}`` interpolation of notebook variables into a ``%%alloy`` prompt.

Unlike IPython's ``var_expand`` it never evaluates expressions and never fails silently:
a missing name is an error that names it. ``magics.py`` decides when to call it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from alloy_nb.errors import PromptError  # re-exported from its old home

__all__ = ["MAX_VALUE_CHARS", "PromptError", "interpolate"]

#: Longest text one interpolated value may add to a prompt (DataFrames, arrays, ...).
MAX_VALUE_CHARS = 4000

# {name}, {name.attr}, {name[0]}, {name['key']}, chained; anything else is left alone.
_FIELD = re.compile(
    r"\{\{|\}\}|\{([A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\[-?\d+\]|\['[^'\]]*'\]|\[\"[^\"\]]*\"\])*)\}"
)
_STEP = re.compile(r"\.([A-Za-z_]\w*)|\[(-?\d+)\]|\['([^'\]]*)'\]|\[\"([^\"\]]*)\"\]")
_FENCE = re.compile(r"^\s{0,3}(`{3,}|~{3,})")


def _resolve(path: str, namespace: Mapping[str, Any]) -> Any:
    head = re.match(r"[A-Za-z_]\w*", path)
    assert head is not None
    name = head.group(0)
    if name not in namespace:
        raise PromptError(
            f"{{{name}}} in the prompt: no variable named {name!r} in the notebook "
            f"(define it first, or write {{{{{name}}}}} for literal braces)"
        )
    value = namespace[name]
    done = name
    for step in _STEP.finditer(path, head.end()):
        attr, index, key1, key2 = step.groups()
        try:
            if attr is not None:
                value = getattr(value, attr)
            elif index is not None:
                value = value[int(index)]
            else:
                value = value[key1 if key1 is not None else key2]
        except (AttributeError, LookupError, TypeError) as exc:
            raise PromptError(
                f"{{{path}}} in the prompt: {done}{step.group(0)} failed "
                f"({type(exc).__name__}: {exc})"
            ) from None
        done += step.group(0)
    return value


def render_value(value: Any, limit: int = MAX_VALUE_CHARS) -> str:
    """A prompt-sized text for ``value``: strings verbatim, tables by shape and head."""
    if isinstance(value, str):
        text = value
    elif hasattr(value, "shape") and hasattr(value, "head") and callable(value.head):
        try:
            text = f"<{type(value).__name__} shape={value.shape}>\n{value.head(10)!r}"
        except Exception:
            text = repr(value)
    else:
        text = repr(value)
    if len(text) > limit:
        text = text[:limit] + f"\n… ({len(text) - limit:,} more characters not shown)"
    return text


def interpolate(template: str, namespace: Mapping[str, Any]) -> str:
    """Replace ``{name}`` (also ``{name.attr}``, ``{name[0]}``, ``{name['key']}``) with the
    variable's text; ``{{``/``}}`` give literal braces.

    Braces that are not a plain name path (JSON, set literals, ``{n*2}``) stay as written,
    and nothing inside a fenced code block is touched, so pasted code keeps its f-strings.
    Raises ``PromptError`` naming the first variable that does not resolve.
    """
    out: list[str] = []
    fence: str | None = None
    for line in template.splitlines(keepends=True):
        m = _FENCE.match(line)
        if fence is not None:
            if m and m.group(1)[0] == fence[0] and len(m.group(1)) >= len(fence):
                fence = None
            out.append(line)
            continue
        if m:
            fence = m.group(1)
            out.append(line)
            continue
        out.append(_FIELD.sub(lambda f: _replace(f, namespace), line))
    return "".join(out)


def _replace(match: re.Match[str], namespace: Mapping[str, Any]) -> str:
    token = match.group(0)
    if token == "{{":
        return "{"
    if token == "}}":
        return "}"
    path = match.group(1)
    try:
        return render_value(_resolve(path, namespace))
    except PromptError:
        raise
    except Exception as exc:  # a raising property or __repr__: the user's bug, named
        raise PromptError(
            f"{{{path}}} in the prompt: reading the variable raised "
            f"{type(exc).__name__}: {exc}"
        ) from None
