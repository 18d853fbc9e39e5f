"""Submitting a job: validate, price, hold, store, commit. Shared by single and batch submits.

Order matters for "202 means durable" and "bad input leaves nothing behind": everything that
can refuse the request runs before the first byte is stored; the budget is held before the
sources go to S3; the job, its reservation, its queue entry and the idempotent answer are then
written by one Lua script. Any failure after the hold releases it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from email.utils import format_datetime
from typing import Any

import anyio.to_thread

from editq import batchfile, cost, ids, lifecycle, logs, ssrf
from editq.catalogue import Catalogue, Lane, Model, Resolution
from editq.credits import Quote, quote
from editq.errors import EditqError, InvalidRequest, PaymentRequired, Unavailable
from editq.images import SourceImage
from editq.job import Job
from editq.lifecycle import Availability, Choice
from editq.options import EditOptions, EditPlan, lane_of, plan_edit
from editq.public import edit_job
from editq.settings import Settings
from editq.storage import credits as credit_store
from editq.storage import idempotency, images, money, outputs
from editq.storage import jobs as job_store
from editq.storage import models as model_store
from editq.storage import tenants as tenant_store
from editq.storage.backend import Backend
from editq.storage.errors import StorageError, StorageUnavailable
from editq.storage.keys import output_object

log = logging.getLogger("editq.api")


@dataclass(frozen=True)
class Source:
    """A job's source: fresh bytes to store, or an upload that is already stored."""

    meta: dict[str, Any]
    image: SourceImage | None = None

    @classmethod
    def fresh(cls, image: SourceImage) -> Source:
        return cls(images.describe(image), image)

    @property
    def dims(self) -> tuple[int, int]:
        return int(self.meta["width"]), int(self.meta["height"])


@dataclass
class Answer:
    status: int
    body: dict[str, Any]
    headers: dict[str, str] = field(default_factory=dict)
    job_id: str | None = None


@dataclass(frozen=True)
class Prepared:
    """A request that passed every check and is ready to be held and stored."""

    tenant: str
    options: EditOptions
    #: The job's priority (the tenant's default when the request named none) and its lane.
    priority: str
    lane: Lane
    choice: Choice
    plan: EditPlan
    estimate: cost.Estimate | None
    #: On a credit plan: the job's terms and the most it may be charged.
    credits: Quote | None
    sources: list[Source]
    mask: Source | None
    deadline_ms: int | None
    reuse_fingerprint: str
    request_fingerprint: str


def _digest(value: Any) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def prepare(
    db: Backend,
    catalogue: Catalogue,
    *,
    tenant: str,
    options: EditOptions,
    sources: list[Source],
    mask: Source | None,
    cancel_after_s: float | None = None,
    availability: Availability | None = None,
) -> Prepared:
    """Every check a submission must pass, before anything is written."""
    settings = db.settings
    if not sources:
        raise InvalidRequest("image_missing", "at least one image is required", "image")
    limits = tenant_store.get(db, tenant)
    priority, lane = _priority(settings, limits, options)
    choice = lifecycle.choose(
        catalogue,
        options.model,
        configured_default=settings.default_model,
        aliases=settings.model_aliases,
        availability=availability if availability is not None else model_store.availability(db),
        today=db.clock.today(),
    )
    resolution = choice.resolution
    plan = plan_edit(
        options,
        resolution.model,
        resolution.api_name,
        image_count=len(sources),
        first_image=sources[0].dims,
        unsupported_formats=("webp",) if settings.provider == "azure" else (),
        lane=lane,
    )
    _check_mask(mask, sources)
    _check_webhook(db, tenant, options)
    estimate = _priced_estimate(limits, options, resolution.model, plan, sources, mask, lane)
    _check_max_cost(options, estimate)
    credits = _credit_quote(db, tenant, plan, estimate)
    deadline_ms = None if cancel_after_s is None else int((db.clock.time() + cancel_after_s) * 1000)
    shas = [s.meta["sha256"] for s in sources]
    mask_sha = mask.meta["sha256"] if mask else None
    return Prepared(
        tenant=tenant,
        options=options,
        priority=priority,
        lane=lane,
        choice=choice,
        plan=plan,
        estimate=estimate,
        credits=credits,
        sources=sources,
        mask=mask,
        deadline_ms=deadline_ms,
        reuse_fingerprint=_digest({"plan": plan.to_dict(), "sources": shas, "mask": mask_sha}),
        request_fingerprint=_digest(
            {"options": asdict(options), "sources": shas, "mask": mask_sha, "cancel_after": cancel_after_s}
        ),
    )


#: What a request asks to edit: its options, its checked sources and its mask.
Edit = tuple[EditOptions, list[Source], Source | None]


