"""The fault suite: each test breaks one part of a running stack while jobs are in flight and
then checks the same promises (Rig.check): every accepted job ends in exactly one terminal
state, one settlement each, the ledger accounts for every call the provider answered, nothing
stays reserved or in flight, and no worker is left dead."""

from __future__ import annotations

import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from editq.ops import launcher
from tests.support.faults import Rig, log_figures, make_rig, stop_rig
from tests.support.receiver import Receiver
from tests.support.stack import Services, universe

pytestmark = pytest.mark.faults


@pytest.fixture
def rig(services: Services, tmp_path: Path) -> Iterator[Rig]:
    made = make_rig(services, tmp_path, universe)
    try:
        yield made
    finally:
        stop_rig(made)


def _wait_running(rig: Rig, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while rig.u.redis.zcard(f"{rig.u.prefix}:inflight") < at_least:
        assert time.monotonic() < deadline, "jobs did not start"
        time.sleep(0.05)


def test_redis_restart_with_jobs_in_flight_keeps_workers(rig: Rig, services: Services) -> None:
    rig.submit(16)
    _wait_running(rig, 2)
    started = time.monotonic()
    rig.restart_redis(down_seconds=2.0)
    rig.submit(8)  # the API and the workers are back on the restarted Redis
    figures = rig.check()
    assert figures["statuses"] == {"succeeded": 24}
    log_figures("redis_restart", figures | {"seconds": round(time.monotonic() - started, 1)}, services.logs)


def test_workers_sigkilled_mid_call(rig: Rig, services: Services) -> None:
    rig.sim(latency_min=1.0, latency_max=2.0)
    rig.submit(30)
    kills = 0
    for _ in range(3):
        _wait_running(rig, 2)
        time.sleep(0.5)  # calls are out
        victim = next(w for w in rig.u.workers if w.alive())
        victim.kill()
        # what `editq run`, compose or Kubernetes do: a fresh worker takes its place
        rig.u.workers.remove(victim)
        rig.u.procs.remove(victim)
        rig.u.start_worker(4, wait=False)
        kills += 1
    figures = rig.check(timeout=120)
    assert figures["statuses"] == {"succeeded": 30}
    assert figures["unknown_charges"] + figures["lost_calls"] >= 1
    log_figures("worker_sigkill", figures | {"kills": kills}, services.logs)


def test_s3_frozen_then_thawed(services: Services, tmp_path: Path) -> None:
    rig = make_rig(services, tmp_path, universe, EDITQ_S3_TIMEOUT="2")
    try:
        rig.sim(latency_min=0.5, latency_max=1.0)
        rig.submit(16)
        _wait_running(rig, 2)
        os.kill(rig.s3.pid, signal.SIGSTOP)
        try:
            time.sleep(5)
        finally:
            os.kill(rig.s3.pid, signal.SIGCONT)
        figures = rig.check(timeout=120)
        # a call whose outputs could not be stored fails and is charged (never paid twice)
        assert set(figures["statuses"]) <= {"succeeded", "failed"}
        for job in rig.wait_all().values():
            if job["status"] == "failed":
                assert job["error"]["code"] in ("output_storage_failed", "storage_unavailable"), job
        log_figures("s3_frozen", figures | {"frozen_seconds": 5}, services.logs)
    finally:
        stop_rig(rig)


def test_provider_5xx_storm_hangs_and_429_bursts(services: Services, tmp_path: Path) -> None:
    # the storm must reach the retry schedule, not pause the account (sustained 5xx pause it for
    # up to 30 s, which tests/stack/test_accounts.py covers): then the 429 phase meets real calls
    rig = make_rig(
        services,
        tmp_path,
        universe,
        EDITQ_PROVIDER_READ_TIMEOUT="1",
        EDITQ_PROVIDER_MAX_ATTEMPTS="4",
        EDITQ_ACCOUNT_ERROR_THRESHOLD="1000",
    )
    try:
        rig.sim(latency_min=0.1, latency_max=0.3, fail_rate=0.7)
        rig.submit(10)
        time.sleep(3)
        rig.sim(fail_rate=0.0, hang_rate=0.4, hang_seconds=2.0)
        rig.submit(10)
        time.sleep(3)
        rig.sim(hang_rate=0.0, rpm=20, start_full=False)
        rig.submit(10)
        time.sleep(3)
        rig.sim(rpm=None, start_full=True)
        figures = rig.check(timeout=150)
        by_status = rig.sim.stats()["by_status"]
        assert set(figures["statuses"]) <= {"succeeded", "failed"}
        assert by_status.get("500", 0) > 0
        assert by_status.get("429", 0) > 0
        for job in rig.wait_all().values():
            if job["status"] == "failed":
                assert job["error"]["code"] in ("provider_server_error", "provider_timeout"), job
        log_figures("provider_faults", figures | {"provider": by_status}, services.logs)
    finally:
        stop_rig(rig)


def test_webhook_receiver_down_then_up(rig: Rig, services: Services) -> None:
    port = launcher.free_port()
    ids = rig.submit(8, webhook_url=f"http://127.0.0.1:{port}/hook")  # nothing listens yet
    time.sleep(2)
    receiver = Receiver(port=port).start()
    try:
        figures = rig.check()
        deadline = time.monotonic() + 30
        while {r.json["data"]["id"] for r in receiver.events()} != set(ids):
            assert time.monotonic() < deadline, "webhooks not delivered after the receiver came back"
            time.sleep(0.2)
    finally:
        receiver.stop()
    per_job = {
        job_id: {r.headers["webhook-id"] for r in receiver.events() if r.json["data"]["id"] == job_id}
        for job_id in ids
    }
    assert all(len(hook_ids) == 1 for hook_ids in per_job.values()), per_job
    log_figures("webhook_receiver_down", figures, services.logs)
