"""Webhook deliveries: one record per event, every attempt kept."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from editq.storage import metrics
from editq.storage.backend import Backend
from editq.storage.records import Entry
from editq.telemetry import WEBHOOK_DELIVERIES, DeliveryOutcome


class DeliveryStatus(StrEnum):
    PENDING = "pending"  #: attempts continue on the schedule
    DELIVERED = "delivered"  #: a 2xx answered
    FAILED = "failed"  #: the schedule ran out
    DISABLED = "disabled"  #: the endpoint answered 410 (or was disabled by one)


PENDING, DELIVERED, FAILED, DISABLED = (
    DeliveryStatus.PENDING,
    DeliveryStatus.DELIVERED,
    DeliveryStatus.FAILED,
    DeliveryStatus.DISABLED,
)


def delivery_id(tenant: str, job_id: str, event: str) -> str:
    """Stable per event, so every retry of it carries the same `webhook-id`."""
    return "msg_" + hashlib.sha256(f"{tenant}|{job_id}|{event}".encode()).hexdigest()[:32]


@dataclass(frozen=True)
class Delivery:
    id: str
    tenant: str
    job_id: str
    event: str
    url: str
    body: str
    status: DeliveryStatus
    attempts: int
    created_at: int
    next_at: int | None

    @classmethod
    def from_hash(cls, h: dict[str, str]) -> Delivery:
        return cls(
            id=h["id"],
            tenant=h["tenant"],
            job_id=h["job"],
            event=h["event"],
            url=h["url"],
            body=h["body"],
            status=DeliveryStatus(h["status"]),
            attempts=int(h.get("attempts", "0")),
            created_at=int(h.get("created_at", "0")),
            next_at=int(h["next_at"]) if h.get("next_at") else None,
        )


def create(db: Backend, tenant: str, job_id: str, event: str, url: str, body: str) -> str | None:
    """Record a delivery (kept as long as jobs are) and schedule its first attempt; None if it
    already exists."""
    retention_s = db.settings.job_retention_seconds
    dlv = delivery_id(tenant, job_id, event)
    key = db.keys.delivery(dlv)
    now = db.clock.ms()
    if not db.redis.hsetnx(key, "id", dlv):
        return None
    pipe = db.redis.pipeline()
    pipe.hset(
        key,
        mapping={
            "tenant": tenant,
            "job": job_id,
            "event": event,
            "url": url,
            "body": body,
            "status": PENDING,
            "attempts": "0",
            "created_at": str(now),
            "next_at": str(now),
        },
    )
    pipe.expire(key, retention_s)
    pipe.rpush(db.keys.job_deliveries(tenant, job_id), dlv)
    pipe.expire(db.keys.job_deliveries(tenant, job_id), retention_s)
    pipe.zadd(db.keys.schedule, {Entry.delivery(dlv).format(): now})
    pipe.execute()
    return dlv


def get(db: Backend, dlv: str) -> Delivery | None:
    h = db.redis.hgetall(db.keys.delivery(dlv))
    return Delivery.from_hash(h) if h.get("tenant") else None


def record_attempt(
    db: Backend,
    dlv: Delivery,
    *,
    attempt: dict[str, Any],
    status: DeliveryStatus,
    next_at: int | None,
    outcome: DeliveryOutcome,
) -> None:
    """Keep the attempt and count its `outcome`; move the delivery on (next attempt scheduled,
    or a final status)."""
    key = db.keys.delivery(dlv.id)
    pipe = db.redis.pipeline()
    metrics.count(pipe, db.keys, WEBHOOK_DELIVERIES, outcome.value)
    pipe.rpush(db.keys.delivery_attempts(dlv.id), json.dumps(attempt))
    pipe.expire(db.keys.delivery_attempts(dlv.id), db.settings.job_retention_seconds)
    pipe.hincrby(key, "attempts", 1)
    pipe.hset(key, mapping={"status": status, "next_at": "" if next_at is None else str(next_at)})
    if next_at is None:
        pipe.zrem(db.keys.schedule, Entry.delivery(dlv.id).format())
    else:
        pipe.zadd(db.keys.schedule, {Entry.delivery(dlv.id).format(): next_at})
    pipe.execute()


def attempts(db: Backend, dlv: str) -> list[dict[str, Any]]:
    return [json.loads(item) for item in db.redis.lrange(db.keys.delivery_attempts(dlv), 0, -1)]


def for_job(db: Backend, tenant: str, job_id: str) -> list[Delivery]:
    found = []
    for dlv in db.redis.lrange(db.keys.job_deliveries(tenant, job_id), 0, -1):
        item = get(db, dlv)
        if item is not None:
            found.append(item)
    return found


def redeliver(db: Backend, dlv: Delivery) -> None:
    """Send the same event again (same webhook-id), starting the schedule over."""
    now = db.clock.ms()
    pipe = db.redis.pipeline()
    pipe.hset(
        db.keys.delivery(dlv.id),
        mapping={"status": PENDING, "next_at": str(now), "round_start": str(dlv.attempts)},
    )
    pipe.zadd(db.keys.schedule, {Entry.delivery(dlv.id).format(): now})
    pipe.execute()


def disable_url(db: Backend, tenant: str, url: str) -> None:
    db.redis.sadd(db.keys.disabled_urls(tenant), url)


def round_start(db: Backend, dlv: str) -> int:
    """When the delivery's current round of attempts began (ms)."""
    return int(db.redis.hget(db.keys.delivery(dlv), "round_start") or 0)