def admit(
    db: Backend,
    catalogue: Catalogue,
    tenant: str,
    edit: Edit,
    *,
    cancel_after_s: float | None = None,
    idempotency_key: str | None = None,
    availability: Availability | None = None,
) -> Answer:
    """Check, hold, store and commit one job (blocking: the API runs it in a worker thread)."""
    options, sources, mask = edit
    prepared = prepare(
        db,
        catalogue,
        tenant=tenant,
        options=options,
        sources=sources,
        mask=mask,
        cancel_after_s=cancel_after_s,
        availability=availability,
    )
    return commit(db, prepared, idempotency_key=idempotency_key)


async def admit_in_thread(
    db: Backend,
    catalogue: Catalogue,
    tenant: str,
    edit: Edit,
    *,
    cancel_after_s: float | None,
    idempotency_key: str | None,
) -> Answer:
    """`admit` for a route: `POST /v1/edits` and its OpenAI-compatible twin."""
    return await anyio.to_thread.run_sync(
        functools.partial(
            admit, db, catalogue, tenant, edit, cancel_after_s=cancel_after_s, idempotency_key=idempotency_key
        )
    )


def _priority(
    settings: Settings, limits: tenant_store.Tenant | None, options: EditOptions
) -> tuple[str, Lane]:
    """The job's priority (asked, else the tenant's default, else interactive) and its lane."""
    priority = options.priority or (limits.default_priority if limits else None) or "interactive"
    lane = lane_of(priority)
    if lane is Lane.ECONOMY and not settings.economy_available:
        raise InvalidRequest(
            "economy_unavailable",
            "priority=economy is not available here (it needs the OpenAI provider's Batch API and "
            "EDITQ_ECONOMY on)",
            "priority",
        )
    return priority, lane


def _check_mask(mask: Source | None, sources: list[Source]) -> None:
    if mask is not None and mask.dims != sources[0].dims:
        raise InvalidRequest(
            "mask_size_mismatch",
            f"mask is {mask.dims[0]}x{mask.dims[1]} but the first image is "
            f"{sources[0].dims[0]}x{sources[0].dims[1]}",
            "mask",
        )


def _check_webhook(db: Backend, tenant: str, options: EditOptions) -> None:
    """The webhook URL passes the SSRF rules and is not an endpoint disabled after a 410."""
    if options.webhook_url is None:
        return
    settings = db.settings
    ssrf.check_url(
        options.webhook_url,
        allow_private=settings.webhook_allow_private,
        allow_http=settings.webhook_allow_http,
    )
    if tenant_store.is_disabled(db, tenant, options.webhook_url):
        raise InvalidRequest(
            "webhook_endpoint_disabled",
            "this webhook_url answered 410 Gone and is disabled; re-enable it with "
            "POST /v1/webhooks/endpoints/enable",
            "webhook_url",
        )


def _priced_estimate(
    limits: tenant_store.Tenant | None,
    options: EditOptions,
    model: Model,
    plan: EditPlan,
    sources: list[Source],
    mask: Source | None,
    lane: Lane,
) -> cost.Estimate | None:
    """The job's cost estimate at its lane's prices; None for a model without confirmed
    prices, which then cannot run under a budget or a max cost."""
    if model.tariff(lane).prices.complete:
        return cost.estimate(model, plan, [s.dims for s in sources], mask.dims if mask else None, lane)
    if options.max_cost_micros is not None or (limits and any(limits.budgets.values())):
        raise InvalidRequest(
            "model_price_unknown",
            f"{model.name} has no confirmed prices, so it cannot run under a budget or "
            "max_cost_usd; the operator sets them in the catalogue (EDITQ_CATALOGUE)",
            "model",
        )
    return None


def _credit_quote(db: Backend, tenant: str, plan: EditPlan, estimate: cost.Estimate | None) -> Quote | None:
    """On a credit plan: the job's terms and the credits it reserves (400 `not_in_plan` when a
    price list has no price for it)."""
    credit_plan = credit_store.plan_of(db, tenant)
    if credit_plan is None:
        return None
    bound = None if estimate is None else estimate.micros
    return quote(credit_plan, plan.model, plan.size, plan.quality, plan.n, bound)


def _check_max_cost(options: EditOptions, estimate: cost.Estimate | None) -> None:
    if (
        estimate is not None
        and options.max_cost_micros is not None
        and estimate.micros > options.max_cost_micros
    ):
        raise PaymentRequired(
            "max_cost_exceeded",
            f"this job may cost up to ${cost.usd(estimate.micros)}, above max_cost_usd "
            f"${cost.usd(options.max_cost_micros)}",
            "max_cost_usd",
            estimated_usd=cost.usd(estimate.micros),
        )


