"""The provider limiters and fair admission, shared by every worker through Redis.

Each provider account has its own limiter; admission routes each job to an account that serves
its model and has room now.

Images per minute and requests per minute are GCRA buckets on Redis' clock; calls in flight
are leases in a sorted set, so a dead worker's slots come back when its leases lapse. The
limits adapt: a 429 pauses admission for its Retry-After and cuts the rate to the goodput
actually seen; rate-limit headers cap it at the provider's own figures; quiet periods probe
back up to the configured rate.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any, TypedDict, Unpack

from editq.accounts import Account
from editq.ratelimits import RateHeaders
from editq.storage import metrics
from editq.storage.backend import Backend
from editq.storage.errors import StorageError
from editq.storage.redis import ScriptCall


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
    #: The provider account the admitted job goes to.
    account: str = ""
    #: The admitted job's model, and its sources and mask as recorded (JSON).
    model: str = ""
    sources: str = ""
    mask: str = ""


def _account_args(account: Account) -> list[str | int | float]:
    models = "*" if account.models is None else "," + ",".join(sorted(account.models)) + ","
    return [account.name, account.ipm, account.rpm, account.max_inflight, models, account.price_factor]


def admission_call(db: Backend) -> ScriptCall:
    """The admission script with its arguments, to run (`admit`) or to send along with another
    (`Scripts.run_many`: an edit thread settles its job and admits its next in one round trip)."""
    s = db.settings
    pool = s.accounts
    return (
        "admit",
        (
            s.limiter_burst_seconds,
            int(s.admit_grace_seconds * 1000),
            16,
            len(pool),
            *[arg for account in pool for arg in _account_args(account)],
        ),
    )


def admission(result: list[Any]) -> Admission:
    """What the admission script answered."""
    outcome = Outcome(result[0])
    if outcome is Outcome.ADMITTED:
        return Admission(
            outcome,
            str(result[1]),
            str(result[2]),
            str(result[3]),
            int(result[4]),
            more=result[5] == 1,
            account=str(result[6]),
            model=str(result[7]),
            sources=str(result[8]),
            mask=str(result[9]),
        )
    if outcome is Outcome.EXPIRED:
        return Admission(outcome, str(result[1]), str(result[2]))
    if outcome is Outcome.WAIT:
        return Admission(outcome, wait_ms=int(result[1]))
    if outcome is Outcome.PAUSED:
        return Admission(outcome, reason=str(result[1]))
    return Admission(outcome)


def admit(db: Backend) -> Admission:
    name, args = admission_call(db)
    return admission(db.scripts.run(name, *args))


class Signal(StrEnum):
    """What the provider said about a call, for the account's limiter."""

    OK = "ok"  #: answered
    RATE_LIMITED = "rate_limited"  #: a 429 rate_limit_exceeded
    QUOTA = "quota"  #: out of quota: pause the account
    AUTH = "auth"  #: the key was refused: pause the account
    SERVER_ERROR = "server_error"  #: a 5xx or no answer: enough in a row pause the account
    HEADERS = "headers"  #: only its rate-limit headers count


#: First pause of an account after EDITQ_ACCOUNT_ERROR_THRESHOLD 5xx in a row (doubles per relapse).
SERVER_ERROR_PAUSE_SECONDS = 30.0
#: Why an account is paused, by the signal that paused it.
PAUSE_REASONS = {
    Signal.QUOTA: "insufficient_quota",
    Signal.AUTH: "provider_auth_failed",
    Signal.SERVER_ERROR: "server_errors",
}


def _first_pause_ms(configured: float, kind: Signal) -> int:
    if kind is Signal.SERVER_ERROR:
        configured = min(configured, SERVER_ERROR_PAUSE_SECONDS)
    return int(configured * 1000)


def _account(db: Backend, name: str) -> Account:
    account = db.settings.account(name)
    if account is None:
        raise StorageError(f"no provider account named {name!r} is configured")
    return account


def observation(
    db: Backend,
    account: str,
    kind: Signal,
    *,
    images: int = 0,
    retry_after_ms: int = 0,
    headers: RateHeaders | None = None,
) -> ScriptCall:
    """The script that tells an account's limiter how a call went, to run (`observe`) or to
    send along with another (`Scripts.run_many`)."""
    h = headers or RateHeaders()
    s = db.settings
    acc = _account(db, account)
    return (
        "observe",
        (
            acc.name,
            kind.value,
            images,
            retry_after_ms,
            h.limit_requests,
            h.remaining_requests,
            h.limit_images,
            h.remaining_images,
            acc.ipm,
            acc.rpm,
            _first_pause_ms(s.account_pause_seconds, kind),
            PAUSE_REASONS.get(kind, ""),
            s.limiter_burst_seconds,
            int(s.account_pause_max_seconds * 1000),
            s.account_error_threshold,
        ),
    )


