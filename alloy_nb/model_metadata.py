"""Context windows and prices of known models; the one place such numbers live.

``lookup`` answers "how big is this model's window and what does a token cost"; pricing a
``Usage`` is ``usage.py``'s job and budgeting the context is ``compaction.py``'s.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from functools import lru_cache
from typing import Any, Union

from pydantic import BaseModel, ConfigDict

__all__ = [
    "DEFAULT_CONTEXT_WINDOW",
    "PRICE_KEYS",
    "ModelInfo",
    "catalog",
    "context_window",
    "is_priced",
    "lookup",
]

DEFAULT_CONTEXT_WINDOW = 200_000
#: Price fields an override entry may carry beside ``limit`` (USD per million tokens).
PRICE_KEYS = ("input_price", "output_price", "cache_read_price", "cache_write_price")

Suffix = Union[str, "re.Pattern[str]"]


class ModelInfo(BaseModel):
    """Prices are US dollars per million tokens; ``None`` means unknown (unpriced)."""

    model_config = ConfigDict(frozen=True)

    name: str
    context_window: int
    input_price: float | None = None
    output_price: float | None = None
    cache_read_price: float | None = None
    cache_write_price: float | None = None


# Suffixes a dated snapshot or alias may add after a catalogue name (anchored, full match).
_EXACT: tuple[Suffix, ...] = ("",)
_ANTHROPIC = ("", "-latest", re.compile(r"-\d{8}(-v\d+)?"))
_ANTHROPIC_4 = (*_ANTHROPIC, "-0")  # claude-opus-4-0 / claude-sonnet-4-0 aliases
_OPENAI = ("", "-latest", re.compile(r"-\d{4}-\d{2}-\d{2}"))
# Gemini previews are dated -preview-MM-YYYY (09-2025) and, earlier, -preview-MM-DD (05-20).
_GEMINI_25 = ("", "-latest", re.compile(r"-preview-\d{2}-(\d{4}|\d{2})"), re.compile(r"-\d{3}"))
_GEMINI_3 = ("", re.compile(r"-\d{2}-\d{4}"))
_MISTRAL = ("", "-latest", re.compile(r"-\d{4}"))


def _m(name: str, window: int, suffixes: tuple[Suffix, ...], *prices: float | None
       ) -> tuple[ModelInfo, tuple[Suffix, ...]]:
    inp, out, cread, cwrite = (*prices, None, None, None, None)[:4]
    return (ModelInfo(name=name, context_window=window, input_price=inp, output_price=out,
                      cache_read_price=cread, cache_write_price=cwrite), suffixes)


# Catalogue as of 2026-03 (list prices, USD per million tokens: input, output, cache read,
# cache write). Windows follow the reference spec §6.2 where it names the model. Tiered
# long-context prices (gpt-5.4 above 272k, Gemini Pro above 200k input) are not modelled: the
# base tier is used. First match wins, so specific names come before names they start with.
_ENTRIES: tuple[tuple[ModelInfo, tuple[Suffix, ...]], ...] = (
    # reference spec §6.2 (order kept), prices added
    _m("o3-pro", 200_000, _OPENAI, 20.0, 80.0),
    _m("gemini-flash-latest", 1_048_576, _EXACT),
    _m("claude-opus-4-6", 200_000, _ANTHROPIC, 5.0, 25.0, 0.5, 6.25),
    _m("claude-sonnet-4-6", 200_000, _ANTHROPIC, 3.0, 15.0, 0.3, 3.75),
    _m("claude-haiku-4-5", 200_000, _ANTHROPIC, 1.0, 5.0, 0.1, 1.25),
    _m("gpt-5", 400_000, _OPENAI, 1.25, 10.0, 0.125, 1.25),
    _m("gpt-5.1", 400_000, _OPENAI, 1.25, 10.0, 0.125, 1.25),
    _m("gpt-5.2", 400_000, _OPENAI, 1.75, 14.0, 0.175, 1.75),
    _m("gpt-5.4", 1_050_000, _OPENAI, 2.5, 15.0, 0.25, 2.5),
    # ChatGPT's model behind the API aliases: same price as its family, a 128k window
    _m("gpt-5-chat-latest", 128_000, _EXACT, 1.25, 10.0, 0.125, 1.25),
    _m("gpt-5.1-chat-latest", 128_000, _EXACT, 1.25, 10.0, 0.125, 1.25),
    _m("gpt-5.2-chat-latest", 128_000, _EXACT, 1.75, 14.0, 0.175, 1.75),
    _m("gemini-2.5-flash", 1_048_576, _GEMINI_25, 0.30, 2.50, 0.03),
    _m("gemini-2.5-pro", 1_048_576, _GEMINI_25, 1.25, 10.0, 0.125),
    _m("gemini-2.5-flash-lite", 1_048_576, _GEMINI_25, 0.10, 0.40, 0.01),
    _m("gemini-3-flash-preview", 1_048_576, _GEMINI_3, 0.50, 3.0, 0.05),
    _m("gemini-3-pro-preview", 1_048_576, _GEMINI_3, 2.0, 12.0, 0.2),
    # grok-4 (= grok-4-0709) has a 256k window; upstream 0.9 raised it to 2M, which is the
    # window of the grok-4 *fast* models, so the port keeps xAI's documented 256k.
    _m("grok-4", 256_000, ("", "-0709", "-latest"), 3.0, 15.0, 0.75),
    _m("grok-4-fast-reasoning", 2_000_000, _EXACT, 0.20, 0.50, 0.05),
    _m("grok-4-fast-non-reasoning", 2_000_000, _EXACT, 0.20, 0.50, 0.05),
    _m("grok-4-1-fast-reasoning", 2_000_000, _EXACT, 0.20, 0.50, 0.05),
    _m("grok-4-1-fast-non-reasoning", 2_000_000, _EXACT, 0.20, 0.50, 0.05),
    _m("grok-4-fast", 2_000_000, _EXACT, 0.20, 0.50, 0.05),  # OpenRouter's x-ai/grok-4-fast
    _m("grok-4.1-fast", 2_000_000, ("", "-reasoning", "-non-reasoning"), 0.20, 0.50, 0.05),
    _m("grok-code-fast-1", 256_000, _EXACT, 0.20, 1.50, 0.02),
    _m("grok-3-mini-fast", 131_072, _EXACT, 0.60, 4.0, 0.15),
    _m("grok-3-fast", 131_072, _EXACT, 5.0, 25.0, 1.25),
    _m("grok-3", 131_072, ("", "-fast", "-latest"), 3.0, 15.0, 0.75),
    _m("grok-3-mini", 131_072, ("", "-fast", "-latest"), 0.30, 0.50, 0.075),
    # Anthropic, older generations
    _m("claude-opus-4-5", 200_000, _ANTHROPIC, 5.0, 25.0, 0.5, 6.25),
    _m("claude-opus-4-1", 200_000, _ANTHROPIC, 15.0, 75.0, 1.5, 18.75),
    _m("claude-opus-4", 200_000, _ANTHROPIC_4, 15.0, 75.0, 1.5, 18.75),
    _m("claude-sonnet-4-5", 200_000, _ANTHROPIC, 3.0, 15.0, 0.3, 3.75),
    _m("claude-sonnet-4", 200_000, _ANTHROPIC_4, 3.0, 15.0, 0.3, 3.75),
    _m("claude-3-7-sonnet", 200_000, _ANTHROPIC, 3.0, 15.0, 0.3, 3.75),
    _m("claude-3-5-haiku", 200_000, _ANTHROPIC, 0.80, 4.0, 0.08, 1.0),
    # OpenAI
    _m("gpt-5-mini", 400_000, _OPENAI, 0.25, 2.0, 0.025, 0.25),
    _m("gpt-5-nano", 400_000, _OPENAI, 0.05, 0.40, 0.005, 0.05),
    _m("gpt-4.1", 1_047_576, _OPENAI, 2.0, 8.0, 0.50, 2.0),
    _m("gpt-4.1-mini", 1_047_576, _OPENAI, 0.40, 1.60, 0.10, 0.40),
    _m("gpt-4.1-nano", 1_047_576, _OPENAI, 0.10, 0.40, 0.025, 0.10),
    _m("gpt-4o", 128_000, _OPENAI, 2.50, 10.0, 1.25, 2.50),
    _m("gpt-4o-mini", 128_000, _OPENAI, 0.15, 0.60, 0.075, 0.15),
    _m("o3", 200_000, _OPENAI, 2.0, 8.0, 0.50, 2.0),
    _m("o4-mini", 200_000, _OPENAI, 1.10, 4.40, 0.275, 1.10),
    # the offline demo provider runs locally: it costs nothing, and says so
    _m("demo", 200_000, _EXACT, 0.0, 0.0, 0.0, 0.0),
    # DeepSeek (V3.2 prices: cache-miss input, output, cache-hit input)
    _m("deepseek-chat", 128_000, _EXACT, 0.28, 0.42, 0.028, 0.28),
    _m("deepseek-reasoner", 128_000, _EXACT, 0.28, 0.42, 0.028, 0.28),
    # Mistral (the -latest aliases move; these are Large 3, Medium 3.1, Small 3.2)
    _m("mistral-large-2411", 131_072, _EXACT, 2.0, 6.0),  # Large 2.1, still served
    _m("mistral-large", 256_000, _MISTRAL, 0.50, 1.50),
    _m("mistral-medium", 131_072, _MISTRAL, 0.40, 2.0),
    _m("mistral-small", 131_072, _MISTRAL, 0.10, 0.30),
    _m("codestral", 256_000, _MISTRAL, 0.30, 0.90),
)
_BY_NAME = {info.name: (info, sfx) for info, sfx in _ENTRIES}

_CLAUDE_DOTTED = re.compile(r"(?<=\d)\.(?=\d)")  # OpenRouter's claude-sonnet-4.6 spelling
_BEDROCK = re.compile(r"(?:[a-z]{2,6}\.)?anthropic\.")  # anthropic., us.anthropic., global.…
_VERTEX_DATE = re.compile(r"@(\d{8})$")  # Vertex AI's claude-sonnet-4-5@20250929


def catalog() -> list[ModelInfo]:
    """Every built-in entry, in matching order."""
    return [info for info, _ in _ENTRIES]


@lru_cache(maxsize=512)
def _normalise(model: str) -> str:
    """Strip routing decorations: ``openai/``, ``models/``, ``:free``, Bedrock's
    ``(us.)anthropic.`` prefix and Vertex's ``@date``."""
    name = model.strip().rsplit("/", 1)[-1].split(":", 1)[0]
    bedrock = _BEDROCK.match(name)
    if bedrock:
        name = name[bedrock.end():]
    if name.startswith("claude-"):
        name = _VERTEX_DATE.sub(r"-\1", _CLAUDE_DOTTED.sub("-", name))
    return name


