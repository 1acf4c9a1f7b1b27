"""Schema-valid sample values for a JSON schema: how the offline demo answers ``final_result``.

Deterministic per prompt (choices come from a hash of the prompt and the field's path, or
from values the prompt mentions), so a notebook re-run gives the same answers. Handles
what pydantic emits: ``$ref``/``$defs``, ``anyOf``/``oneOf``/``allOf``, ``enum``/``const``,
numeric bounds, string lengths and common formats, arrays with item bounds, objects.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

__all__ = ["sample_value"]

_FORMATS = {
    "date": "2024-01-01", "date-time": "2024-01-01T00:00:00Z", "time": "00:00:00",
    "email": "someone@example.com", "uri": "https://example.com", "url": "https://example.com",
    "uuid": "00000000-0000-4000-8000-000000000000", "duration": "P1D",
    "ipv4": "127.0.0.1", "ipv6": "::1", "hostname": "example.com",
}  # fmt: skip


def sample_value(schema: dict[str, Any], prompt: str) -> Any:
    """A value valid against ``schema`` (a JSON schema with its ``$defs`` at the root)."""
    return _Sampler(schema, prompt).value(schema, "$", 0)


class _Sampler:
    def __init__(self, root: dict[str, Any], prompt: str) -> None:
        self.root = root
        self.prompt = prompt
        self.low = prompt.lower()
        self.numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", prompt)]

    def pick(self, path: str, n: int) -> int:
        digest = hashlib.sha256(f"{self.prompt}\0{path}".encode()).digest()
        return int.from_bytes(digest[:4], "big") % max(n, 1)

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        ref = schema.get("$ref")
        while isinstance(ref, str) and ref.startswith("#/"):
            node: Any = self.root
            for part in ref[2:].split("/"):
                node = node[part]
            schema = {**node, **{k: v for k, v in schema.items() if k != "$ref"}}
            ref = node.get("$ref")
        return schema

    def value(self, schema: Any, path: str, depth: int) -> Any:
        if not isinstance(schema, dict) or depth > 12:
            return None
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if "enum" in schema:
            return self.choose(schema["enum"], path)
        for key in ("anyOf", "oneOf"):
            if key in schema:
                options = [s for s in schema[key] if self.resolve(s).get("type") != "null"]
                return self.value((options or schema[key])[0], path, depth + 1)
        if "allOf" in schema:
            merged: dict[str, Any] = {}
            for part in schema["allOf"]:
                merged.update(self.resolve(part))
            return self.value(merged, path, depth + 1)
        if "default" in schema and schema.get("type") is None:
            return schema["default"]
        kind = schema.get("type")
        if isinstance(kind, list):
            kind = next((k for k in kind if k != "null"), "null")
        if kind == "object" or "properties" in schema:
            return self.object(schema, path, depth)
        if kind == "array":
            return self.array(schema, path, depth)
        if kind == "integer":
            return int(self.number(schema, path, integer=True))
        if kind == "number":
            return self.number(schema, path, integer=False)
        if kind == "boolean":
            return self.pick(path, 2) == 0
        if kind == "null":
            return None
        return self.string(schema, path)

    def choose(self, options: list[Any], path: str) -> Any:
        mentioned = [o for o in options if isinstance(o, str) and o and (
            re.search(rf"\b{re.escape(o.lower())}\b", self.low))]
        if len(mentioned) == 1:
            return mentioned[0]
        return options[self.pick(path, len(options))]

    def object(self, schema: dict[str, Any], path: str, depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema.get("properties", {})
        return {k: self.value(v, f"{path}.{k}", depth + 1) for k, v in props.items()}

    def array(self, schema: dict[str, Any], path: str, depth: int) -> list[Any]:
        low = int(schema.get("minItems", 1))
        high = int(schema.get("maxItems", max(low, 3)))
        count = min(max(low, 1 + self.pick(path + "#n", 3)), high)
        items = schema.get("items", {})
        out = [self.value(items, f"{path}[{i}]", depth + 1) for i in range(count)]
        if schema.get("uniqueItems"):
            unique: list[Any] = []
            for item in out:
                if item not in unique:
                    unique.append(item)
            out = unique if len(unique) >= low else out
        return out

    def number(self, schema: dict[str, Any], path: str, *, integer: bool) -> float:
        lo, hi = schema.get("minimum"), schema.get("maximum")
        xlo, xhi = schema.get("exclusiveMinimum"), schema.get("exclusiveMaximum")
        step = schema.get("multipleOf")

        def fits(v: float) -> bool:
            return ((lo is None or v >= lo) and (hi is None or v <= hi)
                    and (xlo is None or v > xlo) and (xhi is None or v < xhi)
                    and (not integer or float(v).is_integer())
                    and (not step or abs(v / step - round(v / step)) < 1e-9))

        for n in self.numbers:  # a number from the prompt, when it fits
            if fits(n):
                self.numbers.remove(n)
                return n
        low = max((b for b in (lo, xlo) if b is not None), default=None)
        high = min((b for b in (hi, xhi) if b is not None), default=None)
        if low is not None and high is not None:
            frac = self.pick(path, 1000) / 999
            value: float = low + (high - low) * (0.05 + 0.9 * frac)  # strictly inside
        elif low is not None:
            value = low + 1 + self.pick(path, 10)
        elif high is not None:
            value = high - 1 - self.pick(path, 10)
        else:
            value = 1 + self.pick(path, 10)
        candidates: list[float] = []
        if step:
            candidates += [round(value / step) * step, (int(value / step) + 1) * step,
                           int(value / step) * step]
        candidates += [float(round(value)) if integer else round(value, 3), value]
        if integer:
            candidates += [float(int(value)), float(int(value) + 1)]
        for candidate in candidates:
            if fits(candidate):
                return candidate
        return value  # constraints this sampler cannot meet: validation will say so

    def string(self, schema: dict[str, Any], path: str) -> str:
        fmt = schema.get("format")
        if fmt in _FORMATS:
            return _FORMATS[fmt]
        name = path.rsplit(".", 1)[-1].strip("$[]0123456789") or "value"
        text = f"sample {name}"
        low = int(schema.get("minLength", 0))
        high = schema.get("maxLength")
        if len(text) < low:
            text = text + "x" * (low - len(text))
        if high is not None:
            text = text[: int(high)]
        return text
