"""Results reach users however they listen: signed webhooks with durable retries and replay,
server-sent events, synchronous waits; and cancel, deadlines, batch submit, retention."""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest
from standardwebhooks import Webhook

from editq.storage import deliveries, money, tenants
from editq.worker import context, webhooks
from tests import images
from tests.support.receiver import Receiver
from tests.support.stack import PrivateSim, Universe

IMAGE = ("a.png", images.scene(320, 240), "image/png")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver().start()
    yield r
    r.stop()


def _submit(client: httpx.Client, **data: str) -> dict[str, Any]:
    response = client.post("/v1/edits", data={"prompt": "warm", **data}, files=[("image", IMAGE)])
    assert response.status_code in (200, 202), response.text
    return dict(response.json())


def _wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.1)


def test_webhooks_are_signed_and_verify(stack: Universe, receiver: Receiver) -> None:
    _, key = stack.tenant()
    with stack.client(key) as client:
        secret = client.get("/v1/webhooks/secret").json()["secret"]
        job = _submit(
            client, webhook_url=receiver.url, webhook_events="edit.started,edit.succeeded", prompt="night"
        )
        stack.wait_job(client, job["id"])
        _wait_for(lambda: len(receiver.received) == 2)
        done = client.get(f"/v1/edits/{job['id']}").json()
    kinds = []
    for request in receiver.received:
        payload = Webhook(secret).verify(request.body, request.headers)
        kinds.append(payload["type"])
        assert payload["data"]["id"] == job["id"]
        assert request.headers["webhook-id"].startswith("msg_")
        assert request.headers["content-type"] == "application/json"
    assert sorted(kinds) == ["edit.started", "edit.succeeded"]
    succeeded = receiver.events("edit.succeeded")[0].json
    assert succeeded["data"]["status"] == "succeeded"
    assert succeeded["data"]["outputs"] == done["outputs"]
    assert receiver.events("edit.started")[0].json["data"]["status"] == "running"
    assert len({r.headers["webhook-id"] for r in receiver.received}) == 2


def test_signatures_during_a_secret_rotation(stack: Universe, receiver: Receiver) -> None:
    _, key = stack.tenant()
    with stack.client(key) as client:
        old = client.get("/v1/webhooks/secret").json()["secret"]
        rotated = client.post("/v1/webhooks/secret/rotate").json()
        new = rotated["secret"]
        assert new != old
        assert [s["secret"] for s in rotated["secrets"]] == [new, old]
        assert rotated["secrets"][1]["expires_at"] > stack.settings.clock.time()
        stack.wait_job(client, _submit(client, webhook_url=receiver.url)["id"])
    _wait_for(lambda: len(receiver.received) == 1)
    request = receiver.received[0]
    assert request.headers["webhook-signature"].count("v1,") == 2
    assert Webhook(new).verify(request.body, request.headers)["type"] == "edit.succeeded"
    assert Webhook(old).verify(request.body, request.headers)["type"] == "edit.succeeded"


def test_a_receiver_that_recovers_gets_every_attempt_with_one_id(stack: Universe) -> None:
    receiver = Receiver(answer=lambda n: 500 if n < 3 else 200).start()
    try:
        _, key = stack.tenant()
        with stack.client(key) as client:
            job = _submit(client, webhook_url=receiver.url)
            stack.wait_job(client, job["id"])
            _wait_for(lambda: len(receiver.received) == 4, timeout=30)
            time.sleep(1.5)
            assert len(receiver.received) == 4
            secret = client.get("/v1/webhooks/secret").json()["secret"]
            [delivery] = client.get(f"/v1/edits/{job['id']}/deliveries").json()["data"]
        assert len({r.headers["webhook-id"] for r in receiver.received}) == 1
        assert len({r.body for r in receiver.received}) == 1
        assert len({r.headers["webhook-timestamp"] for r in receiver.received}) >= 2
        for request in receiver.received:
            Webhook(secret).verify(request.body, request.headers)
        assert delivery["status"] == "delivered"
        assert [a["status"] for a in delivery["attempts"]] == [500, 500, 500, 200]
        assert all(a["duration_ms"] >= 0 for a in delivery["attempts"])

        with stack.client(key) as client:
            again = client.post(f"/v1/webhooks/{delivery['id']}/redeliver")
            assert again.status_code == 202
            _wait_for(lambda: len(receiver.received) == 5)
            assert receiver.received[-1].headers["webhook-id"] == delivery["id"]
            _, other = stack.tenant()
            with stack.client(other) as stranger:
                assert stranger.post(f"/v1/webhooks/{delivery['id']}/redeliver").status_code == 404
    finally:
        receiver.stop()


