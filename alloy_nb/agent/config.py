"""AgentConfig: every option of a run, validated once, with providers and tools resolved.

This is the one place that turns user-facing option values ("anthropic:MODEL", plain
functions, dicts) into objects; the loop only ever sees the resolved config.
"""

from __future__ import annotations

import difflib
import inspect
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, SkipValidation, ValidationError

from alloy_nb import model_metadata
from alloy_nb.compaction import Compaction
from alloy_nb.errors import ConfigError
from alloy_nb.events import Listener
from alloy_nb.messages import ToolDefinition
from alloy_nb.middleware import MiddlewareLike
from alloy_nb.providers.base import Completion, OnDelta, Provider, ProviderRequest
from alloy_nb.tools.base import Tool, ToolOutput

if TYPE_CHECKING:
    from alloy_nb.output import OutputSpec

__all__ = ["OPTION_NAMES", "AgentConfig"]


class AgentConfig(BaseModel):
    """Resolved options (API.md's table). Build with ``from_options``; treat as immutable."""

    model_config = ConfigDict(frozen=True, extra="forbid", arbitrary_types_allowed=True)

    provider: Provider
    tools: list[Tool] = Field(default_factory=list)
    system_prompt: str | None = None
    max_turns: int = Field(25, ge=0)
    max_tokens: int = Field(model_metadata.DEFAULT_CONTEXT_WINDOW, gt=0)
    max_tokens_explicit: bool = False
    compaction: Compaction = Field(default_factory=Compaction)
    # checked by _resolve_middleware (duck objects with .call are accepted too)
    middleware: list[SkipValidation[MiddlewareLike]] = Field(default_factory=list)
    working_directory: str = "."
    context: dict[str, Any] = Field(default_factory=dict)
    max_pending: int = Field(0, ge=0)
    model_metadata_overrides: dict[str, Any] = Field(default_factory=dict)
    until_tool: str | None = None
    max_retries: int = Field(3, ge=0)
    retry_backoff_ms: int = Field(1000, ge=0)
    timeout_ms: int = Field(120_000, ge=0)
    tool_timeout_ms: int = Field(120_000, gt=0)
    max_budget_cents: float | None = Field(None, ge=0)
    fallback_providers: list[Provider] = Field(default_factory=list)
    on_event: Listener | None = None
    output_type: Any = None
    _cache: dict[str, Any] = PrivateAttr(default_factory=dict)

    @classmethod
    def from_options(cls, **options: Any) -> AgentConfig:
        """Validate and resolve API.md options; unknown names raise ``ConfigError``."""
        _check_names(options)
        if options.get("provider") is None:
            raise ConfigError(
                "provider is required: pass a provider instance (e.g. Anthropic()), a "
                "provider class, a (class, {config}) pair or a string like "
                "'anthropic:claude-sonnet-4-6'"
            )
        opts = {k: v for k, v in options.items() if not (v is None and k in _NONE_IS_DEFAULT)}
        opts["provider"] = _resolve_provider(opts["provider"])
        opts["fallback_providers"] = [
            _resolve_provider(p) for p in opts.get("fallback_providers") or []
        ]
        opts["tools"] = _resolve_tools(opts.get("tools") or [])
        until = opts.get("until_tool")
        if until is not None and until not in {t.name for t in opts["tools"]}:
            names = ", ".join(t.name for t in opts["tools"]) or "none"
            raise ConfigError(f"until_tool={until!r} is not one of the tools (tools: {names})")
        _check_output_type(opts)
        opts["middleware"] = _resolve_middleware(opts.get("middleware") or [])
        opts["compaction"] = _resolve_compaction(opts.get("compaction"))
        if opts.get("on_event") is not None and not callable(opts["on_event"]):
            raise ConfigError(
                f"on_event must be a callable taking one event, got {opts['on_event']!r}"
            )
        opts["model_metadata_overrides"] = dict(opts.get("model_metadata_overrides") or {})
        opts["context"] = dict(opts.get("context") or {})
        opts["working_directory"] = str(opts.get("working_directory") or ".")
        if "max_tokens" in opts:
            opts["max_tokens_explicit"] = True
        else:
            opts["max_tokens"] = _context_window(opts["provider"], opts["model_metadata_overrides"])
        config = _build(cls, opts)
        _check_budget(config)
        return config

    def with_provider(self, provider: Any) -> AgentConfig:
        """A copy using ``provider`` (any accepted spec); a derived max_tokens follows it."""
        resolved = _resolve_provider(provider)
        update: dict[str, Any] = {"provider": resolved}
        if not self.max_tokens_explicit:
            update["max_tokens"] = _context_window(resolved, self.model_metadata_overrides)
        config = self.model_copy(update=update)
        _check_budget(config)
        return config

    def replace(self, **options: Any) -> AgentConfig:
        """A copy with some options changed, validated exactly as ``from_options`` does."""
        if "provider" in options:
            return self.replace(
                **{k: v for k, v in options.items() if k != "provider"}
            ).with_provider(options["provider"])
        current = {n: getattr(self, n) for n in OPTION_NAMES}
        if not self.max_tokens_explicit and "max_tokens" not in options:
            current.pop("max_tokens")
        return type(self).from_options(**{**current, **options})

    @property
    def tool_definitions(self) -> list[ToolDefinition]:
        """What the provider is told about the tools, in order (cached per tools list)."""
        return self._tool_index()[0]

    @property
    def tools_by_name(self) -> dict[str, Tool]:
        return self._tool_index()[1]

    @property
    def output_spec(self) -> OutputSpec | None:
        """The ``output.OutputSpec`` of ``output_type`` (None without one), built once."""
        cached = self._cache.get("output")
        if cached is None or cached[0] is not self.output_type:
            from alloy_nb.output import output_spec

            cached = (self.output_type, output_spec(self.output_type))
            self._cache["output"] = cached
        spec: OutputSpec | None = cached[1]
        return spec

    def _tool_index(self) -> tuple[list[ToolDefinition], dict[str, Tool]]:
        # keyed by the list's identity: model_copy(update={"tools": ...}) must not go stale
        cached = self._cache.get("tools")
        if cached is None or cached[0] is not self.tools or cached[3] is not self.output_type:
            tools = list(self.tools)
            spec = self.output_spec
            if spec is not None:  # output_type: the final_result tool comes last
                from alloy_nb.output import FinalResultTool

                tools.append(FinalResultTool(spec))
            cached = (self.tools, [t.definition() for t in tools],
                      {t.name: t for t in tools}, self.output_type)
            self._cache["tools"] = cached
        index: tuple[list[ToolDefinition], dict[str, Tool]] = (cached[1], cached[2])
        return index

    @property
    def model(self) -> str:
        return self.provider.model or ""


