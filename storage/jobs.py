"""Job records: read, list, place in line, and every state transition (each one Lua script)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict, Unpack

from editq import logs
from editq.credits import Quote
from editq.job import Job, Status
from editq.storage import limiter
from editq.storage.backend import Backend
from editq.storage.errors import StorageUnavailable
from editq.storage.limiter import Admission
from editq.storage.records import Slot
from editq.storage.redis import ScriptCall

log = logging.getLogger("editq.storage")


class Refusal(StrEnum):
    """Why a transition did not apply."""

    MISSING = "missing"  #: there is no such job
    STALE = "stale"  #: another run owns the job, or its status does not allow the step
    FINISHED = "finished"  #: the job already ended (cancel)
    NOT_DUE = "not_due"  #: not queued past its deadline (expiry)
    EXPIRED = "expired"  #: queued past its deadline: the caller expires it (start)


@dataclass(frozen=True)
class Refused:
    """A transition that did not apply, and the job's status then (None: no job, or none known)."""

    why: Refusal
    status: Status | None = None


@dataclass(frozen=True)
class OverBudget:
    """A reservation that would overshoot the tenant's budget for `period` (day, month, total),
    or (`period` "credits") its credit balance."""

    period: str


class Reaped(StrEnum):
    """What the reaper did with a lapsed slot."""

    REQUEUED = "requeued"
    FAILED = "failed"
    RELEASED = "released"
    FREED = "freed"
    ALIVE = "alive"


_STATUSES = {s.value: s for s in Status}


def _status(text: object) -> Status | None:
    """The status a script or record names; None for none ('missing', 'settled', nil)."""
    return _STATUSES.get(text) if isinstance(text, str) else None


def _refused(reply: list[Any]) -> Refused:
    """A script's `{'stale', status}` reply."""
    status = _status(reply[1]) if len(reply) > 1 else None
    return Refused(Refusal.STALE if status is not None else Refusal.MISSING, status)


def get(db: Backend, tenant: str, job_id: str) -> Job | None:
    """The job, only if it belongs to `tenant`."""
    try:
        h = db.redis.hgetall(db.keys.job(tenant, job_id))
    except StorageUnavailable as exc:
        raise StorageUnavailable(f"redis: {exc}") from exc
    if not h or h.get("tenant") != tenant:
        return None
    return Job.from_hash(h)


def queue_position(db: Backend, job: Job) -> int | None:
    """Jobs of the same tenant ahead of this one (0: next), or None if it is not waiting."""
    if job.status is not Status.QUEUED:
        return None
    if job.token:
        return 0  # admitted: it starts as soon as a worker takes it
    interactive = db.keys.queue(job.tenant, "interactive")
    if job.priority == "batch":
        ahead = db.redis.llen(interactive)
        position = db.redis.lpos(db.keys.queue(job.tenant, "batch"), job.id)
        return None if position is None else int(ahead) + int(position)
    position = db.redis.lpos(interactive, job.id)
    return None if position is None else int(position)


@dataclass(frozen=True)
class Page:
    jobs: list[Job]
    next_cursor: str | None


def list_jobs(
    db: Backend,
    tenant: str,
    *,
    statuses: set[str] | None = None,
    created_after: int | None = None,
    created_before: int | None = None,
    cursor: str | None = None,
    limit: int = 50,
) -> Page:
    """Newest first. The cursor is the creation time and id of the last job returned."""
    index = db.keys.jobs(tenant)
    upper = "+inf" if created_before is None else f"({created_before}"
    lower = "-inf" if created_after is None else f"({created_after}"
    after: tuple[int, str] | None = None
    if cursor:
        score_text, _, after_id = cursor.partition(":")
        if not score_text.isdigit() or not after_id:
            raise ValueError("bad cursor")
        after = (int(score_text), after_id)
        upper = score_text
    found: list[Job] = []
    offset = 0
    batch = max(limit * 2, 50)
    while len(found) < limit:
        ids = db.redis.zrevrangebyscore(index, upper, lower, start=offset, num=batch, withscores=True)
        if not ids:
            break
        offset += len(ids)
        pipe = db.redis.pipeline(transaction=False)
        for job_id, _ in ids:
            pipe.hgetall(db.keys.job(tenant, job_id))
        for (job_id, score), h in zip(ids, pipe.execute(), strict=True):
            if after is not None and (int(score), job_id) >= after:
                continue
            if not h:
                continue  # the record expired; housekeeping trims the index
            job = Job.from_hash(h)
            if statuses and job.status.value not in statuses:
                continue
            found.append(job)
            if len(found) == limit:
                break
    next_cursor = None
    if len(found) == limit:
        last = found[-1]
        next_cursor = f"{last.created_at}:{last.id}"
    return Page(found, next_cursor)


