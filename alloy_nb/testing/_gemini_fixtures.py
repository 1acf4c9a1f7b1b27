"""Readers for the Gemini recordings that are not cassettes: Go httprr traces (langchaingo)
and vercel's raw bodies (`*.json`, and `*.chunks.txt` with one chunk JSON per line).

Called by `fixtures.load_fixture` for files under `gemini/`; see the fixtures' INDEX.md,
"Gemini native API", "File formats" 4 and 5.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from alloy_nb.testing.fixtures import RecordedExchange

__all__ = ["load_raw"]

_GENERATE = "/v1beta/models/unknown:generateContent"  # vercel files record no request
_STREAM = "/v1beta/models/unknown:streamGenerateContent"
_FRAMING = {"content-length", "transfer-encoding", "content-encoding", "connection"}


def load_raw(path: Path) -> list[RecordedExchange]:
    """The exchanges of one httprr trace or vercel raw body."""
    if path.suffix == ".httprr":
        return _httprr(path)
    body = path.read_bytes()
    if path.name.endswith(".chunks.txt"):  # no `data:` framing: each line is one chunk
        lines = [ln for ln in body.decode("utf-8").splitlines() if ln.strip()]
        sse = "".join(f"data: {ln}\n\n" for ln in lines).encode()
        headers = {"content-type": "text/event-stream"}
        uri = "https://generativelanguage.googleapis.com" + _STREAM + "?alt=sse"
        return [
            RecordedExchange(
                "POST", uri, _STREAM, None, 200, headers, sse, "gemini", True, str(path)
            )
        ]
    data = json.loads(body)
    error = data.get("error") if isinstance(data, dict) else None
    status = int(error["code"]) if isinstance(error, dict) and "code" in error else 200
    headers = {"content-type": "application/json; charset=UTF-8"}
    uri = "https://generativelanguage.googleapis.com" + _GENERATE
    return [
        RecordedExchange(
            "POST", uri, _GENERATE, None, status, headers, body, "gemini", False, str(path)
        )
    ]


def _httprr(path: Path) -> list[RecordedExchange]:
    """`httprr trace v1`, then per exchange `<request bytes> <response bytes>\\n` and the raw
    HTTP/1.1 request and HTTP/2 response, read by byte counts."""
    raw = path.read_bytes()
    head, _, rest = raw.partition(b"\n")
    if head.strip() != b"httprr trace v1":
        raise ValueError(f"{path} is not an httprr trace")
    out: list[RecordedExchange] = []
    while rest.strip():
        sizes, _, rest = rest.partition(b"\n")
        nreq, nresp = (int(x) for x in sizes.split())
        request, response, rest = rest[:nreq], rest[nreq : nreq + nresp], rest[nreq + nresp :]
        method, uri, req_body = _request(request)
        status, headers, body = _response(response)
        target = urlsplit(uri)
        req_json = _json_or_none(req_body)
        streaming = ":streamGenerateContent" in target.path
        out.append(
            RecordedExchange(
                method,
                uri,
                target.path.replace("//", "/"),
                req_json,
                status,
                headers,
                body,
                "gemini",
                streaming,
                str(path),
                len(out),
            )
        )
    return out


def _request(raw: bytes) -> tuple[str, str, bytes]:
    head, _, body = raw.partition(b"\r\n\r\n") if b"\r\n\r\n" in raw else raw.partition(b"\n\n")
    method, uri, _ = head.split(b"\n", 1)[0].decode().strip().split(" ", 2)
    return method.upper(), uri, body


def _response(raw: bytes) -> tuple[int, dict[str, str], bytes]:
    sep = b"\r\n\r\n" if b"\r\n\r\n" in raw else b"\n\n"
    head, _, body = raw.partition(sep)
    lines = head.decode("latin-1").splitlines()
    status = int(lines[0].split()[1])
    headers: dict[str, str] = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        key = name.strip().lower()
        if key and key not in _FRAMING:
            headers[key] = f"{headers[key]}, {value.strip()}" if key in headers else value.strip()
    return status, headers, body


def _json_or_none(body: bytes) -> dict[str, Any] | None:
    try:
        value = json.loads(body)
    except ValueError:
        return None
    return value if isinstance(value, dict) else None
