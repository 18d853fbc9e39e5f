"""A worker killed anywhere in an economy batch's life loses no job and charges nothing twice:
the batch's steps run in-process against real Redis, S3, API and simulator, with a client that
dies at a chosen point (as a worker killed there would), and the next poller takes over."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import httpx
import pytest

from editq.catalogue import Lane
from editq.ops import launcher
from editq.settings import Settings
from editq.storage import economy as economy_store
from editq.storage import money
from editq.storage.economy import State
from editq.worker import context, economy
from editq.worker.provider.batches import BatchClient, BatchInfo
from tests import images
from tests.support.stack import PINNED_OFFSET, PrivateSim, Services, Universe, universe


class Killed(BaseException):
    """The worker died here (nothing in editq catches it)."""


class Dying(BatchClient):
    """The real client, killed once at `where`: before or after creating the batch, or after
    the first line of its results."""

    def __init__(self, real: BatchClient, where: str) -> None:
        super().__init__(real.client, real.base, real.headers["Authorization"].removeprefix("Bearer "))
        self.where = where

    def create(self, input_file_id: str, metadata: dict[str, str]) -> BatchInfo:
        if self.where == "before_create":
            raise Killed
        created = super().create(input_file_id, metadata)
        if self.where == "after_create":
            raise Killed
        return created

    @contextmanager
    def lines(self, file_id: str) -> Iterator[Iterator[str]]:
        with super().lines(file_id) as lines:
            if self.where != "mid_ingest":
                yield lines
                return

            def first_then_die() -> Iterator[str]:
                yield next(lines)
                raise Killed

            yield first_then_die()


@pytest.fixture(scope="module")
def lane(services: Services) -> Iterator[tuple[Universe, context.Context, PrivateSim]]:
    """An API (no workers: this test is the only poller) on a simulator of its own."""
    port = launcher.free_port()
    args = ["--latency", "0.05", "--batch-delay", "0.3", "--clock-offset", PINNED_OFFSET]
    sim = PrivateSim(launcher.simulator(port, args=args, echo=False), f"http://127.0.0.1:{port}")
    u = universe(
        services, OPENAI_BASE_URL=sim.url, EDITQ_ECONOMY_WINDOW="0", EDITQ_ECONOMY_POLL_SECONDS="0.1"
    )
    u.start_api()
    ctx = context.build(u.settings, 4)
    try:
        yield u, ctx, sim
    finally:
        ctx.close()
        u.stop()
        sim.proc.stop()


def _submit(u: Universe, key: str, count: int) -> list[str]:
    with u.client(key) as client:
        image_id = client.post(
            "/v1/uploads", files={"file": ("a.png", images.scene(200, 150), "image/png")}
        ).json()["id"]
        body = {"image_ids": [image_id], "prompt": "make it snow", "quality": "low", "size": "1024x1024"}
        answers = [
            client.post("/v1/edits", json={**body, "priority": "economy", "reuse": False})
            for _ in range(count)
        ]
    assert [a.status_code for a in answers] == [202] * count
    return [a.json()["id"] for a in answers]


def _finish(ctx: context.Context, batch_id: str, timeout: float = 30) -> None:
    """What the next pollers do: advance the batch until it is done."""
    deadline = time.monotonic() + timeout
    while (batch := economy_store.get(ctx.db, batch_id)) is not None and batch.state is not State.DONE:
        assert time.monotonic() < deadline, batch
        economy.advance(ctx, batch_id)
        time.sleep(0.1)


def _provider_batches(sim: PrivateSim, batch_id: str) -> list[dict[str, Any]]:
    page = httpx.get(
        f"{sim.url}/batches", params={"limit": 100}, headers={"Authorization": "Bearer x"}
    ).json()
    return [b for b in page["data"] if (b["metadata"] or {}).get("editq_batch") == batch_id]


def _collect_and_finish(ctx: context.Context) -> None:
    batch_id = economy.collect(ctx)
    assert batch_id is not None
    _finish(ctx, batch_id)


@pytest.mark.parametrize("where", ["before_create", "after_create", "mid_ingest"])
def test_a_worker_killed_in_a_batch_loses_nothing_and_charges_once(
    lane: tuple[Universe, context.Context, PrivateSim], where: str
) -> None:
    u, ctx, sim = lane
    tenant, key = u.tenant()
    ids = _submit(u, key, 3)
    real = ctx.batches
    assert real is not None
    ctx.batches = Dying(real, where)
    with pytest.raises(Killed):
        _collect_and_finish(ctx)
    ctx.batches = real
    batch_ids = u.redis.zrange(f"{u.prefix}:econ:batches", 0, -1)
    assert len(batch_ids) == 1
    batch_id = batch_ids[0]
    _finish(ctx, batch_id)
    assert len(_provider_batches(sim, batch_id)) == 1
    with u.client(key) as client:
        jobs = [client.get(f"/v1/edits/{i}").json() for i in ids]
    assert [j["status"] for j in jobs] == ["succeeded"] * 3
    assert {j["lane"] for j in jobs} == {Lane.ECONOMY.value}
    settled = [e for e in money.ledger(u.db, tenant) if e["kind"] == "settled"]
    assert sorted(e["job"] for e in settled) == sorted(ids)
    charged = sum(round(float(j["cost"]["actual_usd"]) * 1_000_000) for j in jobs)
    assert sum(e["amount_micros"] for e in settled) == charged
    assert int(u.redis.hget(f"{u.prefix}:budget:{tenant}:total", "spent")) == charged


def test_sources_can_go_by_presigned_url(lane: tuple[Universe, context.Context, PrivateSim]) -> None:
    """EDITQ_ECONOMY_SOURCES=url: no image is uploaded to the provider; it fetches them from S3."""
    u, _, sim = lane
    ctx = context.build(Settings.from_env({**u.env, "EDITQ_ECONOMY_SOURCES": "url"}), 4)
    try:
        _, key = u.tenant()
        ids = _submit(u, key, 2)
        batch_id = economy.collect(ctx)
        assert batch_id is not None
        assert economy_store.uploaded_files(ctx.db, batch_id) == []
        _finish(ctx, batch_id)
    finally:
        ctx.close()
    with u.client(key) as client:
        assert [client.get(f"/v1/edits/{i}").json()["status"] for i in ids] == ["succeeded"] * 2
    assert len(_provider_batches(sim, batch_id)) == 1
