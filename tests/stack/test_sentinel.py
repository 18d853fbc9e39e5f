"""Redis Sentinel: the whole stack (API, workers, beat, Celery's broker) on a `sentinel://` URL;
the master is SIGKILLed while jobs run, the replica is promoted, submissions go on, and the
killed master comes back as a replica. No accepted job is lost, and the books balance."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from editq.ops import launcher
from tests.support.faults import IMAGE, TERMINAL, Rig, log_figures
from tests.support.sentinel import SentinelSet
from tests.support.stack import PrivateSim, Services, universe

pytestmark = pytest.mark.faults


@pytest.fixture
def sentinels(services: Services, tmp_path: Path) -> Iterator[SentinelSet]:
    made = SentinelSet(tmp_path / "redis", services.logs)
    try:
        yield made.start()
    finally:
        made.stop()


@pytest.fixture
def rig(services: Services, sentinels: SentinelSet, tmp_path: Path) -> Iterator[Rig]:
    s3_port, sim_port = launcher.free_port(), launcher.free_port()
    s3 = launcher.s3_server(
        s3_port, tmp_path / "s3", access_key="editq-test", secret_key="editq-test-secret", echo=False
    )
    sim = PrivateSim(
        launcher.simulator(sim_port, args=["--latency", "0.3-0.8"], echo=False),
        f"http://127.0.0.1:{sim_port}",
    )
    own = Services(sentinels.url, f"http://127.0.0.1:{s3_port}", sim.url, services.logs)
    # every accepted job is on the replica before its 202 (the API's Redis timeout is 1 s)
    u = universe(
        own, OPENAI_BASE_URL=sim.url, EDITQ_REDIS_WAIT_REPLICAS="1", EDITQ_REDIS_WAIT_TIMEOUT_MS="500"
    )
    made = Rig(u, sim, sentinels.procs["a"], s3, sentinels.ports["a"], tmp_path)
    try:
        u.start_api()
        u.start_worker(4, wait=False)
        u.start_worker(4, wait=False)
        u.wait_for_workers(2)
        u.start_beat()
        made.tenant, made.key = u.tenant(budgets={"total": 1_000_000_000})
        yield made
    finally:
        u.stop()
        sim.proc.stop()
        s3.stop()


def _submit(rig: Rig, count: int, timeout: float = 30.0) -> int:
    """`count` jobs, each retried with its Idempotency-Key until it is accepted (202) — a 503
    while the Sentinels fail over is the answer to retry; a key left in flight by a request cut
    off mid-way is replaced. Returns the number of answers that were not 202."""
    refused = 0
    with rig.u.client(rig.key, timeout=10.0) as client:
        for i in range(count):
            key = uuid.uuid4().hex
            deadline = time.monotonic() + timeout
            while True:
                try:
                    response = client.post(
                        "/v1/edits",
                        data={"prompt": f"rain {i}", "reuse": "false"},
                        files=[("image", IMAGE)],
                        headers={"Idempotency-Key": key},
                    )
                except httpx.TransportError:
                    response = None
                if response is not None and response.status_code == 202:
                    job_id = str(response.json()["id"])
                    if job_id not in rig.accepted:
                        rig.accepted.append(job_id)
                    break
                refused += 1
                assert response is None or response.status_code in (409, 503), response.text
                assert time.monotonic() < deadline, "submissions still refused after the failover"
                if response is not None and response.status_code == 409:
                    key = uuid.uuid4().hex  # its request died before storing anything
                time.sleep(0.2)
    return refused


def _wait_running(rig: Rig, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while rig.u.redis.zcard(f"{rig.u.prefix}:inflight") < at_least:
        assert time.monotonic() < deadline, "jobs did not start"
        time.sleep(0.05)


def test_master_sigkilled_mid_run_loses_no_accepted_job(
    rig: Rig, sentinels: SentinelSet, services: Services
) -> None:
    flower_port = launcher.free_port()
    flower = launcher.flower(
        rig.u.env, flower_port, "admin:flower-pw", echo=False, log=services.logs / "flower.log"
    )
    rig.u.procs.append(flower)
    _submit(rig, 16)
    _wait_running(rig, 2)
    assert sentinels.master_name() == "a"
    started = time.monotonic()
    sentinels.procs["a"].kill()  # SIGKILL: no shutdown, no last AOF write
    refused = _submit(rig, 1)  # through the failover: the API answers 503 until "b" is master
    outage_seconds = round(time.monotonic() - started, 1)
    refused += _submit(rig, 15)
    sentinels.wait_sentinels_agree(sentinels.ports["b"])
    # the old master comes back with its AOF; the Sentinels make it a replica of "b"
    rig.redis = sentinels.start_server("a")
    sentinels.wait_replicated(sentinels.ports["b"], replicas=1)
    _submit(rig, 8)
    # the API's event reader (Prefer: wait, SSE) found the new master too
    with rig.u.client(rig.key) as client:
        waited = client.post(
            "/v1/edits",
            data={"prompt": "rain", "reuse": "false"},
            files=[("image", IMAGE)],
            headers={"Prefer": "wait=30"},
        )
    assert waited.status_code == 200, waited.text
    assert waited.json()["status"] == "succeeded"
    rig.accepted.append(str(waited.json()["id"]))

    jobs = rig.wait_all(timeout=90)
    assert {job["status"] for job in jobs.values()} == {"succeeded"}, jobs
    assert len(rig.accepted) == 41
    r, p, t = rig.u.redis, rig.u.prefix, rig.tenant
    for job_id in rig.accepted:
        statuses = [f["status"] for _, f in r.xrange(f"{p}:ev:{t}:{job_id}")]
        assert [s for s in statuses if s in TERMINAL] == ["succeeded"], (job_id, statuses)
    # the ledger: one closing entry per job, summing to what the jobs cost
    ledger = rig.ledger()
    closing = [e for e in ledger if e["kind"] in ("settled", "released", "reused")]
    assert sorted(e["job"] for e in closing) == sorted(rig.accepted), "one settlement per job"
    assert sum(int(e["amount"]) for e in closing) == sum(
        int(r.hget(f"{p}:job:{t}:{j}", "actual") or 0) for j in rig.accepted
    )
    # the budget's spend is the ledger's: settlements, and calls billed for runs lost mid-way
    spent = int(r.hget(f"{p}:budget:{t}:total", "spent") or 0)
    assert spent == sum(int(e["amount"]) for e in ledger if e["kind"] in ("settled", "lost_call"))
    # every call the provider answered is billed in the ledger, or marked as possibly billed
    lost = len([e for e in ledger if e["kind"] == "lost_call"])
    unknown = len([e for e in ledger if e["kind"] == "unknown_charge"])
    billed = len([e for e in closing if e.get("usage")]) + lost
    assert billed <= rig.provider_ok() <= billed + unknown, (billed, unknown, rig.provider_ok())
    # what stays reserved is exactly the holds of requests cut off by the failover (they lapse)
    holds = [r.hgetall(f"{p}:hold:{h}") for h in r.zrange(f"{p}:holds", 0, -1)]
    reserved = int(r.hget(f"{p}:budget:{t}:total", "reserved") or 0)
    assert reserved == sum(int(h.get("amount") or 0) for h in holds if h.get("tenant") == t)
    # no provider slot stays taken once its lease could have lapsed
    deadline = time.monotonic() + 30
    while r.zcard(f"{p}:inflight"):
        assert time.monotonic() < deadline, r.zrange(f"{p}:inflight", 0, -1, withscores=True)
        time.sleep(0.2)
    # Flower's event reader followed the failover: it shows the tasks run on the new master
    after = rig.accepted[16:]
    deadline = time.monotonic() + 30
    while True:
        shown = httpx.get(
            f"http://127.0.0.1:{flower_port}/api/tasks", auth=("admin", "flower-pw"), timeout=10
        )
        names = {task_id.rsplit(".", 1)[0] for task_id in shown.json()} if shown.status_code == 200 else set()
        if set(after) <= names:
            break
        assert time.monotonic() < deadline, (shown.status_code, sorted(set(after) - names)[:5])
        time.sleep(0.5)
    dead = [proc.name for proc in rig.u.procs if not proc.alive()]
    assert not dead, f"died: {dead}"
    log_figures(
        "sentinel_failover",
        {
            "jobs": len(rig.accepted),
            "refused_answers": refused,
            "kill_to_first_202_seconds": outage_seconds,
            "provider_ok": rig.provider_ok(),
            "lost_calls": lost,
            "unknown_charges": unknown,
            "holds_left": len(holds),
        },
        services.logs,
    )
