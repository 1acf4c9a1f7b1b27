"""The offline demo provider: deterministic, rule-based replies so notebooks run with no key.

It is honest about what it is (every answer says it is scripted) and exercises the real
loop: it calls the tools it is given, reads their results and answers from them. It is not
a model; ``Scripted`` is the provider for exact test scripts.
"""

from __future__ import annotations

import ast
import asyncio
import json
import operator
import re
import secrets
from typing import Any, ClassVar

from alloy_nb.messages import (
    Message,
    TextBlock,
    ToolDefinition,
    ToolResultBlock,
    ToolUseBlock,
)
from alloy_nb.providers._sample import sample_value
from alloy_nb.providers.base import Completion, OnDelta, Provider, ProviderRequest
from alloy_nb.usage import Usage

__all__ = ["DEMO_BANNER", "Demo"]

DEMO_BANNER = (
    "Offline demo provider: replies are scripted, not a model. For a real one set "
    "ANTHROPIC_API_KEY or OPENAI_API_KEY (see `%alloy provider`)."
)
FINAL_RESULT = "final_result"  # output_type's final tool (alloy_nb.output)
_NOTE = "\n\n*(offline demo reply: scripted, not a model)*"

_OPS: dict[type, Any] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
    ast.Mod: operator.mod,
    ast.USub: operator.neg,
}
_FILE = re.compile(r"[\w./-]+\.(?:toml|md|txt|py|json|csv|yaml|yml|cfg|ipynb)\b")
_ARITH = re.compile(r"(?<![\w.])[-(]*\d[\d.\s+\-*/()%^]*[\d)]")


