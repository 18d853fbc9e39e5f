"""Budgets, holds and the ledger. Every movement of money is one Lua script.

A submission first *holds* its estimate against every budget of its tenant (day, month,
total); the hold becomes the job's reservation when the job is committed, or is released if
the submission fails. Settlement (in `finish`, `cancel`, `reap`) swaps the reservation for what
the provider billed. Money is attributed to the UTC day and month in which the job was admitted.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Any

from editq.cost import usd
from editq.errors import Conflict, PaymentRequired
from editq.storage.backend import Backend
from editq.storage.records import UsageField

#: A hold outlives the API request that made it by this much at most, then beat releases it.
HOLD_TTL_MS = 120_000


@dataclass(frozen=True)
class Hold:
    id: str
    amount: int
    day: str
    month: str
    credits: int = 0


def hold(db: Backend, tenant: str, amount: int, *, plan: str = "", credits: int = 0) -> Hold:
    """Reserve `amount` micro-dollars against every budget and, when the tenant is on `plan`,
    `credits` against its balance; or refuse: 402 over a budget or the balance, 409 when the
    tenant's plan is no longer `plan` (the job was priced on another)."""
    hold_id = secrets.token_hex(12)
    result = db.scripts.run("hold", tenant, hold_id, amount, HOLD_TTL_MS, plan, credits)
    if result[0] == "plan_changed":
        raise Conflict(
            "plan_changed", "the tenant's credit plan changed while this job was priced; retry", None
        )
    if result[0] == "insufficient_credits":
        balance, available = int(result[1]), int(result[2])
        raise PaymentRequired(
            "insufficient_credits",
            f"this job may cost up to {credits} credits; {available} of the balance of {balance} "
            "are available",
            None,
            balance=balance,
            available=available,
            estimated_credits=credits,
        )
    if result[0] == "budget_exceeded":
        period, limit, remaining = str(result[1]), int(result[2]), int(result[3])
        raise PaymentRequired(
            "budget_exceeded",
            f"this job's estimate of ${usd(amount)} does not fit the {period} budget "
            f"(${usd(limit)}, ${usd(remaining)} remaining)",
            None,
            period=period,
            limit_usd=usd(limit),
            remaining_usd=usd(remaining),
            estimated_usd=usd(amount),
        )
    return Hold(hold_id, amount, str(result[1]), str(result[2]), credits)


def release_hold(db: Backend, hold_id: str) -> bool:
    return bool(db.scripts.run("release_hold", hold_id))


def expire_holds(db: Backend) -> int:
    """Release holds whose API request died before committing its job."""
    now_ms = db.clock.ms()
    released = 0
    for hold_id in db.redis.zrangebyscore(db.keys.holds, "-inf", now_ms, start=0, num=500):
        released += release_hold(db, hold_id)
    return released


def _bucket(db: Backend, key: str) -> tuple[int, int]:
    h = db.redis.hgetall(key)
    return int(h.get("reserved", 0)), int(h.get("spent", 0))


def budgets(db: Backend, tenant: str, limits: dict[str, int | None]) -> dict[str, Any]:
    """Each budget period now: limit, spent, reserved and what remains."""
    today = db.clock.today()
    periods = {
        "day": db.keys.budget_day(tenant, today.isoformat()),
        "month": db.keys.budget_month(tenant, today.isoformat()[:7]),
        "total": db.keys.budget_total(tenant),
    }
    result: dict[str, Any] = {}
    for period, key in periods.items():
        reserved, spent = _bucket(db, key)
        limit = limits.get(period)
        result[period] = {
            "limit_usd": None if limit is None else usd(limit),
            "spent_usd": usd(spent),
            "reserved_usd": usd(reserved),
            "remaining_usd": None if limit is None else usd(max(0, limit - spent - reserved)),
        }
    return result


def usage(db: Backend, tenant: str, first: date, last: date, group_by: str) -> list[dict[str, Any]]:
    """Spend per day or per model over [first, last], from the per-day aggregates."""
    if (last - first).days > 400:
        raise ValueError("at most 400 days per query")
    days = [first + timedelta(days=i) for i in range((last - first).days + 1)]
    pipe = db.redis.pipeline(transaction=False)
    for day in days:
        pipe.hgetall(db.keys.usage(tenant, day.isoformat()))
    groups: dict[str, dict[str, int]] = {}
    for day, h in zip(days, pipe.execute(), strict=True):
        for field, value in h.items():
            parsed = UsageField.parse(field)
            model, kind = parsed.model, parsed.kind
            name = day.isoformat() if group_by == "day" else model
            group = groups.setdefault(name, {"spent": 0, "settled": 0, "released": 0, "reused": 0})
            group[kind] = group.get(kind, 0) + int(value)
    key = "day" if group_by == "day" else "model"
    return [
        {
            key: name,
            "spent_usd": usd(g["spent"]),
            "spent_micros": g["spent"],
            "jobs_settled": g["settled"],
            "jobs_released": g["released"],
            "jobs_reused": g["reused"],
        }
        for name, g in sorted(groups.items())
    ]


def _int_or_none(text: str | None) -> int | None:
    return int(text) if text else None


def ledger(
    db: Backend, tenant: str, *, start: str = "-", end: str = "+", count: int = 1000
) -> list[dict[str, Any]]:
    """Ledger entries oldest first; `start`/`end` are stream ids or ms timestamps."""
    entries = db.redis.xrange(db.keys.ledger(tenant), min=start, max=end, count=count)
    return [
        {
            "id": entry_id,
            "job": fields["job"],
            "kind": fields["kind"],
            "amount_micros": int(fields["amount"]),
            "amount_usd": usd(int(fields["amount"])),
            "released_micros": int(fields.get("released", 0)),
            "model": fields.get("model", ""),
            "usage": fields.get("usage") or None,
            "day": fields.get("day"),
            "at": int(fields.get("at", 0)),
            "note": fields.get("note") or None,
            "lane": fields.get("lane") or "interactive",
            "credits": _int_or_none(fields.get("credits")),
            "credits_released": _int_or_none(fields.get("credits_released")),
        }
        for entry_id, fields in entries
    ]


PERIODS = ("day", "month", "total")


def used_ratios(db: Backend, top: int) -> list[tuple[str, str, float]]:
    """(tenant, period, (reserved + spent) / limit) for the `top` budgets nearest their limits,
    nearest first (two pipelined round trips, whatever the number of tenants)."""
    tenants = sorted(db.redis.smembers(db.keys.tenants))
    pipe = db.redis.pipeline(transaction=False)
    for tenant in tenants:
        pipe.hmget(db.keys.tenant(tenant), *(f"budget_{p}" for p in PERIODS))
    day = db.clock.today().isoformat()
    wanted: list[tuple[str, str, int]] = []
    buckets = db.redis.pipeline(transaction=False)
    for tenant, limits in zip(tenants, pipe.execute() if tenants else [], strict=True):
        keys = (
            db.keys.budget_day(tenant, day),
            db.keys.budget_month(tenant, day[:7]),
            db.keys.budget_total(tenant),
        )
        for period, raw, key in zip(PERIODS, limits, keys, strict=True):
            if raw and int(raw) > 0:
                wanted.append((tenant, period, int(raw)))
                buckets.hmget(key, "reserved", "spent")
    replies = buckets.execute() if wanted else []
    ratios = [
        (tenant, period, (int(reserved or 0) + int(spent or 0)) / limit)
        for (tenant, period, limit), (reserved, spent) in zip(wanted, replies, strict=True)
    ]
    ratios.sort(key=lambda item: -item[2])
    return ratios[:top]