class Details(TypedDict, total=False):
    """What else the limiter is told about a call."""

    images: int
    retry_after_ms: int
    headers: RateHeaders | None


def observe(db: Backend, account: str, kind: Signal, **details: Unpack[Details]) -> None:
    """Tell an account's limiter how a call went."""
    name, args = observation(db, account, kind, **details)
    db.scripts.run(name, *args)


_HARD = set(PAUSE_REASONS.values())


def account_state(db: Backend, account: Account, now_ms: int | None = None) -> dict[str, Any]:
    """One account's limiter as operators see it: limits, effective rates, in flight, pause."""
    h = db.redis.hgetall(db.keys.limiter(account.name))
    now_ms = db.clock.ms() if now_ms is None else now_ms
    paused_until = int(h.get("paused_until", "0") or 0)
    reason = h.get("pause_reason", "") or ""
    paused = bool(reason) and paused_until > now_ms
    probing = reason in _HARD and paused_until <= now_ms
    return {
        "name": account.name,
        "kind": account.kind,
        "models": None if account.models is None else sorted(account.models),
        "ipm_configured": account.ipm,
        "rpm_configured": account.rpm,
        "ipm_effective": round(
            min(float(h.get("ipm_eff", account.ipm)), float(h.get("learned_ipm", account.ipm))), 2
        ),
        "rpm_effective": round(
            min(float(h.get("rpm_eff", account.rpm)), float(h.get("learned_rpm", account.rpm))), 2
        ),
        "inflight": int(db.redis.zcount(db.keys.account_inflight(account.name), f"({now_ms}", "+inf")),
        "max_inflight": account.max_inflight,
        "paused": paused,
        "pause_reason": reason if paused or probing else None,
        "paused_until_ms": paused_until if paused else None,
        "probing": probing,
        "state": "paused" if paused else "probing" if probing else "ok",
    }


def state(db: Backend) -> dict[str, Any]:
    """The limiter as operators see it in /readyz and /metrics: the pool's totals (paused only
    when every account is) and each account."""
    now_ms = db.clock.ms()
    accounts = [account_state(db, a, now_ms) for a in db.settings.accounts]
    open_ = [a for a in accounts if not a["paused"]]
    first_paused = next((a for a in accounts if a["paused"]), None)
    return {
        "ipm_configured": sum(a["ipm_configured"] for a in accounts),
        "rpm_configured": sum(a["rpm_configured"] for a in accounts),
        "ipm_effective": round(sum(a["ipm_effective"] for a in open_), 2),
        "rpm_effective": round(sum(a["rpm_effective"] for a in open_), 2),
        "inflight": int(db.redis.zcount(db.keys.inflight, f"({now_ms}", "+inf")),
        "max_inflight": sum(a["max_inflight"] for a in accounts),
        "paused": not open_,
        "pause_reason": None if open_ or first_paused is None else first_paused["pause_reason"],
        "paused_until_ms": None if open_ else min(a["paused_until_ms"] or 0 for a in accounts),
        "accounts": accounts,
    }


def serves_elsewhere(db: Backend, model: str, besides: str) -> bool:
    """Whether an account other than `besides` serves `model` and is not paused."""
    now_ms = db.clock.ms()
    for account in db.settings.accounts:
        if account.name == besides or not account.serves(model):
            continue
        h = db.redis.hmget(db.keys.limiter(account.name), ["paused_until", "pause_reason"])
        if not (h[1] in _HARD and int(h[0] or 0) > now_ms):
            return True
    return False


def resume(db: Backend, account: str | None = None) -> None:
    """Lift a quota, auth or error pause of one account, or of all (after the operator fixed it)."""
    names = [account] if account else [a.name for a in db.settings.accounts]
    pipe = db.redis.pipeline()
    for name in names:
        pipe.hset(
            db.keys.limiter(name),
            mapping={"paused_until": "0", "pause_reason": "", "pauses": "0", "errors": "0"},
        )
    pipe.execute()
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
