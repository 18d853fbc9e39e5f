"""The shared limiter, fair admission and priorities, with real worker processes."""

from __future__ import annotations

import signal
import threading
import time
from collections import Counter
from collections.abc import Callable
from typing import Any

import httpx

from tests import images
from tests.support.stack import PrivateSim, Universe


def _upload(client: httpx.Client) -> str:
    return str(
        client.post("/v1/uploads", files={"file": ("a.png", images.scene(64, 48), "image/png")}).json()["id"]
    )


def _batch(client: httpx.Client, image_id: str, count: int, **extra: Any) -> list[str]:
    items = [
        {"image_ids": [image_id], "prompt": f"rain {i}", "quality": "low", **extra} for i in range(count)
    ]
    answer = client.post("/v1/edits/batch", json={"items": items}).json()
    assert answer["accepted"] == count, answer
    return [item["job"]["id"] for item in answer["items"]]


def _records(u: Universe, tenant: str, ids: list[str]) -> list[dict[str, str]]:
    pipe = u.redis.pipeline()
    for job_id in ids:
        pipe.hgetall(f"{u.prefix}:job:{tenant}:{job_id}")
    return list(pipe.execute())


def _wait_all(u: Universe, tenant: str, ids: list[str], timeout: float = 120.0) -> list[dict[str, str]]:
    deadline = time.monotonic() + timeout
    while True:
        records = _records(u, tenant, ids)
        if all(r.get("status") in ("succeeded", "failed") for r in records):
            return records
        if time.monotonic() > deadline:
            states = [r.get("status") for r in records]
            raise AssertionError(f"not finished after {timeout}s: {states}")
        time.sleep(0.2)


