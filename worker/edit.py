"""Running one admitted job: claim it, call the provider, store outputs, settle.

Every step re-reads state from Redis and every transition is compare-and-set on the job's
dispatch token, so a redelivered or stale message finds the job claimed or finished and does
nothing.
"""

from __future__ import annotations

import json
import logging
import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from editq import cost, logs
from editq.credits import Terms
from editq.images import EXTENSIONS, Output, inspect_output, shape_output
from editq.job import Job, Status
from editq.options import EditPlan
from editq.storage import jobs, limiter
from editq.storage import models as model_store
from editq.storage.errors import StorageError, StorageUnavailable
from editq.storage.keys import output_object, source_object
from editq.storage.limiter import Admission, Signal
from editq.storage.redis import ScriptCall
from editq.telemetry import (
    ACCOUNT_CALLS,
    PROVIDER_CALL_SECONDS,
    PROVIDER_CALLS,
    PROVIDER_IMAGES,
    ProviderOutcome,
)
from editq.worker import models as worker_models
from editq.worker.context import Context
from editq.worker.provider.failures import (
    AuthenticationFailed,
    BadResponse,
    ModelUnavailable,
    ProviderError,
    ProviderServerError,
    ProviderUnreachable,
    QuotaExceeded,
    RateLimited,
    Retryable,
)
from editq.worker.provider.openai import EditCall, EditResult, Upload

log = logging.getLogger("editq.worker")

#: How long a worker keeps trying to settle a paid call while Redis is unreachable, before it
#: leaves the job to the lease reaper (which re-runs it and notes the lost call).
SETTLE_RETRY_SECONDS = 20.0


class Outcome(StrEnum):
    """What one run of a job came to (the edit task's result, for logs and tests)."""

    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"  #: canceled while its call was in flight; the call is charged
    EXPIRED = "expired"  #: its deadline passed before it started
    RETRY = "retry"  #: back in line after a retryable error
    RATE_LIMITED = "rate_limited"  #: back in line after a 429
    SKIPPED = "skipped"  #: not this message's to run (finished, missing or owned by another run)
    STALE = "stale"  #: another run took the job over while this one worked


def _ended(result: Status | jobs.Refused) -> Outcome:
    return Outcome(result.value) if isinstance(result, Status) else Outcome.STALE


@dataclass(frozen=True)
class Ahead:
    """What admission read of the job: enough to load its sources before claiming it, so the
    claim also notes the call sent (one Redis round trip less per job)."""

    model: str
    sources: list[dict[str, Any]]
    mask: dict[str, Any] | None

    @classmethod
    def parse(cls, model: str, sources: str, mask: str) -> Ahead | None:
        """From admission's reply; None when it said too little (the job is read at its claim)."""
        try:
            parsed = json.loads(sources) if sources else None
            parsed_mask = json.loads(mask) if mask else None
        except ValueError:
            return None
        if not model or not isinstance(parsed, list) or not parsed:
            return None
        return cls(model, parsed, parsed_mask if isinstance(parsed_mask, dict) else None)


@dataclass
class Then:
    """An edit thread's request to a run: admit the thread's next job in the round trip that
    settles this one (a succeeded job's; other endings leave admission to the dispatcher), if
    `wanted()` still says so then (a stopping worker admits nothing more)."""

    wanted: Callable[[], bool] = lambda: True
    admission: Admission | None = None


def run(
    ctx: Context, tenant: str, job_id: str, token: str, ahead: Ahead | None = None, then: Then | None = None
) -> Outcome:
    """Run the job if this message still owns it. Returns what happened, for logs and tests."""
    with logs.bound(job_id=job_id, tenant=tenant):
        return _claimed(ctx, tenant, job_id, token, ahead, then)


def _loaded_ahead(ctx: Context, tenant: str, ahead: Ahead | None) -> Loaded | StorageError | None:
    """The job's sources, loaded before the claim when admission named them and its model is
    served as it is (no reroute ahead), or why S3 would not give them (the run then retries or
    fails the job after its claim, without reading S3 again). None: read the job at its claim."""
    if ahead is None or not ctx.availability.get(ctx.db).serves(ahead.model):
        return None
    try:
        return _load(ctx, tenant, ahead.sources, ahead.mask)
    except StorageError as exc:
        return exc
    except (KeyError, TypeError) as exc:
        log.debug("sources of a %s job not loaded ahead: %s", tenant, exc)
        return None