class Demo(Provider):
    """Offline stand-in for a model.

    Streaming is paced so it is visible in a notebook: by default 0.02 s per delta but at
    most ``max_stream_s`` for a whole reply, so a long tool summary never drags. An explicit
    ``delay_s`` is kept exactly (a slow demo for a Stop button); 0 streams at once (tests).
    """

    name: ClassVar[str] = "demo"
    supports_streaming: ClassVar[bool] = True

    def __init__(
        self,
        model: str = "demo",
        delay_s: float | None = None,
        chunk_chars: int = 6,
        max_stream_s: float = 1.5,
    ) -> None:
        self.model = model
        self.delay_s = delay_s
        self.chunk_chars = chunk_chars
        self.max_stream_s = max_stream_s

    async def complete(self, request: ProviderRequest) -> Completion:
        return self._reply(request)

    async def stream(self, request: ProviderRequest, on_delta: OnDelta) -> Completion:
        completion = self._reply(request)
        text = completion.message.text
        chunks = [text[i : i + self.chunk_chars] for i in range(0, len(text), self.chunk_chars)]
        delay = self.delay_s
        if delay is None:
            delay = min(0.02, self.max_stream_s / max(len(chunks), 1))
        for chunk in chunks:
            if delay:
                await asyncio.sleep(delay)
            on_delta("text", chunk)
        return completion

    # -- the rules -------------------------------------------------------------------

    def _reply(self, request: ProviderRequest) -> Completion:
        prompt = _last_user_text(request.messages)
        tools = {t.name: t for t in request.tools}
        last = request.messages[-1] if request.messages else None
        results = last.tool_result_blocks if last is not None else []
        called = _called_tools(request.messages)
        if FINAL_RESULT in tools:  # output_type: answer with a schema-valid sample
            return self._final_result(request, tools, results, called)
        if results:
            follow = self._follow_up(results, request, tools, called)
            if follow is not None:
                return follow
            return self._text(request, _summarise(results))
        call = self._pick_tool(_exchange_text(request.messages), tools, called)
        if call is not None:
            return self._tool_call(request, *call)
        return self._text(request, _answer(prompt))

    def _pick_tool(
        self, prompt: str, tools: dict[str, ToolDefinition], called: set[str]
    ) -> tuple[str, dict[str, Any]] | None:
        low = prompt.lower()
        for name, definition in tools.items():  # a tool named in the prompt wins
            if re.search(rf"\b{re.escape(name.lower())}\b", low) or (name.replace("_", " ") in low):
                return name, _arguments_for(definition, prompt)
        data_words = ("variable", "dataframe", "column", "data", "df", "missing", "table")
        if "list_variables" in tools and any(w in low for w in data_words):
            return "list_variables", {}
        if "Read" in tools or "read" in tools:
            name = "Read" if "Read" in tools else "read"
            match = _FILE.search(prompt)
            if match:
                return name, {"file_path": match.group(0)}
        return None

    def _follow_up(
        self,
        results: list[ToolResultBlock],
        request: ProviderRequest,
        tools: dict[str, ToolDefinition],
        called: set[str],
    ) -> Completion | None:
        """After ``list_variables``, inspect the most interesting variable once."""
        if "inspect_variable" not in tools or "inspect_variable" in called:
            return None
        previous = request.messages[-2] if len(request.messages) >= 2 else None
        if previous is None or "list_variables" not in {c.name for c in previous.tool_calls}:
            return None
        listing = "\n".join(r.content for r in results if not r.is_error)
        names = re.findall(r"^\s*[-*]?\s*`?([A-Za-z_]\w*)`?\s*[:(|]", listing, re.M)
        if not names:
            return None
        prompt = _last_user_text(request.messages)
        frames = [n for n in names if re.search(rf"\b{n}\b.*DataFrame", listing)]
        mentioned = [n for n in names if re.search(rf"\b{re.escape(n)}\b", prompt)]
        target = (mentioned or frames or names)[0]
        return self._tool_call(request, "inspect_variable", {"name": target})

    def _final_result(
        self,
        request: ProviderRequest,
        tools: dict[str, ToolDefinition],
        results: list[ToolResultBlock],
        called: set[str],
    ) -> Completion:
        """Use the other tools as usual first, then call ``final_result`` with sample
        values valid against its schema (chosen from the prompt, deterministic)."""
        others = {k: v for k, v in tools.items() if k != FINAL_RESULT}
        if results:
            follow = self._follow_up(results, request, others, called)
            if follow is not None:
                return follow
        else:
            call = self._pick_tool(_exchange_text(request.messages), others, called)
            if call is not None:
                return self._tool_call(request, *call)
        prompt = _exchange_text(request.messages)
        args = sample_value(tools[FINAL_RESULT].input_schema, prompt)
        intro = "Offline demo: sample values that fit the requested type, not a model's answer."
        return self._tool_call(request, FINAL_RESULT, args, intro)

    # -- building replies -------------------------------------------------------------

    def _text(self, request: ProviderRequest, text: str) -> Completion:
        return Completion(
            stop_reason="end_turn",
            message=Message(role="assistant", content=[TextBlock(text=text + _NOTE)]),
            usage=_usage(request, text),
            model=self.model,
        )

    def _tool_call(self, request: ProviderRequest, name: str, args: dict[str, Any],
                   intro: str | None = None) -> Completion:
        intro = intro or f"Let me use the `{name}` tool."
        block = ToolUseBlock(id=f"demo_{secrets.token_hex(6)}", name=name, input=args)
        return Completion(
            stop_reason="tool_use",
            message=Message(role="assistant", content=[TextBlock(text=intro), block]),
            usage=_usage(request, intro + json.dumps(args)),
            model=self.model,
        )


def _last_user_text(messages: list[Message]) -> str:
    for m in reversed(messages):
        if m.role == "user" and m.text:
            return m.text
    return ""


_NUDGE = re.compile(r"call the `[^`]+` tool")


def _exchange_text(messages: list[Message]) -> str:
    """The prompt to act on. When the last prompt is the loop's nudge to call a tool
    (``until_tool``), the real request precedes it, so arguments come from both."""
    texts = [m.text for m in messages if m.role == "user" and m.text]
    if len(texts) >= 2 and _NUDGE.search(texts[-1]):
        return "\n".join(texts[-2:])
    return texts[-1] if texts else ""


def _called_tools(messages: list[Message]) -> set[str]:
    """Tools already called since the last plain user prompt."""
    names: set[str] = set()
    for m in reversed(messages):
        if m.role == "user" and m.text and not m.tool_result_blocks:
            break
        names.update(c.name for c in m.tool_calls)
    return names


