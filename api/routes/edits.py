"""Edit jobs: submit, read, list, cancel, download outputs, see webhook deliveries."""

from __future__ import annotations

import logging
from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from editq import logs
from editq.api import inputs, openapi
from editq.api.deps import (
    DB,
    CancelAfter,
    ContentType,
    Events,
    IdempotencyKey,
    Models,
    PreferWait,
    Tenant,
    Uploads,
)
from editq.api.schemas import EDIT_CODES, JOB_CODES, Delivery, DeliveryList, EditJobList, errors
from editq.api.stream import committed_wait
from editq.api.submit import admit_in_thread
from editq.errors import Conflict, InvalidRequest, NotFound
from editq.job import TERMINAL, Job
from editq.public import EditJob, edit_job
from editq.storage import deliveries, idempotency, outputs
from editq.storage import jobs as job_store

log = logging.getLogger("editq.api")
IMAGE_KINDS = ("png", "jpeg", "webp")
router = APIRouter(prefix="/v1/edits", tags=["edits"])


def _job(db: Any, tenant: str, job_id: str) -> Job:
    job = job_store.get(db, tenant, job_id)
    if job is None:
        raise NotFound("job_not_found", f"no job {job_id!r}", "id")
    return job


#: `POST /v1/edits` answers 200 when the job ended within `Prefer: wait` or reused earlier outputs.
SUBMIT_HEADERS = {
    name: {"description": description, "schema": {"type": "string"}}
    for name, description in (
        ("Location", "`/v1/edits/{id}`"),
        ("Deprecation", "The model is being retired (RFC 9745)"),
        ("Sunset", "When the model retires (RFC 8594)"),
        ("Idempotent-Replayed", "`true`: the answer to an earlier request with this Idempotency-Key"),
        ("Preference-Applied", "`wait=N` when `Prefer: wait` was honoured"),
    )
}
SUBMIT_RESPONSES: dict[int | str, dict[str, Any]] = {
    202: {"description": "The job, accepted and queued", "headers": SUBMIT_HEADERS},
    200: {
        "model": EditJob,
        "description": "The job, finished within `Prefer: wait` or reused",
        "headers": SUBMIT_HEADERS,
    },
    **errors(402, 409, 413, 415, 422, 429, codes=EDIT_CODES),
}


@router.post(
    "",
    status_code=202,
    response_model=EditJob,
    responses=SUBMIT_RESPONSES,
    openapi_extra=openapi.request_body(("multipart/form-data", "EditForm"), ("application/json", "EditJson")),
)
async def submit(
    request: Request,
    db: DB,
    models: Models,
    feed: Events,
    tenant: Tenant,
    uploads: Uploads,
    content_type: ContentType = "",
    idempotency_key: IdempotencyKey = None,
    cancel_after: CancelAfter = None,
    prefer: PreferWait = None,
) -> Response:
    """Submit one edit: multipart with image files, or JSON referencing uploaded image ids."""
    settings = db.settings
    key = idempotency.parse_key(idempotency_key)
    deadline = inputs.cancel_after(cancel_after)
    wait = inputs.prefer_wait(prefer, settings.max_wait_seconds)
    edit = await inputs.read_edit(request, db, tenant, content_type, uploads)
    answer = await admit_in_thread(db, models, tenant, edit, cancel_after_s=deadline, idempotency_key=key)
    headers = dict(answer.headers)
    if wait and answer.job_id and answer.status == 202 and "Idempotent-Replayed" not in headers:
        headers["Preference-Applied"] = f"wait={wait}"
        finished = await committed_wait(db, feed, tenant, answer.job_id, wait)
        if finished is not None:
            return JSONResponse(finished.model_dump(mode="json"), status_code=200, headers=headers)
    return JSONResponse(answer.body, status_code=answer.status, headers=headers)


@router.get("/{job_id}", response_model=EditJob, responses=errors(404, codes=JOB_CODES))
def get_job(job_id: str, db: DB, tenant: Tenant) -> EditJob:
    return outputs.public(db, _job(db, tenant, job_id))