def sunset_headers(resolution: Resolution) -> dict[str, str]:
    model = resolution.model
    if model.retires_on is None:
        return {}
    sunset = datetime(model.retires_on.year, model.retires_on.month, model.retires_on.day, tzinfo=UTC)
    headers = {"Sunset": format_datetime(sunset, usegmt=True)}
    if model.deprecated_on is not None:
        deprecated = datetime(
            model.deprecated_on.year, model.deprecated_on.month, model.deprecated_on.day, tzinfo=UTC
        )
        headers["Deprecation"] = f"@{int(deprecated.timestamp())}"
    else:
        headers["Deprecation"] = "true"
    return headers


def _fields(p: Prepared, job_id: str, created_ms: int, reusable: bool) -> dict[str, str]:
    options = p.options
    echo = {
        "n": options.n,
        "size": options.size,
        "aspect_ratio": options.aspect_ratio,
        "output_size": options.output_size,
        "strength": options.strength,
        "quality": options.quality,
        "output_format": options.output_format,
        "output_compression": options.output_compression,
        "background": options.background,
        "input_fidelity": options.input_fidelity,
        "reuse": options.reuse,
    }
    return {
        "id": job_id,
        "tenant": p.tenant,
        "model": p.choice.resolution.model.name,
        "model_requested": options.model or "",
        "model_explicit": "1" if p.choice.explicit else "0",
        "model_note": p.choice.note or "",
        "prompt": options.prompt,
        "priority": p.priority,
        "lane": p.lane.value,
        "plan": json.dumps(p.plan.to_dict()),
        "options": json.dumps(echo),
        "sources": json.dumps(
            [
                {k: s.meta[k] for k in ("id", "sha256", "content_type", "width", "height", "bytes")}
                for s in p.sources
            ]
        ),
        "mask": json.dumps({k: p.mask.meta[k] for k in ("id", "sha256", "width", "height", "bytes")})
        if p.mask
        else "",
        "images": str(p.plan.n),
        "webhook_url": options.webhook_url or "",
        "webhook_events": json.dumps(list(options.webhook_events)),
        "metadata": json.dumps(options.metadata),
        "estimate": json.dumps(p.estimate.to_dict() if p.estimate else {"estimated_usd": None}),
        "created_at": str(created_ms),
        "deadline": "" if p.deadline_ms is None else str(p.deadline_ms),
        "fingerprint": p.reuse_fingerprint,
        "reusable": "1" if reusable else "0",
        "user": options.user or "",
        "econ_bytes": str(_line_bound(p, job_id)) if p.lane is Lane.ECONOMY else "",
    }


def _line_bound(p: Prepared, job_id: str) -> int:
    """The most the job's line in a batch input file can weigh (batches are sized by it)."""
    return batchfile.line_bound(job_id, p.plan, len(p.sources), p.mask is not None, p.options.user)


def _reusable(p: Prepared) -> bool:
    return p.options.reuse and p.plan.n == 1


def _earlier(db: Backend, p: Prepared) -> Job | None:
    if not _reusable(p):
        return None
    job_id = job_store.reusable_job_id(db, p.tenant, p.reuse_fingerprint)
    if not job_id:
        return None
    earlier = job_store.get(db, p.tenant, job_id)
    if earlier is None or earlier.status.value != "succeeded" or not earlier.outputs:
        return None
    return earlier


@dataclass
class _Attempt:
    """What a commit has done so far, for undoing it when a later step fails."""

    hold: money.Hold | None = None
    sent: Answer | None = None


def commit(db: Backend, p: Prepared, *, idempotency_key: str | None) -> Answer:
    """Hold, store and commit a prepared job. Returns the answer the client gets."""
    if idempotency_key is not None:
        replay = idempotency.begin(db, p.tenant, idempotency_key, p.request_fingerprint)
        if replay is not None:
            return Answer(replay.status, replay.body, {"Idempotent-Replayed": "true"}, replay.body.get("id"))
    job_id = ids.new_id("edit")
    attempt = _Attempt()
    try:
        return _hold_and_store(db, p, job_id, idempotency_key, attempt)
    except StorageUnavailable as exc:
        if attempt.sent is not None and _stored(db, p.tenant, job_id):
            return attempt.sent  # the script ran but its reply was lost: the job is committed
        _undo(db, p, attempt.hold, idempotency_key)
        raise Unavailable("storage_unavailable", f"cannot store the job right now ({exc})") from exc
    except StorageError as exc:
        _undo(db, p, attempt.hold, idempotency_key)
        raise Unavailable("storage_error", f"cannot store the job ({exc})") from exc
    except EditqError:
        _undo(db, p, attempt.hold, idempotency_key)
        raise