def test_410_disables_the_endpoint(stack: Universe) -> None:
    receiver = Receiver(answer=lambda n: 410).start()
    try:
        _, key = stack.tenant()
        with stack.client(key) as client:
            job = _submit(client, webhook_url=receiver.url)
            stack.wait_job(client, job["id"])
            _wait_for(lambda: client.get("/v1/webhooks/endpoints").json()["disabled"] == [receiver.url])
            [delivery] = client.get(f"/v1/edits/{job['id']}/deliveries").json()["data"]
            assert delivery["status"] == "disabled"
            assert len(receiver.received) == 1
            refused = client.post(
                "/v1/edits", data={"prompt": "x", "webhook_url": receiver.url}, files=[("image", IMAGE)]
            )
            assert refused.json()["error"]["code"] == "webhook_endpoint_disabled"
            enabled = client.post("/v1/webhooks/endpoints/enable", json={"url": receiver.url})
            assert enabled.status_code == 200
            assert _submit(client, webhook_url=receiver.url, prompt="night")["status"] == "queued"
    finally:
        receiver.stop()


def test_a_pending_delivery_survives_its_workers(make_stack: Callable[..., Universe]) -> None:
    receiver = Receiver(answer=lambda n: 503 if n < 1 else 200).start()
    u = make_stack(workers=1, EDITQ_WEBHOOK_SCHEDULE="0,3,1,1,1")
    try:
        _, key = u.tenant()
        with u.client(key) as client:
            job = _submit(client, webhook_url=receiver.url)
            u.wait_job(client, job["id"])
            _wait_for(lambda: len(receiver.received) == 1)
            _wait_for(
                lambda: (
                    client.get(f"/v1/edits/{job['id']}/deliveries").json()["data"][0]["attempt_count"] == 1
                )
            )
            u.workers[0].kill()
            time.sleep(3.5)
            assert len(receiver.received) == 1
            u.start_worker(4)
            _wait_for(lambda: len(receiver.received) == 2, timeout=30)
            [delivery] = client.get(f"/v1/edits/{job['id']}/deliveries").json()["data"]
        assert delivery["status"] == "delivered"
        assert receiver.received[0].headers["webhook-id"] == receiver.received[1].headers["webhook-id"]
    finally:
        receiver.stop()


SSRF = [
    "https://127.0.0.1/hook",
    "https://10.1.2.3/hook",
    "https://172.16.5.4/hook",
    "https://172.31.255.1/hook",
    "https://192.168.0.10/hook",
    "https://169.254.169.254/latest/meta-data/",
    "https://[::1]/hook",
    "https://[fe80::1]/hook",
    "https://[::ffff:127.0.0.1]/hook",
    "https://localhost/hook",
    "https://0.0.0.0/hook",
]


@pytest.fixture(scope="module")
def guarded(services: Any) -> Iterator[Universe]:
    from tests.support.stack import universe

    u = universe(services, EDITQ_WEBHOOK_ALLOW_PRIVATE="false", EDITQ_WEBHOOK_ALLOW_HTTP="false")
    u.start_api()
    yield u
    u.stop()


@pytest.mark.parametrize("url", SSRF)
def test_webhook_urls_inside_the_network_are_refused(guarded: Universe, url: str) -> None:
    _, key = guarded.tenant()
    with guarded.client(key) as client:
        response = client.post(
            "/v1/edits", data={"prompt": "x", "webhook_url": url}, files=[("image", IMAGE)]
        )
    assert response.status_code == 400
    assert response.json()["error"]["code"] == "webhook_url_not_public"
    assert response.json()["error"]["param"] == "webhook_url"