def _claimed(
    ctx: Context, tenant: str, job_id: str, token: str, ahead: Ahead | None, then: Then | None
) -> Outcome:
    db = ctx.db
    loaded = _loaded_ahead(ctx, tenant, ahead)
    job = jobs.start(db, tenant, job_id, token, ctx.worker_id, calling=isinstance(loaded, tuple))
    if isinstance(job, jobs.Refused):
        if job.why is jobs.Refusal.EXPIRED:
            if isinstance(jobs.cancel(db, tenant, job_id, mode=Status.EXPIRED), Status):
                logs.event(log, "job.expired", reason="deadline passed before it started")
            return Outcome.EXPIRED
        log.debug("run of %s skipped: %s (%s)", job_id, job.why.value, job.status)
        return Outcome.SKIPPED
    logs.bind(model=job.model, attempt=job.attempts)
    logs.event(log, "job.started", priority=job.priority, worker=ctx.worker_id)
    ctx.leases.hold(job)
    try:
        prefetched = loaded if ahead is not None and job.model == ahead.model else None
        if isinstance(prefetched, tuple):
            return _call_loaded(ctx, job, prefetched, then)
        return _run(ctx, job, prefetched)
    finally:
        ctx.leases.drop(job)


def _backoff(ctx: Context, attempt: int) -> float:
    s = ctx.settings
    delay = min(s.retry_max_seconds, s.retry_base_seconds * 2 ** max(0, attempt - 1))
    return float(delay) * random.uniform(0.8, 1.2)  # noqa: S311 - jitter, not security


#: A job's sources and mask, read from S3 for its call.
Loaded = tuple[list[Upload], Upload | None]


def _load(ctx: Context, tenant: str, sources: list[dict[str, Any]], mask: dict[str, Any] | None) -> Loaded:
    db = ctx.db
    uploads = []
    for index, source in enumerate(sources):
        data = db.objects.get(source_object(tenant, source["sha256"]))
        ext = EXTENSIONS.get(source["content_type"], "png")
        uploads.append(Upload(f"image{index}.{ext}", data, source["content_type"]))
    loaded_mask = None
    if mask:
        loaded_mask = Upload("mask.png", db.objects.get(source_object(tenant, mask["sha256"])), "image/png")
    return uploads, loaded_mask


def _route(ctx: Context, job: Job) -> Job | dict[str, str]:
    """The job, moved to its default model's successor if that model became unavailable."""
    availability = ctx.availability.get(ctx.db)
    if availability.serves(job.model):
        return job
    return worker_models.reroute(ctx, job, availability)


def _run(ctx: Context, job: Job, unloaded: StorageError | None = None) -> Outcome:
    """The claimed job's call, after routing it and loading its sources (`unloaded`: what
    loading them before the claim met, so S3 is not asked again)."""
    routed = _route(ctx, job)
    if isinstance(routed, dict):
        return fail(ctx, job, routed)
    job = routed
    plan = EditPlan.from_dict(job.plan)
    attempts = job.attempts - job.rate_limited  # calls that were not turned away with a 429
    try:
        if unloaded is not None:
            raise unloaded
        uploads, mask = _load(ctx, job.tenant, job.sources, job.mask)
    except StorageUnavailable as exc:
        error = {"code": "storage_unavailable", "message": str(exc)}
        if attempts >= ctx.settings.provider_max_attempts:
            return fail(ctx, job, error | {"attempts": attempts})
        return _retry(ctx, job, error, _backoff(ctx, attempts))
    except StorageError as exc:
        missing = {"code": "source_missing", "message": f"a source image is no longer stored: {exc}"}
        return fail(ctx, job, missing)
    if not jobs.mark_call(ctx.db, job, jobs.CallPhase.SENT):
        # canceled while its sources loaded, or no longer this run's: no call, nothing charged
        canceled = {"code": "canceled", "message": "canceled"}
        return _ended(jobs.finish(ctx.db, job, outcome=Status.FAILED, error=canceled))
    return _call(ctx, job, plan, EditCall(plan, uploads, mask, job.raw.get("user") or None), attempts)