def test_limit_holds_across_three_worker_processes(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    private_sim(latency_min=0.2, latency_max=0.4)
    ipm, inflight = 300, 4
    u = make_stack(
        workers=3,
        concurrency=6,
        OPENAI_BASE_URL=private_sim.url,
        EDITQ_PROVIDER_IPM=str(ipm),
        EDITQ_PROVIDER_RPM=str(ipm),
        EDITQ_PROVIDER_MAX_INFLIGHT=str(inflight),
        EDITQ_LIMITER_BURST_SECONDS="1",
    )
    tenant, key = u.tenant()
    with u.client(key) as client:
        ids = _batch(client, _upload(client), 40)
    records = _wait_all(u, tenant, ids)
    assert all(r["status"] == "succeeded" for r in records)
    admitted = sorted(int(r["admitted_at"]) for r in records)
    rate = ipm / 60_000  # per ms
    burst = max(1, int(ipm * 1 / 60))
    for i in range(len(admitted)):
        for j in range(i, len(admitted)):
            assert j - i + 1 <= rate * (admitted[j] - admitted[i]) + burst + 1, (
                i,
                j,
                admitted[j] - admitted[i],
            )
    spans = [(int(r["started_at"]), int(r["finished_at"])) for r in records]
    most = max(sum(1 for s, f in spans if s <= t < f) for t, _ in spans)
    assert most <= inflight
    assert {r["runs"] for r in records} == {"1"}
    assert len({r["worker"] for r in records}) >= 2
    assert private_sim.stats()["by_status"].get("429", 0) == 0


def test_killed_workers_slots_come_back(make_stack: Callable[..., Universe], private_sim: PrivateSim) -> None:
    private_sim(latency_min=4.0, latency_max=4.0)
    u = make_stack(workers=1, concurrency=6, OPENAI_BASE_URL=private_sim.url, EDITQ_PROVIDER_MAX_INFLIGHT="2")
    tenant, key = u.tenant()
    with u.client(key) as client:
        ids = _batch(client, _upload(client), 3)
        # both slots taken by runs that have started (a slot is taken at admission, before the
        # worker claims the job; a kill in between is no loss, just a re-dispatch)
        running = f"{u.prefix}:running:{tenant}"

        def started() -> int:
            return sum(u.redis.hget(f"{u.prefix}:job:{tenant}:{i}", "status") == "running" for i in ids)

        deadline = time.monotonic() + 20
        while started() < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        assert started() == 2
        assert u.redis.zcard(running) == 2
        assert u.redis.zcount(f"{u.prefix}:inflight", "-inf", "+inf") == 2
        u.workers[0].kill()
        private_sim(latency_min=0.1, latency_max=0.2)
        u.start_worker(6)
        records = _wait_all(u, tenant, ids, timeout=60)
    assert [r["status"] for r in records] == ["succeeded"] * 3
    assert sorted(int(r.get("losses") or 0) for r in records) == [0, 1, 1]
    assert u.redis.zcard(f"{u.prefix}:inflight") == 0
    assert u.redis.zcard(f"{u.prefix}:running:{tenant}") == 0


def test_a_late_tenant_is_served_before_the_flood(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    private_sim(latency_min=0.3, latency_max=0.3)
    u = make_stack(workers=1, concurrency=6, OPENAI_BASE_URL=private_sim.url, EDITQ_PROVIDER_MAX_INFLIGHT="2")
    flood, flood_key = u.tenant()
    late, late_key = u.tenant()
    with u.client(flood_key) as a, u.client(late_key) as b:
        flood_ids = _batch(a, _upload(a), 40)
        time.sleep(1.0)
        late_ids = _batch(b, _upload(b), 2)
        submitted = u.settings.clock.ms()
    late_records = _wait_all(u, late, late_ids)
    flood_records = _wait_all(u, flood, flood_ids)
    late_start = max(int(r["started_at"]) for r in late_records)
    waiting_then = [r for r in flood_records if int(r["admitted_at"]) >= submitted]
    assert len(waiting_then) >= 30
    behind = [r for r in waiting_then if int(r["started_at"]) > late_start]
    assert len(behind) >= len(waiting_then) - 4, "the late tenant waited behind the flood"


def test_interactive_runs_before_batch(make_stack: Callable[..., Universe], private_sim: PrivateSim) -> None:
    private_sim(latency_min=0.3, latency_max=0.3)
    u = make_stack(workers=1, concurrency=6, OPENAI_BASE_URL=private_sim.url, EDITQ_PROVIDER_MAX_INFLIGHT="1")
    tenant, key = u.tenant()
    with u.client(key) as client:
        image = _upload(client)
        batch_ids = _batch(client, image, 12, priority="batch")
        time.sleep(0.5)
        urgent = _batch(client, image, 1, priority="interactive")
        position = client.get(f"/v1/edits/{batch_ids[-1]}").json()["queue_position"]
    records = _wait_all(u, tenant, batch_ids + urgent)
    urgent_start = int(records[-1]["started_at"])
    later_batch = [r for r in records[:-1] if int(r["started_at"]) > urgent_start]
    assert len(later_batch) >= 8
    assert position is not None
    assert position >= 8


def test_admission_takes_only_work_that_can_run_now(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    """Each worker admits only for its own free edit threads: live slot leases never exceed the
    cluster's slots, no worker ever runs more jobs than it has threads for, admitted jobs start
    at once, and nothing goes through the broker's edit queue."""
    private_sim(latency_min=0.2, latency_max=0.5)
    u = make_stack(
        workers=2,
        concurrency=4,
        OPENAI_BASE_URL=private_sim.url,
        EDITQ_PROVIDER_MAX_INFLIGHT="50",
        EDITQ_PROVIDER_IPM="600",
    )
    tenant, key = u.tenant()
    leases: list[int] = []
    per_worker: list[int] = []
    broker: list[int] = []
    ids: list[str] = []
    stop = threading.Event()

    def sample() -> None:
        while not stop.is_set():
            now_ms = int(u.redis.time()[0]) * 1000
            leases.append(int(u.redis.zcount(f"{u.prefix}:inflight", f"({now_ms}", "+inf")))
            broker.append(int(u.redis.llen(f"{u.prefix}:celery:editq.edits")))
            pipe = u.redis.pipeline()
            for job_id in list(ids):
                pipe.hmget(f"{u.prefix}:job:{tenant}:{job_id}", "status", "worker")
            running = Counter(worker for status, worker in pipe.execute() if status == "running")
            per_worker.append(max(running.values(), default=0))
            time.sleep(0.05)

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    with u.client(key) as client:
        ids.extend(_batch(client, _upload(client), 40))
    records = _wait_all(u, tenant, ids)
    stop.set()
    sampler.join()
    slots = 4 - 2  # each worker keeps two of its threads for webhooks and housekeeping
    assert max(leases) <= 2 * slots
    assert 0 < max(per_worker) <= slots
    assert max(broker) == 0
    waits = [int(r["started_at"]) - int(r["admitted_at"]) for r in records]
    assert max(waits) <= 3000, sorted(waits)[-5:]
    assert all(r["status"] == "succeeded" for r in records)


def test_a_stopping_worker_finishes_its_jobs_and_takes_no_more(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    """SIGTERM with a backlog: the two running jobs finish, and neither the dispatcher nor an
    edit thread (which would admit its next job as it settles) takes another."""
    private_sim(latency_min=2.0, latency_max=2.0)
    u = make_stack(workers=1, concurrency=4, beat=False, OPENAI_BASE_URL=private_sim.url)
    tenant, key = u.tenant()
    with u.client(key) as client:
        ids = _batch(client, _upload(client), 6)
    deadline = time.monotonic() + 30
    while sum(r.get("status") == "running" for r in _records(u, tenant, ids)) < 2:
        assert time.monotonic() < deadline, [r.get("status") for r in _records(u, tenant, ids)]
        time.sleep(0.05)
    worker = u.workers[0]
    worker.signal(signal.SIGTERM)
    assert worker.popen.wait(60) == 0
    statuses = sorted(str(r.get("status")) for r in _records(u, tenant, ids))
    assert statuses == ["queued"] * 4 + ["succeeded"] * 2
    now_ms = int(u.redis.time()[0]) * 1000
    assert u.redis.zcount(f"{u.prefix}:inflight", f"({now_ms}", "+inf") == 0  # no slot left taken