def start(
    db: Backend, tenant: str, job_id: str, token: str, worker: str = "", *, calling: bool = False
) -> Job | Refused:
    """Claim an admitted job for this run: the job as claimed, or why not. `calling`: the run's
    provider call goes out next, so the claim also notes it sent (`mark_call`'s SENT)."""
    lease_ms = int(db.settings.lease_seconds * 1000)
    result = db.scripts.run("start", tenant, job_id, token, lease_ms, worker, calling)
    if result[0] == "ok":
        flat = result[1:]
        return Job.from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
    if result[0] == "expired":
        return Refused(Refusal.EXPIRED, Status.QUEUED)
    return _refused(result)


def status(db: Backend, tenant: str, job_id: str) -> Status | None:
    return _status(db.redis.hget(db.keys.job(tenant, job_id), "status"))


class CallPhase(StrEnum):
    """Where a run's provider call is, as noted on the job for the reaper."""

    SENT = "sent"  #: about to go out
    ANSWERED = "answered"  #: came back billed, with its usage and price


def mark_call(
    db: Backend,
    job: Job,
    phase: CallPhase,
    usage: dict[str, Any] | None = None,
    actual: int = 0,
    *,
    along: ScriptCall | None = None,
) -> bool:
    """Note on the job where its provider call is, so the reaper can account for the call if
    this run is lost. False when the run no longer owns the job (or it is no longer running).
    `along`: another script to run in the same round trip, after this one (the limiter's
    observation of the call)."""
    call: ScriptCall = (
        "call",
        (job.tenant, job.id, job.token, phase.value, json.dumps(usage) if usage else "", actual),
    )
    result = db.scripts.run(call[0], *call[1]) if along is None else db.scripts.run_many([call, along])[0]
    return bool(result[0] == "ok")


def renew(db: Backend, tenant: str, job_id: str, token: str) -> bool:
    lease_ms = int(db.settings.lease_seconds * 1000)
    return bool(db.scripts.run("renew", tenant, job_id, token, lease_ms))


class Settlement(TypedDict, total=False):
    """How a run ended, beyond its outcome."""

    outputs: list[dict[str, Any]] | None
    error: dict[str, Any] | None
    usage: dict[str, Any] | None
    actual: int  #: what the call cost (micro-dollars)
    reuse_key: str  #: "" for none
    credits: int  #: what a succeeded job on a credit plan is charged, at most what it holds


def _finish_call(db: Backend, job: Job, *, outcome: Status, **settled: Unpack[Settlement]) -> ScriptCall:
    """The script that settles a run, to run (`finish`) or to send with another (`run_many`)."""
    settings = db.settings
    error, usage = settled.get("error"), settled.get("usage")
    return (
        "finish",
        (
            job.tenant,
            job.id,
            job.token,
            outcome.value,
            json.dumps(settled.get("outputs") or []),
            json.dumps(error) if error else "",
            json.dumps(usage) if usage else "",
            settled.get("actual", 0),
            settled.get("reuse_key", ""),
            settings.reuse_window_seconds,
            settings.output_retention_seconds,
            settled.get("credits", 0),
        ),
    )


def _finished(result: list[Any]) -> Status | Refused:
    """What the settling script answered: the status the job ended in, or why it was not the
    run's to settle."""
    return Status(result[1]) if result[0] == "ok" else _refused(result)


def finish(db: Backend, job: Job, *, outcome: Status, **settled: Unpack[Settlement]) -> Status | Refused:
    """Settle a run (`outcome`: succeeded or failed). Returns the status the job ended in
    (canceled if it was canceled during the call), or why it was not this run's to settle."""
    name, args = _finish_call(db, job, outcome=outcome, **settled)
    return _finished(db.scripts.run(name, *args))


def finish_and_admit(
    db: Backend, job: Job, *, outcome: Status, **settled: Unpack[Settlement]
) -> tuple[Status | Refused, Admission]:
    """`finish`, and the next admission in the same round trip (each script atomic on its own):
    an edit thread whose job settled admits its own next job. Sent once: when Redis fails
    meanwhile, the admission may have gone through (its slot lease lapses and the job is
    admitted again)."""
    replies = db.scripts.run_many(
        [_finish_call(db, job, outcome=outcome, **settled), limiter.admission_call(db)]
    )
    return _finished(replies[0]), limiter.admission(replies[1])


def requeue(
    db: Backend,
    job: Job,
    *,
    due_ms: int = 0,
    counter: str = "",
    last_error: dict[str, Any] | None = None,
    reason: str = "",
) -> bool:
    """Put the job back in line (at `due_ms`, or now); `reason` counts it in
    `editq_retries_total` (an error code: bounded)."""
    result = db.scripts.run(
        "requeue",
        job.tenant,
        job.id,
        job.token,
        due_ms,
        counter,
        json.dumps(last_error) if last_error else "",
        reason,
    )
    return bool(result[0] == "ok")


