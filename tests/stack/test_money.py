"""Budgets that cannot be overshot, a ledger that adds up, idempotent submission, result reuse."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest

from editq import catalogue, cost
from editq.api.submit import Source, prepare
from editq.images import check_image
from editq.options import parse_options
from editq.storage import idempotency, money
from tests import images
from tests.support.stack import PrivateSim, Universe

IMAGE = images.scene(512, 384)
FORM = {"prompt": "make it a rainy night", "quality": "low", "size": "1024x1024"}


def _submit(
    client: httpx.Client, data: dict[str, str] | None = None, key: str | None = None
) -> httpx.Response:
    headers = {"Idempotency-Key": key} if key else {}
    return client.post(
        "/v1/edits",
        data={**FORM, **(data or {})},
        files=[("image", ("a.png", IMAGE, "image/png"))],
        headers=headers,
    )


def _submit_retrying(client: httpx.Client) -> httpx.Response:
    """One distinct submission (no reuse of a job that finished meanwhile, which a slow machine
    reaches), retried on 503 after its Retry-After as a client would: nothing was stored."""
    for _ in range(10):
        answer = _submit(client, {"reuse": "false"})
        if answer.status_code != 503:
            return answer
        time.sleep(float(answer.headers.get("Retry-After", "1")))
    return answer


@pytest.fixture
def slow_stack(make_stack: Callable[..., Universe], private_sim: PrivateSim) -> Universe:
    private_sim(latency_min=4, latency_max=4)
    return make_stack(workers=1, concurrency=16, OPENAI_BASE_URL=private_sim.url)


def test_concurrent_submissions_never_overshoot_a_budget(slow_stack: Universe) -> None:
    u = slow_stack
    _, probe_key = u.tenant()
    with u.client(probe_key) as probe:
        estimate = probe.post(
            "/v1/edits", data={**FORM}, files=[("image", ("a.png", IMAGE, "image/png"))]
        ).json()
    per_job = round(float(estimate["cost"]["estimated_usd"]) * 1_000_000)
    budget = 50 * per_job + per_job // 2
    tenant, key = u.tenant(budgets={"total": budget})
    bucket = f"{u.prefix}:budget:{tenant}:total"
    peaks: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            h = u.redis.hgetall(bucket)
            peaks.append(int(h.get("reserved", 0)) + int(h.get("spent", 0)))

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with u.client(key) as client, ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: _submit_retrying(client), range(200)))
    statuses = [a.status_code for a in answers]
    accepted = [a.json()["id"] for a in answers if a.status_code == 202]
    assert len(accepted) == 50, statuses
    assert set(statuses) == {202, 402}
    refusal = next(a.json()["error"] for a in answers if a.status_code == 402)
    assert refusal["code"] == "budget_exceeded"
    assert refusal["period"] == "total"
    with u.client(key) as client:
        jobs = [u.wait_job(client, job_id, timeout=120) for job_id in accepted]
    stop.set()
    watcher.join()
    assert max(peaks) <= budget
    assert all(j["status"] == "succeeded" for j in jobs)
    prices = catalogue.load().models["gpt-image-1-mini"].prices
    expected = sum(cost.price_usage(prices, cost.Usage.from_api(j["cost"]["usage"])) for j in jobs)
    ledger = money.ledger(u.db, tenant, count=10_000)
    settled = [e for e in ledger if e["kind"] == "settled"]
    assert len(settled) == 50
    assert sum(e["amount_micros"] for e in settled) == expected
    assert sum(e["amount_micros"] for e in ledger if e["kind"] == "reserved") == 50 * per_job
    final = u.redis.hgetall(bucket)
    assert int(final["reserved"]) == 0
    assert int(final["spent"]) == expected
    with u.client(key) as client:
        usage = client.get("/v1/usage", params={"group_by": "model"}).json()
    assert usage["budgets"]["total"]["spent_usd"] == cost.usd(expected)
    assert usage["budgets"]["total"]["remaining_usd"] == cost.usd(budget - expected)
    assert usage["groups"] == [
        {
            "model": "gpt-image-1-mini",
            "spent_usd": cost.usd(expected),
            "spent_micros": expected,
            "jobs_settled": 50,
            "jobs_released": 0,
            "jobs_reused": 0,
        }
    ]


def test_day_budget_and_cancel_release(stack: Universe) -> None:
    tenant, key = stack.tenant(budgets={"day": 1})
    with stack.client(key) as client:
        refused = _submit(client)
    assert refused.status_code == 402
    assert refused.json()["error"]["period"] == "day"
    assert refused.json()["error"]["remaining_usd"] == "0.000001"
    assert money.budgets(stack.db, tenant, {"day": 1})["day"]["reserved_usd"] == "0.000000"


def _raw_post(base: str, key: str, idem: str, *, cut_after: int | None = None) -> None:
    """Send a submission by hand and hang up without reading the answer (or mid-body)."""
    request = httpx.Request(
        "POST",
        f"{base}/v1/edits",
        data=FORM,
        files=[("image", ("a.png", IMAGE, "image/png"))],
        headers={"Authorization": f"Bearer {key}", "Idempotency-Key": idem},
    )
    body = request.read()
    url = urlsplit(base)
    head = (
        f"POST /v1/edits HTTP/1.1\r\nHost: {url.netloc}\r\n"
        + "".join(f"{k}: {v}\r\n" for k, v in request.headers.items() if k.lower() != "host")
        + "\r\n"
    )
    with socket.create_connection((url.hostname, url.port)) as sock:
        sock.sendall(head.encode() + (body if cut_after is None else body[:cut_after]))
        time.sleep(0.05)


def _retry_until_answered(client: httpx.Client, idem: str) -> httpx.Response:
    for _ in range(100):
        response = _submit(client, key=idem)
        if response.status_code != 409:
            return response
        time.sleep(0.05)
    raise AssertionError("still in flight")


def test_idempotency_replay_mismatch_scope_and_in_flight(stack: Universe) -> None:
    tenant, key = stack.tenant()
    with stack.client(key) as client:
        first = _submit(client, key="order-1")
        assert first.status_code == 202
        again = _submit(client, key="order-1")
        assert again.status_code == 202
        assert again.json() == first.json()
        assert again.headers["idempotent-replayed"] == "true"
        assert "idempotent-replayed" not in first.headers
        mismatch = _submit(client, {"prompt": "something else"}, key="order-1")
        assert mismatch.status_code == 422
        assert mismatch.json()["error"]["code"] == "idempotency_key_reused"
        quoted = _submit(client, key='"order-1"')
        assert quoted.json()["id"] == first.json()["id"]
        listed = client.get("/v1/edits").json()["data"]
        assert [j["id"] for j in listed] == [first.json()["id"]]

        # a request with this key is still being admitted: 409, then the real answer
        source = check_image(IMAGE, param="image", max_bytes=10**8, max_pixels=10**8)
        prepared = prepare(
            stack.db,
            catalogue.load(),
            tenant=tenant,
            options=parse_options(dict(FORM)),
            sources=[Source.fresh(source)],
            mask=None,
        )
        assert idempotency.begin(stack.db, tenant, "order-2", prepared.request_fingerprint) is None
        busy = _submit(client, key="order-2")
        assert busy.status_code == 409
        assert busy.json()["error"]["code"] == "idempotency_key_in_use"
        idempotency.abort(stack.db, tenant, "order-2", prepared.request_fingerprint)
        assert _submit(client, key="order-2").status_code == 202

        # a refused request is not remembered: fixing it with the same key works
        refused = _submit(client, {"quality": "ultra"}, key="order-3")
        assert refused.status_code == 400
        assert _submit(client, {"quality": "low"}, key="order-3").status_code == 202

    _, other_key = stack.tenant()
    with stack.client(other_key) as other:
        theirs = _submit(other, key="order-1")
        assert theirs.status_code == 202
        assert theirs.json()["id"] != first.json()["id"]


def test_a_retry_after_a_dropped_connection_makes_one_job(stack: Universe) -> None:
    _, key = stack.tenant()
    _raw_post(stack.api_url, key, "drop-1")
    with stack.client(key) as client:
        answer = _retry_until_answered(client, "drop-1")
        assert answer.status_code == 202
        time.sleep(0.5)
        jobs = client.get("/v1/edits").json()["data"]
        assert [j["id"] for j in jobs] == [answer.json()["id"]]

    _raw_post(stack.api_url, key, "drop-2", cut_after=3000)
    with stack.client(key) as client:
        answer = _retry_until_answered(client, "drop-2")
        assert answer.status_code in (200, 202)  # 200 if it reused the first job's outputs
        jobs = client.get("/v1/edits").json()["data"]
        assert len(jobs) == 2


def _sim_calls(services_url: str) -> int:
    return int(httpx.get(services_url.removesuffix("/v1") + "/_sim/stats", timeout=10).json()["requests"])


def test_identical_requests_reuse_outputs_at_no_cost(stack: Universe) -> None:
    tenant, key = stack.tenant()
    with stack.client(key) as client:
        first = stack.wait_job(client, _submit(client, {"prompt": "reuse me, vintage"}).json()["id"])
        assert first["status"] == "succeeded"
        calls = _sim_calls(stack.env["OPENAI_BASE_URL"])
        reused = _submit(client, {"prompt": "reuse me, vintage"})
        assert reused.status_code == 200
        job: dict[str, Any] = reused.json()
        assert job["status"] == "succeeded"
        assert job["reused_from"] == first["id"]
        assert job["cost"]["actual_usd"] == "0.000000"
        assert client.get(job["outputs"][0]["url"]).content == client.get(first["outputs"][0]["url"]).content
        assert _sim_calls(stack.env["OPENAI_BASE_URL"]) == calls
        entries = [e for e in money.ledger(stack.db, tenant) if e["job"] == job["id"]]
        assert [e["kind"] for e in entries] == ["reserved", "reused"]
        assert all(e["amount_micros"] == 0 for e in entries)

        fresh = _submit(client, {"prompt": "reuse me, vintage", "reuse": "false"})
        assert fresh.status_code == 202
        variations = _submit(client, {"prompt": "reuse me, vintage", "n": "2"})
        assert variations.status_code == 202
        for job_id in (fresh.json()["id"], variations.json()["id"]):
            done = stack.wait_job(client, job_id)
            assert done["reused_from"] is None
            assert float(done["cost"]["actual_usd"]) > 0
        assert _sim_calls(stack.env["OPENAI_BASE_URL"]) == calls + 2

    _, other_key = stack.tenant()
    with stack.client(other_key) as other:
        theirs = _submit(other, {"prompt": "reuse me, vintage"})
        assert theirs.status_code == 202  # reuse never crosses tenants

    # outputs gone from S3 (an operator cleaned the bucket): the request runs instead of failing
    stack.db.objects.delete_prefix(f"t/{tenant}/out/")
    with stack.client(key) as client:
        rerun = _submit(client, {"prompt": "reuse me, vintage"})
        assert rerun.status_code == 202
        assert stack.wait_job(client, rerun.json()["id"])["status"] == "succeeded"
