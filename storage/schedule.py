"""The Redis schedule: a sorted set of work by due time (retries, webhook events and
deliveries), drained by dispatchers and by beat. Nothing waits in Celery."""

from __future__ import annotations

from editq.storage.backend import Backend


def now_ms(db: Backend) -> int:
    return db.clock.ms()


def due(db: Backend, limit: int = 200) -> list[str]:
    return list(db.redis.zrangebyscore(db.keys.schedule, "-inf", now_ms(db), start=0, num=limit))


def next_due_ms(db: Backend) -> int | None:
    """Milliseconds until the earliest entry is due (0 if one is due now)."""
    first = db.redis.zrange(db.keys.schedule, 0, 0, withscores=True)
    if not first:
        return None
    return max(0, int(first[0][1]) - now_ms(db))


def claim(db: Backend, member: str, lease_ms: int) -> bool:
    return bool(db.scripts.run("claim", member, lease_ms))


def done(db: Backend, member: str) -> None:
    db.redis.zrem(db.keys.schedule, member)


def release_retry(db: Backend, member: str) -> bool:
    return bool(db.scripts.run("release_retry", member))
