"""The economy lane end to end: jobs go to the simulator's Batch API in batches, come back at
the batch price, survive failed and expired batches, cancel for free, and refuse what the Batch
API cannot take."""

from __future__ import annotations

import math
import time
import uuid
from collections import Counter
from collections.abc import Callable
from fractions import Fraction
from typing import Any

import httpx
import pytest

from editq import catalogue, cost
from editq.catalogue import Lane
from editq.storage import money, tenants
from tests import images
from tests.support.stack import PINNED_OFFSET, PrivateSim, Universe

#: Collections and polls every few tenths of a second instead of minutes.
FAST = {"EDITQ_ECONOMY_WINDOW": "0.3", "EDITQ_ECONOMY_POLL_SECONDS": "0.2"}
ITEM = {
    "prompt": "make it a rainy night",
    "quality": "low",
    "size": "1024x1024",
    "output_format": "jpeg",
    "output_compression": 40,
    "priority": "economy",
    "reuse": False,
}
MINI = catalogue.load().models["gpt-image-1-mini"]


def _stack(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim], **env: str
) -> tuple[Universe, PrivateSim]:
    sim = make_sim("--batch-delay", "0.2", "--clock-offset", PINNED_OFFSET)
    return make_stack(workers=1, concurrency=6, beat=False, OPENAI_BASE_URL=sim.url, **{**FAST, **env}), sim


def _upload(client: httpx.Client) -> str:
    answer = client.post("/v1/uploads", files={"file": ("a.png", images.scene(320, 240), "image/png")})
    assert answer.status_code == 201, answer.text
    image_id: str = answer.json()["id"]
    return image_id


def _submit(client: httpx.Client, image_id: str, count: int, **extra: Any) -> list[str]:
    """`count` economy jobs through `POST /v1/edits/batch`; their ids."""
    ids: list[str] = []
    while len(ids) < count:
        items = [{"image_ids": [image_id], **ITEM, **extra} for _ in range(min(250, count - len(ids)))]
        answer = client.post("/v1/edits/batch", json={"items": items})
        assert answer.status_code == 200, answer.text
        accepted = [item["job"]["id"] for item in answer.json()["items"] if item["status"] == 202]
        assert len(accepted) == len(items), answer.text
        ids += accepted
    return ids


def _all_jobs(client: httpx.Client) -> dict[str, dict[str, Any]]:
    found: dict[str, dict[str, Any]] = {}
    cursor = None
    while True:
        page = client.get("/v1/edits", params={"limit": 200, **({"cursor": cursor} if cursor else {})}).json()
        found.update({job["id"]: job for job in page["data"]})
        cursor = page["next_cursor"]
        if not cursor:
            return found


