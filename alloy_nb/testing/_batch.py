"""The vendors' batch endpoints for FakeProviderServer: Anthropic Message Batches and OpenAI
Files + Batch, with their object shapes, status words, JSONL results and error bodies.

Each item is answered by the same renderers as a live call (`_anthropic.py`,
`_responses.py`, `_chat.py`), so a batch answer parses exactly like a non-streamed one.
`srv.batches.plan(...)` scripts how the next batches go (polls until done, per-item
errored/expired/canceled results, a whole batch failing); `srv.batches.fail_next(...)`
answers a control request with an HTTP error (429 with Retry-After …). Shapes follow the
vendors' API references; `docs/batch-vendor.md` summarises them.
"""

from __future__ import annotations

import json
import re
import threading
from collections import deque
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.parser import BytesParser
from email.policy import HTTP
from typing import Any, Literal

from alloy_nb.testing import _anthropic, _chat, _responses
from alloy_nb.testing.wire import (
    Context,
    Protocol,
    Rendered,
    Reply,
    Usage,
    error_body,
    hex_token,
    json_body,
    now,
    request_id_headers,
    token,
)

__all__ = ["BatchPlan", "FakeBatch", "FakeBatches"]

_ANTHROPIC_PATH = re.compile(r"^(?:/.*)?/v1/messages/batches(?:/([^/]+))?(?:/(results|cancel))?$")
_OPENAI_BATCH_PATH = re.compile(r"^(?:/.*)?/v1/batches(?:/([^/]+))?(?:/(cancel))?$")
_OPENAI_FILE_PATH = re.compile(r"^(?:/.*)?/v1/files(?:/([^/]+))?(?:/(content))?$")
_CUSTOM_ID = re.compile(r"^[a-zA-Z0-9_-]{1,64}$")
_ENDPOINTS: dict[str, Protocol] = {
    "/v1/chat/completions": "openai-chat",
    "/v1/responses": "openai-responses",
}
_RENDER = {
    "anthropic": _anthropic.render_reply,
    "openai-responses": _responses.render_reply,
    "openai-chat": _chat.render_reply,
}
_STATUS_OF = {
    "invalid_request_error": 400,
    "authentication_error": 401,
    "permission_error": 403,
    "not_found_error": 404,
    "rate_limit_error": 429,
    "rate_limit_exceeded": 429,
    "api_error": 500,
    "server_error": 500,
    "overloaded_error": 529,
}
Op = Literal["create", "retrieve", "results", "cancel", "upload", "download"]


@dataclass(frozen=True)
class BatchPlan:
    """How the next batches behave. Item numbers are positions in the submitted batch.

    `polls`: GETs that answer "in progress" (with counts advancing) before the batch ends.
    `errored`: item -> (error type, message): Anthropic `errored` results, OpenAI error-file
    lines with the matching HTTP status. `expired`/`canceled`: items ending that way (OpenAI
    writes `batch_expired` lines; it has no per-item cancel, so those items are left out).
    `fail`: the whole batch fails with this message (OpenAI: status `failed` with `errors`;
    Anthropic, which has no failed state: the create is rejected with HTTP 400).
    `replies`: item -> Reply (default: "answer to: <the item's last user text>").
    `order`: how result lines are ordered ("reverse" keeps tests honest about alignment).
    """

    polls: int = 1
    errored: Mapping[int, tuple[str, str]] = field(default_factory=dict)
    expired: Collection[int] = ()
    canceled: Collection[int] = ()
    fail: str | None = None
    replies: Mapping[int, Reply] = field(default_factory=dict)
    order: Literal["reverse", "input"] = "reverse"