def test_plain_http_is_refused_without_the_setting(guarded: Universe) -> None:
    _, key = guarded.tenant()
    with guarded.client(key) as client:
        response = client.post(
            "/v1/edits",
            data={"prompt": "x", "webhook_url": "http://93.184.216.34/"},
            files=[("image", IMAGE)],
        )
    assert response.json()["error"]["code"] == "webhook_url_not_https"


def test_the_address_is_checked_again_when_delivering(guarded: Universe) -> None:
    """DNS rebinding: public at submit, private at delivery. The attempt never connects."""
    tenant, _ = guarded.tenant()
    ctx = context.build(guarded.settings, 1)
    try:
        dlv = deliveries.create(
            ctx.db, tenant, "edit_x", "edit.succeeded", "https://rebind.example/hook", "{}"
        )
        assert dlv is not None
        status = webhooks.deliver(ctx, dlv, resolve=lambda host, port: ["10.0.0.7"])
        assert status == deliveries.PENDING
        [attempt] = deliveries.attempts(ctx.db, dlv)
        assert attempt["status"] == "refused"
        assert "10.0.0.7" in attempt["error"]
    finally:
        ctx.close()


def test_server_sent_events_follow_the_job(stack: Universe, client: httpx.Client) -> None:
    job = _submit(client, prompt="sketch")
    events: list[tuple[str, dict[str, Any]]] = []
    with client.stream("GET", f"/v1/edits/{job['id']}/events", timeout=30) as stream:
        assert stream.headers["content-type"].startswith("text/event-stream")
        name = None
        for line in stream.iter_lines():
            if line.startswith("event: "):
                name = line[7:]
            elif line.startswith("data: ") and name:
                events.append((name, json.loads(line[6:])))
    assert events[-1][0] == "done"
    assert events[-1][1]["status"] == "succeeded"
    statuses = [data["status"] for kind, data in events if kind == "status"]
    assert statuses[-1] == "succeeded"
    assert statuses == sorted(statuses, key=["queued", "running", "succeeded"].index)


def test_prefer_wait(stack: Universe, client: httpx.Client) -> None:
    response = client.post(
        "/v1/edits", data={"prompt": "rain"}, files=[("image", IMAGE)], headers={"Prefer": "wait=20"}
    )
    assert response.status_code == 200
    assert response.json()["status"] == "succeeded"
    assert response.headers["preference-applied"] == "wait=20"
    assert response.json()["outputs"]


@pytest.fixture
def slow(make_stack: Callable[..., Universe], private_sim: PrivateSim) -> Universe:
    private_sim(latency_min=3, latency_max=3)
    return make_stack(workers=1, OPENAI_BASE_URL=private_sim.url, EDITQ_PROVIDER_MAX_INFLIGHT="1")


def test_wait_gives_up_and_cancel_in_every_state(slow: Universe) -> None:
    tenant, key = slow.tenant()
    with slow.client(key) as client:
        started = time.monotonic()
        running = client.post(
            "/v1/edits", data={"prompt": "rain"}, files=[("image", IMAGE)], headers={"Prefer": "wait=1"}
        )
        assert running.status_code == 202
        assert 0.9 <= time.monotonic() - started < 3
        queued = _submit(client, prompt="night")
        slow.wait_job(client, running.json()["id"], until=("running",))
        assert client.get(f"/v1/edits/{queued['id']}").json()["queue_position"] == 0

        canceled = client.post(f"/v1/edits/{queued['id']}/cancel").json()
        assert canceled["status"] == "canceled"
        assert canceled["cost"]["actual_usd"] == "0.000000"
        assert canceled["error"]["code"] == "canceled"

        mid = client.post(f"/v1/edits/{running.json()['id']}/cancel").json()
        assert mid["status"] == "canceled"
        _wait_for(
            lambda: client.get(f"/v1/edits/{running.json()['id']}").json()["cost"]["actual_usd"] is not None,
            20,
        )
        after = client.get(f"/v1/edits/{running.json()['id']}").json()
        assert after["status"] == "canceled"
        assert after["outputs"] == []
        assert float(after["cost"]["actual_usd"]) > 0  # the call was made and billed

        finished = client.post(f"/v1/edits/{running.json()['id']}/cancel")
        assert finished.status_code == 409
        assert finished.json()["error"]["code"] == "job_finished"
    kinds = {(e["job"], e["kind"]) for e in money.ledger(slow.db, tenant)}
    assert (queued["id"], "released") in kinds
    assert (running.json()["id"], "settled") in kinds
    assert int(slow.redis.hget(f"{slow.prefix}:budget:{tenant}:total", "reserved")) == 0


