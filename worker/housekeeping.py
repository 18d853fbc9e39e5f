"""Beat's periodic sweep: lapsed leases, deadlines, dead holds, retention, and a schedule drain
in case no dispatcher is running."""

from __future__ import annotations

import logging
from typing import Any

from editq import logs
from editq.job import Status
from editq.storage import jobs, money, sweeps
from editq.storage.backend import Backend
from editq.storage.keys import output_prefix

log = logging.getLogger("editq.housekeeping")

BATCH = 500
#: The per-tenant job indexes are trimmed at most this often (one sweep, whichever worker).
TRIM_EVERY_SECONDS = 60


def reap_leases(db: Backend) -> dict[str, int]:
    """Slots whose lease lapsed: requeue their jobs (bounded) and free the slots."""
    counts: dict[str, int] = {}
    for slot in sweeps.lapsed_slots(db, BATCH):
        outcome = jobs.reap(db, slot)
        counts[outcome.value] = counts.get(outcome.value, 0) + 1
        if outcome is jobs.Reaped.REQUEUED:
            logs.event(log, "job.requeued", job_id=slot.job_id, tenant=slot.tenant, reason="lease_lapsed")
        elif outcome is jobs.Reaped.FAILED:
            logs.event(log, "job.failed", job_id=slot.job_id, tenant=slot.tenant, code="worker_lost")
    return counts


def expire_deadlines(db: Backend) -> int:
    expired = 0
    for slot in sweeps.passed_deadlines(db, BATCH):
        ended = jobs.cancel(db, slot.tenant, slot.job_id, mode=Status.EXPIRED)
        if isinstance(ended, Status):
            expired += 1
            logs.event(log, "job.expired", job_id=slot.job_id, tenant=slot.tenant, reason="deadline")
        else:
            sweeps.drop_deadline(db, slot)
    return expired


def retention(db: Backend) -> int:
    """Delete outputs whose retention ended and trim the job indexes."""
    deleted = 0
    for entry in sweeps.expired_outputs(db, 100):
        deleted += db.objects.delete_prefix(output_prefix(entry.tenant, entry.job_id))
        sweeps.drop_retention(db, entry)
    if sweeps.claim_turn(db, "trimmed", TRIM_EVERY_SECONDS * 1000):
        sweeps.trim_job_indexes(db, db.clock.ms() - db.settings.job_retention_seconds * 1000)
    return deleted


def sweep_if_due(db: Backend) -> dict[str, Any] | None:
    """Sweep unless another process swept within the housekeeping interval (beat and every
    dispatcher call this; one of them does the work)."""
    interval_ms = int(db.settings.housekeeping_seconds * 1000)
    if not sweeps.claim_turn(db, "swept", interval_ms - 50):
        return None
    return sweep(db)


def sweep(db: Backend) -> dict[str, Any]:
    result = {
        "leases": reap_leases(db),
        "expired": expire_deadlines(db),
        "holds_released": money.expire_holds(db),
        "outputs_deleted": retention(db),
    }
    logs.event(log, "housekeeping.swept", logging.DEBUG, **result)
    return result