@dataclass
class FakeBatch:
    """One batch as the fake holds it; `items` are (custom_id, body) as received."""

    id: str
    vendor: Literal["anthropic", "openai"]
    items: list[tuple[str, dict[str, Any]]]
    plan: BatchPlan
    protocol: Protocol
    endpoint: str = ""
    input_file_id: str = ""
    created_at: int = field(default_factory=now)
    gets: int = 0
    cancel_requested: bool = False
    finished_at_cancel: int | None = None
    ended: bool = False
    output_file_id: str | None = None
    error_file_id: str | None = None
    results: list[dict[str, Any]] = field(default_factory=list)
    problems: list[dict[str, Any]] = field(default_factory=list)  # OpenAI validation errors

    def finished(self) -> int:
        """Items already processed: they advance with each GET until the batch ends."""
        if self.ended:
            return len(self.items) if self.finished_at_cancel is None else self.finished_at_cancel
        polls = max(self.plan.polls, 1)
        return min(len(self.items), len(self.items) * self.gets // polls)


class FakeBatches:
    """The batch endpoints of one FakeProviderServer (`srv.batches`)."""

    def __init__(self, usage: Usage, chat_reasoning_field: str | None) -> None:
        self._usage = usage
        self._reasoning = chat_reasoning_field
        self._lock = threading.Lock()
        self._plan = BatchPlan()
        self._faults: deque[tuple[Op, int, float | None, str | None]] = deque()
        self._create_delay = 0.0
        self.batches: dict[str, FakeBatch] = {}
        self.files: dict[str, bytes] = {}
        self.cancelled: list[str] = []

    # ------------------------------------------------------------------ scripting

    def plan(self, plan: BatchPlan | None = None, **kw: Any) -> FakeBatches:
        """Set how the batches created from now on behave (a BatchPlan or its fields)."""
        with self._lock:
            self._plan = plan if plan is not None else BatchPlan(**kw)
        return self

    def fail_next(
        self,
        op: Op,
        status: int = 429,
        *,
        retry_after: float | None = None,
        message: str | None = None,
        times: int = 1,
    ) -> FakeBatches:
        """Answer the next `times` control requests of kind `op` with HTTP `status`."""
        with self._lock:
            self._faults.extend([(op, status, retry_after, message)] * times)
        return self

    def slow_create(self, seconds: float) -> FakeBatches:
        """Create the next batch at once but hold its reply back for `seconds` (a client
        cancelled meanwhile has a remote batch it does not know the id of yet)."""
        with self._lock:
            self._create_delay = seconds
        return self

    def _delayed(self, r: Rendered) -> Rendered:
        if r.status == 200 and self._create_delay:
            r.delay, self._create_delay = self._create_delay, 0.0
        return r

    @staticmethod
    def handles(path: str) -> bool:
        return any(
            p.match(path) for p in (_ANTHROPIC_PATH, _OPENAI_BATCH_PATH, _OPENAI_FILE_PATH)
        )

    # ------------------------------------------------------------------ serving

    def answer(
        self, method: str, path: str, headers: Mapping[str, str], body: bytes, parsed: Any
    ) -> Rendered:
        """Render the reply to one batch-endpoint request (never raises)."""
        host = headers.get("host", "127.0.0.1")
        with self._lock:
            if m := _ANTHROPIC_PATH.match(path):
                return self._anthropic(method, m.group(1), m.group(2), headers, parsed, host)
            if m := _OPENAI_FILE_PATH.match(path):
                return self._files(method, m.group(1), m.group(2), headers, body)
            m = _OPENAI_BATCH_PATH.match(path)
            assert m is not None
            return self._openai(method, m.group(1), m.group(2), headers, parsed)

    def _fault(self, op: Op, protocol: Protocol) -> Rendered | None:
        for i, (fop, status, retry_after, message) in enumerate(self._faults):
            if fop == op:
                del self._faults[i]
                return _error(protocol, status, message, retry_after=retry_after)
        return None

    # ------------------------------------------------------------------ Anthropic

    def _anthropic(
        self,
        method: str,
        batch_id: str | None,
        action: str | None,
        headers: Mapping[str, str],
        body: Any,
        host: str,
    ) -> Rendered:
        if not headers.get("x-api-key"):
            return _error("anthropic", 401, "x-api-key header is required")
        if not headers.get("anthropic-version"):
            return _error("anthropic", 400, "anthropic-version: header is required")
        if batch_id is None:
            if method != "POST":
                return _error("anthropic", 405, f"{method} not supported here")
            return self._fault("create", "anthropic") or self._delayed(self._a_create(body, host))
        batch = self.batches.get(batch_id)
        if batch is None or batch.vendor != "anthropic":
            return _error("anthropic", 404, f"message batch {batch_id!r} not found")
        if action == "cancel" and method == "POST":
            if fault := self._fault("cancel", "anthropic"):
                return fault
            self._cancel(batch)
            return _json(_a_batch(batch, host), "anthropic")
        if action == "results" and method == "GET":
            if fault := self._fault("results", "anthropic"):
                return fault
            if not batch.ended:
                return _error("anthropic", 400, f"message batch {batch_id} is still in progress")
            lines = b"".join(json_body(r) + b"\n" for r in batch.results)
            headers_out = {"content-type": "application/binary", **request_id_headers("anthropic")}
            return Rendered(200, headers_out, [lines], False)
        if action is None and method == "GET":
            if fault := self._fault("retrieve", "anthropic"):
                return fault
            self._advance(batch)
            return _json(_a_batch(batch, host), "anthropic")
        return _error("anthropic", 405, f"{method} not supported here")

    def _a_create(self, body: Any, host: str) -> Rendered:
        reqs = body.get("requests") if isinstance(body, dict) else None
        if not isinstance(reqs, list) or not reqs:
            return _error("anthropic", 400, "requests: Field required (a non-empty list)")
        items: list[tuple[str, dict[str, Any]]] = []
        for i, r in enumerate(reqs):
            cid = r.get("custom_id") if isinstance(r, dict) else None
            params = r.get("params") if isinstance(r, dict) else None
            if not isinstance(cid, str) or not _CUSTOM_ID.match(cid):
                return _error("anthropic", 400, f"requests.{i}.custom_id: invalid {cid!r}")
            if not isinstance(params, dict) or not all(
                k in params for k in ("model", "max_tokens", "messages")
            ):
                return _error("anthropic", 400, f"requests.{i}.params: model, max_tokens and "
                              "messages are required")
            if params.get("stream"):
                return _error("anthropic", 400, f"requests.{i}.params.stream: not supported")
            items.append((cid, params))
        if len({cid for cid, _ in items}) != len(items):
            return _error("anthropic", 400, "requests: custom_id values must be unique")
        if self._plan.fail:
            return _error("anthropic", 400, self._plan.fail)
        batch = FakeBatch("msgbatch_01" + token(22), "anthropic", items, self._plan, "anthropic")
        self.batches[batch.id] = batch
        self._advance(batch, count=False)
        return _json(_a_batch(batch, host), "anthropic")

    # ------------------------------------------------------------------ OpenAI

    def _files(
        self,
        method: str,
        file_id: str | None,
        action: str | None,
        headers: Mapping[str, str],
        body: bytes,
    ) -> Rendered:
        if not headers.get("authorization", "").startswith("Bearer "):
            return _error("openai-chat", 401, "You didn't provide an API key.")
        if file_id is None and method == "POST":
            if fault := self._fault("upload", "openai-chat"):
                return fault
            form = _multipart(headers.get("content-type", ""), body)
            if form.get("purpose") != b"batch":
                return _error("openai-chat", 400, "purpose: this test server takes 'batch' only")
            if "file" not in form:
                return _error("openai-chat", 400, "file: Field required")
            fid = "file-" + token(22)
            self.files[fid] = form["file"]
            return _json(_o_file(fid, len(form["file"]), "batch"), "openai-chat")
        if file_id is not None and action == "content" and method == "GET":
            if fault := self._fault("download", "openai-chat"):
                return fault
            if file_id not in self.files:
                return _error("openai-chat", 404, f"No such File object: {file_id}")
            out = {"content-type": "application/octet-stream", **request_id_headers("openai-chat")}
            return Rendered(200, out, [self.files[file_id]], False)
        return _error("openai-chat", 405, f"{method} not supported here")

    def _openai(
        self,
        method: str,
        batch_id: str | None,
        action: str | None,
        headers: Mapping[str, str],
        body: Any,
    ) -> Rendered:
        if not headers.get("authorization", "").startswith("Bearer "):
            return _error("openai-chat", 401, "You didn't provide an API key.")
        if batch_id is None:
            if method != "POST":
                return _error("openai-chat", 405, f"{method} not supported here")
            return self._fault("create", "openai-chat") or self._delayed(self._o_create(body))
        batch = self.batches.get(batch_id)
        if batch is None or batch.vendor != "openai":
            return _error("openai-chat", 404, f"No batch found with id '{batch_id}'.")
        if action == "cancel" and method == "POST":
            if fault := self._fault("cancel", "openai-chat"):
                return fault
            self._cancel(batch)
            return _json(_o_batch(batch), "openai-chat")
        if action is None and method == "GET":
            if fault := self._fault("retrieve", "openai-chat"):
                return fault
            self._advance(batch)
            return _json(_o_batch(batch), "openai-chat")
        return _error("openai-chat", 405, f"{method} not supported here")

    def _o_create(self, body: Any) -> Rendered:
        if not isinstance(body, dict):
            return _error("openai-chat", 400, "a JSON body is required")
        endpoint, fid = body.get("endpoint"), body.get("input_file_id")
        if endpoint not in _ENDPOINTS:
            return _error("openai-chat", 400, f"Invalid value for 'endpoint': {endpoint!r}")
        if body.get("completion_window") != "24h":
            return _error("openai-chat", 400, "Invalid value for 'completion_window'")
        if not isinstance(fid, str) or fid not in self.files:
            return _error("openai-chat", 404, f"No such File object: {fid}")
        items, problems = _o_lines(self.files[fid], str(endpoint))
        plan = self._plan
        if plan.fail:
            problems = [*problems, {"code": "invalid_request", "message": plan.fail,
                                    "param": None, "line": None}]
        batch = FakeBatch("batch_" + hex_token(32), "openai", items, plan, _ENDPOINTS[endpoint])
        batch.endpoint, batch.input_file_id = str(endpoint), fid
        batch.problems = problems
        self.batches[batch.id] = batch
        return _json(_o_batch(batch), "openai-chat")

    # ------------------------------------------------------------------ shared

    def _cancel(self, batch: FakeBatch) -> None:
        self.cancelled.append(batch.id)
        if not batch.ended and not batch.cancel_requested:
            batch.cancel_requested = True
            batch.finished_at_cancel = batch.finished()

    def _advance(self, batch: FakeBatch, *, count: bool = True) -> None:
        """One poll: progress moves on; the last poll (or the one after a cancel) ends it."""
        if batch.ended:
            return
        if count:
            batch.gets += 1
        if batch.problems and count:
            batch.ended = True
            return
        if (batch.cancel_requested and count) or batch.gets >= max(batch.plan.polls, 1):
            batch.ended = True
        if batch.ended:
            self._finish(batch)

    def _answer(self, batch: FakeBatch, i: int) -> dict[str, Any]:
        body = batch.items[i][1]
        reply = batch.plan.replies.get(i) or Reply(text=f"answer to: {_prompt_text(body)}")
        ctx = Context(batch.protocol, {**body, "stream": False}, self._usage, self._reasoning)
        rendered = _RENDER[batch.protocol](reply, ctx)
        data: dict[str, Any] = json.loads(b"".join(rendered.chunks))
        return data

    def _finish(self, batch: FakeBatch) -> None:
        order = list(range(len(batch.items)))
        if batch.plan.order == "reverse":
            order.reverse()
        if batch.vendor == "anthropic":
            batch.results = [self._a_line(batch, i) for i in order]
            return
        out: list[dict[str, Any]] = []
        err: list[dict[str, Any]] = []
        for i in order:
            line = self._o_line(batch, i)
            if line is None:
                continue
            ok = line["response"] is not None and line["response"]["status_code"] == 200
            (out if ok else err).append(line)
        if out:
            batch.output_file_id = "file-" + token(22)
            self.files[batch.output_file_id] = b"".join(json_body(x) + b"\n" for x in out)
        if err:
            batch.error_file_id = "file-" + token(22)
            self.files[batch.error_file_id] = b"".join(json_body(x) + b"\n" for x in err)
        batch.results = out + err

    def _a_line(self, batch: FakeBatch, i: int) -> dict[str, Any]:
        cid, kind = batch.items[i][0], _outcome(batch, i)
        if kind == "succeeded":
            result: dict[str, Any] = {"type": "succeeded", "message": self._answer(batch, i)}
        elif kind == "errored":
            etype, message = batch.plan.errored[i]
            result = {
                "type": "errored",
                "error": {"type": "error", "error": {"type": etype, "message": message}},
            }
        else:
            result = {"type": kind}
        return {"custom_id": cid, "result": result}

    def _o_line(self, batch: FakeBatch, i: int) -> dict[str, Any] | None:
        cid, kind = batch.items[i][0], _outcome(batch, i)
        line: dict[str, Any] = {"id": "batch_req_" + hex_token(32), "custom_id": cid}
        if kind == "canceled":
            return None  # OpenAI has no per-item cancel: the item simply has no line
        if kind == "expired":
            error = {
                "code": "batch_expired",
                "message": "This request could not be executed before the completion window "
                "expired.",
            }
            return {**line, "response": None, "error": error}
        rid = "req_" + hex_token(32)
        if kind == "errored":
            etype, message = batch.plan.errored[i]
            status = _STATUS_OF.get(etype, 400)
            err_body = {"error": {"message": message, "type": etype, "param": None, "code": None}}
            response = {"status_code": status, "request_id": rid, "body": err_body}
        else:
            response = {"status_code": 200, "request_id": rid, "body": self._answer(batch, i)}
        return {**line, "response": response, "error": None}


# ---------------------------------------------------------------------- object shapes


def _outcome(batch: FakeBatch, i: int) -> str:
    """How item ``i`` ends: cancelled if it had not run when a cancel came, else its plan."""
    p = batch.plan
    if batch.finished_at_cancel is not None and i >= batch.finished_at_cancel:
        return "canceled"
    if i in p.errored:
        return "errored"
    if i in p.expired:
        return "expired"
    if i in p.canceled:
        return "canceled"
    return "succeeded"


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).isoformat().replace("+00:00", "Z")


