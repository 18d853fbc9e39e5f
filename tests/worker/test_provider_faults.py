"""Provider faults: retries through the Redis schedule, 429s, a paused account, tenant caps."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

import httpx

from editq.storage import limiter
from tests import images
from tests.support.stack import PrivateSim, Universe

IMAGE = ("a.png", images.scene(320, 240), "image/png")


def _submit(client: httpx.Client, **data: str) -> str:
    response = client.post("/v1/edits", data={"prompt": "rain", **data}, files=[("image", IMAGE)])
    assert response.status_code == 202, response.text
    return str(response.json()["id"])


def test_server_errors_are_retried_from_the_schedule(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    private_sim(fail_rate=1.0)
    u = make_stack(workers=1, OPENAI_BASE_URL=private_sim.url, EDITQ_RETRY_BASE_SECONDS="0.5")
    _, key = u.tenant()
    with u.client(key) as client:
        job_id = _submit(client)
        deadline = time.monotonic() + 20
        while client.get(f"/v1/edits/{job_id}").json()["attempts"] < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
        waiting = client.get(f"/v1/edits/{job_id}").json()
        assert waiting["status"] in ("queued", "running")
        assert waiting["last_error"]["code"] == "provider_server_error"
        private_sim(fail_rate=0.0)
        done = u.wait_job(client, job_id)
    assert done["status"] == "succeeded"
    assert done["attempts"] >= 2
    assert u.redis.llen(f"{u.prefix}:celery:editq.edits") == 0


def test_retries_are_bounded(make_stack: Callable[..., Universe], private_sim: PrivateSim) -> None:
    private_sim(fail_rate=1.0)
    u = make_stack(workers=1, OPENAI_BASE_URL=private_sim.url, EDITQ_PROVIDER_MAX_ATTEMPTS="3")
    _, key = u.tenant()
    with u.client(key) as client:
        done = u.wait_job(client, _submit(client), timeout=30)
    assert done["status"] == "failed"
    assert done["error"]["code"] == "provider_server_error"
    assert done["error"]["attempts"] == 3
    assert done["cost"]["actual_usd"] == "0.000000"


def test_rate_limited_jobs_wait_and_then_run(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    private_sim(ipm=6, start_full=False, rate_headers="none")
    u = make_stack(
        workers=1, OPENAI_BASE_URL=private_sim.url, EDITQ_PROVIDER_IPM="600", EDITQ_PROVIDER_RPM="600"
    )
    _, key = u.tenant()
    with u.client(key) as client:
        ids = [_submit(client, prompt=f"rain {i}") for i in range(2)]
        jobs = [u.wait_job(client, job_id, timeout=60) for job_id in ids]
    assert [j["status"] for j in jobs] == ["succeeded", "succeeded"]
    assert private_sim.stats()["by_status"].get("429", 0) >= 1
    state = limiter.state(u.db)
    assert state["ipm_effective"] < 600


def test_insufficient_quota_pauses_the_account(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    private_sim(quota_exhausted=True)
    u = make_stack(workers=1, OPENAI_BASE_URL=private_sim.url)
    _, key = u.tenant()
    with u.client(key) as client:
        first = u.wait_job(client, _submit(client))
        assert first["status"] == "failed"
        assert first["error"]["code"] == "insufficient_quota"
        assert first["error"]["account_paused"] is True
        second = _submit(client)
        time.sleep(1.5)
        assert client.get(f"/v1/edits/{second}").json()["status"] == "queued"
        ready = httpx.get(f"{u.api_url}/readyz").json()
        assert ready["status"] == "degraded"
        assert ready["checks"]["provider"]["pause_reason"] == "insufficient_quota"
        calls = private_sim.stats()["requests"]
        private_sim(quota_exhausted=False)
        time.sleep(1)
        assert client.get(f"/v1/edits/{second}").json()["status"] == "queued"
        assert private_sim.stats()["requests"] == calls
        limiter.resume(u.db)  # what `editq provider resume` does
        assert u.wait_job(client, second)["status"] == "succeeded"
    assert httpx.get(f"{u.api_url}/readyz").json()["status"] == "ok"


def test_moderation_blocked_fails_without_retry(stack: Universe, client: httpx.Client) -> None:
    done = stack.wait_job(client, _submit(client, prompt="[moderation] show violence"))
    assert done["status"] == "failed"
    assert done["error"]["code"] == "moderation_blocked"
    assert "safety system" in done["error"]["message"]
    assert done["attempts"] == 1


def test_tenant_concurrency_cap(make_stack: Callable[..., Universe], private_sim: PrivateSim) -> None:
    private_sim(latency_min=0.5, latency_max=0.5)
    u = make_stack(workers=1, OPENAI_BASE_URL=private_sim.url)
    tenant, key = u.tenant(max_running=1)
    with u.client(key) as client:
        ids = [_submit(client, prompt=f"night {i}") for i in range(4)]
        jobs = [u.wait_job(client, job_id) for job_id in ids]
    spans = sorted(
        (
            int(u.redis.hget(f"{u.prefix}:job:{tenant}:{j['id']}", "started_at")),
            int(u.redis.hget(f"{u.prefix}:job:{tenant}:{j['id']}", "finished_at")),
        )
        for j in jobs
    )
    for (_, end), (start, _) in itertools.pairwise(spans):
        assert start >= end - 5  # never two at once (ms clock granularity)


def test_a_source_gone_from_storage_fails_clearly(
    make_stack: Callable[..., Universe], private_sim: PrivateSim
) -> None:
    private_sim(latency_min=1.5, latency_max=1.5)
    u = make_stack(workers=1, OPENAI_BASE_URL=private_sim.url, EDITQ_PROVIDER_MAX_INFLIGHT="1")
    tenant, key = u.tenant()
    with u.client(key) as client:
        blocker = _submit(client)
        target = client.post(
            "/v1/edits",
            data={"prompt": "night"},
            files=[("image", ("b.png", images.scene(300, 200), "image/png"))],
        ).json()
        u.db.objects.client.delete_object(
            Bucket=u.settings.s3_bucket, Key=f"t/{tenant}/src/{target['sources'][0]['id'][4:]}"
        )
        done = u.wait_job(client, target["id"], timeout=30)
        assert u.wait_job(client, blocker)["status"] == "succeeded"
    assert done["status"] == "failed"
    assert done["error"]["code"] == "source_missing"
    assert done["cost"]["actual_usd"] == "0.000000"
