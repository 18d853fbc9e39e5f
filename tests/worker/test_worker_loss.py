"""A worker SIGKILLed mid-job: the job is not lost and ends succeeded, once."""

from __future__ import annotations

import time
from collections.abc import Callable

import httpx

from editq.ops import launcher
from tests import images
from tests.support.stack import PrivateSim, Universe


def test_sigkill_mid_job_still_succeeds_once(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    private_sim(latency_min=2.5, latency_max=2.5)
    # no beat: the new worker's dispatcher runs the sweep that finds the lapsed lease
    u = make_stack(workers=1, beat=False, OPENAI_BASE_URL=private_sim.url)
    tenant, key = u.tenant()
    with u.client(key) as client:
        job = client.post(
            "/v1/edits",
            data={"prompt": "make it rainy"},
            files=[("image", ("a.png", images.scene(), "image/png"))],
        ).json()
        u.wait_job(client, job["id"], timeout=30, until=("running",))
        record_key = f"{u.prefix}:job:{tenant}:{job['id']}"
        deadline = time.monotonic() + 30
        while not u.redis.hget(record_key, "calling"):  # the provider call is about to go out
            assert time.monotonic() < deadline
            time.sleep(0.02)
        time.sleep(0.5)  # and has reached the simulator, which answers after 2.5 s
        victim = u.workers[0]
        victim.kill()
        assert not victim.alive()
        u.start_worker(4)
        done = u.wait_job(client, job["id"], timeout=60)
    assert done["status"] == "succeeded", done
    record = u.redis.hgetall(f"{u.prefix}:job:{tenant}:{job['id']}")
    assert int(record["runs"]) == 2
    assert int(record["losses"]) == 1
    settled = [
        e
        for e in u.db.redis.xrange(f"{u.prefix}:ledger:{tenant}")
        if e[1]["job"] == job["id"] and e[1]["kind"] == "settled"
    ]
    assert len(settled) == 1
    # the killed run's call went out: the ledger notes it, and matches what the provider answered
    notes = [
        e[1] for e in u.db.redis.xrange(f"{u.prefix}:ledger:{tenant}") if e[1]["kind"] == "unknown_charge"
    ]
    assert [(n["job"], n["note"].split(":")[0]) for n in notes] == [(job["id"], "attempt 1")]
    assert len(settled) <= private_sim.stats()["by_status"].get("200", 0) <= len(settled) + len(notes)
    assert len(done["outputs"]) == 1
    assert u.redis.zcard(f"{u.prefix}:inflight") == 0
    events = [fields["status"] for _, fields in u.redis.xrange(f"{u.prefix}:ev:{tenant}:{job['id']}")]
    assert events == ["queued", "running", "queued", "succeeded"]


def test_flower_shows_the_worker_and_edit_tasks(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=1)
    port = launcher.free_port()
    flower = launcher.flower(u.env, port, "ops:secret", echo=False)
    try:
        launcher.wait_for_http(f"http://127.0.0.1:{port}/healthcheck", timeout=60)
        _, key = u.tenant()
        with u.client(key) as client:
            time.sleep(2)  # Flower turns task events on when it connects
            job = client.post(
                "/v1/edits",
                data={"prompt": "warm"},
                files=[("image", ("a.png", images.scene(), "image/png"))],
            ).json()
            u.wait_job(client, job["id"])
        auth = ("ops", "secret")
        assert httpx.get(f"http://127.0.0.1:{port}/api/workers", timeout=10).status_code == 401
        deadline = time.monotonic() + 30
        names: set[str] = set()
        workers: dict[str, object] = {}
        while time.monotonic() < deadline:
            workers = httpx.get(
                f"http://127.0.0.1:{port}/api/workers", auth=auth, params={"refresh": "true"}, timeout=20
            ).json()
            tasks = httpx.get(f"http://127.0.0.1:{port}/api/tasks", auth=auth, timeout=10).json()
            names = {t.get("name") for t in tasks.values()}
            if workers and "editq.edit" in names:
                break
            time.sleep(1)
        assert workers, "Flower lists no worker"
        assert "editq.edit" in names
    finally:
        flower.stop()
