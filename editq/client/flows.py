"""Every operation of the client, written once as a flow (see `protocol`): requests, retries,
waiting (`Prefer: wait`, then server-sent events, then polling), pagination and batches."""

from __future__ import annotations

import hashlib
import math
import time
import uuid
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

from editq.client import errors
from editq.client.inputs import ImageInput, Images, edit_body, file_part, image_list
from editq.client.models import (
    TERMINAL,
    BatchAnswer,
    BatchResult,
    EditJob,
    EditJobList,
    Estimate,
    Image,
    Usage,
)
from editq.client.protocol import Emit, Flow, Follow, Followed, Reply, Request, Send, Sleep
from editq.client.retry import RetryPolicy

#: `Prefer: wait=N` asks for at most this (the API's default ceiling, `EDITQ_MAX_WAIT_SECONDS`).
MAX_PREFER_WAIT = 60
#: A stream that ends without the job ending is opened again this many times, then polling.
STREAM_RETRIES = 3
#: Longest pause between two polls (s).
MAX_POLL_INTERVAL = 5.0
#: Items per `POST /v1/edits/batch` (the API's default `EDITQ_MAX_BATCH_ITEMS`).
BATCH_CHUNK = 1000
#: Jobs per page when following a batch through `GET /v1/edits` (the API's largest page).
PAGE_MAX = 200
EXTENSIONS = {"image/png": "png", "image/jpeg": "jpg", "image/webp": "webp"}


@dataclass(frozen=True)
class Context:
    """What every flow needs to know about the client."""

    base_url: str
    retry: RetryPolicy
    #: First pause between two polls (s); it grows by half each time up to `MAX_POLL_INTERVAL`.
    poll_interval: float = 0.5


def edit_path(job_id: str, *rest: str) -> str:
    return "/".join(["/v1/edits", quote(job_id, safe=""), *rest])


def new_key() -> str:
    """A fresh `Idempotency-Key`."""
    return uuid.uuid4().hex


def _deadline(timeout: float | None) -> float:
    return math.inf if timeout is None else time.monotonic() + timeout


def call(ctx: Context, request: Request, job_id: str | None = None) -> Flow[Reply]:
    """The reply to `request`, sent again as the retry policy allows; an error status raises."""
    attempt = 0
    while True:
        attempt += 1
        try:
            reply: Reply = yield Send(request)
        except errors.ConnectionFailed:
            delay = ctx.retry.delay(attempt, None, None)
            if delay is None:
                raise
            yield Sleep(delay)
            continue
        if reply.status < 400:
            return reply
        error = errors.from_answer(reply.status, reply.content, reply.headers, job_id)
        # a request with the same Idempotency-Key is still in flight: like a 503 for this one
        status = 503 if error.code == "idempotency_key_in_use" else reply.status
        delay = ctx.retry.delay(attempt, status, error.retry_after)
        if delay is None:
            raise error
        yield Sleep(delay)


def get(ctx: Context, job_id: str) -> Flow[EditJob]:
    reply = yield from call(ctx, Request("GET", edit_path(job_id)), job_id)
    return reply.parse(EditJob)


def cancel(ctx: Context, job_id: str) -> Flow[EditJob]:
    reply = yield from call(ctx, Request("POST", edit_path(job_id, "cancel")), job_id)
    return reply.parse(EditJob)


def submit(
    ctx: Context,
    images: Images,
    prompt: str,
    mask: ImageInput | None,
    options: Mapping[str, Any],
    *,
    wait: float | None,
    idempotency_key: str | None,
    cancel_after: str | int | None,
) -> Flow[EditJob]:
    """One job; with `wait`, the API holds the answer up to `MAX_PREFER_WAIT` seconds, then the
    job's events (or polling) cover the rest of `wait`. One Idempotency-Key for every attempt."""
    deadline = _deadline(wait)
    headers = {"Idempotency-Key": idempotency_key or new_key()}
    read_timeout = None
    if wait:
        prefer = max(0, min(MAX_PREFER_WAIT, int(wait)))
        headers["Prefer"] = f"wait={prefer}"
        read_timeout = prefer + 30.0
    if cancel_after is not None:
        headers["Cancel-After"] = str(cancel_after)
    request = Request(
        "POST",
        "/v1/edits",
        headers=headers,
        read_timeout=read_timeout,
        **edit_body(images, prompt, mask, options),
    )
    reply = yield from call(ctx, request)
    job = reply.parse(EditJob)
    if wait is None:
        return job
    return (yield from follow(ctx, job, deadline))


def estimate(
    ctx: Context, images: Images, prompt: str, mask: ImageInput | None, options: Mapping[str, Any]
) -> Flow[Estimate]:
    request = Request("POST", "/v1/edits/estimate", **edit_body(images, prompt, mask, options))
    reply = yield from call(ctx, request)
    return reply.parse(Estimate)


