"""The simulator's Files and Batch APIs, for editq's economy lane.

`/v1/files` stores uploads (input files, images referenced by `file_id`) on disk;
`/v1/batches` takes an input file of `/v1/images/edits` lines and, after `batch_delay` seconds,
answers each line in an output file (requests that ran) or an error file (requests that failed
or never ran), with the same edits and usage as the interactive endpoint: each line is run by
the `RunLine` the simulator passes in. Faults, switched in `/_sim/config`: `batch_fail_next`
(the next batches fail validation), `batch_expire_next` (the next batches expire after
answering `batch_expire_after` lines), `batch_line_fail_rate` (lines answered 500).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import itertools
import json
import secrets
import tempfile
import time
from collections import Counter, OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import httpx
from starlette.datastructures import UploadFile
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Route

from editq.errors import InvalidRequest

ENDPOINT = "/v1/images/edits"
MAX_REQUESTS = 50_000
MAX_INPUT_BYTES = 200_000_000
MAX_UPLOAD_BYTES = 512 * 1024 * 1024
PURPOSES = ("batch", "vision", "user_data", "assistants", "fine-tune", "evals")
TERMINAL = ("completed", "failed", "expired", "cancelled")
#: Longest image an `image_url` may point at.
MAX_IMAGE_BYTES = 50 * 1024 * 1024

#: Reads one image reference (`{"file_id"}` or `{"image_url"}`); `param` names it in errors.
Fetch = Callable[[dict[str, Any], str], Awaitable[bytes]]
#: Runs one line's JSON edit body: its HTTP status and the answer's body.
RunLine = Callable[[dict[str, Any], Fetch], Awaitable[tuple[int, dict[str, Any]]]]


class BatchConfig(Protocol):
    """The simulator's settings for batches (its `SimConfig`); counters run down as batches use
    them."""

    batch_delay: float
    batch_fail_next: int
    batch_expire_next: int
    batch_expire_after: int
    api_key: str | None


@dataclass
class StoredFile:
    id: str
    filename: str
    purpose: str
    bytes: int
    created_at: int
    path: Path

    def public(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "object": "file",
            "bytes": self.bytes,
            "created_at": self.created_at,
            "filename": self.filename,
            "purpose": self.purpose,
            "status": "processed",
            "expires_at": None,
            "status_details": None,
        }


@dataclass
class SimBatch:
    id: str
    input_file_id: str
    metadata: dict[str, str]
    created_at: int
    status: str = "validating"
    times: dict[str, int] = field(default_factory=dict)
    output_file_id: str | None = None
    error_file_id: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    counts: Counter[str] = field(default_factory=Counter)
    cancel: bool = False

    def public(self) -> dict[str, Any]:
        stamp = {f"{name}_at": self.times.get(name) for name in _STAMPS}
        return {
            "id": self.id,
            "object": "batch",
            "endpoint": ENDPOINT,
            "errors": {"object": "list", "data": self.errors} if self.errors else None,
            "input_file_id": self.input_file_id,
            "completion_window": "24h",
            "status": self.status,
            "output_file_id": self.output_file_id,
            "error_file_id": self.error_file_id,
            "created_at": self.created_at,
            "expires_at": self.created_at + 86400,
            **stamp,
            "request_counts": {
                "total": self.counts["total"],
                "completed": self.counts["completed"],
                "failed": self.counts["failed"],
            },
            "metadata": self.metadata or None,
        }

    def mark(self, status: str) -> None:
        self.status = status
        self.times[status] = int(time.time())


_STAMPS = ("in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled")


def _error(status: int, message: str, *, param: str | None = None, code: str | None = None) -> Response:
    body = {"error": {"message": message, "type": "invalid_request_error", "param": param, "code": code}}
    return JSONResponse(body, status_code=status)


class BatchStore:
    """Files and batches of one simulator, in a temporary folder."""

    def __init__(self, run_line: RunLine, config: BatchConfig) -> None:
        self.run_line = run_line
        self.config = config
        self.folder = tempfile.TemporaryDirectory(prefix="editq-sim-files-")
        self.files: dict[str, StoredFile] = {}
        self.batches: OrderedDict[str, SimBatch] = OrderedDict()
        self.tasks: set[asyncio.Task[None]] = set()
        self.finished: Counter[str] = Counter()
        self.lines = 0
        self.http = httpx.AsyncClient(timeout=httpx.Timeout(30.0), follow_redirects=False)
        self._ids = itertools.count(1)

    def new_id(self, prefix: str) -> str:
        return f"{prefix}-sim{next(self._ids):06d}{secrets.token_hex(6)}"

    def store(self, filename: str, purpose: str, data: bytes) -> StoredFile:
        file_id = self.new_id("file")
        path = Path(self.folder.name) / file_id
        path.write_bytes(data)
        stored = StoredFile(file_id, filename, purpose, len(data), int(time.time()), path)
        self.files[file_id] = stored
        return stored

    def start(self, batch: SimBatch) -> None:
        task = asyncio.get_running_loop().create_task(self._run(batch))
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    async def fetch(self, ref: dict[str, Any], param: str) -> bytes:
        """The bytes an image reference points at (a stored file, a data URL or a URL)."""
        file_id, url = ref.get("file_id"), ref.get("image_url")
        if isinstance(file_id, str):
            stored = self.files.get(file_id)
            if stored is None:
                raise InvalidRequest("invalid_value", f"No such file: '{file_id}'.", param)
            return stored.path.read_bytes()
        if not isinstance(url, str) or not url:
            raise InvalidRequest("invalid_value", "An image reference needs file_id or image_url.", param)
        if url.startswith("data:"):
            try:
                return base64.b64decode(url.split(",", 1)[1], validate=True)
            except (IndexError, binascii.Error):
                raise InvalidRequest("invalid_value", "Invalid base64 data URL.", param) from None
        try:
            response = await self.http.get(url)
        except httpx.HTTPError as exc:
            raise InvalidRequest("invalid_image_url", f"Could not fetch the image: {exc}", param) from None
        if response.status_code != 200 or len(response.content) > MAX_IMAGE_BYTES:
            raise InvalidRequest(
                "invalid_image_url", f"Could not fetch the image ({response.status_code}).", param
            )
        return response.content

    async def _run(self, batch: SimBatch) -> None:
        config = self.config
        await asyncio.sleep(0.05)
        requests = self._validated(batch)
        if requests is None:
            batch.mark("failed")
            self.finished["failed"] += 1
            return
        batch.counts["total"] = len(requests)
        batch.mark("in_progress")
        deadline = time.monotonic() + config.batch_delay
        while time.monotonic() < deadline and not batch.cancel:
            await asyncio.sleep(min(0.05, max(0.0, deadline - time.monotonic())))
        expire = config.batch_expire_next > 0 and not batch.cancel
        if expire:
            config.batch_expire_next -= 1
        limit = config.batch_expire_after if expire else len(requests)
        await self._answer(batch, requests, 0 if batch.cancel else limit, expire)

    def _validated(self, batch: SimBatch) -> list[dict[str, Any]] | None:
        """The input file's requests, or None (and the batch's errors) when it is refused."""
        if self.config.batch_fail_next > 0:
            self.config.batch_fail_next -= 1
            batch.errors = [
                {"code": "simulated_failure", "message": "The batch failed (simulated).", "line": None}
            ]
            return None
        stored = self.files.get(batch.input_file_id)
        if stored is None or stored.bytes > MAX_INPUT_BYTES:
            batch.errors = [{"code": "invalid_file", "message": "The input file is missing or over 200 MB."}]
            return None
        requests: list[dict[str, Any]] = []
        errors: list[dict[str, Any]] = []
        seen: set[str] = set()
        for number, raw in enumerate(stored.path.read_bytes().splitlines(), 1):
            problem = _line_problem(raw, seen)
            if isinstance(problem, str):
                errors.append({"code": "invalid_request", "message": problem, "line": number, "param": None})
            else:
                requests.append(problem)
        if len(requests) > MAX_REQUESTS:
            errors.append({"code": "too_many_requests", "message": "At most 50,000 requests per batch."})
        if errors or not requests:
            batch.errors = errors[:100] or [
                {"code": "empty_file", "message": "The input file has no requests."}
            ]
            return None
        return requests

    async def _answer(
        self, batch: SimBatch, requests: list[dict[str, Any]], limit: int, expire: bool
    ) -> None:
        """Run the first `limit` requests into the output and error files; the rest never run."""
        folder = Path(self.folder.name)
        out_path, err_path = folder / f"out-{batch.id}", folder / f"err-{batch.id}"
        with out_path.open("wb") as out, err_path.open("wb") as err:
            for index, request in enumerate(requests):
                if index < limit and not batch.cancel:
                    status, body = await self.run_line(request["body"], self.fetch)
                    self.lines += 1
                    line = _result(request["custom_id"], status=status, body=body)
                    ok = 200 <= status < 300
                else:
                    code = "batch_expired" if expire else "batch_cancelled"
                    line, ok = _result(request["custom_id"], error=code), False
                batch.counts["completed" if ok else "failed"] += 1
                (out if ok else err).write(line)
        batch.mark("finalizing")
        batch.output_file_id = self._keep(out_path, f"{batch.id}_output.jsonl")
        batch.error_file_id = self._keep(err_path, f"{batch.id}_error.jsonl")
        final = "expired" if expire else "cancelled" if batch.cancel else "completed"
        batch.mark(final)
        self.finished[final] += 1

    def _keep(self, path: Path, filename: str) -> str | None:
        size = path.stat().st_size
        if size == 0:
            return None
        file_id = self.new_id("file")
        self.files[file_id] = StoredFile(file_id, filename, "batch_output", size, int(time.time()), path)
        return file_id


def _line_problem(raw: bytes, seen: set[str]) -> dict[str, Any] | str:
    """A valid request line, or what is wrong with it."""
    try:
        line = json.loads(raw)
    except ValueError:
        return "The line is not valid JSON."
    if not isinstance(line, dict) or not isinstance(line.get("custom_id"), str) or not line["custom_id"]:
        return "Each line needs a custom_id."
    if line["custom_id"] in seen:
        return f"Duplicate custom_id '{line['custom_id']}'."
    if line.get("method") != "POST" or line.get("url") != ENDPOINT:
        return f"Each line must be a POST to {ENDPOINT}."
    if not isinstance(line.get("body"), dict):
        return "Each line needs a JSON body."
    seen.add(line["custom_id"])
    return line


def _result(
    custom_id: str, *, status: int | None = None, body: dict[str, Any] | None = None, error: str = ""
) -> bytes:
    """One line of an output or error file."""
    line: dict[str, Any] = {"id": f"batch_req_{secrets.token_hex(12)}", "custom_id": custom_id}
    if status is None:
        message = "This request was not run: the batch " + (
            "expired." if error == "batch_expired" else "was cancelled."
        )
        line |= {"response": None, "error": {"code": error, "message": message}}
    else:
        request_id = "req_sim_" + secrets.token_hex(12)
        line |= {"response": {"status_code": status, "request_id": request_id, "body": body}, "error": None}
    return json.dumps(line, separators=(",", ":")).encode() + b"\n"


def _store(request: Request) -> BatchStore:
    store: BatchStore = request.app.state.sim.batch_store
    return store


def _denied(request: Request) -> Response | None:
    """401 unless the request carries the configured key (when one is configured)."""
    key = _store(request).config.api_key
    if key is not None and request.headers.get("authorization", "") != f"Bearer {key}":
        return _error(401, "Incorrect API key provided.", code="invalid_api_key")
    return None


async def upload_file(request: Request) -> Response:
    store = _store(request)
    async with request.form(max_files=1, max_fields=4, max_part_size=1024) as form:
        upload, purpose = form.get("file"), form.get("purpose")
        if not isinstance(upload, UploadFile):
            return _error(400, "Missing required parameter: 'file'.", param="file")
        if purpose not in PURPOSES:
            return _error(400, f"Invalid 'purpose': one of {', '.join(PURPOSES)}.", param="purpose")
        data = await upload.read()
    if len(data) > MAX_UPLOAD_BYTES:
        return _error(413, "The file is over 512 MB.", param="file")
    if purpose == "batch" and len(data) > MAX_INPUT_BYTES:
        return _error(400, "A batch input file is at most 200 MB.", param="file")
    stored = store.store(upload.filename or "upload", str(purpose), data)
    return JSONResponse(stored.public())


def _file(request: Request) -> StoredFile | None:
    return _store(request).files.get(request.path_params["file_id"])


async def retrieve_file(request: Request) -> Response:
    found = _file(request)
    return JSONResponse(found.public()) if found else _error(404, "No such file.", code="not_found")


async def file_content(request: Request) -> Response:
    found = _file(request)
    if found is None:
        return _error(404, "No such file.", code="not_found")
    return FileResponse(found.path, media_type="application/octet-stream")


async def delete_file(request: Request) -> Response:
    store = _store(request)
    found = store.files.pop(request.path_params["file_id"], None)
    if found is None:
        return _error(404, "No such file.", code="not_found")
    found.path.unlink(missing_ok=True)
    return JSONResponse({"id": found.id, "object": "file", "deleted": True})


async def create_batch(request: Request) -> Response:
    store = _store(request)
    try:
        payload = await request.json()
    except ValueError:
        payload = None
    problem = _batch_request_problem(store, payload)
    if problem is not None:
        return _error(400, problem[0], param=problem[1])
    metadata = payload.get("metadata") or {}
    batch = SimBatch(
        store.new_id("batch"),
        str(payload["input_file_id"]),
        {str(k): str(v) for k, v in metadata.items()},
        int(time.time()),
    )
    store.batches[batch.id] = batch
    store.batches.move_to_end(batch.id, last=False)
    store.start(batch)
    return JSONResponse(batch.public())


def _batch_request_problem(store: BatchStore, payload: Any) -> tuple[str, str | None] | None:
    """What is wrong with a create-batch body (message, param), if anything."""
    if not isinstance(payload, dict):
        return "The body is not a JSON object.", None
    if payload.get("endpoint") != ENDPOINT:
        return f"This simulator batches {ENDPOINT} only.", "endpoint"
    if payload.get("completion_window") != "24h":
        return "Invalid 'completion_window': only 24h.", "completion_window"
    stored = store.files.get(str(payload.get("input_file_id")))
    if stored is None or stored.purpose != "batch":
        return "The input file does not exist or its purpose is not 'batch'.", "input_file_id"
    metadata = payload.get("metadata") or {}
    if not isinstance(metadata, dict) or len(metadata) > 16:
        return "Invalid 'metadata': at most 16 string pairs.", "metadata"
    return None


def _batch(request: Request) -> SimBatch | None:
    return _store(request).batches.get(request.path_params["batch_id"])


async def retrieve_batch(request: Request) -> Response:
    found = _batch(request)
    return JSONResponse(found.public()) if found else _error(404, "No such batch.", code="not_found")


async def cancel_batch(request: Request) -> Response:
    """A batch still running starts cancelling; an ended one is answered as it is."""
    found = _batch(request)
    if found is None:
        return _error(404, "No such batch.", code="not_found")
    if found.status not in TERMINAL and not found.cancel:
        found.cancel = True
        found.mark("cancelling")
    return JSONResponse(found.public())


async def list_batches(request: Request) -> Response:
    """Newest first; `after` is the id the previous page ended with."""
    store = _store(request)
    try:
        limit = max(1, min(100, int(request.query_params.get("limit", "20"))))
    except ValueError:
        return _error(400, "Invalid 'limit'.", param="limit")
    ids = list(store.batches)
    after = request.query_params.get("after")
    start = ids.index(after) + 1 if after in ids else 0
    page = [store.batches[i].public() for i in ids[start : start + limit]]
    return JSONResponse(
        {
            "object": "list",
            "data": page,
            "first_id": page[0]["id"] if page else None,
            "last_id": page[-1]["id"] if page else None,
            "has_more": start + limit < len(ids),
        }
    )


Handler = Callable[[Request], Awaitable[Response]]


def _guarded(handler: Handler) -> Handler:
    async def run(request: Request) -> Response:
        return _denied(request) or await handler(request)

    return run


ROUTES = [
    Route(path, _guarded(handler), methods=[method])
    for path, handler, method in (
        ("/v1/files", upload_file, "POST"),
        ("/v1/files/{file_id}", retrieve_file, "GET"),
        ("/v1/files/{file_id}", delete_file, "DELETE"),
        ("/v1/files/{file_id}/content", file_content, "GET"),
        ("/v1/batches", create_batch, "POST"),
        ("/v1/batches", list_batches, "GET"),
        ("/v1/batches/{batch_id}", retrieve_batch, "GET"),
        ("/v1/batches/{batch_id}/cancel", cancel_batch, "POST"),
    )
]
