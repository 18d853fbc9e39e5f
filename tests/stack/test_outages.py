"""When Redis or S3 fails the client gets 503 with Retry-After and nothing is half-written;
a Redis restarted from its AOF loses no accepted job."""

from __future__ import annotations

import time
from pathlib import Path

import httpx

from editq.ops import launcher
from tests import images
from tests.support.stack import Universe

IMAGE = ("a.png", images.scene(320, 240), "image/png")


def test_s3_down_is_a_clean_503(private: tuple[Universe, Path, int, launcher.Proc, launcher.Proc]) -> None:
    u, _, _, _, s3 = private
    tenant, key = u.tenant(budgets={"total": 10_000_000})
    s3.kill()
    with u.client(key) as client:
        response = client.post(
            "/v1/edits", data={"prompt": "x"}, files=[("image", IMAGE)], headers={"Idempotency-Key": "k1"}
        )
    assert response.status_code == 503
    assert response.json()["error"]["code"] in ("storage_unavailable", "storage_error")
    assert int(response.headers["retry-after"]) >= 1
    assert not list(u.redis.scan_iter(f"{u.prefix}:job:{tenant}:*"))
    assert not list(u.redis.scan_iter(f"{u.prefix}:idem:{tenant}:*"))
    assert int(u.redis.hget(f"{u.prefix}:budget:{tenant}:total", "reserved") or 0) == 0
    assert u.redis.zcard(f"{u.prefix}:holds") == 0
    ready = httpx.get(f"{u.api_url}/readyz")
    assert ready.status_code == 503
    assert ready.json()["checks"]["s3"].startswith("down")


def test_redis_down_is_a_503_and_a_restart_loses_nothing(
    private: tuple[Universe, Path, int, launcher.Proc, launcher.Proc],
) -> None:
    u, tmp, redis_port, redis, _ = private
    tenant, key = u.tenant()
    with u.client(key) as client:
        ids = [
            client.post("/v1/edits", data={"prompt": f"rain {i}"}, files=[("image", IMAGE)]).json()["id"]
            for i in range(3)
        ]
        time.sleep(1.2)  # AOF fsyncs every second
        redis.stop()
        down = client.post("/v1/edits", data={"prompt": "x"}, files=[("image", IMAGE)])
        assert down.status_code == 503
        assert down.headers["retry-after"]
        assert httpx.get(f"{u.api_url}/readyz").status_code == 503
        restarted = launcher.redis_server(redis_port, tmp / "redis", aof=True, echo=False)
        u.procs.insert(0, restarted)
        deadline = time.monotonic() + 15
        while client.get("/healthz").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.2)
        u.start_worker(4)
        jobs = [u.wait_job(client, job_id, timeout=60) for job_id in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3
    assert tenant
