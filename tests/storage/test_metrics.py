"""The cluster's metrics in Redis: what the scripts record at each transition, what workers
flush, and the budget gauge, against a real redis-server."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from editq.job import Status
from editq.storage import jobs, limiter, metrics, money, tenants
from editq.storage.backend import Backend
from editq.storage.records import MetricField, Slot
from editq.storage.redis import prelude
from editq.telemetry import JOB_DURATION_SECONDS, PROVIDER_CALL_SECONDS, PROVIDER_CALLS
from tests.support.stack import Services, universe


@pytest.fixture
def db(services: Services) -> Iterator[Backend]:
    u = universe(services)
    yield u.db
    u.stop()


def _job(db: Backend, tenant: str, job_id: str, *, status: str, age_ms: int, **extra: str) -> None:
    now = db.clock.ms()
    fields = {
        "id": job_id,
        "tenant": tenant,
        "status": status,
        "model": "gpt-image-1",
        "priority": "batch",
        "created_at": str(now - age_ms),
        "token": "tok",
        "reserved": "0",
        "budget_day": "2026-11-26",
        "budget_month": "2026-11",
        **extra,
    }
    db.redis.hset(db.keys.job(tenant, job_id), mapping=fields)


def _value(db: Backend, name: str, *labels: str) -> float:
    series = metrics.read(db)[name]
    return sum(s.value for values, s in series.items() if values[: len(labels)] == labels)


def test_the_lua_field_builder_matches_python(db: Backend) -> None:
    script = db.redis.register_script(prelude() + "\nreturn R.metric(unpack(ARGV, 2))")
    for family, labels in ((PROVIDER_CALLS, ("gpt-image-1", "ok")), (JOB_DURATION_SECONDS, ("failed", "3"))):
        assert (
            script(keys=[], args=[db.keys.prefix, family.name, *labels])
            == MetricField(family, labels).format()
        )
    assert script(keys=[], args=[db.keys.prefix, "x", "a|b", ""]) == "x|a_b|none"


def test_cancel_and_expiry_count_once_with_their_age(db: Backend) -> None:
    _job(db, "acme", "j1", status="queued", age_ms=2_500)
    _job(db, "acme", "j2", status="queued", age_ms=1_000, deadline=str(db.clock.ms() - 1))
    assert jobs.cancel(db, "acme", "j1") is Status.CANCELED
    assert isinstance(jobs.cancel(db, "acme", "j1"), jobs.Refused)  # already ended: not counted again
    assert jobs.cancel(db, "acme", "j2", mode=Status.EXPIRED) is Status.EXPIRED
    found = metrics.read(db)
    finished = {values: s.value for values, s in found["editq_jobs_finished"].items()}
    assert finished == {("canceled", "gpt-image-1"): 1, ("expired", "gpt-image-1"): 1}
    canceled = found["editq_job_duration_seconds"][("canceled",)]
    assert sum(canceled.buckets) == 1
    assert 2.4 < canceled.sum < 60
    assert canceled.cumulative(JOB_DURATION_SECONDS)[-1] == ("+Inf", 1.0)
    assert found["editq_job_queue_seconds"] == {}  # neither started


def test_a_lost_worker_counts_a_retry_then_a_failure(db: Backend) -> None:
    tenants.create(db, "acme")
    _job(db, "acme", "j1", status="running", age_ms=100)
    slot = Slot("acme", "j1")
    db.redis.zadd(db.keys.inflight, {slot.format(): db.clock.ms() - 1})
    assert jobs.reap(db, slot) is jobs.Reaped.REQUEUED
    assert _value(db, "editq_retries", "worker_lost") == 1
    db.redis.hset(db.keys.job("acme", "j1"), mapping={"status": "running", "losses": "99"})
    db.redis.zadd(db.keys.inflight, {slot.format(): db.clock.ms() - 1})
    assert jobs.reap(db, slot) is jobs.Reaped.FAILED
    assert _value(db, "editq_retries", "worker_lost") == 1
    assert _value(db, "editq_jobs_finished", "failed") == 1


def test_worker_increments_go_out_with_the_heartbeat(db: Backend) -> None:
    recorder = metrics.Recorder()
    recorder.count(PROVIDER_CALLS, "gpt-image-1", "rate_limited")
    recorder.observe(PROVIDER_CALL_SECONDS, 0.7, "gpt-image-1")
    limiter.heartbeat(db, "w1", 4, 30, recorder)
    recorder.count(PROVIDER_CALLS, "gpt-image-1", "rate_limited")
    metrics.flush(db, recorder)
    assert _value(db, "editq_provider_calls", "gpt-image-1", "rate_limited") == 2
    seconds = metrics.read(db)["editq_provider_call_seconds"][("gpt-image-1",)]
    assert (sum(seconds.buckets), seconds.sum) == (1, 0.7)
    assert recorder.drain() == {}


def test_unknown_fields_in_the_hash_are_ignored(db: Backend) -> None:
    db.redis.hset(db.keys.metrics, mapping={"bogus|x": "1", "editq_retries": "2", "editq_retries|a|b": "3"})
    assert metrics.read(db)["editq_retries"] == {}


def test_budget_ratios_are_the_top_ones_nearest_their_limits(db: Backend) -> None:
    tenants.create(db, "near", budgets={"day": 1000, "total": 10_000})
    tenants.create(db, "far", budgets={"month": 1000})
    tenants.create(db, "free")
    money.hold(db, "near", 900)
    money.hold(db, "far", 100)
    ratios = money.used_ratios(db, 2)
    assert ratios == [("near", "day", 0.9), ("far", "month", 0.1)]
    assert len(money.used_ratios(db, 10)) == 3
