"""Beat's periodic sweep: lapsed leases, deadlines, dead holds, retention, and a schedule drain
in case no dispatcher is running."""

from __future__ import annotations

import logging
from typing import Any

from editq.storage import jobs, money
from editq.storage.backend import Backend
from editq.storage.keys import output_prefix

log = logging.getLogger("editq.housekeeping")

BATCH = 500
#: The per-tenant job indexes are trimmed at most this often (one sweep, whichever worker).
TRIM_EVERY_SECONDS = 60


def reap_leases(db: Backend) -> dict[str, int]:
    """Slots whose lease lapsed: requeue their jobs (bounded) and free the slots."""
    now = db.clock.ms()
    counts: dict[str, int] = {}
    for member in db.redis.zrangebyscore(db.keys.inflight, "-inf", now, start=0, num=BATCH):
        outcome = jobs.reap(db, member)
        counts[outcome] = counts.get(outcome, 0) + 1
    return counts


def expire_deadlines(db: Backend) -> int:
    now = db.clock.ms()
    expired = 0
    for member in db.redis.zrangebyscore(db.keys.deadlines, "-inf", now, start=0, num=BATCH):
        tenant, _, job_id = member.partition("/")
        outcome, _ = jobs.cancel(db, tenant, job_id, mode="expired")
        if outcome == "ok":
            expired += 1
        else:
            db.redis.zrem(db.keys.deadlines, member)
    return expired


def retention(db: Backend) -> int:
    """Delete outputs whose retention ended and trim the job indexes."""
    now = db.clock.ms()
    deleted = 0
    for member in db.redis.zrangebyscore(db.keys.retention, "-inf", now, start=0, num=100):
        _, tenant, job_id = member.split("|", 2)
        deleted += db.objects.delete_prefix(output_prefix(tenant, job_id))
        db.redis.zrem(db.keys.retention, member)
    if db.redis.set(f"{db.keys.prefix}:trimmed", "1", nx=True, ex=TRIM_EVERY_SECONDS):
        horizon = now - db.settings.job_retention_seconds * 1000
        for tenant in db.redis.smembers(db.keys.tenants):
            db.redis.zremrangebyscore(db.keys.jobs(tenant), "-inf", horizon)
    return deleted


def sweep_if_due(db: Backend) -> dict[str, Any] | None:
    """Sweep unless another process swept within the housekeeping interval (beat and every
    dispatcher call this; one of them does the work)."""
    interval_ms = int(db.settings.housekeeping_seconds * 1000)
    if not db.redis.set(f"{db.keys.prefix}:swept", "1", nx=True, px=max(100, interval_ms - 50)):
        return None
    return sweep(db)


def sweep(db: Backend) -> dict[str, Any]:
    return {
        "leases": reap_leases(db),
        "expired": expire_deadlines(db),
        "holds_released": money.expire_holds(db),
        "outputs_deleted": retention(db),
    }
