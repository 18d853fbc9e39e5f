"""Credits in the money scripts, against a real redis-server: holds never overdraw the balance,
a hold priced on another plan is refused, settlement charges at most what a job held."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from editq.credits import Plan
from editq.errors import Conflict, PaymentRequired
from editq.job import Job, Status
from editq.storage import credits, jobs, money, tenants
from editq.storage.backend import Backend
from tests.support.stack import Services, universe

PLAN = Plan("basic", credit_micros=10_000, markup_ppm=0)


@pytest.fixture
def db(services: Services) -> Iterator[Backend]:
    u = universe(services)
    tenants.create(u.db, "acme")
    credits.create_plan(u.db, PLAN)
    yield u.db
    u.stop()


def test_holds_reserve_credits_up_to_the_balance_and_release_them(db: Backend) -> None:
    credits.assign(db, "acme", "basic")
    credits.top_up(db, "acme", 10, "first")
    held = [money.hold(db, "acme", 0, plan="basic", credits=4) for _ in range(2)]
    with pytest.raises(PaymentRequired) as refused:
        money.hold(db, "acme", 0, plan="basic", credits=3)
    assert refused.value.code == "insufficient_credits"
    assert refused.value.extra == {"balance": 10, "available": 2, "estimated_credits": 3}
    assert credits.balance(db, "acme").reserved == 8
    assert money.release_hold(db, held[0].id)
    assert not money.release_hold(db, held[0].id)
    assert credits.balance(db, "acme") == credits.Balance("basic", 10, 4)


def test_a_hold_priced_on_another_plan_is_refused_and_holds_nothing(db: Backend) -> None:
    with pytest.raises(Conflict) as refused:
        money.hold(db, "acme", 100, plan="basic", credits=1)
    assert refused.value.code == "plan_changed"
    credits.assign(db, "acme", "basic")
    with pytest.raises(Conflict):
        money.hold(db, "acme", 100)  # priced as off any plan
    assert credits.balance(db, "acme").reserved == 0
    assert money.budgets(db, "acme", {})["total"]["reserved_usd"] == "0.000000"


def test_a_plan_and_a_tenant_must_exist_to_be_joined(db: Backend) -> None:
    with pytest.raises(credits.NoSuchPlan):
        credits.assign(db, "acme", "nope")
    with pytest.raises(tenants.NoSuchTenant):
        credits.assign(db, "ghost", "basic")
    with pytest.raises(tenants.NoSuchTenant):
        credits.top_up(db, "ghost", 5)
    with pytest.raises(credits.PlanExists):
        credits.create_plan(db, Plan("basic", credit_micros=1, markup_ppm=5))
    assert credits.get_plan(db, "basic") == PLAN
    with pytest.raises(credits.BalanceTooLarge):
        credits.top_up(db, "acme", credits.MAX_BALANCE + 1)
    assert credits.balance(db, "acme").balance == 0


def _running_job(db: Backend, job_id: str, held: int) -> Job:
    fields = {
        "id": job_id,
        "tenant": "acme",
        "status": "running",
        "token": "7",
        "model": "gpt-image-1-mini",
        "reserved": "0",
        "budget_day": "2026-11-26",
        "budget_month": "2026-11",
        "credits_reserved": str(held),
        "credit_terms": '{"plan": "basic", "credit_micros": 10000, "markup_ppm": 0, "per_image": null}',
    }
    db.redis.hset(db.keys.job("acme", job_id), mapping=fields)
    db.redis.hincrby(db.keys.credits("acme"), "reserved", held)
    return Job.from_hash(fields)


def test_settlement_charges_at_most_the_reservation_and_only_on_success(db: Backend) -> None:
    credits.top_up(db, "acme", 100)
    over = _running_job(db, "j1", 5)
    assert jobs.finish(db, over, outcome=Status.SUCCEEDED, credits=9) is Status.SUCCEEDED
    failed = _running_job(db, "j2", 5)
    assert jobs.finish(db, failed, outcome=Status.FAILED, credits=3) is Status.FAILED
    assert credits.balance(db, "acme") == credits.Balance(None, 95, 0)
    entries = money.ledger(db, "acme")
    assert [(e["kind"], e["credits"], e["credits_released"]) for e in entries] == [
        ("topup", 100, None),
        ("released", 5, 5),
        ("released", 0, 5),
    ]
    assert entries[1]["note"] == "credits capped at the reservation"


def test_a_top_up_under_an_idempotency_key_applies_once(db: Backend) -> None:
    first = credits.top_up(db, "acme", 10, "inv 1", idempotency_key="inv-1")
    assert first == credits.TopUp(credits.Balance(None, 10, 0), replayed=False)
    credits.top_up(db, "acme", 3)
    again = credits.top_up(db, "acme", 10, "inv 1", idempotency_key="inv-1")
    assert again == credits.TopUp(credits.Balance(None, 10, 0), replayed=True)
    with pytest.raises(credits.TopUpKeyReused):
        credits.top_up(db, "acme", 10, "inv 2", idempotency_key="inv-1")
    assert credits.balance(db, "acme").balance == 13
    assert [e["credits"] for e in money.ledger(db, "acme")] == [10, 3]
