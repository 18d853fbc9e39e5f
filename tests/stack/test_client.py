"""`editq.client` against the real stack: every operation through `Client` and `AsyncClient`,
the errors they raise, and `verify_webhook` on a delivery the worker signed."""

from __future__ import annotations

import asyncio
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from editq.client import (
    AsyncClient,
    BadRequest,
    Client,
    EditJob,
    InvalidWebhook,
    JobFinished,
    JobNotSucceeded,
    NotFound,
    Unauthorized,
    verify_webhook,
)
from tests import images
from tests.support.receiver import Receiver
from tests.support.stack import Universe


def test_the_sync_client_does_every_operation(
    stack: Universe, tenant: tuple[str, str], photo: Path, tmp_path: Path
) -> None:
    with Client(stack.api_url, tenant[1]) as client:
        estimate = client.estimate(photo, "make it a pencil sketch", strength="low")
        assert estimate.model == "gpt-image-1-mini"
        assert estimate.estimated_usd is not None
        assert estimate.estimated_usd > 0
        assert set(estimate.budget_remaining_usd) == {"day", "month", "total"}

        job = client.submit(photo, "make it a pencil sketch", strength="low", metadata={"sku": "A1"}, wait=60)
        assert job.status == "succeeded", job.error
        assert job.metadata == {"sku": "A1"}
        assert job.cost.actual_usd is not None
        assert Decimal(0) < job.cost.actual_usd <= estimate.estimated_usd
        assert client.get(job.id).raw == job.raw

        [saved] = client.download(job, tmp_path / "out")
        assert images.decode(saved.read_bytes()).size == (job.outputs[0].width, job.outputs[0].height)
        assert client.read_output(job.id, 0) == saved.read_bytes()

        assert job.id in [j.id for j in client.list(limit=5)]
        assert job.id not in [j.id for j in client.list(status="failed", limit=50)]
        usage = client.usage(group_by="model")
        assert usage.groups[0].model == "gpt-image-1-mini"
        assert usage.groups[0].jobs_settled == 1

        with pytest.raises(JobFinished) as finished:
            client.cancel(job.id)
        assert (finished.value.status, finished.value.job_id) == (409, job.id)


def test_the_sync_client_runs_a_batch_and_reports_each_item(stack: Universe, tenant: tuple[str, str]) -> None:
    items: list[dict[str, Any]] = [
        {"images": [images.scene(200, 150)]},
        {"images": [images.scene(210, 150)], "prompt": "make it rain"},
        {"images": [images.scene(220, 150)], "strength": "extreme"},
    ]
    with Client(stack.api_url, tenant[1]) as client:
        results = list(client.iter_batch(items, defaults={"prompt": "black and white"}, timeout=90))
    assert sorted(r.index for r in results) == [0, 1, 2]
    assert results[0].index == 2  # refused at once, before any job ended
    refused = results[0].error
    assert isinstance(refused, BadRequest)
    assert (refused.status, refused.code, refused.param) == (400, "invalid_strength", "strength")
    finished = {r.index: r.job for r in results[1:]}
    assert all(j is not None and j.status == "succeeded" for j in finished.values())
    assert finished[1] is not None
    assert finished[1].prompt == "make it rain"


def test_the_sync_client_raises_the_api_errors(stack: Universe, tenant: tuple[str, str], photo: Path) -> None:
    with Client(stack.api_url, tenant[1]) as client:
        with pytest.raises(NotFound) as missing:
            client.get("edit_00000000000000000000000000")
        assert (missing.value.code, missing.value.job_id) == (
            "job_not_found",
            "edit_00000000000000000000000000",
        )
        with pytest.raises(NotFound):
            client.get("../usage")
        with pytest.raises(BadRequest) as bad:
            client.submit(photo, "x", n=11)
        assert (bad.value.code, bad.value.param) == ("invalid_n", "n")
        with pytest.raises(BadRequest) as corrupt:
            client.submit(b"not an image", "x")
        assert corrupt.value.code == "invalid_image"
    with Client(stack.api_url, "eq_wrong") as client, pytest.raises(Unauthorized) as refused:
        client.usage()
    assert refused.value.code == "invalid_api_key"


def test_the_async_client_does_every_operation(
    stack: Universe, tenant: tuple[str, str], photo: Path, tmp_path: Path
) -> None:
    async def run() -> None:
        async with AsyncClient(stack.api_url, tenant[1]) as client:
            estimate = await client.estimate(photo, "vintage film")
            assert estimate.provider_size
            queued = await client.submit(photo, "vintage film", output_format="webp")
            assert queued.status in ("queued", "running")
            job = await client.wait(queued, timeout=60)  # server-sent events
            assert job.status == "succeeded", job.error
            assert (await client.get(job.id)).status == "succeeded"
            [saved] = await client.download(job.id, tmp_path)
            assert saved.suffix == ".webp"
            listed = [j.id async for j in client.list(limit=3)]
            assert listed[0] == job.id
            results = [
                r async for r in client.iter_batch([{"images": [photo], "prompt": "rain"}], timeout=60)
            ]
            assert [r.succeeded for r in results] == [True]
            assert (await client.usage()).spent_usd > 0
            with pytest.raises(JobFinished):
                await client.cancel(job.id)
            with pytest.raises(NotFound):
                await client.get("edit_nope")

    asyncio.run(run())


def test_a_queued_job_can_be_waited_on_and_canceled(idle: Universe, photo: Path, tmp_path: Path) -> None:
    u = idle  # no workers: jobs stay queued
    _, key = u.tenant()
    with Client(u.api_url, key) as client:
        job = client.submit(photo, "make it nighttime")
        waited = client.wait(job, timeout=1.5)
        assert (waited.status, waited.queue_position) == ("queued", 0)
        with pytest.raises(JobNotSucceeded):
            client.download(job, tmp_path)
        assert client.cancel(job.id).status == "canceled"
        with pytest.raises(JobFinished):
            client.cancel(job.id)

    async def cancel_another() -> EditJob:
        async with AsyncClient(u.api_url, key) as client:
            other = await client.submit(photo, "make it nighttime", reuse=False)
            return await client.cancel(other.id)

    assert asyncio.run(cancel_another()).status == "canceled"


def test_verify_webhook_accepts_a_real_delivery(
    stack: Universe, tenant: tuple[str, str], photo: Path
) -> None:
    receiver = Receiver().start()
    try:
        with Client(stack.api_url, tenant[1]) as client:
            job = client.submit(photo, "warm and sunny", webhook_url=receiver.url, wait=60)
        deadline = time.monotonic() + 60
        while not receiver.events("edit.succeeded") and time.monotonic() < deadline:
            time.sleep(0.1)
        [delivery] = receiver.events("edit.succeeded")
    finally:
        receiver.stop()
    with stack.client(tenant[1]) as http:
        secret = http.get("/v1/webhooks/secret").json()["secret"]
    event = verify_webhook(delivery.body, delivery.headers, secret)
    assert (event.type, event.data.id, event.data.status) == ("edit.succeeded", job.id, "succeeded")
    with pytest.raises(InvalidWebhook) as forged:
        verify_webhook(delivery.body.replace(b"succeeded", b"failed"), delivery.headers, secret)
    assert forged.value.code == "invalid_signature"