def _suffix_ok(rest: str, suffixes: Iterable[Suffix]) -> bool:
    for s in suffixes:
        if isinstance(s, str):
            if rest == s:
                return True
        elif s.fullmatch(rest):
            return True
    return False


def _matches(model: str, name: str, suffixes: Iterable[Suffix]) -> bool:
    return model.startswith(name) and _suffix_ok(model[len(name):], suffixes)


@lru_cache(maxsize=512)
def _lookup_catalog(model: str) -> ModelInfo | None:
    if model in _BY_NAME:
        return _BY_NAME[model][0]
    for info, suffixes in _ENTRIES:
        if _matches(model, info.name, suffixes):
            return info
    return None


def _suffix(value: Any) -> Suffix | None:
    """A literal string suffix, or a regex (a compiled pattern or a string starting ``^``)."""
    if isinstance(value, re.Pattern):
        return re.compile(value.pattern.removeprefix("^").removesuffix("$"), value.flags)
    if isinstance(value, str):
        return re.compile(value[1:].removesuffix("$")) if value.startswith("^") else value
    return None


def _override_entry(name: Any, spec: Any) -> tuple[ModelInfo, tuple[Suffix, ...]] | None:
    """Validate one override; invalid ones are ignored, as upstream does."""
    if not isinstance(name, str) or not name:
        return None
    base, base_sfx = _BY_NAME.get(name, (None, _EXACT))
    if isinstance(spec, list | tuple) and all(isinstance(p, tuple) and len(p) == 2 for p in spec):
        spec = dict(spec)  # keyword-list form
    fields: dict[str, Any] = {}
    suffixes: tuple[Suffix, ...] = base_sfx
    if isinstance(spec, Mapping):
        for key in PRICE_KEYS:
            price = spec.get(key)
            if isinstance(price, int | float) and not isinstance(price, bool) and price >= 0:
                fields[key] = float(price)
        # a price-only entry for an unknown model gets the default window
        default = base.context_window if base else (DEFAULT_CONTEXT_WINDOW if fields else None)
        limit = spec.get("limit", default)
        if "suffix_patterns" in spec:
            parsed = [_suffix(s) for s in spec["suffix_patterns"] or ()]
            suffixes = tuple(s for s in parsed if s is not None)
    else:
        limit = spec
    if isinstance(limit, bool) or not isinstance(limit, int) or limit <= 0:
        return None
    fields["context_window"] = limit
    info = base.model_copy(update=fields) if base else ModelInfo(name=name, **fields)
    return info, suffixes


