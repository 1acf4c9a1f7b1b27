"""Load the recorded provider exchanges in `shared/fixtures/` so tests can replay them.

Reads the formats described in the fixtures' INDEX.md: pydantic-ai cassettes
(`parsed_body`), plain vcrpy cassettes (with gzip `!!binary` bodies), raw Anthropic SSE
`.txt` files and, under `gemini/`, R vcr cassettes (`http_interactions`), Go httprr traces and
vercel's raw bodies (`.json`, one-chunk-per-line `.chunks.txt`). Serving an exchange is
`reply.raw`'s job (see `RecordedExchange.as_reply`).
"""

from __future__ import annotations

import gzip
import json
import os
import zlib
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from alloy_nb.testing.wire import Protocol, Raw, reply

__all__ = ["FIXTURES_DIR", "RecordedExchange", "iter_fixtures", "load_fixture"]

PROTOCOLS: tuple[Protocol, ...] = ("anthropic", "openai-responses", "openai-chat", "gemini")
_ENDPOINTS: dict[Protocol, str] = {
    "anthropic": "/v1/messages",
    "openai-responses": "/v1/responses",
    "openai-chat": "/v1/chat/completions",
    "gemini": "/v1beta/models/unknown:generateContent",
}
_SUFFIXES = {".yaml", ".yml", ".txt", ".json", ".httprr"}


def _find_fixtures_dir() -> Path:
    """`$ALLOY_FIXTURES_DIR`, else the repository's copy (`tests/fixtures/recorded`), else the
    nearest `shared/fixtures` above this file or the cwd."""
    if env := os.environ.get("ALLOY_FIXTURES_DIR"):
        return Path(env)
    here, cwd = Path(__file__).resolve(), Path.cwd().resolve()
    vendored = here.parents[2] / "tests" / "fixtures" / "recorded"
    if (vendored / "INDEX.md").is_file():
        return vendored
    for base in [*here.parents, cwd, *cwd.parents]:
        if (base / "shared" / "fixtures").is_dir():
            return base / "shared" / "fixtures"
    return here.parents[3] / "shared" / "fixtures"  # the original layout: <repo>/../shared


FIXTURES_DIR: Path = _find_fixtures_dir()


@dataclass(frozen=True)
class RecordedExchange:
    """One recorded HTTP request/response; `body` is the exact (decompressed) wire body."""

    method: str
    uri: str
    path: str
    request_json: dict[str, Any] | None
    status: int
    headers: dict[str, str]
    body: bytes = field(repr=False)
    protocol: Protocol
    streaming: bool
    source: str = ""
    index: int = 0

    @property
    def content_type(self) -> str:
        """The response content type ("" when none was recorded)."""
        return self.headers.get("content-type", "")

    def as_reply(
        self,
        *,
        chunk_sizes: Literal["random"] | int | Sequence[int] | None = None,
        seed: int | None = None,
    ) -> Raw:
        """A script entry serving this response byte for byte, optionally re-chunked."""
        return reply.raw(self.status, self.headers, self.body, chunk_sizes=chunk_sizes, seed=seed)


def load_fixture(path: str | Path, *, protocol: Protocol | None = None) -> list[RecordedExchange]:
    """All exchanges in one fixture file, in recorded order.

    The protocol comes from the `anthropic/`, `openai-responses/` or `openai-chat/` folder in
    the path unless given. PyYAML is imported here so `alloy_nb.testing` does not need it.
    """
    path = Path(path)
    proto = protocol or _protocol_of(path)
    if proto == "gemini" and path.suffix in {".json", ".txt", ".httprr"}:
        from alloy_nb.testing._gemini_fixtures import load_raw

        return load_raw(path)
    if path.suffix == ".txt":  # raw SSE body: no request, no headers were recorded
        headers = {"content-type": "text/event-stream; charset=utf-8"}
        endpoint = _ENDPOINTS[proto]
        body = path.read_bytes()
        return [
            RecordedExchange("POST", "", endpoint, None, 200, headers, body, proto, True, str(path))
        ]
    import yaml  # a test extra; only needed to read cassettes

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # `!!binary` is a safe tag
    data = yaml.load(path.read_text(encoding="utf-8"), Loader=loader)
    if isinstance(data, dict) and "interactions" not in data:  # R vcr (ellmer)
        data = {"interactions": data.get("http_interactions")}
    if not isinstance(data, dict) or not isinstance(data.get("interactions"), list):
        raise ValueError(f"{path} is not a vcrpy cassette (no `interactions` list)")
    return [_exchange(it, n, proto, path) for n, it in enumerate(data["interactions"])]