def _call_loaded(ctx: Context, job: Job, loaded: Loaded, then: Then | None) -> Outcome:
    """The call of a job whose sources were loaded before its claim, which noted the call sent."""
    plan = EditPlan.from_dict(job.plan)
    uploads, mask = loaded
    call = EditCall(plan, uploads, mask, job.raw.get("user") or None)
    return _call(ctx, job, plan, call, job.attempts - job.rate_limited, then)


def account_of(ctx: Context, job: Job) -> str:
    """The provider account admission routed the job to."""
    return str(job.raw.get("account") or ctx.settings.accounts[0].name)


def _call(
    ctx: Context, job: Job, plan: EditPlan, call: EditCall, attempts: int, then: Then | None = None
) -> Outcome:
    """The provider call on the job's account, and what each answer means for the job and the
    account's limiter."""
    account = account_of(ctx, job)
    logs.bind(account=account)
    started = time.monotonic()
    try:
        result = ctx.adapter(account).edit(call)
    except ProviderError as exc:
        _measure(ctx, job, started, exc.outcome, status=exc.status, code=exc.code, request=exc.request_id)
        return _failed_call(ctx, job, exc, attempts)
    _measure(ctx, job, started, ProviderOutcome.OK, status=200, request=result.request_id)
    ctx.recorder.count(PROVIDER_IMAGES, job.model, by=len(result.images))
    observed = limiter.observation(ctx.db, account, Signal.OK, images=len(result.images), headers=result.rate)
    running = _answered(ctx, job, result, observed)
    return complete(ctx, job, plan, result, running=running, then=then)


def _measure(
    ctx: Context,
    job: Job,
    started: float,
    outcome: ProviderOutcome,
    *,
    status: int | None,
    request: str | None,
    code: str | None = None,
) -> None:
    """Count the call and its duration (flushed with the next heartbeat) and log it."""
    seconds = time.monotonic() - started
    ctx.recorder.count(PROVIDER_CALLS, job.model, outcome.value)
    ctx.recorder.count(ACCOUNT_CALLS, account_of(ctx, job), outcome.value)
    ctx.recorder.observe(PROVIDER_CALL_SECONDS, seconds, job.model)
    level = logging.INFO if outcome in (ProviderOutcome.OK, ProviderOutcome.RATE_LIMITED) else logging.WARNING
    logs.event(
        log,
        "provider.call",
        level,
        outcome=outcome.value,
        status=status,
        code=code,
        duration_ms=round(seconds * 1000),
        provider_request_id=request,
    )


def _failed_call(ctx: Context, job: Job, exc: ProviderError, attempts: int) -> Outcome:
    """A 429 waits for the limiter, other retryable errors back off (bounded), the rest fail."""
    if isinstance(exc, RateLimited):
        return _rate_limited(ctx, job, exc)
    if isinstance(exc, QuotaExceeded | AuthenticationFailed):
        return _account_refused(ctx, job, exc)
    if isinstance(exc, Retryable):
        if isinstance(exc, ProviderUnreachable) or (
            isinstance(exc, ProviderServerError) and (exc.status or 500) >= 500
        ):
            limiter.observe(ctx.db, account_of(ctx, job), Signal.SERVER_ERROR, headers=exc.rate)
        else:
            _observe_headers(ctx, job, exc)
        if attempts >= ctx.settings.provider_max_attempts:
            return fail(ctx, job, exc.to_error() | {"attempts": attempts})
        return _retry(ctx, job, exc.to_error(), exc.retry_after or _backoff(ctx, attempts))
    return fail(ctx, job, _permanent_error(ctx, job, exc))


