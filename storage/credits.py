"""Credit plans, the plan each tenant is on, and tenants' credit balances and top-ups.

A balance is two counters in `credits:{tenant}`: `balance` (top-ups less charges) and
`reserved` (what unfinished jobs hold). The scripts that move money move credits with it:
hold.lua reserves a job's credits (never more than the balance less what is held), submit.lua
gives them to the job, and `settle` (finish, cancel, reap, a reused submit) charges at most
what the job held and releases the rest; release_hold.lua and reprice.lua as their names say.
So the balance never goes below what is held, and never below zero.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

from editq.credits import Plan
from editq.storage import idempotency
from editq.storage.backend import Backend
from editq.storage.tenants import NoSuchTenant, TenantError

#: Largest balance a tenant may hold, in credits (Lua's integers stay exact far beyond it).
MAX_BALANCE = 10**15


class PlanExists(TenantError):
    """A plan by that name exists already (plans never change)."""


class NoSuchPlan(TenantError):
    """No plan by that name."""


class BalanceTooLarge(TenantError):
    """The top-up would take the balance over `MAX_BALANCE`."""


@dataclass(frozen=True)
class Balance:
    """A tenant's credits: `balance` less what its unfinished jobs hold is `available`."""

    plan: str | None
    balance: int
    reserved: int

    @property
    def available(self) -> int:
        return max(0, self.balance - self.reserved)

    def public(self) -> dict[str, Any]:
        return {
            "plan": self.plan,
            "balance": self.balance,
            "reserved": self.reserved,
            "available": self.available,
        }


def create_plan(db: Backend, plan: Plan) -> Plan:
    """Store a new plan, or raise `PlanExists`."""
    record = plan.to_record()
    if not db.scripts.run("plan_create", plan.name, *(part for item in record.items() for part in item)):
        raise PlanExists(f"plan {plan.name!r} already exists")
    return plan


def get_plan(db: Backend, name: str) -> Plan | None:
    found = db.redis.hgetall(db.keys.plan(name))
    return Plan.from_record(found) if found else None


def plans(db: Backend) -> list[Plan]:
    """Every plan, by name."""
    names = sorted(db.redis.smembers(db.keys.plans))
    pipe = db.redis.pipeline(transaction=False)
    for name in names:
        pipe.hgetall(db.keys.plan(name))
    return [Plan.from_record(h) for h in pipe.execute() if h]


def plan_of(db: Backend, tenant: str) -> Plan | None:
    """The plan `tenant` is on now, if any."""
    name = db.redis.hget(db.keys.tenant(tenant), "plan")
    return get_plan(db, name) if name else None


def assign(db: Backend, tenant: str, plan: str | None) -> None:
    """Put `tenant` on `plan` (None: on none). Only jobs submitted from now on use it."""
    result = db.scripts.run("tenant_plan", tenant, plan or "")
    if result[0] == "no_tenant":
        raise NoSuchTenant(f"no tenant {tenant!r}")
    if result[0] == "no_plan":
        raise NoSuchPlan(f"no plan {plan!r}")


def balance(db: Backend, tenant: str) -> Balance:
    pipe = db.redis.pipeline(transaction=False)
    pipe.hget(db.keys.tenant(tenant), "plan")
    pipe.hmget(db.keys.credits(tenant), "balance", "reserved")
    plan, (total, reserved) = pipe.execute()
    return Balance(plan or None, int(total or 0), int(reserved or 0))


class TopUpKeyReused(TenantError):
    """The top-up's `Idempotency-Key` was used with another top-up."""


@dataclass(frozen=True)
class TopUp:
    """What a top-up left: the balance it made, and whether it is a replay of an earlier one."""

    balance: Balance
    replayed: bool = False


def top_up(
    db: Backend, tenant: str, credits: int, note: str = "", *, idempotency_key: str | None = None
) -> TopUp:
    """Add `credits` (> 0) to the balance, with a `topup` entry in the ledger. With an
    `idempotency_key`, a retry of the same top-up (same credits and note) adds nothing and
    answers the balance the first one made; another top-up under the key is refused."""
    if credits < 1:
        raise TenantError("a top-up is at least 1 credit")
    key = idempotency.key_hash(idempotency_key) if idempotency_key else ""
    fingerprint = hashlib.sha256(json.dumps([credits, note]).encode()).hexdigest()
    result = db.scripts.run(
        "credits_topup",
        tenant,
        credits,
        MAX_BALANCE,
        note,
        key,
        fingerprint,
        db.settings.idempotency_ttl_seconds,
    )
    if result[0] == "no_tenant":
        raise NoSuchTenant(f"no tenant {tenant!r}")
    if result[0] == "too_large":
        raise BalanceTooLarge(f"the balance would be over {MAX_BALANCE} credits (it is {result[1]})")
    if result[0] == "key_reused":
        raise TopUpKeyReused("this Idempotency-Key was used with a different top-up")
    plan = db.redis.hget(db.keys.tenant(tenant), "plan")
    return TopUp(Balance(plan or None, int(result[1]), int(result[2])), replayed=result[3] == 1)