def iter_fixtures(
    root: str | Path | None = None,
) -> Iterator[tuple[str, list[RecordedExchange]]]:
    """Yield (path relative to root, exchanges) for every fixture file, sorted by path."""
    base = Path(root) if root is not None else FIXTURES_DIR
    if not base.is_dir():
        raise FileNotFoundError(
            f"fixtures directory {base} does not exist; set ALLOY_FIXTURES_DIR or check out "
            "shared/fixtures next to the repository"
        )
    for p in sorted(base.rglob("*")):
        if p.is_file() and p.suffix in _SUFFIXES:
            yield p.relative_to(base).as_posix(), load_fixture(p)


def _protocol_of(path: Path) -> Protocol:
    for part in reversed(path.parts):
        if part in PROTOCOLS:
            return part
    raise ValueError(f"cannot tell the protocol of {path}: no {'/'.join(PROTOCOLS)} folder")


def _headers(raw: dict[str, Any] | None) -> dict[str, str]:
    """Lower-case names; vcrpy stores each value as a list."""
    out: dict[str, str] = {}
    for name, value in (raw or {}).items():
        values = value if isinstance(value, list) else [value]
        out[name.lower()] = ", ".join(str(v) for v in values)
    return out


def _request_json(request: dict[str, Any]) -> dict[str, Any] | None:
    body = request.get("parsed_body", request.get("body"))
    if isinstance(body, dict) and set(body) <= {"string", "encoding"}:  # R vcr
        body = body.get("string")
    if isinstance(body, bytes):
        body = body.decode("utf-8", "replace")
    if isinstance(body, str):
        try:
            body = json.loads(body) if body.strip() else None
        except ValueError:
            return None
    return body if isinstance(body, dict) else None


def _response_body(response: dict[str, Any], headers: dict[str, str]) -> bytes:
    """The body as it crossed the wire after decompression; fixes headers to match."""
    if "parsed_body" in response:  # pydantic-ai re-serialised JSON: lengths no longer match
        headers.pop("content-length", None)
        return json.dumps(response["parsed_body"], ensure_ascii=False).encode()
    raw = response.get("body")
    raw = raw.get("string", b"") if isinstance(raw, dict) else raw
    body = raw.encode() if isinstance(raw, str) else bytes(raw or b"")
    encoding = headers.get("content-encoding", "").lower()
    if encoding in {"gzip", "deflate"}:
        if body[:2] == b"\x1f\x8b":
            body = gzip.decompress(body)
        elif encoding == "deflate" and body:
            body = zlib.decompress(body)
        headers.pop("content-encoding", None)
        headers.pop("content-length", None)
    return body


def _exchange(it: dict[str, Any], n: int, protocol: Protocol, path: Path) -> RecordedExchange:
    request, response = it["request"], it["response"]
    headers = _headers(response.get("headers"))
    body = _response_body(response, headers)
    uri = str(request.get("uri", ""))
    req = _request_json(request)
    streaming = req.get("stream") is True if req is not None else False
    if req is None or "stream" not in req:
        streaming = headers.get("content-type", "").startswith("text/event-stream")
    if protocol == "gemini":  # the endpoint says it (a JSON-array stream is not SSE)
        streaming = ":streamGenerateContent" in uri
    status = response.get("status", {})
    code = int(status.get("code", 0) if isinstance(status, dict) else status)
    method = str(request.get("method", "POST")).upper()
    return RecordedExchange(
        method, uri, urlsplit(uri).path, req, code, headers, body, protocol, streaming, str(path), n
    )
