"""What housekeeping finds due: lapsed leases, passed deadlines, outputs past retention, and
the turn to sweep (one process per interval)."""

from __future__ import annotations

from dataclasses import dataclass

from editq.storage.backend import Backend


@dataclass(frozen=True)
class Expired:
    """Outputs whose retention ended: the job, and the retention entry to drop once deleted."""

    tenant: str
    job_id: str
    entry: str


def claim_turn(db: Backend, name: str, every_ms: int) -> bool:
    """True for one caller per `every_ms` per `name` (sweep, trim)."""
    return bool(db.redis.set(f"{db.keys.prefix}:{name}", "1", nx=True, px=max(100, every_ms)))


def lapsed_slots(db: Backend, limit: int) -> list[str]:
    """In-flight slots (`tenant/job`) whose lease lapsed."""
    return list(db.redis.zrangebyscore(db.keys.inflight, "-inf", db.clock.ms(), start=0, num=limit))


def passed_deadlines(db: Backend, limit: int) -> list[tuple[str, str]]:
    """(tenant, job id) of jobs whose Cancel-After deadline passed."""
    due = db.redis.zrangebyscore(db.keys.deadlines, "-inf", db.clock.ms(), start=0, num=limit)
    return [(tenant, job_id) for tenant, _, job_id in (m.partition("/") for m in due)]


def drop_deadline(db: Backend, tenant: str, job_id: str) -> None:
    db.redis.zrem(db.keys.deadlines, f"{tenant}/{job_id}")


def expired_outputs(db: Backend, limit: int) -> list[Expired]:
    due = db.redis.zrangebyscore(db.keys.retention, "-inf", db.clock.ms(), start=0, num=limit)
    return [Expired(tenant, job_id, member) for member in due for _, tenant, job_id in [member.split("|", 2)]]


def drop_retention(db: Backend, expired: Expired) -> None:
    db.redis.zrem(db.keys.retention, expired.entry)


def trim_job_indexes(db: Backend, horizon_ms: int) -> None:
    """Forget index entries of jobs created before `horizon_ms` (their records have expired)."""
    for tenant in db.redis.smembers(db.keys.tenants):
        db.redis.zremrangebyscore(db.keys.jobs(tenant), "-inf", horizon_ms)
