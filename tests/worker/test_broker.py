"""The worker's broker settings (editq/worker/broker.py): Flower still shows edit tasks, which
send no `task-started` event."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from editq.ops import launcher
from editq.worker import broker
from tests import images
from tests.support.stack import Universe

AUTH = ("admin", "flower-password-for-the-broker-test")


def test_editq_transport_only_for_plain_redis_urls() -> None:
    assert broker.transport_for("redis://127.0.0.1:6379/0") == broker.TRANSPORT
    assert broker.transport_for("rediss://cache.example:6380/0") == broker.TRANSPORT
    assert broker.transport_for("sentinel://127.0.0.1:26379") is None


def _edit_tasks(port: int) -> dict[str, Any]:
    answer = httpx.get(f"http://127.0.0.1:{port}/api/tasks", auth=AUTH, timeout=10)
    answer.raise_for_status()
    tasks: dict[str, Any] = answer.json()
    return {uuid: task for uuid, task in tasks.items() if task.get("name") == "editq.edit"}


def _edit(u: Universe, client: httpx.Client, **form: str) -> dict[str, Any]:
    """One edit, submitted and waited for until it succeeded."""
    job: dict[str, Any] = client.post(
        "/v1/edits",
        data={"prompt": "make it night", "quality": "low", **form},
        files={"image": ("a.png", images.scene(320, 240), "image/png")},
    ).json()
    assert u.wait_job(client, job["id"])["status"] == "succeeded"
    return job


def test_flower_shows_edit_tasks_received_then_succeeded(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=0, beat=False)
    port = launcher.free_port()
    flower = launcher.flower(
        u.env, port, ":".join(AUTH), echo=False, log=u.services.logs / f"{u.prefix}-f.log"
    )
    try:
        launcher.wait_for_http(f"http://127.0.0.1:{port}/healthcheck", timeout=60)
        u.start_worker(4)
        _, key = u.tenant()
        with u.client(key) as client:
            job = _edit(u, client)
        deadline = time.monotonic() + 30
        while not (tasks := _edit_tasks(port)) or next(iter(tasks.values()))["state"] != "SUCCESS":
            assert time.monotonic() < deadline, tasks
            time.sleep(0.3)
    finally:
        flower.stop()
    [task] = tasks.values()
    assert task["args"].count(job["id"]) == 1
    assert task["received"]
    assert task["succeeded"]
    assert task["started"] is None  # no task-started event: one publish less per job


def test_flower_turns_on_the_edit_events_of_a_worker_started_without_them(
    make_stack: Callable[..., Universe],
) -> None:
    """EDITQ_TASK_EVENTS=false: the edit threads send nothing until Flower's enable_events
    (which it broadcasts every few seconds) reaches the worker; then its edits show."""
    u = make_stack(workers=0, beat=False, EDITQ_TASK_EVENTS="false")
    u.start_worker(4)
    _, key = u.tenant()
    port = launcher.free_port()
    with u.client(key) as client:
        quiet = _edit(u, client)
        flower = launcher.flower(
            u.env, port, ":".join(AUTH), echo=False, log=u.services.logs / f"{u.prefix}-f.log"
        )
        try:
            launcher.wait_for_http(f"http://127.0.0.1:{port}/healthcheck", timeout=60)
            deadline = time.monotonic() + 60
            shown: dict[str, Any] = {}
            while not shown:
                assert time.monotonic() < deadline, "no edit reached Flower"
                _edit(u, client, reuse="false")  # not answered from the quiet job's outputs
                time.sleep(1.0)  # a flush of the buffered events
                shown = {uuid: t for uuid, t in _edit_tasks(port).items() if t["state"] == "SUCCESS"}
        finally:
            flower.stop()
    assert not any(quiet["id"] in task["args"] for task in shown.values())  # sent before Flower asked