def _wait_all(client: httpx.Client, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
    deadline = time.monotonic() + timeout
    while True:
        jobs = _all_jobs(client)
        if all(jobs[i]["status"] in ("succeeded", "failed", "canceled", "expired") for i in ids):
            return {i: jobs[i] for i in ids}
        if time.monotonic() > deadline:
            statuses = Counter(jobs[i]["status"] for i in ids)
            raise AssertionError(f"jobs not finished after {timeout}s: {statuses}")
        time.sleep(0.5)


def _half_price(usage: dict[str, Any]) -> int:
    """The job's cost at half of each of gpt-image-1-mini's token prices, computed here apart from
    editq's own pricing code: (text in x $2 + image in x $2.50 + image out x $8) / 2 per 1M."""
    details = usage["input_tokens_details"]
    full: Fraction = (
        details["text_tokens"] * Fraction("2.00")
        + details["image_tokens"] * Fraction("2.50")
        + usage["output_tokens"] * Fraction("8.00")
    )
    return math.ceil(full / 2)


@pytest.mark.slow
def test_five_hundred_economy_jobs_go_in_batches_at_half_price(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    u, sim = _stack(make_stack, make_sim, EDITQ_ECONOMY_MAX_JOBS="200")
    tenant, key = u.tenant()
    with u.client(key) as client:
        estimate = client.post("/v1/edits/estimate", json={"image_ids": [_upload(client)], **ITEM}).json()
        ids = _submit(client, _upload(client), 500)
        jobs = _wait_all(client, ids, timeout=300)
    assert Counter(j["status"] for j in jobs.values()) == {"succeeded": 500}
    assert {j["lane"] for j in jobs.values()} == {"economy"}
    batches = Counter(j["provider_batch_id"] for j in jobs.values())
    assert len(batches) >= 3, batches
    assert max(batches.values()) <= 200, batches
    stats = sim.stats()
    assert stats["batch_lines"] == 500
    assert stats["requests"] == 0  # nothing went through the interactive endpoint
    charged = {i: round(Fraction(j["cost"]["actual_usd"]) * 1_000_000) for i, j in jobs.items()}
    for job_id, job in jobs.items():
        assert charged[job_id] == _half_price(job["cost"]["usage"]), job
        assert charged[job_id] == cost.charge(MINI, Lane.ECONOMY, job["cost"]["usage"])
        assert job["outputs"]
        assert job["outputs"][0]["content_type"] == "image/jpeg"
    ledger = money.ledger(u.db, tenant, count=10_000)
    settled = [e for e in ledger if e["kind"] == "settled"]
    assert len(settled) == 500
    assert {e["lane"] for e in settled} == {"economy"}
    assert sum(e["amount_micros"] for e in settled) == sum(charged.values())
    reserved = [e for e in ledger if e["kind"] == "reserved"]
    per_job = round(Fraction(estimate["estimated_usd"]) * 1_000_000)
    assert estimate["lane"] == "economy"
    assert sum(e["amount_micros"] for e in reserved) == 500 * per_job
    bucket = u.redis.hgetall(f"{u.prefix}:budget:{tenant}:total")
    assert int(bucket["reserved"]) == 0
    assert int(bucket["spent"]) == sum(charged.values())


def test_failed_and_expired_batches_put_their_jobs_back(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    u, sim = _stack(make_stack, make_sim, EDITQ_ECONOMY_WINDOW="1")
    sim(batch_fail_next=1, batch_expire_next=1, batch_expire_after=1)
    tenant, key = u.tenant()
    with u.client(key) as client:
        image_id = _upload(client)
        ids = _submit(client, image_id, 3)
        urgent = client.post(
            "/v1/edits", json={"image_ids": [image_id], **ITEM}, headers={"Cancel-After": "2h"}
        ).json()["id"]
        jobs = _wait_all(client, [*ids, urgent], timeout=90)
    assert {j["status"] for j in jobs.values()} == {"succeeded"}, jobs
    assert sim.stats()["batches"] == {"failed": 1, "expired": 1, "completed": 1}
    # the job with a Cancel-After deadline could not wait for another 24-hour batch
    assert jobs[urgent]["lane"] == "interactive"
    assert sim.stats()["requests"] == 1
    settled = {e["job"]: e for e in money.ledger(u.db, tenant) if e["kind"] == "settled"}
    assert sorted(settled) == sorted(jobs)  # one settlement per job, whatever it went through
    for job_id in ids:
        assert settled[job_id]["lane"] == "economy"
        assert settled[job_id]["amount_micros"] == _half_price(jobs[job_id]["cost"]["usage"])
    interactive = cost.charge(MINI, Lane.INTERACTIVE, jobs[urgent]["cost"]["usage"])
    assert settled[urgent]["lane"] == "interactive"
    assert settled[urgent]["amount_micros"] == interactive
    assert sum(j["attempts"] >= 2 for j in jobs.values()) >= 3
    assert int(u.redis.hgetall(f"{u.prefix}:budget:{tenant}:total")["reserved"]) == 0


def _wait_running(client: httpx.Client, ids: list[str], timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while True:
        jobs = [client.get(f"/v1/edits/{i}").json() for i in ids]
        if all(j["status"] == "running" and j["provider_batch_id"] for j in jobs):
            return
        assert time.monotonic() < deadline, jobs
        time.sleep(0.1)


def test_cancel_in_a_batch_costs_nothing(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    u, sim = _stack(make_stack, make_sim)
    sim(batch_delay=3)
    tenant, key = u.tenant()
    with u.client(key) as client:
        image_id = _upload(client)
        kept, dropped = _submit(client, image_id, 2)
        _wait_running(client, [kept, dropped])
        canceled = client.post(f"/v1/edits/{dropped}/cancel").json()
        assert canceled["status"] == "canceled"
        assert canceled["cost"]["actual_usd"] == "0.000000"
        sim(batch_delay=60)
        both = _submit(client, image_id, 2)
        _wait_running(client, both)
        for job_id in both:
            assert client.post(f"/v1/edits/{job_id}/cancel").json()["status"] == "canceled"
        jobs = _wait_all(client, [kept, dropped, *both], timeout=60)
        deadline = time.monotonic() + 30
        while sim.stats()["batches"].get("cancelled") != 1:
            assert time.monotonic() < deadline, sim.stats()
            time.sleep(0.2)
        dropped_after = client.get(f"/v1/edits/{dropped}").json()
    assert jobs[kept]["status"] == "succeeded"
    assert dropped_after["status"] == "canceled"
    assert dropped_after["cost"]["actual_usd"] == "0.000000"
    assert dropped_after["outputs"] == []
    ledger = money.ledger(u.db, tenant)
    charged = {e["job"]: e["amount_micros"] for e in ledger if e["amount_micros"] and e["kind"] != "reserved"}
    assert set(charged) == {kept}
    bucket = u.redis.hgetall(f"{u.prefix}:budget:{tenant}:total")
    assert int(bucket["reserved"]) == 0
    assert int(bucket["spent"]) == charged[kept]


def test_economy_refuses_what_the_batch_api_cannot_take(stack: Universe) -> None:
    tenant, key = stack.tenant(budgets={"total": 10_000_000})
    with stack.client(key) as client:
        image_id = _upload(client)
        custom = client.post(
            "/v1/edits", json={"image_ids": [image_id], **ITEM, "model": "gpt-image-2", "size": "1792x1008"}
        )
        wrong = client.post("/v1/edits", json={"image_ids": [image_id], **ITEM, "priority": "Economy"})
        ratio = client.post(
            "/v1/edits/estimate",
            json={
                **ITEM,
                "image_ids": [image_id],
                "model": "gpt-image-2",
                "aspect_ratio": "16:9",
                "size": None,
            },
        )
        jobs = client.get("/v1/edits").json()["data"]
    assert custom.status_code == 400
    assert custom.json()["error"]["code"] == "economy_unsupported"
    assert custom.json()["error"]["param"] == "size"
    assert wrong.status_code == 400
    assert wrong.json()["error"]["code"] == "invalid_priority"
    # a ratio on a free-form model is met by the nearest standard size and a crop
    assert ratio.status_code == 200, ratio.text
    assert ratio.json()["provider_size"] == "1536x1024"
    assert ratio.json()["lane"] == "economy"
    assert jobs == []
    assert money.budgets(stack.db, tenant, {"total": 10_000_000})["total"]["reserved_usd"] == "0.000000"


def test_a_tenant_can_default_to_the_economy_lane(stack: Universe) -> None:
    _, key = stack.tenant(default_priority="economy")
    with pytest.raises(tenants.TenantError, match="default priority"):
        stack.tenant(default_priority="cheap")
    body = {key: value for key, value in ITEM.items() if key != "priority"}
    with stack.client(key) as client:
        image_id = _upload(client)
        default = client.post("/v1/edits/estimate", json={**body, "image_ids": [image_id]}).json()
        asked = client.post(
            "/v1/edits/estimate", json={**body, "image_ids": [image_id], "priority": "interactive"}
        ).json()
    assert default["lane"] == "economy"
    assert asked["lane"] == "interactive"
    assert Fraction(default["estimated_usd"]) < Fraction(asked["estimated_usd"])
    name = f"econ{uuid.uuid4().hex[:10]}"
    with stack.admin() as admin:
        made = admin.post("/v1/admin/tenants", json={"name": name, "default_priority": "economy"})
        assert made.status_code == 201, made.text
        assert made.json()["default_priority"] == "economy"
        wrong = admin.patch(f"/v1/admin/tenants/{name}", json={"default_priority": "cheap"})
        assert wrong.status_code == 400
        assert wrong.json()["error"]["code"] == "invalid_default_priority"
        cleared = admin.patch(f"/v1/admin/tenants/{name}", json={"default_priority": None})
        assert cleared.json()["default_priority"] is None
    found = tenants.get(stack.db, name)
    assert found is not None
    assert found.default_priority is None
