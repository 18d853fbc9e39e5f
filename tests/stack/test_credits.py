"""Credits through the whole stack: a prepaid balance that concurrent submissions never overdraw,
top-ups and charges that add up in the balance and the ledger, plan changes that apply to later
jobs only, and failed or canceled jobs that cost nothing."""

from __future__ import annotations

import math
import threading
import uuid
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal
from typing import Any

import httpx

from editq.storage import credits, money
from tests import images
from tests.support.stack import PrivateSim, Universe

IMAGE = ("a.png", images.scene(320, 240), "image/png")
EDIT = {"prompt": "make it a rainy night", "quality": "low", "size": "1024x1024", "reuse": False}


def _plan(admin: httpx.Client, **fields: Any) -> str:
    name = f"plan{uuid.uuid4().hex[:8]}"
    made = admin.post("/v1/admin/plans", json={"name": name, **fields})
    assert made.status_code == 201, made.text
    return name


def _tenant_on(u: Universe, admin: httpx.Client, plan: str, top_ups: list[int]) -> tuple[str, str]:
    tenant, key = u.tenant()
    assert admin.patch(f"/v1/admin/tenants/{tenant}", json={"plan": plan}).json()["plan"] == plan
    for amount in top_ups:
        topped = admin.post(f"/v1/admin/tenants/{tenant}/credits", json={"credits": amount, "note": "inv"})
        assert topped.status_code == 200, topped.text
    return tenant, key


def _charge(job: dict[str, Any], markup: str, credit_usd: str) -> int:
    """What the plan charges for the job's actual cost, computed here independently."""
    actual = Decimal(job["cost"]["actual_usd"])
    return math.ceil(actual * (1 + Decimal(markup)) / Decimal(credit_usd))


def test_concurrent_submissions_never_overdraw_and_everything_sums(
    make_stack: Callable[..., Universe],
) -> None:
    u = make_stack(workers=0, beat=False)  # jobs wait queued until a worker starts
    with u.admin() as admin:
        plan = _plan(admin, credit_usd="0.001", markup="0.3")
        tenant, key = _tenant_on(u, admin, plan, [1])
    with u.client(key) as client:
        image_id = client.post("/v1/uploads", files={"file": IMAGE}).json()["id"]
        body = {**EDIT, "image_ids": [image_id]}
        estimate = client.post("/v1/edits/estimate", json=body).json()
        per_job = estimate["credits"]["estimated"]
        assert estimate["credits"] == {"plan": plan, "estimated": per_job, "available": 1}
        refused = client.post("/v1/edits", json=body)
        assert refused.status_code == 402
        assert refused.json()["error"] | {"message": ""} == {
            "code": "insufficient_credits",
            "message": "",
            "param": None,
            "balance": 1,
            "available": 1,
            "estimated_credits": per_job,
        }
    with u.admin() as admin:
        first, second = 30 * per_job, 20 * per_job + per_job // 2 - 1
        _tenant_top_up(admin, tenant, first)
        _tenant_top_up(admin, tenant, second)
    topped = 1 + first + second
    peaks: list[int] = []
    stop = threading.Event()

    def watch() -> None:
        while not stop.is_set():
            now = credits.balance(u.db, tenant)
            peaks.append(now.reserved - now.balance)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with u.client(key) as client, ThreadPoolExecutor(24) as pool:
        answers = list(pool.map(lambda _: client.post("/v1/edits", json=body), range(200)))
    stop.set()
    watcher.join()
    accepted = [a.json() for a in answers if a.status_code == 202]
    assert len(accepted) == 50, sorted({a.status_code for a in answers})
    assert {a.json()["error"]["code"] for a in answers if a.status_code != 202} == {"insufficient_credits"}
    assert max(peaks) <= 0
    assert credits.balance(u.db, tenant).reserved == 50 * per_job
    assert accepted[0]["credits"] == {
        "plan": plan,
        "estimated": per_job,
        "reserved": per_job,
        "charged": None,
    }

    with u.client(key) as client:
        canceled = [client.post(f"/v1/edits/{j['id']}/cancel").json() for j in accepted[:5]]
        assert {c["status"] for c in canceled} == {"canceled"}
        assert {c["credits"]["charged"] for c in canceled} == {0}
        u.start_worker(6)
        done = [u.wait_job(client, j["id"], timeout=120) for j in accepted[5:]]
        usage = client.get("/v1/usage").json()["credits"]
    assert {j["status"] for j in done} == {"succeeded"}
    charged = [j["credits"]["charged"] for j in done]
    assert charged == [_charge(j, "0.3", "0.001") for j in done]
    assert all(0 < c <= per_job for c in charged)
    assert usage == {
        "plan": plan,
        "balance": topped - sum(charged),
        "reserved": 0,
        "available": topped - sum(charged),
    }
    ledger = money.ledger(u.db, tenant, count=10_000)
    top_ups = [e["credits"] for e in ledger if e["kind"] == "topup"]
    assert top_ups == [1, first, second]
    settled = [e for e in ledger if e["kind"] in ("settled", "released")]
    assert len(settled) == 50
    assert sum(e["credits"] for e in settled) == sum(charged)
    assert sum(e["credits_released"] for e in settled) == 50 * per_job
    assert sum(e["credits"] for e in ledger if e["kind"] == "reserved") == 50 * per_job
    assert sum(top_ups) - sum(e["credits"] for e in settled) == usage["balance"]
    by_job = {e["job"]: e for e in settled}
    assert all(by_job[j["id"]]["amount_usd"] == j["cost"]["actual_usd"] for j in done)


