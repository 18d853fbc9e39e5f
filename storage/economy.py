"""The economy lane's records: jobs waiting to be put in a provider batch, and the batches.

A batch moves through states, each step idempotent, so a poller that dies is resumed by the
next one (its schedule entry falls due again when the claim lapses):

    OPEN       jobs taken from the collection and running in it (token = batch id)
    UPLOADED   its input file is at the provider (`input_file_id`)
    SUBMITTED  the provider's batch runs it (`provider_batch_id`)
    DONE       results ingested, unfinished jobs put back, provider files deleted
"""

from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from editq.catalogue import Lane
from editq.job import Job
from editq.storage.backend import Backend
from editq.storage.records import Entry, Kind, Slot

#: How long a finished batch's record is kept, for operators.
DONE_RETENTION_SECONDS = 7 * 86400
#: How long the poller that claimed a batch's (or the collection's) entry holds it before
#: another may take over; extended while it works.
CLAIM_MS = 120_000


class State(StrEnum):
    OPEN = "open"
    UPLOADED = "uploaded"
    SUBMITTED = "submitted"
    DONE = "done"


@dataclass(frozen=True)
class Batch:
    """One economy batch, as its record holds it."""

    id: str
    state: State
    jobs: int
    open: int
    created_at: int
    input_file_id: str
    provider_batch_id: str
    provider_status: str
    cancel_sent: bool

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Batch:
        return cls(
            id=h["id"],
            state=State(h.get("state", State.OPEN)),
            jobs=int(h.get("jobs") or 0),
            open=int(h.get("open") or 0),
            created_at=int(h.get("created_at") or 0),
            input_file_id=h.get("input_file_id", ""),
            provider_batch_id=h.get("provider_batch_id", ""),
            provider_status=h.get("provider_status", ""),
            cancel_sent=h.get("cancel_sent") == "1",
        )


@dataclass(frozen=True)
class Waiting:
    """A job waiting in the collection, with the most its batch line can weigh."""

    tenant: str
    job_id: str
    line_bytes: int


def waiting(db: Backend, limit: int) -> list[Waiting]:
    """The longest-waiting jobs of the collection, oldest first."""
    slots = [Slot.parse(m) for m in db.redis.zrange(db.keys.econ_pending, 0, limit - 1)]
    pipe = db.redis.pipeline(transaction=False)
    for slot in slots:
        pipe.hget(db.keys.job(slot.tenant, slot.job_id), "econ_bytes")
    return [
        Waiting(slot.tenant, slot.job_id, int(size or 0))
        for slot, size in zip(slots, pipe.execute(), strict=True)
    ]


def take(db: Backend, batch_id: str, jobs: list[Waiting], lease_ms: int) -> int:
    """Open batch `batch_id` with `jobs` (those still waiting); how many it took."""
    settings = db.settings
    pairs = [part for w in jobs for part in (w.tenant, w.job_id)]
    return int(
        db.scripts.run(
            "econ_take",
            batch_id,
            int(settings.economy_window_seconds * 1000),
            settings.economy_max_jobs,
            lease_ms,
            *pairs,
        )
    )


def get(db: Backend, batch_id: str) -> Batch | None:
    h = db.redis.hgetall(db.keys.econ_batch(batch_id))
    return Batch.from_hash(h) if h.get("id") else None


def members(db: Backend, batch_id: str) -> dict[str, str]:
    """The batch's jobs: job id -> tenant."""
    return dict(db.redis.hgetall(db.keys.econ_batch_jobs(batch_id)))


def jobs_of(db: Backend, members: dict[str, str]) -> list[Job]:
    """The records of the batch's jobs that still exist."""
    ids = list(members.items())
    found: list[Job] = []
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        pipe = db.redis.pipeline(transaction=False)
        for job_id, tenant in chunk:
            pipe.hgetall(db.keys.job(tenant, job_id))
        found.extend(Job.from_hash(h) for h in pipe.execute() if h)
    return found