def _account_refused(ctx: Context, job: Job, exc: QuotaExceeded | AuthenticationFailed) -> Outcome:
    """Out of quota or its key refused: the account pauses, and the job goes back in line for
    another account that serves its model, or fails when none does. Like a 429, the turned-away
    call counts against EDITQ_PROVIDER_MAX_RATE_LIMITED, not the attempts."""
    account = account_of(ctx, job)
    limiter.observe(ctx.db, account, Signal.QUOTA if isinstance(exc, QuotaExceeded) else Signal.AUTH)
    error = exc.to_error() | {"account": account, "account_paused": True}
    if job.rate_limited + 1 >= ctx.settings.provider_max_rate_limited or not limiter.serves_elsewhere(
        ctx.db, job.model, account
    ):
        return fail(ctx, job, error)
    jobs.requeue(ctx.db, job, due_ms=0, counter="rate_limited", last_error=error, reason=exc.code)
    logs.event(log, "job.retried", reason=exc.code, account=account, delay_s=0)
    return Outcome.RETRY


def _permanent_error(ctx: Context, job: Job, exc: ProviderError) -> dict[str, Any]:
    """The job's error for a call that must not be retried, marking the model where the answer
    says so."""
    if isinstance(exc, ModelUnavailable):
        model_store.mark_unavailable(ctx.db, job.model)
        ctx.availability.forget()
        return exc.to_error() | {"model": job.model}
    _observe_headers(ctx, job, exc)
    return exc.to_error()


def _answered(ctx: Context, job: Job, result: EditResult, observed: ScriptCall) -> bool | None:
    """Note the billed call's usage and price at once, before anything else can fail, and tell
    the account's limiter (`observed`) in the same round trip. Returns whether this run still
    owns the running job (None: Redis could not say)."""
    try:
        return jobs.mark_call(
            ctx.db,
            job,
            jobs.CallPhase.ANSWERED,
            result.usage,
            _price(ctx, job, result.usage),
            along=observed,
        )
    except StorageUnavailable as exc:
        log.warning("could not note the answered call of %s: %s", job.id, exc)
        return None


def _observe_headers(ctx: Context, job: Job, exc: ProviderError) -> None:
    if exc.rate is not None:
        limiter.observe(ctx.db, account_of(ctx, job), Signal.HEADERS, headers=exc.rate)


def _rate_limited(ctx: Context, job: Job, exc: RateLimited) -> Outcome:
    wait = exc.retry_after if exc.retry_after is not None else 1.0
    limiter.observe(
        ctx.db,
        account_of(ctx, job),
        Signal.RATE_LIMITED,
        images=job.images,
        retry_after_ms=int(wait * 1000),
        headers=exc.rate,
    )
    if job.rate_limited + 1 >= ctx.settings.provider_max_rate_limited:
        return fail(ctx, job, exc.to_error() | {"rate_limited_attempts": job.rate_limited + 1})
    delay = wait + random.uniform(0, 0.5)  # noqa: S311 - jitter
    jobs.requeue(
        ctx.db,
        job,
        due_ms=int((ctx.db.clock.time() + delay) * 1000),
        counter="rate_limited",
        last_error=exc.to_error(),
        reason=exc.code,
    )
    logs.event(log, "job.retried", reason=exc.code, delay_s=round(delay, 3))
    return Outcome.RATE_LIMITED


def _retry(ctx: Context, job: Job, error: dict[str, Any], delay: float) -> Outcome:
    reason = str(error.get("code", "error"))
    jobs.requeue(
        ctx.db,
        job,
        due_ms=int((ctx.db.clock.time() + delay) * 1000),
        counter="retries",
        last_error=error,
        reason=reason,
    )
    logs.event(log, "job.retried", reason=reason, delay_s=round(delay, 3))
    return Outcome.RETRY


def fail(ctx: Context, job: Job, error: dict[str, Any], usage: dict[str, Any] | None = None) -> Outcome:
    """End the run failed, charging what `usage` (if any) costs in the job's lane."""
    actual = _price(ctx, job, usage)
    ended = _ended(jobs.finish(ctx.db, job, outcome=Status.FAILED, error=error, usage=usage, actual=actual))
    _log_end(ended, actual, code=str(error.get("code", "")))
    return ended


def _log_end(ended: Outcome, actual: int, **fields: Any) -> None:
    level = logging.INFO if ended is not Outcome.STALE else logging.DEBUG
    logs.event(log, f"job.{ended.value}", level, actual_usd=cost.usd(actual), **fields)