def upload(ctx: Context, image: ImageInput) -> Flow[Image]:
    """Store one image once (`img_<sha256>`): sending it again stores nothing new."""
    if isinstance(image, Image):
        return image
    request = Request("POST", "/v1/uploads", files=[("file", file_part(image, "image.png"))])
    reply = yield from call(ctx, request)
    return reply.parse(Image)


def usage(ctx: Context, params: Mapping[str, str | None]) -> Flow[Usage]:
    query = {k: v for k, v in params.items() if v is not None}
    reply = yield from call(ctx, Request("GET", "/v1/usage", params=query))
    return reply.parse(Usage)


def _time_param(value: datetime | str | int | None) -> str | None:
    if isinstance(value, datetime):
        return value.isoformat()
    return None if value is None else str(value)


def list_page(
    ctx: Context,
    *,
    status: str | Iterable[str] | None = None,
    created_after: datetime | str | int | None = None,
    created_before: datetime | str | int | None = None,
    cursor: str | None = None,
    limit: int | None = None,
) -> Flow[EditJobList]:
    """One page of the tenant's jobs, newest first."""
    params = {
        "status": status if isinstance(status, str | None) else ",".join(status),
        "created_after": _time_param(created_after),
        "created_before": _time_param(created_before),
        "cursor": cursor,
        "limit": None if limit is None else str(limit),
    }
    query = {k: v for k, v in params.items() if v}
    reply = yield from call(ctx, Request("GET", "/v1/edits", params=query))
    return reply.parse(EditJobList)


def jobs(ctx: Context, *, limit: int | None, page_size: int | None, **filters: Any) -> Flow[None]:
    """Emits the tenant's jobs, newest first, page after page, `limit` at most."""
    cursor, count = None, 0
    while limit is None or count < limit:
        size = page_size if limit is None else min(page_size or PAGE_MAX, limit - count, PAGE_MAX)
        page = yield from list_page(ctx, cursor=cursor, limit=size, **filters)
        for job in page.data:
            yield Emit(job)
            count += 1
            if limit is not None and count >= limit:
                return
        if not page.has_more or not page.next_cursor:
            return
        cursor = page.next_cursor


def wait(ctx: Context, job: EditJob | str, timeout: float | None) -> Flow[EditJob]:
    """The job once it has ended, or as it stands when `timeout` seconds have passed."""
    deadline = _deadline(timeout)
    current = job if isinstance(job, EditJob) else (yield from get(ctx, job))
    return (yield from follow(ctx, current, deadline))


def follow(ctx: Context, job: EditJob, deadline: float) -> Flow[EditJob]:
    """Server-sent events until the job ends; polling if the stream cannot be had."""
    drops = 0
    while not job.terminal and time.monotonic() < deadline and drops < STREAM_RETRIES:
        followed: Followed = yield Follow(edit_path(job.id, "events"), deadline)
        if followed.job is not None:
            job = followed.job
        if not followed.opened:
            break
        if not job.terminal and time.monotonic() < deadline:
            drops += 1
            yield Sleep(min(ctx.poll_interval, max(0.0, deadline - time.monotonic())))
    interval = ctx.poll_interval
    while not job.terminal:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            break
        yield Sleep(min(interval, remaining))
        job = yield from get(ctx, job.id)
        interval = min(interval * 1.5, MAX_POLL_INTERVAL)
    return job


def _output_request(ctx: Context, url: str) -> Request:
    base = ctx.base_url.rstrip("/") + "/"
    if url.startswith(base) or url.startswith("/"):
        return Request("GET", "/" + url.removeprefix(base).lstrip("/"))
    return Request("GET", url, authorized=False)


def read_output(ctx: Context, job: EditJob | str, index: int) -> Flow[bytes]:
    """The bytes of output `index` of a job that succeeded."""
    current = job if isinstance(job, EditJob) else (yield from get(ctx, job))
    if not current.succeeded or not 0 <= index < len(current.outputs):
        raise errors.JobNotSucceeded(
            f"the job is {current.status}; it has no output {index}", job_id=current.id, param="index"
        )
    reply = yield from call(ctx, _output_request(ctx, current.outputs[index].url), current.id)
    return reply.content


def download(ctx: Context, job: EditJob | str, folder: Path) -> Flow[list[Path]]:
    """Every output of a job that succeeded, saved as `folder/<job id>-<index>.<ext>`."""
    current = job if isinstance(job, EditJob) else (yield from get(ctx, job))
    if not current.succeeded:
        raise errors.JobNotSucceeded(
            f"the job is {current.status}: no outputs to download", job_id=current.id
        )
    folder.mkdir(parents=True, exist_ok=True)
    saved = []
    for index, output in enumerate(current.outputs):
        content = yield from read_output(ctx, current, index)
        path = folder / f"{current.id}-{index}.{EXTENSIONS.get(output.content_type, 'bin')}"
        path.write_bytes(content)
        saved.append(path)
    return saved