def _ms(value: str | None, name: str) -> int | None:
    if value is None:
        return None
    try:
        if value.isdigit():
            return int(value) * (1000 if len(value) <= 10 else 1)
        return int(datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp() * 1000)
    except ValueError:
        raise InvalidRequest(
            "invalid_parameter", f"{name} is an ISO 8601 time or unix seconds", name
        ) from None


@router.get("", response_model=EditJobList, responses=errors(codes={400: "invalid_cursor"}))
def list_jobs(
    db: DB,
    tenant: Tenant,
    status: Annotated[str | None, Query()] = None,
    created_after: Annotated[str | None, Query()] = None,
    created_before: Annotated[str | None, Query()] = None,
    cursor: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> EditJobList:
    """The tenant's jobs, newest first; `status` takes a comma-separated list."""
    statuses = None
    if status:
        statuses = {s.strip() for s in status.split(",") if s.strip()}
        unknown = statuses - TERMINAL - {"queued", "running"}
        if unknown:
            raise InvalidRequest("invalid_parameter", f"unknown status {sorted(unknown)[0]!r}", "status")
    try:
        page = job_store.list_jobs(
            db,
            tenant,
            statuses=statuses,
            created_after=_ms(created_after, "created_after"),
            created_before=_ms(created_before, "created_before"),
            cursor=cursor,
            limit=limit,
        )
    except ValueError:
        raise InvalidRequest("invalid_cursor", "cursor is not one this API returned", "cursor") from None
    builder = outputs.url_builder(db)
    return EditJobList(
        data=[edit_job(job, builder) for job in page.jobs],
        next_cursor=page.next_cursor,
        has_more=page.next_cursor is not None,
    )


@router.post(
    "/{job_id}/cancel",
    response_model=EditJob,
    responses=errors(404, 409, codes={**JOB_CODES, 409: "job_finished"}),
)
def cancel(job_id: str, db: DB, tenant: Tenant) -> EditJob:
    """Cancel a queued job (free) or a running one (its call, if billed, is charged)."""
    ended = job_store.cancel(db, tenant, job_id)
    if isinstance(ended, job_store.Refused) and ended.why is job_store.Refusal.MISSING:
        raise NotFound("job_not_found", f"no job {job_id!r}", "id")
    if isinstance(ended, job_store.Refused):
        status = ended.status.value if ended.status else ""
        raise Conflict("job_finished", f"the job already ended ({status})", "id", status=status)
    logs.event(log, "job.canceled", job_id=job_id, reason="client")
    return outputs.public(db, _job(db, tenant, job_id))


#: Outputs are served with their own content type (`output_format`).
IMAGE_RESPONSE = {
    200: {
        "description": "The output image",
        "content": {
            f"image/{kind}": {"schema": {"type": "string", "format": "binary"}} for kind in IMAGE_KINDS
        },
    },
    **errors(404, codes={404: "job_not_found output_not_found"}),
}


@router.get("/{job_id}/outputs/{index}", response_class=StreamingResponse, responses=IMAGE_RESPONSE)
def download(job_id: str, index: int, db: DB, tenant: Tenant) -> StreamingResponse:
    job = _job(db, tenant, job_id)
    if job.status.value != "succeeded" or not 0 <= index < len(job.outputs):
        raise NotFound("output_not_found", f"job {job_id} has no output {index}", "index")
    body, content_type, length = db.objects.open(job.outputs[index]["key"])

    def chunks() -> Any:
        try:
            yield from body.iter_chunks(64 * 1024)
        finally:
            body.close()

    return StreamingResponse(
        chunks(),
        media_type=content_type or job.outputs[index]["content_type"],
        headers={"Content-Length": str(length), "Cache-Control": "private, max-age=3600"},
    )


@router.get("/{job_id}/deliveries", response_model=DeliveryList, responses=errors(404, codes=JOB_CODES))
def job_deliveries(job_id: str, db: DB, tenant: Tenant) -> DeliveryList:
    """Every webhook delivery for the job, with every attempt."""
    _job(db, tenant, job_id)
    return DeliveryList(
        data=[
            Delivery(
                id=d.id,
                event=d.event,
                url=d.url,
                status=d.status,
                attempt_count=d.attempts,
                next_attempt_at=d.next_at,
                attempts=deliveries.attempts(db, d.id),
            )
            for d in deliveries.for_job(db, tenant, job_id)
        ]
    )