def _tenant_top_up(admin: httpx.Client, tenant: str, amount: int) -> None:
    answer = admin.post(f"/v1/admin/tenants/{tenant}/credits", json={"credits": amount})
    assert answer.status_code == 200, answer.text


def test_a_plan_change_prices_only_the_jobs_submitted_after_it(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=0, beat=False)
    with u.admin() as admin:
        markup = _plan(admin, credit_usd="0.0001", markup="0")
        price_list = _plan(admin, credit_usd="0.01", per_image={"*": {"*": {"low": 7, "*": 11}}})
        tenant, key = _tenant_on(u, admin, markup, [100_000])
        with u.client(key) as client:
            before = client.post("/v1/edits", data=EDIT, files={"image": IMAGE}).json()
            assert admin.patch(f"/v1/admin/tenants/{tenant}", json={"plan": price_list}).status_code == 200
            after = client.post("/v1/edits", data={**EDIT, "n": "2"}, files={"image": IMAGE}).json()
            assert (before["credits"]["plan"], after["credits"]) == (
                markup,
                {"plan": price_list, "estimated": 14, "reserved": 14, "charged": None},
            )
            assert admin.patch(f"/v1/admin/tenants/{tenant}", json={"plan": None}).json()["plan"] is None
            off = client.post("/v1/edits", data=EDIT, files={"image": IMAGE}).json()
            assert off["credits"] is None
            u.start_worker(6)
            first, second, third = (u.wait_job(client, j["id"]) for j in (before, after, off))
    assert first["credits"]["charged"] == _charge(first, "0", "0.0001")
    assert second["credits"]["charged"] == 14
    assert third["status"] == "succeeded"
    assert credits.balance(u.db, tenant) == credits.Balance(
        None, 100_000 - 14 - first["credits"]["charged"], 0
    )


def test_a_failed_job_charges_no_credits(stack: Universe) -> None:
    with stack.admin() as admin:
        plan = _plan(admin, credit_usd="0.01", per_image={"*": {"*": {"*": 3}}})
        tenant, key = _tenant_on(stack, admin, plan, [10])
    with stack.client(key) as own:
        job = own.post("/v1/edits", data={**EDIT, "prompt": "[moderation] x"}, files={"image": IMAGE}).json()
        failed = stack.wait_job(own, job["id"])
    assert failed["status"] == "failed"
    assert failed["credits"] == {"plan": plan, "estimated": 3, "reserved": 0, "charged": 0}
    assert credits.balance(stack.db, tenant) == credits.Balance(plan, 10, 0)


def test_a_job_moved_to_the_successor_is_repriced_under_its_own_plan(
    make_stack: Callable[..., Universe], make_sim: Callable[..., PrivateSim]
) -> None:
    sim = make_sim()
    u = make_stack(OPENAI_BASE_URL=sim.url, workers=0, beat=False)
    prices = {"gpt-image-1-mini": {"*": {"*": 2}}, "gpt-image-2": {"*": {"*": 5}}}
    with u.admin() as admin:
        listed = _plan(admin, credit_usd="0.01", per_image=prices)
        later = _plan(admin, credit_usd="0.01", markup="9")
        rich, rich_key = _tenant_on(u, admin, listed, [100])
        poor, poor_key = _tenant_on(u, admin, listed, [2])
        with u.client(rich_key) as rich_client, u.client(poor_key) as poor_client:
            moving = rich_client.post("/v1/edits", data=EDIT, files={"image": IMAGE}).json()
            stuck = poor_client.post("/v1/edits", data=EDIT, files={"image": IMAGE}).json()
            assert moving["credits"]["estimated"] == stuck["credits"]["estimated"] == 2
            admin.patch(f"/v1/admin/tenants/{rich}", json={"plan": later})
            sim(models=["gpt-image-1.5", "gpt-image-2"])
            u.start_worker()
            moved = u.wait_job(rich_client, moving["id"])
            refused = u.wait_job(poor_client, stuck["id"])
    assert (moved["status"], moved["model"]) == ("succeeded", "gpt-image-2")
    assert moved["credits"] == {"plan": listed, "estimated": 5, "reserved": 0, "charged": 5}
    assert credits.balance(u.db, rich) == credits.Balance(later, 95, 0)
    assert (refused["status"], refused["error"]["code"]) == ("failed", "insufficient_credits")
    assert refused["credits"]["charged"] == 0
    assert credits.balance(u.db, poor) == credits.Balance(listed, 2, 0)