def _hold_and_store(
    db: Backend, p: Prepared, job_id: str, idempotency_key: str | None, attempt: _Attempt
) -> Answer:
    """Hold the budget, store the sources and commit the job (or its reuse of an earlier one's
    outputs) with one script; `attempt` records the hold and the answer as they are made."""
    settings = db.settings
    earlier = _earlier(db, p)
    copied = _copy_outputs(db, p.tenant, earlier, job_id) if earlier is not None else None
    if copied is None:
        earlier = None
    amount = 0 if earlier is not None or p.estimate is None else p.estimate.micros
    credits = 0 if earlier is not None or p.credits is None else p.credits.credits
    attempt.hold = money.hold(
        db, p.tenant, amount, plan=p.credits.terms.plan if p.credits else "", credits=credits
    )
    fields = _fields(p, job_id, db.clock.ms(), _reusable(p))
    fields["retention_s"] = str(settings.job_retention_seconds)
    if p.credits is not None:
        fields["credit_terms"] = p.credits.terms.to_json()
    _store_sources(db, p)
    mode, status = "queue", 202
    if earlier is not None:
        fields.update(
            outputs=json.dumps(copied),
            reused_from=earlier.id,
            usage="",
            estimate=json.dumps({"estimated_usd": "0.000000", "reused": True}),
        )
        mode, status = "reused", 200
    body = _public_body(db, p, fields, attempt.hold, reused=mode == "reused")
    attempt.sent = Answer(status, body, _headers(p, job_id), job_id)
    committed = job_store.commit(
        db,
        p.tenant,
        job_id,
        attempt.hold.id,
        fields,
        idempotency_hash="" if idempotency_key is None else idempotency.key_hash(idempotency_key),
        idempotency_ttl_s=settings.idempotency_ttl_seconds,
        status=status,
        body=body,
        mode=mode,
        reused_from=earlier.id if earlier else "",
    )
    if not committed:
        raise Unavailable("hold_lost", "the budget hold lapsed before the job was stored; retry")
    attempt.hold = None
    logs.event(
        log,
        "job.submitted",
        job_id=job_id,
        tenant=p.tenant,
        model=fields.get("model"),
        priority=fields.get("priority"),
        status="succeeded" if mode == "reused" else "queued",
        reused_from=earlier.id if earlier else None,
        reserved_usd=cost.usd(amount),
    )
    return Answer(status, body, _headers(p, job_id), job_id)


def _store_sources(db: Backend, p: Prepared) -> None:
    """The fresh source images and mask, put into S3 (uploads already stored are skipped)."""
    for source in [*p.sources, *([p.mask] if p.mask else [])]:
        if source.image is not None:
            images.put(db, p.tenant, source.image, db.settings.source_retention_seconds)


def _public_body(
    db: Backend, p: Prepared, fields: dict[str, str], hold: money.Hold, *, reused: bool
) -> dict[str, Any]:
    """The job as the client sees it right after the submit: succeeded when reused, else queued
    with its queue position."""
    job = Job.from_hash(
        {
            **fields,
            "status": "succeeded" if reused else "queued",
            "reserved": str(hold.amount),
            "settled": "1" if reused else "",
            "actual": "0",
            "credits_reserved": str(hold.credits),
            "credits_charged": "0",
        }
    )
    waiting = not reused and p.lane is Lane.INTERACTIVE
    position = job_store.queue_length(db, p.tenant, p.priority) if waiting else None
    return edit_job(job, outputs.url_builder(db), position).model_dump(mode="json")


def _headers(p: Prepared, job_id: str) -> dict[str, str]:
    return {"Location": f"/v1/edits/{job_id}", **sunset_headers(p.choice.resolution)}


def _stored(db: Backend, tenant: str, job_id: str) -> bool:
    """Whether the submit script wrote the job (asked once more after its reply was lost)."""
    try:
        return job_store.exists(db, tenant, job_id)
    except StorageUnavailable:
        return False


def _copy_outputs(db: Backend, tenant: str, earlier: Job, job_id: str) -> list[dict[str, Any]] | None:
    """The earlier job's outputs copied under the new job, or None if they are gone."""
    copied = []
    try:
        for index, out in enumerate(earlier.outputs):
            key = output_object(tenant, job_id, index, out["key"].rsplit(".", 1)[-1])
            db.objects.copy(out["key"], key)
            copied.append({**out, "key": key})
    except StorageError:
        return None  # expired or unreachable: run the job instead
    return copied


def _undo(db: Backend, p: Prepared, hold: money.Hold | None, key: str | None) -> None:
    try:
        if hold is not None:
            money.release_hold(db, hold.id)
        if key is not None:
            idempotency.abort(db, p.tenant, key, p.request_fingerprint)
    except StorageError:
        pass  # beat releases lapsed holds; the in-flight key lapses on its own