def _override_items(overrides: Any) -> Iterable[tuple[Any, Any]]:
    if isinstance(overrides, Mapping):
        return overrides.items()
    if isinstance(overrides, list | tuple):
        return [(p[0], p[1]) for p in overrides if isinstance(p, tuple | list) and len(p) == 2]
    return ()


def lookup(model: str | None, overrides: Mapping[str, Any] | None = None) -> ModelInfo | None:
    """Metadata for ``model``: user overrides first, then the catalogue; None if unknown.

    Overrides map a name to a window (``{"acme": 512_000}``, reusing the suffixes of a
    catalogue entry of the same name) or to ``{"limit": N, "suffix_patterns": [...],
    "input_price": ..., "output_price": ..., "cache_read_price": ...,
    "cache_write_price": ...}`` (prices in USD per million tokens; an entry with prices
    but no ``limit`` keeps the catalogue's window, or 200 000); a suffix is a literal
    string, a compiled regex, or a string starting with ``^`` (a regex). Decorations
    such as ``openai/``, ``models/`` or ``:free`` are ignored when matching.
    """
    if not model or not isinstance(model, str):
        return None
    candidates = (model, _normalise(model))
    for name, spec in _override_items(overrides):
        entry = _override_entry(name, spec)
        if entry and any(_matches(c, entry[0].name, entry[1]) for c in candidates):
            return entry[0]
    info = _lookup_catalog(candidates[1])
    if info and model.endswith(":free"):  # OpenRouter's free variants cost nothing
        zero = {k: 0.0 for k in ("input_price", "output_price", "cache_read_price")}
        info = info.model_copy(update={**zero, "cache_write_price": 0.0})
    return info


def is_priced(model: str | None, overrides: Mapping[str, Any] | None = None) -> bool:
    """True when both the input and the output price of ``model`` are known."""
    info = lookup(model, overrides)
    return info is not None and info.input_price is not None and info.output_price is not None


def context_window(model: str | None, overrides: Mapping[str, Any] | None = None) -> int:
    """The model's window, or ``DEFAULT_CONTEXT_WINDOW`` (200 000) when unknown."""
    info = lookup(model, overrides)
    return info.context_window if info else DEFAULT_CONTEXT_WINDOW