def update(db: Backend, batch_id: str, **fields: str | int) -> None:
    """Record what a step of the batch did (its new state, the provider's ids and status)."""
    values = {k: str(v) for k, v in fields.items()}
    values["updated_at"] = str(db.clock.ms())
    db.redis.hset(db.keys.econ_batch(batch_id), mapping=values)


def uploaded_file(db: Backend, batch_id: str, source: str) -> str | None:
    """The provider file id of a source (`tenant/sha256`) already uploaded for the batch."""
    found = db.redis.hget(db.keys.econ_batch_files(batch_id), source)
    return str(found) if found else None


def remember_file(db: Backend, batch_id: str, source: str, file_id: str) -> None:
    db.redis.hset(db.keys.econ_batch_files(batch_id), source, file_id)


def uploaded_files(db: Backend, batch_id: str) -> list[str]:
    return list(db.redis.hvals(db.keys.econ_batch_files(batch_id)))


def mark_provider_batch(db: Backend, provider_batch_id: str, jobs: list[Job]) -> None:
    """Show the provider's batch id on the batch's jobs."""
    for start in range(0, len(jobs), 500):
        pipe = db.redis.pipeline(transaction=False)
        for job in jobs[start : start + 500]:
            pipe.hset(db.keys.job(job.tenant, job.id), "provider_batch", provider_batch_id)
        pipe.execute()


def reschedule(db: Backend, batch_id: str, due_ms: int) -> None:
    """The batch's poller is next due at `due_ms`."""
    db.redis.zadd(db.keys.schedule, {Entry(Kind.BATCH, batch_id=batch_id).format(): due_ms})


def keep(db: Backend, batch_id: str, lease_ms: int) -> None:
    """Extend the claim of the poller working on the batch (while it builds or ingests)."""
    member = Entry(Kind.BATCH, batch_id=batch_id).format()
    db.redis.zadd(db.keys.schedule, {member: db.clock.ms() + lease_ms}, xx=True)


def close(db: Backend, batch_id: str) -> None:
    """The batch is done: no more polls; its records are kept a while for operators."""
    update(db, batch_id, state=State.DONE)
    db.redis.zrem(db.keys.schedule, Entry(Kind.BATCH, batch_id=batch_id).format())
    db.redis.zrem(db.keys.econ_batches, batch_id)
    for key in (
        db.keys.econ_batch(batch_id),
        db.keys.econ_batch_jobs(batch_id),
        db.keys.econ_batch_files(batch_id),
    ):
        db.redis.expire(key, DONE_RETENTION_SECONDS)


def put_back(
    db: Backend,
    job: Job,
    *,
    lane: Lane,
    amount: int,
    estimate: dict[str, Any] | None,
    error: dict[str, Any],
) -> Lane | None:
    """Put a job its batch ended without a result for back in line (see econ_return.lua).
    Returns the lane it went to, or None when it no longer runs in that batch."""
    settings = db.settings
    result = db.scripts.run(
        "econ_return",
        job.tenant,
        job.id,
        job.token,
        lane.value,
        amount,
        json.dumps(estimate) if estimate else "",
        int(settings.economy_window_seconds * 1000),
        settings.economy_max_jobs,
        json.dumps(error),
    )
    return Lane(result[1]) if result[0] == "ok" else None


@dataclass(frozen=True)
class Overview:
    """The economy lane at a glance: jobs waiting for a batch, live batches by state."""

    waiting: int
    batches: dict[str, int]


def overview(db: Backend) -> Overview:
    ids = db.redis.zrange(db.keys.econ_batches, 0, -1)
    pipe = db.redis.pipeline(transaction=False)
    pipe.zcard(db.keys.econ_pending)
    for batch_id in ids:
        pipe.hget(db.keys.econ_batch(batch_id), "state")
    replies = pipe.execute()
    states = Counter(str(state) for state in replies[1:] if state)
    return Overview(int(replies[0]), dict(states))