def _usage(request: ProviderRequest, out: str) -> Usage:
    chars = sum(len(b.model_dump_json()) for m in request.messages for b in m.content)
    return Usage(input_tokens=max(1, chars // 4), output_tokens=max(1, len(out) // 4))


def _arguments_for(tool: ToolDefinition, prompt: str) -> dict[str, Any]:
    """Plausible arguments from the schema: numbers from the prompt, quoted strings, enums."""
    props: dict[str, Any] = tool.input_schema.get("properties", {})
    numbers = [float(n) for n in re.findall(r"-?\d+(?:\.\d+)?", prompt)]
    quoted = re.findall(r"[\"'`]([^\"'`]+)[\"'`]", prompt)
    required = tool.input_schema.get("required")
    low = prompt.lower()
    wanted = {  # optional ones only when the prompt names them ("unit 'kg'")
        k: v
        for k, v in props.items()
        if required is None or k in required or re.search(rf"\b{re.escape(k.lower())}\b", low)
    }
    return {key: _sample(key, schema, numbers, quoted, prompt) for key, schema in wanted.items()}


def _sample(
    key: str, schema: dict[str, Any], numbers: list[float], quoted: list[str], prompt: str
) -> Any:
    kind = schema.get("type")
    if "enum" in schema:
        return schema["enum"][0]
    if "anyOf" in schema:
        options = [s for s in schema["anyOf"] if s.get("type") != "null"]
        return _sample(key, options[0], numbers, quoted, prompt) if options else None
    if kind == "integer":
        return int(numbers.pop(0)) if numbers else 1
    if kind == "number":
        return numbers.pop(0) if numbers else 1.0
    if kind == "boolean":
        return True
    if kind == "array":
        return []
    if kind == "object":
        return {
            k: _sample(k, s, numbers, quoted, prompt)
            for k, s in schema.get("properties", {}).items()
        }
    if "path" in key or "file" in key:
        match = _FILE.search(prompt)
        if match:
            return match.group(0)
    if quoted:
        return quoted.pop(0)
    return prompt.strip().splitlines()[0][:80] if prompt.strip() else key


def _summarise(results: list[ToolResultBlock]) -> str:
    parts = [_missing_values_finding(results) or "Here is what the tools returned:"]
    for r in results:
        body = r.content if len(r.content) < 1200 else r.content[:1200] + "\n…"
        label = "error" if r.is_error else "result"
        parts.append(f"\n**{label}**\n\n```\n{body}\n```")
    return "\n".join(parts)


def _missing_values_finding(results: list[ToolResultBlock]) -> str | None:
    """Read ``inspect_variable``'s missing-value section, as a model would."""
    for r in results:
        section = r.content.split("missing values per column:", 1)
        if len(section) < 2:
            continue
        counts = re.findall(r"^\s+(\S+): (\d+)", section[1], re.M)
        if counts:
            column, n = max(counts, key=lambda c: int(c[1]))
            if int(n) == 0:
                return "No column has missing values. Details:"
            return f"Column `{column}` has the most missing values ({n}). Details:"
    return None


def _answer(prompt: str) -> str:
    value = _arithmetic(prompt)
    if value is not None:
        return f"**{value}**"
    topic = prompt.strip().splitlines()[0][:120] if prompt.strip() else "your question"
    return (
        f"## About: {topic}\n\n"
        "I am the offline demo provider, so this answer is scripted. With a real model "
        "you would get an actual answer here. Meanwhile, this is what the harness does:\n\n"
        "- streams the reply into this cell as it arrives,\n"
        "- runs tool calls and shows each one as a card,\n"
        "- keeps the conversation, so the next cell continues it,\n"
        "- counts tokens and cost in the footer.\n\n"
        "```python\nimport alloy_nb as alloy\n"
        'result = alloy.run("What is 2+2?", provider="anthropic:claude-sonnet-4-6")\n```'
    )


def _arithmetic(prompt: str) -> int | float | None:
    for candidate in _ARITH.findall(prompt.replace("^", "**")):
        expr = candidate.strip()
        if not re.search(r"[-+*/%]", expr.lstrip("-(")):
            continue
        try:
            value = _eval(ast.parse(expr, mode="eval").body)
        except (SyntaxError, ValueError, ZeroDivisionError, TypeError, OverflowError):
            continue
        return int(value) if float(value).is_integer() else round(value, 10)
    return None


def _eval(node: ast.AST) -> float:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        left, right = _eval(node.left), _eval(node.right)
        if isinstance(node.op, ast.Pow) and abs(right) > 100:
            raise ValueError("exponent too large")
        value: float = _OPS[type(node.op)](left, right)
        return value
    if isinstance(node, ast.UnaryOp) and type(node.op) in _OPS:
        negated: float = _OPS[type(node.op)](_eval(node.operand))
        return negated
    raise ValueError("not arithmetic")