def _batch_item(ctx: Context, item: Mapping[str, Any], uploaded: dict[str, Image]) -> Flow[dict[str, Any]]:
    """A batch item as JSON: local `images` and `mask` are uploaded (each content once)."""
    body = {k: v for k, v in item.items() if k not in ("images", "mask") and v is not None}
    for name, many in (("images", True), ("mask", False)):
        if item.get(name) is None:
            continue
        ids = []
        for image in image_list(item[name]) if many else [item[name]]:
            if isinstance(image, Image):
                ids.append(image.id)
                continue
            part = file_part(image, "image.png")
            digest = hashlib.sha256(part[1]).hexdigest()
            if digest not in uploaded:
                uploaded[digest] = yield from upload(ctx, (part[0], part[1]))
            ids.append(uploaded[digest].id)
        body["image_ids" if many else "mask_id"] = ids if many else ids[0]
    return body


def submit_batch(
    ctx: Context,
    items: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None,
    *,
    idempotency_key: str | None,
    cancel_after: str | int | None = None,
) -> Flow[BatchAnswer]:
    """One `POST /v1/edits/batch` (at most the API's item limit); each item answers on its own."""
    uploaded: dict[str, Image] = {}
    bodies = []
    for item in items:
        bodies.append((yield from _batch_item(ctx, item, uploaded)))
    headers = {"Idempotency-Key": idempotency_key or new_key()}
    if cancel_after is not None:
        headers["Cancel-After"] = str(cancel_after)
    payload: dict[str, Any] = {"items": bodies}
    if defaults:
        payload["defaults"] = {k: v for k, v in defaults.items() if v is not None}
    reply = yield from call(ctx, Request("POST", "/v1/edits/batch", json=payload, headers=headers))
    return reply.parse(BatchAnswer)


def batch(
    ctx: Context,
    items: Sequence[Mapping[str, Any]],
    defaults: Mapping[str, Any] | None,
    *,
    timeout: float | None,
    chunk_size: int,
    idempotency_key: str | None,
) -> Flow[None]:
    """Submits `items` in chunks and emits one `BatchResult` per item: refusals at once, jobs as
    they end (followed through `GET /v1/edits`, a page for up to 200 jobs), and when `timeout`
    runs out, the jobs still running as they stand."""
    deadline = _deadline(timeout)
    pending: dict[str, int] = {}
    since: int | None = None
    for number, start in enumerate(range(0, len(items), chunk_size)):
        key = f"{idempotency_key}.{number}" if idempotency_key else None
        answer = yield from submit_batch(
            ctx, items[start : start + chunk_size], defaults, idempotency_key=key
        )
        for item in answer.items:
            index = start + item.index
            if item.job is None:
                yield Emit(BatchResult(index, error=errors.from_error(item.error or {}, item.status)))
            elif item.job.terminal:
                yield Emit(BatchResult(index, job=item.job))
            else:
                pending[item.job.id] = index
                created = _ms(item.job.created_at)
                since = created if since is None else min(since, created)
    interval = ctx.poll_interval
    while pending and time.monotonic() < deadline:
        yield Sleep(min(interval, max(0.0, deadline - time.monotonic())))
        interval = min(interval * 1.5, MAX_POLL_INTERVAL)
        for job in (yield from _among(ctx, pending, since, TERMINAL)):
            yield Emit(BatchResult(pending.pop(job.id), job=job))
    if pending:
        for job in (yield from _among(ctx, pending, since, None)):
            yield Emit(BatchResult(pending.pop(job.id), job=job))


def _ms(when: datetime | None) -> int:
    return 0 if when is None else int(when.timestamp() * 1000)


def _among(
    ctx: Context, pending: Mapping[str, int], since: int | None, statuses: Iterable[str] | None
) -> Flow[list[EditJob]]:
    """The pending jobs found in the tenant's jobs created since `since` (ms), in `statuses`."""
    found: list[EditJob] = []
    cursor = None
    after = None if since is None else since - 1
    while len(found) < len(pending):
        page = yield from list_page(
            ctx,
            status=None if statuses is None else sorted(statuses),
            created_after=after,
            cursor=cursor,
            limit=PAGE_MAX,
        )
        found.extend(job for job in page.data if job.id in pending)
        if not page.has_more or not page.next_cursor:
            break
        cursor = page.next_cursor
    return found
