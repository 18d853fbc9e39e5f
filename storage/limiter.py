"""The provider limiter and fair admission, shared by every worker through Redis.

Images per minute and requests per minute are GCRA buckets on Redis' clock; calls in flight
are leases in a sorted set, so a dead worker's slots come back when its leases lapse. The
limits adapt: a 429 pauses admission for its Retry-After and cuts the rate to the goodput
actually seen; rate-limit headers cap it at the provider's own figures; quiet periods probe
back up to the configured rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from editq.ratelimits import RateHeaders
from editq.storage import metrics
from editq.storage.backend import Backend
from editq.storage.errors import StorageError


class Outcome(StrEnum):
    """What one admission step decided (admit.lua's first reply)."""

    ADMITTED = "admitted"  #: a job may run: publish it
    EXPIRED = "expired"  #: the next job's deadline passed: expire it
    WAIT = "wait"  #: the rate or a short pause says: try again after `wait_ms`
    FULL = "full"  #: no free slot
    EMPTY = "empty"  #: nothing waits
    PAUSED = "paused"  #: the account is paused (`reason`)


@dataclass(frozen=True)
class Admission:
    """What one admission step decided."""

    outcome: Outcome
    tenant: str = ""
    job_id: str = ""
    token: str = ""
    images: int = 0
    wait_ms: int = 0
    reason: str = ""
    #: After an admission: whether a slot is still free (else the round can stop).
    more: bool = False


def admit(db: Backend) -> Admission:
    s = db.settings
    result = db.scripts.run(
        "admit",
        s.provider_ipm,
        s.provider_rpm,
        s.provider_max_inflight,
        s.limiter_burst_seconds,
        int(s.admit_grace_seconds * 1000),
        16,
    )
    outcome = Outcome(result[0])
    if outcome is Outcome.ADMITTED:
        return Admission(
            outcome, str(result[1]), str(result[2]), str(result[3]), int(result[4]), more=result[5] == 1
        )
    if outcome is Outcome.EXPIRED:
        return Admission(outcome, str(result[1]), str(result[2]))
    if outcome is Outcome.WAIT:
        return Admission(outcome, wait_ms=int(result[1]))
    if outcome is Outcome.PAUSED:
        return Admission(outcome, reason=str(result[1]))
    return Admission(outcome)


class Signal(StrEnum):
    """What the provider said about a call, for the limiter."""

    OK = "ok"  #: answered
    RATE_LIMITED = "rate_limited"  #: a 429 rate_limit_exceeded
    QUOTA = "quota"  #: out of quota: pause the account
    AUTH = "auth"  #: the key was refused: pause the account
    HEADERS = "headers"  #: only its rate-limit headers count


def observe(
    db: Backend,
    kind: Signal,
    *,
    images: int = 0,
    retry_after_ms: int = 0,
    headers: RateHeaders | None = None,
    pause_ms: int = 0,
    reason: str = "",
) -> None:
    """Tell the limiter how a call went."""
    h = headers or RateHeaders()
    s = db.settings
    db.scripts.run(
        "observe",
        kind.value,
        images,
        retry_after_ms,
        h.limit_requests,
        h.remaining_requests,
        h.limit_images,
        h.remaining_images,
        s.provider_ipm,
        s.provider_rpm,
        pause_ms,
        reason,
        s.limiter_burst_seconds,
    )


def state(db: Backend) -> dict[str, Any]:
    """The limiter as operators see it in /readyz and /metrics."""
    h = db.redis.hgetall(db.keys.limiter)
    now_ms = db.clock.ms()
    paused_until = int(h.get("paused_until", "0") or 0)
    reason = h.get("pause_reason", "") if paused_until > now_ms else ""
    s = db.settings
    return {
        "ipm_configured": s.provider_ipm,
        "rpm_configured": s.provider_rpm,
        "ipm_effective": round(
            min(float(h.get("ipm_eff", s.provider_ipm)), float(h.get("learned_ipm", s.provider_ipm))), 2
        ),
        "rpm_effective": round(
            min(float(h.get("rpm_eff", s.provider_rpm)), float(h.get("learned_rpm", s.provider_rpm))), 2
        ),
        "inflight": int(db.redis.zcount(db.keys.inflight, f"({now_ms}", "+inf")),
        "max_inflight": s.provider_max_inflight,
        "paused": bool(reason),
        "pause_reason": reason or None,
        "paused_until_ms": paused_until if reason else None,
    }


def resume(db: Backend) -> None:
    """Lift a quota or auth pause (after the operator fixed the account)."""
    db.redis.hset(db.keys.limiter, mapping={"paused_until": "0", "pause_reason": ""})
    wake(db)


def heartbeat(
    db: Backend, worker: str, slots: int, ttl_seconds: float, recorder: metrics.Recorder | None = None
) -> None:
    """Register a worker's free slots for admission (they vanish if it stops beating), and write
    the metrics its recorder gathered since the last beat in the same round trip."""
    expires = int((db.clock.time() + ttl_seconds) * 1000)
    deltas = recorder.drain() if recorder is not None else {}
    pipe = db.redis.pipeline()
    pipe.zadd(db.keys.workers, {worker: expires})
    pipe.hset(db.keys.worker_slots, worker, str(slots))
    pipe.hset(db.keys.fair_cfg, "burst", str(db.settings.fair_burst_images))
    pipe.zremrangebyscore(db.keys.workers, "-inf", db.clock.ms() - 3_600_000)
    metrics.add(pipe, db.keys, deltas)
    try:
        pipe.execute()
    except StorageError:
        if recorder is not None:
            recorder.restore(deltas)
        raise


def unregister(db: Backend, worker: str) -> None:
    pipe = db.redis.pipeline()
    pipe.zrem(db.keys.workers, worker)
    pipe.hdel(db.keys.worker_slots, worker)
    pipe.execute()


def wake(db: Backend) -> None:
    """Nudge a dispatcher: new work or new capacity."""
    pipe = db.redis.pipeline()
    pipe.lpush(db.keys.wake, "1")
    pipe.ltrim(db.keys.wake, 0, 0)
    pipe.execute()


def ping(db: Backend) -> None:
    db.redis.ping()


def workers(db: Backend) -> tuple[int, int | None]:
    """Workers whose heartbeat is live, and ms since the newest heartbeat lapsed (None: never)."""
    now_ms = db.clock.ms()
    latest = db.redis.zrange(db.keys.workers, -1, -1, withscores=True)
    live = int(db.redis.zcount(db.keys.workers, f"({now_ms}", "+inf"))
    return live, None if not latest else max(0, now_ms - int(latest[0][1]))


def sleep_until_woken(db: Backend, seconds: float) -> None:
    """Block until a submission or a finished job pushes a wake-up, or `seconds` pass."""
    db.redis.blpop([db.keys.wake], timeout=max(0.01, seconds))
