"""What housekeeping finds due: lapsed leases, passed deadlines, outputs past retention, and
the turn to sweep (one process per interval)."""

from __future__ import annotations

from editq.storage.backend import Backend
from editq.storage.records import Entry, Kind, Slot


def claim_turn(db: Backend, name: str, every_ms: int) -> bool:
    """True for one caller per `every_ms` per `name` (sweep, trim)."""
    return bool(db.redis.set(db.keys.turn(name), "1", nx=True, px=max(100, every_ms)))


def lapsed_slots(db: Backend, limit: int) -> list[Slot]:
    """In-flight slots whose lease lapsed."""
    due = db.redis.zrangebyscore(db.keys.inflight, "-inf", db.clock.ms(), start=0, num=limit)
    return [Slot.parse(member) for member in due]


def passed_deadlines(db: Backend, limit: int) -> list[Slot]:
    """Jobs whose Cancel-After deadline passed."""
    due = db.redis.zrangebyscore(db.keys.deadlines, "-inf", db.clock.ms(), start=0, num=limit)
    return [Slot.parse(member) for member in due]


def drop_deadline(db: Backend, slot: Slot) -> None:
    db.redis.zrem(db.keys.deadlines, slot.format())


def expired_outputs(db: Backend, limit: int) -> list[Entry]:
    """Outputs whose retention ended (`Kind.OUTPUTS` entries); members of another shape are dropped."""
    due = db.redis.zrangebyscore(db.keys.retention, "-inf", db.clock.ms(), start=0, num=limit)
    found = []
    for member in due:
        entry = Entry.parse(member)
        if entry is None or entry.kind is not Kind.OUTPUTS:
            db.redis.zrem(db.keys.retention, member)
        else:
            found.append(entry)
    return found


def drop_retention(db: Backend, entry: Entry) -> None:
    db.redis.zrem(db.keys.retention, entry.format())


def trim_job_indexes(db: Backend, horizon_ms: int) -> None:
    """Forget index entries of jobs created before `horizon_ms` (their records have expired)."""
    for tenant in db.redis.smembers(db.keys.tenants):
        db.redis.zremrangebyscore(db.keys.jobs(tenant), "-inf", horizon_ms)