def cancel(db: Backend, tenant: str, job_id: str, *, mode: Status = Status.CANCELED) -> Status | Refused:
    """End a job that has not finished (`mode`: canceled, or expired at its deadline).
    Returns the status it ended in, or why not: missing, finished (with its status), not due."""
    result = db.scripts.run("cancel", tenant, job_id, mode.value)
    if result[0] == "ok":
        return Status(result[1])
    return Refused(Refusal(result[0]), _status(result[1]) if len(result) > 1 else None)


def reap(db: Backend, slot: Slot) -> Reaped:
    """Deal with an in-flight slot whose lease lapsed (see reap.lua)."""
    return Reaped(db.scripts.run("reap", slot.tenant, slot.job_id, db.settings.max_worker_losses)[0])


def reprice(
    db: Backend,
    job: Job,
    *,
    model: str,
    plan: dict[str, Any],
    estimate: dict[str, Any],
    amount: int,
    note: str,
    credits: Quote | None = None,
) -> Job | Refused | OverBudget:
    """Move a running job to another model and resize its reservation to the new estimate (and,
    on a credit plan, its credits to `credits`, under the plan it was reserved on). Returns the
    job as moved, or why not."""
    result = db.scripts.run(
        "reprice",
        job.tenant,
        job.id,
        job.token,
        model,
        json.dumps(plan),
        json.dumps(estimate),
        amount,
        note,
        "" if credits is None else credits.credits,
        "" if credits is None else credits.terms.to_json(),
    )
    if result[0] == "insufficient_credits":
        return OverBudget("credits")
    if result[0] == "budget_exceeded":
        return OverBudget(str(result[1]))
    if result[0] != "ok":
        return Refused(Refusal.STALE, _status(result[1]))
    moved = get(db, job.tenant, job.id)
    return moved if moved is not None else Refused(Refusal.MISSING)


def exists(db: Backend, tenant: str, job_id: str) -> bool:
    return bool(db.redis.exists(db.keys.job(tenant, job_id)))


def queue_length(db: Backend, tenant: str, priority: str) -> int:
    """Jobs of `tenant` waiting for admission at `priority`."""
    return int(db.redis.llen(db.keys.queue(tenant, priority)))


def reusable_job_id(db: Backend, tenant: str, fingerprint: str) -> str | None:
    """The finished job whose outputs an identical request may reuse, if any."""
    found = db.redis.get(db.keys.reuse(tenant, fingerprint))
    return str(found) if found else None


def commit(
    db: Backend,
    tenant: str,
    job_id: str,
    hold_id: str,
    fields: dict[str, str],
    *,
    idempotency_hash: str,
    idempotency_ttl_s: int,
    status: int,
    body: dict[str, Any],
    mode: str,
    reused_from: str,
) -> bool:
    """Write a job, its reservation, its queue entry and the idempotent answer together.
    False when the budget hold lapsed first (nothing was written).

    With `EDITQ_REDIS_WAIT_REPLICAS`, then wait (Redis WAIT, at most
    `EDITQ_REDIS_WAIT_TIMEOUT_MS`) until that many replicas have it, so a failover of the
    master right after the answer keeps the job. A replica short when the wait ends is logged
    (`redis.wait_short`) and the job still accepted: it is on the master, and refusing it now
    would have the client submit a job that will run anyway a second time."""
    args = (
        tenant,
        job_id,
        hold_id,
        json.dumps(fields),
        idempotency_hash,
        idempotency_ttl_s,
        status,
        json.dumps(body),
        mode,
        reused_from,
        int(db.settings.economy_window_seconds * 1000),
        db.settings.economy_max_jobs,
    )
    replicas = db.settings.redis_wait_replicas
    if not replicas:
        return bool(db.scripts.run("submit", *args)[0] == "ok")
    result, acked = db.scripts.run_replicated("submit", replicas, db.settings.redis_wait_timeout_ms, *args)
    if result[0] == "ok" and acked < replicas:
        logs.event(log, "redis.wait_short", logging.WARNING, job_id=job_id, tenant=tenant, replicas=acked)
    return bool(result[0] == "ok")


@dataclass(frozen=True)
class Backlog:
    """Waiting work: jobs per tenant and lane, and the schedule's due and total entries."""

    #: tenant -> (interactive, batch) jobs waiting for admission
    depths: dict[str, tuple[int, int]]
    due: int
    scheduled: int


def backlog(db: Backend) -> Backlog:
    """Waiting jobs per tenant (interactive, batch), and the schedule's due and total entries."""
    tenants = sorted(db.redis.smembers(db.keys.tenants))
    pipe = db.redis.pipeline(transaction=False)
    for tenant in tenants:
        pipe.llen(db.keys.queue(tenant, "interactive"))
        pipe.llen(db.keys.queue(tenant, "batch"))
    pipe.zcount(db.keys.schedule, "-inf", db.clock.ms())
    pipe.zcard(db.keys.schedule)
    replies = pipe.execute()
    depths = {t: (int(replies[2 * i]), int(replies[2 * i + 1])) for i, t in enumerate(tenants)}
    return Backlog(depths, int(replies[-2]), int(replies[-1]))