OPTION_NAMES: tuple[str, ...] = tuple(
    n for n in AgentConfig.model_fields if n != "max_tokens_explicit"
)
_NONE_IS_DEFAULT = frozenset(
    {"tools", "middleware", "context", "model_metadata_overrides", "fallback_providers",
     "compaction", "working_directory", "max_tokens"}
)


def _check_names(options: Mapping[str, Any]) -> None:
    unknown = [k for k in options if k not in OPTION_NAMES]
    if not unknown:
        return
    name = unknown[0]
    if name == "messages":
        raise ConfigError(
            "messages is not a config option: it is the run's history; pass it to "
            "run()/arun() (or AgentState(messages=...)), not to AgentConfig"
        )
    close = difflib.get_close_matches(name, OPTION_NAMES, n=1)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ConfigError(
        f"unknown option {name!r}.{hint} Valid options: {', '.join(sorted(OPTION_NAMES))}"
    )


def _build(cls: type[AgentConfig], opts: dict[str, Any]) -> AgentConfig:
    try:
        return cls(**opts)
    except ValidationError as exc:
        err = exc.errors()[0]
        field = ".".join(str(p) for p in err["loc"])
        raise ConfigError(
            f"invalid option {field}={err.get('input')!r}: {err['msg']}"
        ) from None


def _context_window(provider: Provider, overrides: Mapping[str, Any]) -> int:
    model = provider.model
    info = model_metadata.lookup(model, overrides) if model else None
    return info.context_window if info else model_metadata.DEFAULT_CONTEXT_WINDOW


def _check_budget(config: AgentConfig) -> None:
    """``max_budget_cents`` only works when every model's price is known: otherwise its
    tokens add nothing to the estimated cost and the guard would silently never fire."""
    if config.max_budget_cents is None:
        return
    for provider in (config.provider, *config.fallback_providers):
        model = provider.model or ""
        if not model_metadata.is_priced(model, config.model_metadata_overrides):
            shown = model or "<the provider's model>"
            raise ConfigError(
                f"max_budget_cents={config.max_budget_cents} cannot be enforced: the price of "
                f"model {shown!r} is unknown. Add it with model_metadata_overrides="
                f"{{{shown!r}: {{'input_price': ..., 'output_price': ...}}}} (USD per "
                "million tokens; cache_read_price and cache_write_price are optional), "
                "or bound the run with max_turns instead"
            )


def _is_provider(obj: object) -> bool:
    return isinstance(obj, Provider) or callable(getattr(obj, "complete", None))


