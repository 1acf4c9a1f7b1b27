"""``cache_dir``: one JSON file per finished item, keyed by what decides its answer.

The key hashes the expanded prompt, the model and provider, and the options that change
the answer (system prompt, tools, output schema, history, turn limit). Only successful
items are stored, so a re-run asks again for what is missing or failed. Files are written
atomically (temp file + rename), so Dask workers can share one directory.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from pydantic_core import to_jsonable_python

from alloy_nb.result import Result

__all__ = ["ItemCache", "config_fingerprint"]

log = logging.getLogger("alloy_nb")
_VERSION = 1


def config_fingerprint(config: Any, messages: list[Any], mode: str = "live") -> str:
    """The part of the key shared by every item of a batch."""
    spec = config.output_spec
    provider = config.provider
    data = {
        "v": _VERSION,
        "mode": mode,
        "provider": getattr(provider, "name", type(provider).__name__),
        "model": config.model,
        "base_url": str(getattr(provider, "base_url", "") or ""),
        "system": config.system_prompt,
        "tools": [t.model_dump() for t in config.tool_definitions],
        "output": spec.schema if spec is not None else None,
        "max_turns": config.max_turns,
        "until_tool": config.until_tool,
        "history": [m.model_dump(mode="json") for m in messages],
    }
    return hashlib.sha256(json.dumps(data, sort_keys=True, default=str).encode()).hexdigest()


class ItemCache:
    def __init__(self, directory: str | os.PathLike[str], fingerprint: str,
                 adapter: Any = None) -> None:
        self.dir = Path(directory).expanduser()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.fingerprint = fingerprint
        self.adapter = adapter  # output_type's TypeAdapter, to rebuild outputs

    def key(self, prompt: str) -> str:
        return hashlib.sha256(f"{self.fingerprint}\0{prompt}".encode()).hexdigest()

    def _path(self, prompt: str) -> Path:
        k = self.key(prompt)
        return self.dir / k[:2] / f"{k}.json"

    def get(self, prompt: str) -> Result | None:
        path = self._path(prompt)
        try:
            data = json.loads(path.read_text("utf-8"))
            result = Result.model_validate(data["result"])
            if self.adapter is not None:
                result.output = self.adapter.validate_python(data["output"])
            return result
        except FileNotFoundError:
            return None
        except (OSError, ValueError, KeyError, TypeError, ValidationError):
            log.warning("ignoring an unreadable cache entry %s", path)
            return None

    def put(self, prompt: str, result: Result) -> None:
        path = self._path(prompt)
        payload = {
            "prompt": prompt,
            "result": result.model_dump(mode="json", exclude={"output"}),
            "output": to_jsonable_python(result.output),
        }
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".json")
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(payload, fh, ensure_ascii=False)
            os.replace(tmp, path)
        except (OSError, TypeError, ValueError) as exc:
            log.warning("could not write the cache entry %s: %s", path, exc)
