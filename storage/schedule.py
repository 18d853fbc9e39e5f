"""The Redis schedule: a sorted set of work by due time (retries, webhook events and
deliveries), drained by dispatchers and by beat. Nothing waits in Celery.

Entries are `records.Entry` values; their member format is defined there, once."""

from __future__ import annotations

from editq.storage.backend import Backend
from editq.storage.records import Entry, Kind

__all__ = ["Entry", "Kind", "claim", "done", "due", "next_due_ms", "now_ms", "release_retry"]


def now_ms(db: Backend) -> int:
    return db.clock.ms()


def due(db: Backend, limit: int = 200) -> list[Entry]:
    """Entries due now, oldest first. Members of no known kind are dropped."""
    members = db.redis.zrangebyscore(db.keys.schedule, "-inf", now_ms(db), start=0, num=limit)
    entries = []
    for member in members:
        entry = Entry.parse(member)
        if entry is None or entry.kind is Kind.OUTPUTS:
            db.redis.zrem(db.keys.schedule, member)
        else:
            entries.append(entry)
    return entries


def next_due_ms(db: Backend) -> int | None:
    """Milliseconds until the earliest entry is due (0 if one is due now)."""
    first = db.redis.zrange(db.keys.schedule, 0, 0, withscores=True)
    if not first:
        return None
    return max(0, int(first[0][1]) - now_ms(db))


def claim(db: Backend, entry: Entry, lease_ms: int) -> bool:
    return bool(db.scripts.run("claim", entry.format(), lease_ms))


def done(db: Backend, entry: Entry) -> None:
    db.redis.zrem(db.keys.schedule, entry.format())


def release_retry(db: Backend, entry: Entry) -> bool:
    """Move a due retry from the schedule to the head of its job's queue."""
    return bool(db.scripts.run("release_retry", entry.tenant, entry.job_id))
