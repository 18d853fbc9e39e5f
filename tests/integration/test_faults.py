"""The fault suite: each test breaks one part of a running stack while jobs are in flight and
then checks the same promises (Rig.check): every accepted job ends in exactly one terminal
state, one settlement each, the ledger accounts for every call the provider answered, nothing
stays reserved or in flight, and no worker is left dead."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.integration.faults import Rig, log_figures, make_rig, stop_rig
from tests.integration.stack import Services, universe

pytestmark = pytest.mark.faults


@pytest.fixture
def rig(services: Services, tmp_path: Path) -> Iterator[Rig]:
    made = make_rig(services, tmp_path, universe)
    try:
        yield made
    finally:
        stop_rig(made)


def _wait_running(rig: Rig, at_least: int, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while rig.u.redis.zcard(f"{rig.u.prefix}:inflight") < at_least:
        assert time.monotonic() < deadline, "jobs did not start"
        time.sleep(0.05)


def test_redis_restart_with_jobs_in_flight_keeps_workers(rig: Rig, services: Services) -> None:
    rig.submit(16)
    _wait_running(rig, 2)
    started = time.monotonic()
    rig.restart_redis(down_seconds=2.0)
    rig.submit(8)  # the API and the workers are back on the restarted Redis
    figures = rig.check()
    assert figures["statuses"] == {"succeeded": 24}
    log_figures("redis_restart", figures | {"seconds": round(time.monotonic() - started, 1)}, services.logs)
