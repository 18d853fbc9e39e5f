"""OpenAI-compatible image edits: `POST /v1/images/edits` takes OpenAI's request and answers
OpenAI's `ImagesResponse`, so code written for OpenAI's `images.edit` runs on editq by changing
`base_url` and `api_key`.

Each call is an editq job admitted like `POST /v1/edits` (fair queueing, the shared limiter,
budgets, `Idempotency-Key`, stored uploads), then waited for up to `EDITQ_COMPAT_WAIT_SECONDS`;
its id is in the `editq-job-id` header of every answer after it was accepted. Refusals take
OpenAI's error shape (`editq.api.compat_errors`).
"""

from __future__ import annotations

import base64
import logging
from typing import Any

import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response

from editq import logs
from editq.api import compat_inputs, inputs, openapi
from editq.api.compat_errors import NO_RETRY, Refusal, job_ended, job_failure, wait_ran_out
from editq.api.deps import DB, CancelAfter, ContentType, Events, IdempotencyKey, Models, Tenant, Uploads
from editq.api.schemas import RETRY_AFTER, ImagesResponse, OpenAIErrorResponse
from editq.api.stream import committed_wait
from editq.api.submit import admit_in_thread
from editq.errors import Unprocessable
from editq.job import Job, Status
from editq.storage import idempotency
from editq.storage import jobs as job_store
from editq.storage.backend import Backend
from editq.storage.errors import StorageError

log = logging.getLogger("editq.api")

router = APIRouter(prefix="/v1/images", tags=["openai-compatible"])

#: Headers of the accepted job's answer that the compat answer repeats.
KEPT_HEADERS = ("Deprecation", "Sunset", "Idempotent-Replayed")
JOB_HEADER = {
    "editq-job-id": {"description": "The editq job this call ran as", "schema": {"type": "string"}},
    "x-should-retry": {
        "description": "`false`: the job ran; retrying would run another",
        "schema": {"type": "string"},
    },
}


def _refused(description: str, job_header: bool = False) -> dict[str, Any]:
    answer: dict[str, Any] = {"model": OpenAIErrorResponse, "description": description}
    if job_header:
        answer["headers"] = JOB_HEADER
    return answer


def _retry_after(answer: dict[str, Any]) -> dict[str, Any]:
    return {**answer, "headers": {**answer.get("headers", {}), **RETRY_AFTER}}


RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {"description": "The edited images", "headers": JOB_HEADER},
    400: _refused(
        "Invalid request (`invalid_request_error`; codes as `POST /v1/edits`, plus "
        "`stream_unsupported`, `image_url_not_supported`, `invalid_image_url`, "
        "`unsupported_response_format`, `unsupported_moderation`), files over a limit or of a "
        "refused kind, or the job was refused by the model (`moderation_blocked`, "
        "`provider_rejected`)",
        job_header=True,
    ),
    401: _refused("Missing, unknown or revoked API key"),
    404: _refused("Unknown, retired or unserved model (`model_not_found`, `model_retired`, …)", True),
    408: _refused("The body did not arrive in time (`body_timeout`)"),
    409: _refused("`Idempotency-Key` in use, or the job was canceled or expired", job_header=True),
    422: _refused("`Idempotency-Key` reused with another body"),
    429: _retry_after(
        _refused(
            "`insufficient_quota`: the tenant's budget (or the provider account's quota) is exhausted; "
            "`rate_limit_exceeded`: too many uploads at once, retry after `Retry-After`",
            job_header=True,
        )
    ),
    500: _refused("The job failed inside editq (`worker_lost`, `output_storage_failed`, …)", True),
    502: _refused("The job failed at the provider after editq's retries (`provider_*`)", True),
    503: _retry_after(_refused("Redis or S3 unavailable, or the outputs cannot be read yet", True)),
    504: _refused("The job did not finish within `EDITQ_COMPAT_WAIT_SECONDS`: it keeps running", True),
    "4XX": _refused("Any other refusal"),
}


