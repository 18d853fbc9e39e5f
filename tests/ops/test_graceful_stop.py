"""`editq run` stopped while a provider call is in flight: the API stops first, the worker
finishes the call (warm shutdown), and Redis and S3 stop last, so the job ends `succeeded`,
run once. The order is read from the launcher's own `stopped NAME` lines."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import httpx
import pytest

from editq.job import Status
from editq.ops import launcher
from editq.settings import Settings
from editq.storage import jobs
from editq.storage.backend import Backend
from tests import images
from tests.support import run

pytestmark = [pytest.mark.integration, pytest.mark.slow]

#: Seconds each provider call takes once the job is submitted: long enough that SIGTERM lands
#: while the call is in flight.
CALL_SECONDS = 8


def _submit_and_wait_running(api: str, key: str) -> str:
    with httpx.Client(base_url=api, headers={"Authorization": f"Bearer {key}"}, timeout=30) as client:
        answer = client.post(
            "/v1/edits",
            files={"image": ("scene.png", images.scene(), "image/png")},
            data={"prompt": "make it a pencil sketch"},
        )
        assert answer.status_code == 202, answer.text
        job_id: str = answer.json()["id"]
        deadline = time.monotonic() + 60
        while (status := client.get(f"/v1/edits/{job_id}").json()["status"]) == "queued":
            assert time.monotonic() < deadline, "the job was never started"
            time.sleep(0.1)
        assert status == "running", status
    return job_id


def _job_after_restart(state: Path, job_id: str) -> tuple[Status, int, int]:
    """The job as the launcher's Redis kept it (AOF), read from a fresh redis-server."""
    port = launcher.free_port()
    redis = launcher.redis_server(port, state / "redis", echo=False)
    db = Backend.connect(Settings.from_env({"EDITQ_REDIS_URL": f"redis://127.0.0.1:{port}/0"}))
    try:
        job = jobs.get(db, "dev", job_id)
        assert job is not None
        return job.status, job.attempts, job.losses
    finally:
        db.close()
        redis.stop()


@pytest.mark.timeout(420)
def test_sigterm_finishes_the_call_in_flight_then_stops_in_order(tmp_path: Path) -> None:
    ports = run.free_ports()
    proc = run.start(tmp_path, ports)
    try:
        api = f"http://127.0.0.1:{ports['api']}"
        launcher.wait_for_http(f"{api}/readyz", timeout=120)
        launcher.wait_for_worker(f"redis://127.0.0.1:{ports['redis']}/0", "editq", 1, timeout=120)
        httpx.post(
            f"http://127.0.0.1:{ports['sim']}/_sim/config",
            json={"latency_min": CALL_SECONDS, "latency_max": CALL_SECONDS},
            timeout=10,
        ).raise_for_status()
        key = (tmp_path / "state" / "dev-api-key").read_text().strip()
        job_id = _submit_and_wait_running(api, key)
        # to the launcher's whole process group, as a terminal's Ctrl-C or `kill -TERM -PGID`
        # does: the processes it started must not get it (Redis would go before the worker)
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)
    text = (tmp_path / "run.log").read_text()
    assert proc.returncode == 0, text[-3000:]
    own = [line for line in text.splitlines() if " | " not in line]  # children's lines are prefixed
    stopped = [line.split()[1] for line in own if line.startswith("stopped ")]
    assert stopped == ["api", "worker", "beat", "flower", "sim", "redis", "s3"], text[-3000:]
    assert not [line for line in own if line.endswith(": killed")], text[-3000:]
    assert not list((tmp_path / "probe").glob("*.json")), "a worker or beat left its probe file"
    status, attempts, losses = _job_after_restart(tmp_path / "state", job_id)
    assert (status, attempts, losses) == (Status.SUCCEEDED, 1, 0), text[-3000:]
