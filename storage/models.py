"""What the provider account serves, shared by every process: the last listing of its models
and the models whose calls answered 404 `model_not_found` since then."""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from editq.lifecycle import Availability
from editq.storage.backend import Backend
from editq.storage.errors import StorageUnavailable

#: A process re-reads the shared availability at most this often (AvailabilityCache).
AVAILABILITY_TTL_SECONDS = 2.0


def availability(db: Backend) -> Availability:
    """The shared view; everything is assumed served until a listing succeeded."""
    try:
        pipe = db.redis.pipeline(transaction=False)
        pipe.hgetall(db.keys.models_served)
        pipe.smembers(db.keys.models_unavailable)
        listing, unavailable = pipe.execute()
    except StorageUnavailable as exc:
        raise StorageUnavailable(f"redis: {exc}") from exc
    served = None
    if listing.get("models"):
        served = frozenset(json.loads(listing["models"]))
    refreshed = int(listing["refreshed_at"]) if listing.get("refreshed_at") else None
    return Availability(served=served, unavailable=frozenset(unavailable), refreshed_at_ms=refreshed)


def record_listing(db: Backend, models: list[str], provider_ids: list[str]) -> None:
    """A fresh listing replaces the last one and clears the 404 marks."""
    pipe = db.redis.pipeline(transaction=True)
    pipe.hset(
        db.keys.models_served,
        mapping={
            "models": json.dumps(sorted(models)),
            "ids": json.dumps(sorted(provider_ids)[:500]),
            "refreshed_at": str(db.clock.ms()),
        },
    )
    pipe.delete(db.keys.models_unavailable)
    pipe.execute()


def mark_unavailable(db: Backend, model: str) -> None:
    """A call for `model` answered 404 `model_not_found`: no new work for it until the next listing."""
    db.redis.sadd(db.keys.models_unavailable, model)


def refresh_due(db: Backend, every_seconds: float, *, force: bool = False) -> bool:
    """True for exactly one caller per interval (or always when forced)."""
    if force:
        db.redis.set(db.keys.models_refresh, "1", px=max(1000, int(every_seconds * 1000)))
        return True
    return bool(db.redis.set(db.keys.models_refresh, "1", nx=True, px=max(1000, int(every_seconds * 1000))))


def postpone_refresh(db: Backend, seconds: float) -> None:
    """The next listing is due in `seconds` (after a failed one)."""
    db.redis.set(db.keys.models_refresh, "1", px=max(1000, int(seconds * 1000)))


@dataclass
class AvailabilityCache:
    """The shared availability, re-read at most every AVAILABILITY_TTL_SECONDS."""

    value: Availability = field(default_factory=Availability)
    read_at: float = float("-inf")

    def get(self, db: Backend) -> Availability:
        now = time.monotonic()
        if now - self.read_at > AVAILABILITY_TTL_SECONDS:
            self.value = availability(db)
            self.read_at = now
        return self.value

    def forget(self) -> None:
        self.read_at = float("-inf")