@router.post(
    "/edits",
    response_model=ImagesResponse,
    responses=RESPONSES,
    openapi_extra=openapi.request_body(
        ("multipart/form-data", "OpenAIEditForm"), ("application/json", "OpenAIEditJson")
    ),
)
async def images_edit(
    request: Request,
    db: DB,
    models: Models,
    feed: Events,
    tenant: Tenant,
    uploads: Uploads,
    content_type: ContentType = "",
    idempotency_key: IdempotencyKey = None,
    cancel_after: CancelAfter = None,
) -> Response:
    """OpenAI's `images.edit`: one to 16 images (multipart files, or `images` of data URLs or
    editq upload ids in JSON), an optional mask, the prompt and OpenAI's options. Answers when
    the edit ends, with the outputs as `b64_json` and the provider's `usage`."""
    key = idempotency.parse_key(idempotency_key)
    deadline = inputs.cancel_after(cancel_after)
    edit = await compat_inputs.read(request, db, tenant, content_type, uploads)
    accepted = await admit_in_thread(db, models, tenant, edit, cancel_after_s=deadline, idempotency_key=key)
    if accepted.job_id is None:
        raise Unprocessable(
            "idempotency_key_reused",
            "this Idempotency-Key answered a request that made no job",
            "Idempotency-Key",
        )
    job_id = accepted.job_id
    logs.bind(job_id=job_id)
    headers = {"editq-job-id": job_id}
    headers.update({k: v for k, v in accepted.headers.items() if k in KEPT_HEADERS})
    seconds = db.settings.compat_wait_seconds
    finished = await committed_wait(db, feed, tenant, job_id, seconds)
    if finished is None:
        return _refusal(wait_ran_out(job_id, seconds), headers)
    if finished.status is Status.FAILED:
        error = finished.error.model_dump() if finished.error else {}
        return _refusal(job_failure(error), headers)
    if finished.status is not Status.SUCCEEDED:
        return _refusal(job_ended(job_id, finished.status.value), headers)
    try:
        body = await anyio.to_thread.run_sync(_answer, db, tenant, job_id)
    except StorageError as exc:
        message = f"the job {job_id} succeeded but its outputs cannot be read right now ({exc})"
        refused = Refusal(503, "storage_unavailable", message, headers={"Retry-After": "2", **NO_RETRY})
        return _refusal(refused, headers)
    return JSONResponse(body, headers=headers)


def _refusal(refused: Refusal, headers: dict[str, str]) -> JSONResponse:
    """The answer for a job that did not end in images (logged like every other refusal)."""
    status, body, extra = refused.openai()
    logs.event(
        log,
        "request.refused",
        logging.WARNING if status >= 500 else logging.INFO,
        status=status,
        code=refused.code,
        route="/v1/images/edits",
        job_id=headers.get("editq-job-id"),
    )
    return JSONResponse(body, status_code=status, headers={**headers, **extra})


def _answer(db: Backend, tenant: str, job_id: str) -> dict[str, Any]:
    job = job_store.get(db, tenant, job_id)
    if job is None:
        raise StorageError(f"the job {job_id} is gone")
    return images_response(job, [db.objects.get(out["key"]) for out in job.outputs])


def images_response(job: Job, images: list[bytes]) -> dict[str, Any]:
    """OpenAI's `ImagesResponse` for a succeeded job and its output bytes."""
    first = job.outputs[0] if job.outputs else {}
    echo: dict[str, Any] = first.get("echo") or {}
    plan = job.plan
    answer: dict[str, Any] = {
        "created": (job.finished_at or job.created_at) // 1000,
        "data": [{"b64_json": base64.b64encode(data).decode("ascii")} for data in images],
        "background": _resolved(echo.get("background") or plan.get("background")),
        "output_format": plan.get("output_format"),
        "size": f"{first['width']}x{first['height']}" if first else None,
        "quality": _resolved(echo.get("quality") or plan.get("quality")),
        "usage": openai_usage(job.usage),
    }
    return {k: v for k, v in answer.items() if v is not None}


def _resolved(value: Any) -> str | None:
    """A value the provider decided, or None where editq cannot tell (`auto`)."""
    return None if value in (None, "", "auto") else str(value)


def openai_usage(usage: dict[str, Any] | None) -> dict[str, Any] | None:
    """The provider's `usage` in OpenAI's shape (editq's own notes, such as the request id, left out)."""
    if not usage:
        return None
    inputs_in = usage.get("input_tokens_details") or {}
    tokens_in, tokens_out = int(usage.get("input_tokens") or 0), int(usage.get("output_tokens") or 0)
    shaped: dict[str, Any] = {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": int(usage.get("total_tokens") or tokens_in + tokens_out),
        "input_tokens_details": {
            "text_tokens": int(inputs_in.get("text_tokens") or 0),
            "image_tokens": int(inputs_in.get("image_tokens") or 0),
        },
    }
    details_out = usage.get("output_tokens_details")
    if isinstance(details_out, dict):
        shaped["output_tokens_details"] = {
            "image_tokens": int(details_out.get("image_tokens") or 0),
            "text_tokens": int(details_out.get("text_tokens") or 0),
        }
    return shaped
