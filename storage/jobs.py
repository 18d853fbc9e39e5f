"""Job records: read, list, place in line, and every state transition (each one Lua script)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from editq.job import Job
from editq.storage.backend import Backend
from editq.storage.errors import StorageUnavailable


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
    if job.status.value != "queued":
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


def start(db: Backend, tenant: str, job_id: str, token: str, worker: str = "") -> Job | str:
    """Claim an admitted job for this run: the job as claimed, or why not ('expired', 'skip:...')."""
    lease_ms = int(db.settings.lease_seconds * 1000)
    result = db.scripts.run("start", tenant, job_id, token, lease_ms, worker)
    if result[0] == "ok":
        flat = result[1:]
        return Job.from_hash(dict(zip(flat[::2], flat[1::2], strict=True)))
    return str(result[0]) if result[0] != "skip" else f"skip:{result[1]}"


def status(db: Backend, tenant: str, job_id: str) -> str | None:
    value = db.redis.hget(db.keys.job(tenant, job_id), "status")
    return None if value is None else str(value)


def mark_call(
    db: Backend, job: Job, phase: str, usage: dict[str, Any] | None = None, actual: int = 0
) -> bool:
    """Note on the job that its provider call went out ('sent') or came back billed
    ('answered'), so the reaper can account for the call if this run is lost."""
    result = db.scripts.run(
        "call", job.tenant, job.id, job.token, phase, json.dumps(usage) if usage else "", actual
    )
    return bool(result[0] == "ok")


def renew(db: Backend, tenant: str, job_id: str, token: str) -> bool:
    lease_ms = int(db.settings.lease_seconds * 1000)
    return bool(db.scripts.run("renew", tenant, job_id, token, lease_ms))


def finish(
    db: Backend,
    job: Job,
    *,
    outcome: str,
    outputs: list[dict[str, Any]] | None = None,
    error: dict[str, Any] | None = None,
    usage: dict[str, Any] | None = None,
    actual: int = 0,
    reuse_key: str = "",
) -> str:
    """Settle a run. Returns the status the job ended in, or 'stale' if another run owns it."""
    settings = db.settings
    result = db.scripts.run(
        "finish",
        job.tenant,
        job.id,
        job.token,
        outcome,
        json.dumps(outputs or []),
        json.dumps(error) if error else "",
        json.dumps(usage) if usage else "",
        actual,
        reuse_key,
        settings.reuse_window_seconds,
        settings.output_retention_seconds,
    )
    return str(result[1]) if result[0] == "ok" else "stale"


def requeue(
    db: Backend, job: Job, *, due_ms: int = 0, counter: str = "", last_error: dict[str, Any] | None = None
) -> bool:
    result = db.scripts.run(
        "requeue",
        job.tenant,
        job.id,
        job.token,
        due_ms,
        counter,
        json.dumps(last_error) if last_error else "",
    )
    return bool(result[0] == "ok")


def cancel(db: Backend, tenant: str, job_id: str, *, mode: str = "canceled") -> tuple[str, str]:
    """('ok', status) | ('finished', status) | ('missing', '') | ('not_due', '')."""
    result = db.scripts.run("cancel", tenant, job_id, mode)
    return str(result[0]), str(result[1]) if len(result) > 1 else ""


def reap(db: Backend, member: str) -> str:
    return str(db.scripts.run("reap", member, db.settings.max_worker_losses)[0])


def reprice(
    db: Backend,
    job: Job,
    *,
    model: str,
    plan: dict[str, Any],
    estimate: dict[str, Any],
    amount: int,
    note: str,
) -> Job | str:
    """Move a running job to another model and resize its reservation to the new estimate.
    Returns the job as moved, 'stale', or 'budget_exceeded:<period>'."""
    result = db.scripts.run(
        "reprice", job.tenant, job.id, job.token, model, json.dumps(plan), json.dumps(estimate), amount, note
    )
    if result[0] == "budget_exceeded":
        return f"budget_exceeded:{result[1]}"
    if result[0] != "ok":
        return "stale"
    moved = get(db, job.tenant, job.id)
    return moved if moved is not None else "stale"


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
    False when the budget hold lapsed first (nothing was written)."""
    result = db.scripts.run(
        "submit",
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
    )
    return bool(result[0] == "ok")


def backlog(db: Backend) -> tuple[dict[str, tuple[int, int]], int, int]:
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
    return depths, int(replies[-2]), int(replies[-1])