class _DuckProvider(Provider):
    """An object with ``async complete(request)`` that does not subclass ``Provider``,
    wrapped once here so the loop only ever sees a ``Provider``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = str(getattr(inner, "name", "") or type(inner).__name__)  # type: ignore[misc]
        self.supports_streaming = bool(  # type: ignore[misc]
            getattr(inner, "supports_streaming", False)
            and callable(getattr(inner, "stream", None))
        )
        self.model = str(getattr(inner, "model", "") or "")

    async def complete(self, request: ProviderRequest) -> Completion:
        out: Completion = await self.inner.complete(request)
        return out

    async def stream(self, request: ProviderRequest, on_delta: OnDelta) -> Completion:
        out: Completion = await self.inner.stream(request, on_delta)
        return out

    async def aclose(self) -> None:
        close = getattr(self.inner, "aclose", None)
        if close is not None:
            await close()

    def __repr__(self) -> str:
        return repr(self.inner)


def _as_provider(obj: object) -> Provider:
    return obj if isinstance(obj, Provider) else _DuckProvider(obj)


def _resolve_provider(spec: Any) -> Provider:
    """A provider instance as is (a duck-typed one wrapped); strings, classes and
    (class, config) pairs via resolve."""
    if _is_provider(spec) and not isinstance(spec, type):
        return _as_provider(spec)
    if not isinstance(spec, str | type | tuple):
        raise ConfigError(
            f"cannot use {spec!r} as a provider: pass a provider instance, a provider "
            "class, a (class, {config}) pair or a string like 'anthropic:MODEL'"
        )
    resolve: Callable[[Any], Provider] | None
    try:
        from alloy_nb.providers import resolve
    except ImportError:
        resolve = None  # providers/__init__ not importable: classes still work
    if resolve is not None:
        provider = resolve(spec)
    elif isinstance(spec, type):
        provider = spec()
    elif isinstance(spec, tuple) and len(spec) == 2 and isinstance(spec[0], type):
        provider = spec[0](**dict(spec[1] or {}))
    else:
        raise ConfigError(f"cannot resolve provider spec {spec!r}")
    if not _is_provider(provider):
        raise ConfigError(f"provider spec {spec!r} did not produce a provider")
    return _as_provider(provider)


def _is_tool(obj: object) -> bool:
    return all(hasattr(obj, a) for a in ("name", "input_schema", "execute"))


class _DuckTool(Tool):
    """A tool-like object (name, input_schema, execute) that does not subclass ``Tool``,
    wrapped once here so the loop only ever sees a ``Tool``."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.name = str(inner.name)  # type: ignore[misc]
        self.description = str(getattr(inner, "description", "") or "")  # type: ignore[misc]
        self.input_schema = dict(inner.input_schema)  # type: ignore[misc]
        self.concurrent = bool(getattr(inner, "concurrent", True))  # type: ignore[misc]
        self.max_result_chars = getattr(inner, "max_result_chars", None)  # type: ignore[misc]
        definition = getattr(inner, "definition", None)
        self._definition = definition if callable(definition) else None

    def execute(
        self, input: dict[str, Any], context: Mapping[str, Any]
    ) -> ToolOutput | Awaitable[ToolOutput]:
        out: ToolOutput | Awaitable[ToolOutput] = self.inner.execute(input, context)
        return out

    def definition(self) -> ToolDefinition:
        if self._definition is not None and not inspect.iscoroutinefunction(self._definition):
            given: ToolDefinition = self._definition()
            return given
        return super().definition()

    def __repr__(self) -> str:
        return repr(self.inner)


def _resolve_tools(tools: Any) -> list[Tool]:
    if not isinstance(tools, list | tuple):
        raise ConfigError(f"tools must be a list, got {type(tools).__name__}")
    out: list[Tool] = []
    for t in tools:
        if isinstance(t, type) and _is_tool(t):
            t = t()
        elif not _is_tool(t) and callable(t) and not isinstance(t, type):
            from alloy_nb.tools.function import as_tool

            t = as_tool(t)
        if not _is_tool(t) or not getattr(t, "name", ""):
            raise ConfigError(
                f"{t!r} is not a tool: pass a Tool subclass or instance (with name, "
                "description, input_schema, execute) or a plain function"
            )
        out.append(t if isinstance(t, Tool) else _DuckTool(t))
    names = [t.name for t in out]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ConfigError(f"two tools share the name {dupes[0]!r}; tool names must be unique")
    return out


def _check_output_type(opts: dict[str, Any]) -> None:
    """Fail at configuration time for a type pydantic cannot describe or a name clash."""
    if opts.get("output_type") is None:
        return
    from alloy_nb.output import FINAL_RESULT, output_spec

    output_spec(opts["output_type"])
    if any(t.name == FINAL_RESULT for t in opts["tools"]):
        raise ConfigError(
            f"a tool is named {FINAL_RESULT!r}, which output_type reserves for the final "
            "answer; rename that tool"
        )


def _resolve_middleware(items: Any) -> list[MiddlewareLike]:
    if not isinstance(items, list | tuple):
        raise ConfigError(f"middleware must be a list, got {type(items).__name__}")
    out: list[MiddlewareLike] = []
    for mw in items:
        if isinstance(mw, type):
            mw = mw()
        if not callable(getattr(mw, "call", None)) and not callable(mw):
            raise ConfigError(
                f"{mw!r} is not middleware: subclass alloy_nb.Middleware and define "
                "call(hook, state), or pass a function (hook, state)"
            )
        out.append(mw)
    return out


def _resolve_compaction(value: Any) -> Compaction:
    if value is None:
        return Compaction()
    if isinstance(value, Compaction):
        return value
    if isinstance(value, Mapping):
        try:
            return Compaction(**value)
        except (ValidationError, TypeError) as exc:
            raise ConfigError(f"invalid compaction settings {dict(value)!r}: {exc}") from None
    raise ConfigError(f"compaction must be a Compaction or a dict, got {value!r}")

