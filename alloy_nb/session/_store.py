"""Saving, loading and exporting a Session: a key-free JSON snapshot and a Markdown view.

What is saved is data the user can read and share: the history, usage, system prompt and
model *name*. Never a provider object, an API key or the ``context`` mapping (it may hold a
notebook namespace). Everything here works on data (a ``SessionSnapshot``, messages,
usage), never on a live ``Session``: ``_session`` owns the behaviour and calls in here.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from pydantic import BaseModel, Field, ValidationError

from alloy_nb.compaction import SUMMARY_PREFIX
from alloy_nb.errors import ConfigError, SessionFileError
from alloy_nb.messages import (
    ImageBlock,
    Message,
    RawBlock,
    ServerToolUseBlock,
    TextBlock,
    ThinkingBlock,
    ToolResultBlock,
    ToolUseBlock,
)
from alloy_nb.usage import Usage

__all__ = [
    "SNAPSHOT_VERSION", "SessionFileError", "SessionSnapshot", "export_markdown", "read",
    "restored_options", "save", "saved_metadata",
]

SNAPSHOT_VERSION = 1
_RESOLVABLE = {"anthropic", "openai", "openai-compat"}  # providers.resolve("name:MODEL")


def _utcnow() -> datetime:
    return datetime.now(timezone.utc)


class SessionSnapshot(BaseModel):
    """The saved form of a Session (``Session.save``/``load``); ``version`` guards the
    format. ``provider`` is the provider's short name (e.g. ``"anthropic"``), not an object."""

    version: int = SNAPSHOT_VERSION
    id: str
    name: str | None = None
    messages: list[Message] = Field(default_factory=list)
    usage: Usage = Field(default_factory=Usage)
    system_prompt: str | None = None
    model: str | None = None
    provider: str | None = None
    max_tokens: int | None = None  # only when it was given explicitly
    metadata: dict[str, Any] = Field(default_factory=dict)
    created_at: datetime = Field(default_factory=_utcnow)
    updated_at: datetime = Field(default_factory=_utcnow)


def save(snap: SessionSnapshot, path: str | Path) -> Path:
    """Write JSON next to ``path`` and rename it into place, so a crash never leaves half a
    file."""
    target = Path(path).expanduser()
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(snap.model_dump_json(indent=1))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def read(path: str | Path) -> SessionSnapshot:
    """Parse a saved session; every file that cannot be loaded (missing, unreadable, not
    UTF-8, not JSON, nested too deeply, not a session) raises ``SessionFileError`` naming it."""
    source = Path(path).expanduser()
    try:
        text = source.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise SessionFileError(f"{source}: not a saved session (not UTF-8 text: {exc})") from None
    except OSError as exc:
        raise SessionFileError(f"{source}: cannot read the session file ({exc})") from exc
    try:
        data = json.loads(text)
    except ValueError as exc:
        raise SessionFileError(f"{source}: not a saved session (invalid JSON: {exc})") from exc
    except RecursionError:
        raise SessionFileError(f"{source}: not a saved session (JSON nested too deeply)") from None
    if not isinstance(data, dict):
        raise SessionFileError(
            f"{source}: not a saved session (a JSON {type(data).__name__}, not an object)")
    version = data.get("version", 1)
    if isinstance(version, bool) or not isinstance(version, int) or version < 1:
        raise SessionFileError(f"{source}: invalid session file version {version!r}")
    if version > SNAPSHOT_VERSION:
        raise SessionFileError(
            f"{source}: session file version {version} is newer than this alloy_nb reads "
            f"({SNAPSHOT_VERSION}); upgrade alloy_nb"
        )
    try:
        return SessionSnapshot.model_validate(data)
    except ValidationError as exc:
        raise SessionFileError(f"{source}: not a valid saved session: {exc}") from exc
    except (RecursionError, ValueError, TypeError) as exc:  # a validator choking on odd data
        raise SessionFileError(f"{source}: not a valid saved session ({type(exc).__name__})") \
            from None


def restored_options(snap: SessionSnapshot, path: str | Path, provider: Any,
                     options: dict[str, Any]) -> tuple[Any, dict[str, Any]]:
    """The provider and options that continue ``snap`` (given ``options`` win; the provider
    defaults to the saved provider and model, its key from the environment)."""
    if provider is None:
        if snap.provider == "demo":
            provider = "demo"
        elif snap.provider in _RESOLVABLE and snap.model:
            provider = f"{snap.provider}:{snap.model}"
        else:
            raise ConfigError(
                f"{path} was saved with provider {snap.provider!r}, which cannot be rebuilt "
                "from its name; pass provider=... to Session.load"
            )
    options = dict(options)
    options.setdefault("system_prompt", snap.system_prompt)
    if snap.max_tokens is not None:
        options.setdefault("max_tokens", snap.max_tokens)
    return provider, options


def saved_metadata(snap: SessionSnapshot) -> dict[str, Any]:
    """The user's metadata without what ``snapshot`` adds (status, turns)."""
    return {k: v for k, v in snap.metadata.items() if k not in ("status", "turns")}


# ---- Markdown ---------------------------------------------------------------------------


def _fence(text: str, lang: str = "") -> str:
    """A fenced block whose fence is longer than any backtick run inside ``text``."""
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    ticks = "`" * max(3, longest + 1)
    return f"{ticks}{lang}\n{text}\n{ticks}"


def _details(summary: str, body: str) -> str:
    return f"<details><summary>{summary}</summary>\n\n{body}\n\n</details>"


def _blocks(m: Message) -> list[str]:
    out: list[str] = []
    for b in m.content:
        if isinstance(b, TextBlock):
            if b.text.startswith(SUMMARY_PREFIX):
                out.append(_details("Conversation summary", b.text[len(SUMMARY_PREFIX):]))
            else:
                out.append(b.text)
        elif isinstance(b, ThinkingBlock):
            if b.thinking:
                out.append(_details("Thinking", b.thinking))
        elif isinstance(b, ToolUseBlock | ServerToolUseBlock):
            args = json.dumps(b.input, indent=2, ensure_ascii=False)
            out.append(f"**Tool call** `{b.name}` ({b.id})\n\n{_fence(args, 'json')}")
        elif isinstance(b, ToolResultBlock):
            label = "Tool error" if b.is_error else "Tool result"
            out.append(f"**{label}** ({b.tool_use_id})\n\n{_fence(b.content)}")
        elif isinstance(b, ImageBlock):
            out.append(f"*[image: {b.mime_type}]*")
        elif isinstance(b, RawBlock):
            out.append(f"*[{b.type}]*")
    return out


def export_markdown(*, title: str, model: str, messages: list[Message], usage: Usage,
                    system_prompt: str | None, path: str | Path | None = None) -> str:
    """Render a conversation; write it to ``path`` too when given."""
    lines = [f"# {title}", ""]
    meta = [f"model `{model}`" if model else "", f"{len(messages)} messages",
            f"{usage.input_tokens:,} in / {usage.output_tokens:,} out tokens", usage.cost_label]
    lines += [" · ".join(x for x in meta if x), ""]
    if system_prompt:
        lines += [_details("System prompt", system_prompt), ""]
    for m in messages:
        results_only = m.role == "user" and all(
            isinstance(b, ToolResultBlock) for b in m.content
        )
        heading = "Tool results" if results_only else m.role.capitalize()
        lines += [f"## {heading}", "", *("\n\n".join(_blocks(m)).splitlines()), ""]
    text = "\n".join(lines).rstrip() + "\n"
    if path is not None:
        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
    return text