def _price(ctx: Context, job: Job, usage: dict[str, Any] | None) -> int:
    """What `usage` costs at the prices of the job's lane (economy: batch prices)."""
    if not usage:
        return 0
    model = ctx.catalogue.models.get(job.model)
    if model is None:
        return 0
    return cost.charge(model, job.lane, usage)


def complete(
    ctx: Context,
    job: Job,
    plan: EditPlan,
    result: EditResult,
    *,
    running: bool | None = None,
    then: Then | None = None,
) -> Outcome:
    """A billed answer: shape the outputs, store them, settle. A job canceled meanwhile is
    settled without storing anything. `running`: whether the run still owns the running job,
    when the caller just learned it (None: ask Redis)."""
    try:
        shaped = [
            shape_output(
                inspect_output(data),
                crop_ratio=plan.crop_ratio,
                resize_to=plan.resize_to,
                output_format=plan.output_format,
                compression=plan.output_compression,
            )
            for data in result.images
        ]
    except ValueError as exc:
        return fail(ctx, job, BadResponse(str(exc)).to_error(), result.usage)
    stored: list[dict[str, Any]] = []
    if running is None:
        running = jobs.status(ctx.db, job.tenant, job.id) is Status.RUNNING
    if running:
        try:
            stored = _store_outputs(ctx, job, shaped, result.echo)
        except StorageError as exc:
            # The call was made and billed: charge it and fail, rather than pay for it twice.
            log.warning("storing outputs of %s failed: %s", job.id, exc)
            error = {
                "code": "output_storage_failed",
                "message": f"the edit ran but its outputs could not be stored: {exc}",
            }
            return fail(ctx, job, error, result.usage)
    return _settle(ctx, job, stored, result, then)


def _store_outputs(
    ctx: Context, job: Job, shaped: list[Output], echo: dict[str, Any]
) -> list[dict[str, Any]]:
    """Each output in S3; its record keeps what the provider said it made (`echo`: the resolved
    size, quality, background and format), which the OpenAI-compatible answer repeats."""
    stored = []
    for index, out in enumerate(shaped):
        key = output_object(job.tenant, job.id, index, EXTENSIONS[out.content_type])
        ctx.db.objects.put(key, out.data, out.content_type)
        stored.append(
            {
                "key": key,
                "content_type": out.content_type,
                "width": out.width,
                "height": out.height,
                "bytes": len(out.data),
                "echo": echo,
            }
        )
    return stored


def _settle(
    ctx: Context, job: Job, stored: list[dict[str, Any]], result: EditResult, then: Then | None = None
) -> Outcome:
    """Mark the job succeeded with its outputs and settle its cost, retrying while Redis is
    briefly unreachable (the call was paid for)."""
    usage = dict(result.usage or {})
    if result.request_id:
        usage.setdefault("provider_request_id", result.request_id)
    actual = _price(ctx, job, result.usage)
    terms = Terms.from_json(job.raw.get("credit_terms", ""))
    credits = (terms.credits(actual, len(stored)) or 0) if terms else 0
    reuse_key = job.fingerprint if job.reusable else ""
    deadline = time.monotonic() + SETTLE_RETRY_SECONDS
    settled: jobs.Settlement = {
        "outputs": stored,
        "usage": usage or None,
        "actual": actual,
        "reuse_key": reuse_key,
        "credits": credits,
    }
    while True:
        # a retry settles alone: the admission may have gone through
        asking, then = (then if then is not None and then.wanted() else None), None
        try:
            if asking is None:
                finished = jobs.finish(ctx.db, job, outcome=Status.SUCCEEDED, **settled)
            else:
                finished, asking.admission = jobs.finish_and_admit(
                    ctx.db, job, outcome=Status.SUCCEEDED, **settled
                )
        except StorageUnavailable:
            if time.monotonic() > deadline:
                log.exception("settling %s failed; the lease reaper will run it again", job.id)
                raise
            time.sleep(0.5)
            continue
        ended = _ended(finished)
        _log_end(ended, actual, outputs=len(stored))
        return ended