def test_cancel_after_expires_a_job_that_did_not_start(slow: Universe) -> None:
    _, key = slow.tenant()
    with slow.client(key) as client:
        blocker = _submit(client, prompt="rain")
        late = client.post(
            "/v1/edits", data={"prompt": "night"}, files=[("image", IMAGE)], headers={"Cancel-After": "1s"}
        )
        assert late.status_code == 202
        assert late.json()["deadline"] is not None
        done = slow.wait_job(client, late.json()["id"], timeout=20)
        assert done["status"] == "expired"
        assert done["error"]["code"] == "expired"
        assert done["cost"]["actual_usd"] == "0.000000"
        assert done["attempts"] == 0
        assert slow.wait_job(client, blocker["id"])["status"] == "succeeded"


def test_batch_of_a_thousand(stack: Universe) -> None:
    tenant, key = stack.tenant()
    with stack.client(key, timeout=120) as client:
        upload = client.post(
            "/v1/uploads", files={"file": ("a.png", images.scene(64, 48), "image/png")}
        ).json()
        assert upload["id"].startswith("img_")
        items: list[dict[str, Any]] = [
            {"image_ids": [upload["id"]], "prompt": f"black and white {i}"} for i in range(998)
        ]
        items.insert(10, {"image_ids": ["img_" + "f" * 64], "prompt": "x"})
        items.insert(500, {"image_ids": [upload["id"]], "prompt": "x", "quality": "ultra"})
        answer = client.post(
            "/v1/edits/batch",
            json={"items": items, "defaults": {"quality": "low", "size": "1024x1024"}},
            headers={"Idempotency-Key": "batch-1"},
        ).json()
        assert answer["accepted"] == 998
        assert answer["refused"] == 2
        assert answer["items"][10]["error"]["code"] == "image_not_found"
        assert answer["items"][500]["error"]["code"] == "unsupported_quality"
        replay = client.post(
            "/v1/edits/batch",
            json={"items": items, "defaults": {"quality": "low", "size": "1024x1024"}},
            headers={"Idempotency-Key": "batch-1"},
        )
        assert replay.headers["idempotent-replayed"] == "true"
        assert replay.json() == answer
        too_many = client.post("/v1/edits/batch", json={"items": items + items})
        assert too_many.json()["error"]["code"] == "invalid_batch_size"
        ids = [item["job"]["id"] for item in answer["items"] if "job" in item]
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            done = client.get("/v1/edits", params={"status": "succeeded", "limit": 1}).json()
            pending = stack.redis.llen(f"{stack.prefix}:q:{tenant}:0")
            if (
                pending == 0
                and not client.get("/v1/edits", params={"status": "queued,running", "limit": 1}).json()[
                    "data"
                ]
            ):
                break
            time.sleep(1)
        assert done["data"]
    records = [stack.redis.hget(f"{stack.prefix}:job:{tenant}:{job_id}", "status") for job_id in ids]
    assert records.count("succeeded") == 998


def test_retention_removes_outputs_and_records(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=1, EDITQ_OUTPUT_RETENTION="2", EDITQ_JOB_RETENTION="4", EDITQ_REUSE_WINDOW="1")
    tenant, key = u.tenant()
    with u.client(key) as client:
        job = u.wait_job(client, _submit(client)["id"])
        assert u.db.objects.list_keys(f"t/{tenant}/out/{job['id']}/")
        _wait_for(lambda: not u.db.objects.list_keys(f"t/{tenant}/out/{job['id']}/"), timeout=15)
        _wait_for(lambda: client.get(f"/v1/edits/{job['id']}").status_code == 404, timeout=15)
    assert tenants.get(u.db, tenant) is not None