def _a_batch(b: FakeBatch, host: str) -> dict[str, Any]:
    n, done = len(b.items), b.finished()
    counts = {"processing": n - done, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
    for i in range(done if not b.ended else n):
        counts[_count_key(_outcome(b, i))] += 1
    status = "ended" if b.ended else ("canceling" if b.cancel_requested else "in_progress")
    ended_at = _iso(b.created_at + 1) if b.ended else None
    return {
        "id": b.id,
        "type": "message_batch",
        "processing_status": status,
        "request_counts": counts,
        "ended_at": ended_at,
        "created_at": _iso(b.created_at),
        "expires_at": _iso(b.created_at + 86400),
        "archived_at": None,
        "cancel_initiated_at": _iso(b.created_at) if b.cancel_requested else None,
        "results_url": f"http://{host}/v1/messages/batches/{b.id}/results" if b.ended else None,
    }


def _count_key(kind: str) -> str:
    return {"succeeded": "succeeded", "errored": "errored", "expired": "expired"}.get(
        kind, "canceled"
    )


def _o_batch(b: FakeBatch) -> dict[str, Any]:
    failed = bool(b.problems)
    n = len(b.items)
    if b.ended and failed:
        status = "failed"
    elif b.ended and b.cancel_requested:
        status = "cancelled"
    elif b.ended and b.plan.expired and not b.cancel_requested:
        status = "expired"
    elif b.ended:
        status = "completed"
    elif b.cancel_requested:
        status = "cancelling"
    elif b.gets == 0:
        status = "validating"
    else:
        status = "in_progress"
    done = b.finished() if not failed else 0
    ok = sum(_outcome(b, i) == "succeeded" for i in range(done))
    at = b.created_at + 1
    errors = None
    if failed:
        errors = {"object": "list", "data": b.problems}
    return {
        "id": b.id,
        "object": "batch",
        "endpoint": b.endpoint,
        "errors": errors,
        "input_file_id": b.input_file_id,
        "completion_window": "24h",
        "status": status,
        "output_file_id": b.output_file_id,
        "error_file_id": b.error_file_id,
        "created_at": b.created_at,
        "in_progress_at": b.created_at if b.gets else None,
        "expires_at": b.created_at + 86400,
        "finalizing_at": at if b.ended and not failed else None,
        "completed_at": at if status == "completed" else None,
        "failed_at": at if status == "failed" else None,
        "expired_at": at if status == "expired" else None,
        "cancelling_at": b.created_at if b.cancel_requested else None,
        "cancelled_at": at if status == "cancelled" else None,
        "request_counts": {"total": 0 if failed else n, "completed": ok, "failed": done - ok},
        "metadata": None,
    }


def _o_file(fid: str, size: int, purpose: str) -> dict[str, Any]:
    t = now()
    return {
        "id": fid,
        "object": "file",
        "bytes": size,
        "created_at": t,
        "expires_at": t + 30 * 86400,
        "filename": "batch.jsonl",
        "purpose": purpose,
        "status": "processed",
        "status_details": None,
    }


def _o_lines(
    raw: bytes, endpoint: str
) -> tuple[list[tuple[str, dict[str, Any]]], list[dict[str, Any]]]:
    """The items of an input file and the validation problems OpenAI would report."""
    items: list[tuple[str, dict[str, Any]]] = []
    problems: list[dict[str, Any]] = []
    seen: set[str] = set()

    def bad(n: int, message: str) -> None:
        problems.append({"code": "invalid_request", "message": message, "param": None, "line": n})

    for n, text in enumerate(raw.decode("utf-8", "replace").splitlines(), start=1):
        try:
            line = json.loads(text)
        except ValueError:
            bad(n, "line is not valid JSON")
            continue
        cid = line.get("custom_id") if isinstance(line, dict) else None
        if not isinstance(cid, str) or not cid or cid in seen:
            bad(n, "custom_id is missing or duplicated")
            continue
        if line.get("method") != "POST" or line.get("url") != endpoint:
            bad(n, f"method must be POST and url must be the batch endpoint {endpoint}")
            continue
        body = line.get("body")
        if not isinstance(body, dict) or "model" not in body or body.get("stream"):
            bad(n, "body must be a non-streaming request with a model")
            continue
        seen.add(cid)
        items.append((cid, body))
    if not items and not problems:
        bad(1, "the input file has no requests")
    return items, problems


# ---------------------------------------------------------------------- helpers


def _prompt_text(body: Mapping[str, Any]) -> str:
    """The text of the last user message of any of the three request shapes."""
    turns = body.get("messages") or body.get("input") or []
    if isinstance(turns, str):
        return turns
    for msg in reversed(turns if isinstance(turns, list) else []):
        if not isinstance(msg, dict) or msg.get("role") != "user":
            continue
        content = msg.get("content")
        if isinstance(content, str):
            return content
        if isinstance(content, list):
            return " ".join(
                p["text"] for p in content if isinstance(p, dict) and isinstance(p.get("text"), str)
            )
    return ""


def _multipart(content_type: str, body: bytes) -> dict[str, bytes]:
    """The fields of a multipart/form-data body (name -> bytes)."""
    if "multipart/form-data" not in content_type:
        return {}
    head = f"Content-Type: {content_type}\r\n\r\n".encode()
    msg = BytesParser(policy=HTTP).parsebytes(head + body)
    out: dict[str, bytes] = {}
    for part in msg.iter_parts() if msg.is_multipart() else ():
        name = part.get_param("name", header="content-disposition")
        payload = part.get_payload(decode=True)
        if isinstance(name, str) and isinstance(payload, bytes):
            out[name] = payload
    return out


def _json(obj: Any, protocol: Protocol) -> Rendered:
    headers = {"content-type": "application/json", **request_id_headers(protocol)}
    return Rendered(200, headers, [json_body(obj, pretty=protocol != "anthropic")], False)


def _error(
    protocol: Protocol, status: int, message: str | None, *, retry_after: float | None = None
) -> Rendered:
    headers = {"content-type": "application/json", **request_id_headers(protocol)}
    if retry_after is not None:
        headers["retry-after"] = (
            str(int(retry_after)) if float(retry_after).is_integer() else str(retry_after)
        )
    rid = headers.get("request-id")
    return Rendered(
        status, headers, [error_body(protocol, status, message=message, request_id=rid)], False
    )
