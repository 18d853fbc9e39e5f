"""Following a job live: `Prefer: wait=N` and server-sent events, both fed by the job's
Redis event stream (written by the same scripts that change its status)."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import AsyncIterator
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from editq.api.deps import DB, Events, Tenant
from editq.api.schemas import JOB_CODES, errors
from editq.errors import NotFound
from editq.job import Job, Status
from editq.public import EditJob
from editq.storage import jobs as job_store
from editq.storage import outputs
from editq.storage.backend import Backend
from editq.storage.errors import StorageError
from editq.storage.events import EventFeed

log = logging.getLogger("editq.api")
router = APIRouter(prefix="/v1/edits", tags=["edits"])

#: A comment line keeps proxies from closing a quiet stream.
KEEPALIVE_SECONDS = 15.0
#: How often a waiting job's queue position is refreshed.
POSITION_SECONDS = 1.0


async def wait_for_end(
    db: Backend, feed: EventFeed, tenant: str, job_id: str, seconds: float
) -> EditJob | None:
    """The finished job if it ends within `seconds`, else None."""
    deadline = time.monotonic() + seconds
    last = "0-0"
    while True:
        job = await anyio.to_thread.run_sync(job_store.get, db, tenant, job_id)
        if job is not None and job.terminal:
            return outputs.public(db, job)
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            return None
        last = await feed.after(tenant, job_id, last, int(remaining * 1000)) or last


async def committed_wait(
    db: Backend, feed: EventFeed, tenant: str, job_id: str, seconds: float
) -> EditJob | None:
    """`wait_for_end` for a job already committed: the job is stored, so a failure while
    waiting ends the wait (None, as when the time runs out) instead of failing the request."""
    try:
        with anyio.move_on_after(seconds + db.settings.api_redis_timeout_seconds + 1):
            return await wait_for_end(db, feed, tenant, job_id, seconds)
    except (StorageError, OSError) as exc:
        log.warning("waiting for %s failed after it was committed: %s", job_id, exc)
    return None


def _sse(event: str, data: dict[str, Any] | EditJob) -> bytes:
    if isinstance(data, EditJob):
        data = data.model_dump(mode="json")
    return f"event: {event}\ndata: {json.dumps(data)}\n\n".encode()


#: Server-sent events, each `data` line JSON: the job (`status`), its place in line, the end.
EVENTS_RESPONSE: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "`event: status` with the job (as `GET /v1/edits/{id}`) on every change, "
        '`event: queue_position` with `{"id", "queue_position"}` while it waits, then '
        '`event: done` with `{"id", "status"}`',
        "content": {
            "text/event-stream": {
                "schema": {"type": "string"},
                "example": 'retry: 2000\n\nevent: status\ndata: {"id": "edit_01m8…", "object": "edit", '
                '"status": "queued", "queue_position": 0, …}\n\nevent: queue_position\ndata: {"id": '
                '"edit_01m8…", "queue_position": 0}\n\nevent: status\ndata: {"id": "edit_01m8…", '
                '"status": "succeeded", …}\n\nevent: done\ndata: {"id": "edit_01m8…", "status": '
                '"succeeded"}\n\n',
            }
        },
    },
    **errors(404, codes=JOB_CODES),
}


@router.get("/{job_id}/events", response_class=StreamingResponse, responses=EVENTS_RESPONSE)
async def events(job_id: str, request: Request, db: DB, feed: Events, tenant: Tenant) -> StreamingResponse:
    """Server-sent events: `status` on every change, `queue_position` while waiting, then `done`."""
    last = await feed.last_id(tenant, job_id)
    job: Job | None = await anyio.to_thread.run_sync(job_store.get, db, tenant, job_id)
    if job is None:
        raise NotFound("job_not_found", f"no job {job_id!r}", "id")

    async def stream() -> AsyncIterator[bytes]:
        nonlocal last
        current = await anyio.to_thread.run_sync(outputs.public, db, job)
        yield b"retry: 2000\n\n"
        yield _sse("status", current)
        position = current.queue_position
        quiet_since = time.monotonic()
        while not current.status.terminal:
            if await request.is_disconnected():
                return
            block = POSITION_SECONDS if current.status is Status.QUEUED else KEEPALIVE_SECONDS
            newest = await feed.after(tenant, job_id, last, int(block * 1000))
            fresh = await anyio.to_thread.run_sync(job_store.get, db, tenant, job_id)
            if fresh is None:
                return
            if newest is not None:
                last = newest
                current = await anyio.to_thread.run_sync(outputs.public, db, fresh)
                position = current.queue_position
                yield _sse("status", current)
                quiet_since = time.monotonic()
                continue
            if fresh.status.value == "queued":
                where = await anyio.to_thread.run_sync(job_store.queue_position, db, fresh)
                if where != position:
                    position = where
                    yield _sse("queue_position", {"id": job_id, "queue_position": where})
            if time.monotonic() - quiet_since >= KEEPALIVE_SECONDS:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
        yield _sse("done", {"id": job_id, "status": current.status.value})

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"Cache-Control": "no-cache", "X-Accel-Buffering": "no"},
    )
