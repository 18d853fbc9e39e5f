"""The job as clients see it: in API answers and in webhook bodies.

Data shapes only. The API and the worker both build it, so it lives below both; the caller passes
in how an output is reached (`OutputUrl`), so no route or URL shape is known here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict

from editq.catalogue import Lane
from editq.cost import usd
from editq.job import Job, Status, iso

#: How the caller reaches output `index` of a job.
OutputUrl = Callable[[Job, int, dict[str, Any]], str]

#: Events a webhook can carry.
EventType = Literal["edit.started", "edit.succeeded", "edit.failed", "edit.canceled", "edit.expired"]


class Public(BaseModel):
    """A shape clients receive: fields with defaults are still always sent, so the schema marks
    them required."""

    model_config = ConfigDict(json_schema_serialization_defaults_required=True)


class EchoedOptions(Public):
    """The options as the client asked for them (null where not asked or defaulted)."""

    n: int | None
    size: str | None
    aspect_ratio: str | None
    output_size: str | None
    strength: str | None
    quality: str | None
    output_format: str | None
    output_compression: int | None
    background: str | None
    input_fidelity: str | None
    reuse: bool | None


class ProviderRequest(Public):
    """What editq sends to the model for this job."""

    size: str | None
    quality: str | None
    output_format: str | None
    output_compression: int | None
    background: str | None
    input_fidelity: str | None
    n: int | None


class WebhookTarget(Public):
    url: str
    events: list[str]


class SourceInfo(Public):
    id: str | None
    content_type: str | None
    width: int | None
    height: int | None
    bytes: int | None


class MaskInfo(Public):
    id: str | None
    width: int | None
    height: int | None
    bytes: int | None


class Cost(Public):
    """Money as USD strings with six decimals; `usage` is the provider's token count."""

    estimated_usd: str | None
    reserved_usd: str
    actual_usd: str | None
    usage: dict[str, Any] | None


class JobCredits(Public):
    """A job on a credit plan: the most it may cost (`estimated`, held until it ends) and what it
    was charged once it ended (`charged`: 0 unless it succeeded)."""

    plan: str
    estimated: int
    reserved: int
    charged: int | None


class Output(Public):
    url: str
    content_type: str
    width: int
    height: int
    bytes: int | None


class JobError(Public):
    """Why a job failed, or (as `last_error`) why its last attempt did; providers' errors add
    `provider_status`, `provider_code`, `provider_request_id` and other details."""

    model_config = ConfigDict(extra="allow", json_schema_serialization_defaults_required=True)

    code: str
    message: str


class EditJob(Public):
    """One edit job, as the API answers it and webhooks carry it."""

    id: str
    object: Literal["edit"]
    status: Status
    created_at: str | None
    started_at: str | None
    finished_at: str | None
    model: str
    model_requested: str | None
    model_called: str | None
    model_note: str | None
    prompt: str
    options: EchoedOptions
    provider_request: ProviderRequest
    priority: str
    #: `interactive` (one call as soon as the limiter allows) or `economy` (a line of a provider
    #: Batch API file, at the batch price); an economy job can be moved to the interactive lane.
    lane: Lane
    #: The provider's batch that runs or ran the job (economy lane), else null.
    provider_batch_id: str | None
    #: The provider account that ran (or runs) the job's call; null before its admission.
    account: str | None
    metadata: dict[str, str]
    webhook: WebhookTarget | None
    sources: list[SourceInfo]
    mask: MaskInfo | None
    cost: Cost
    credits: JobCredits | None
    outputs: list[Output]
    error: JobError | None
    last_error: JobError | None
    queue_position: int | None
    attempts: int
    deadline: str | None
    reused_from: str | None


class WebhookEvent(Public):
    """The body of every webhook: the event, when it happened, and the job at that moment."""

    type: EventType
    timestamp: str
    data: EditJob


def _pick(data: dict[str, Any], keys: tuple[str, ...]) -> dict[str, Any]:
    return {k: data.get(k) for k in keys}


def _cost(job: Job) -> Cost:
    return Cost(
        estimated_usd=job.estimate.get("estimated_usd"),
        reserved_usd=usd(job.reserved) if job.actual is None else usd(0),
        actual_usd=None if job.actual is None else usd(job.actual),
        usage=job.usage,
    )


def _credits(job: Job) -> JobCredits | None:
    terms = _json_field(job, "credit_terms")
    held = job.raw.get("credits_reserved")
    if terms is None or not held:
        return None
    charged = job.raw.get("credits_charged")
    return JobCredits(
        plan=terms["plan"],
        estimated=int(held),
        reserved=int(held) if job.actual is None else 0,
        charged=int(charged) if charged and job.actual is not None else None,
    )


def _outputs(job: Job, output_url: OutputUrl) -> list[Output]:
    if job.status is not Status.SUCCEEDED:
        return []
    return [
        Output(
            url=output_url(job, index, out),
            content_type=out["content_type"],
            width=out["width"],
            height=out["height"],
            bytes=out.get("bytes"),
        )
        for index, out in enumerate(job.outputs)
    ]


def _json_field(job: Job, name: str) -> Any:
    raw = job.raw.get(name)
    return json.loads(raw) if raw else None


def edit_job(job: Job, output_url: OutputUrl, queue_position: int | None = None) -> EditJob:
    """The job as clients see it; `queue_position` shows only while it waits."""
    explicit = job.model_explicit
    return EditJob(
        id=job.id,
        object="edit",
        status=job.status,
        created_at=iso(job.created_at),
        started_at=iso(job.started_at),
        finished_at=iso(job.finished_at),
        model=job.model if not explicit else job.model_requested or job.model,
        model_requested=job.model_requested if explicit else None,
        model_called=job.plan.get("api_model", job.model),
        model_note=job.model_note,
        prompt=job.prompt,
        options=EchoedOptions(**_pick(job.options, tuple(EchoedOptions.model_fields))),
        provider_request=ProviderRequest(**_pick(job.plan, tuple(ProviderRequest.model_fields))),
        priority=job.priority,
        lane=job.lane,
        provider_batch_id=job.provider_batch_id,
        account=job.raw.get("account") or None,
        metadata=job.metadata,
        webhook=WebhookTarget(url=job.webhook_url, events=job.webhook_events) if job.webhook_url else None,
        sources=[SourceInfo(**_pick(s, tuple(SourceInfo.model_fields))) for s in job.sources],
        mask=None if job.mask is None else MaskInfo(**_pick(job.mask, tuple(MaskInfo.model_fields))),
        cost=_cost(job),
        credits=_credits(job),
        outputs=_outputs(job, output_url),
        error=None if job.error is None else JobError(**job.error),
        last_error=None if job.terminal else _last_error(job),
        queue_position=queue_position if job.status is Status.QUEUED else None,
        attempts=job.attempts,
        deadline=iso(job.deadline),
        reused_from=job.reused_from,
    )


def _last_error(job: Job) -> JobError | None:
    found = _json_field(job, "last_error")
    return None if found is None else JobError(**found)


def webhook_event(event: str, timestamp: str, job: EditJob) -> WebhookEvent:
    """The body for `event`; `edit.started` shows the job running even if it moved on since."""
    if event == "edit.started" and job.status is not Status.RUNNING:
        job = job.model_copy(update={"status": Status.RUNNING})
    return WebhookEvent.model_validate({"type": event, "timestamp": timestamp, "data": job})
