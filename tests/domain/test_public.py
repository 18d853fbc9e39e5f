"""The job as clients see it, built from its stored hash."""

from __future__ import annotations

import json
from typing import Any

from editq.job import Job
from editq.public import edit_job, webhook_event

HASH = {
    "id": "edit_1",
    "tenant": "t",
    "status": "succeeded",
    "model": "gpt-image-1-mini",
    "model_requested": "",
    "model_explicit": "0",
    "prompt": "night",
    "priority": "interactive",
    "plan": json.dumps({"api_model": "gpt-image-1-mini", "size": "1024x1024", "n": 1, "quality": "auto"}),
    "options": json.dumps({"n": 1, "strength": "low", "reuse": True}),
    "sources": json.dumps(
        [{"id": "img_a", "sha256": "a", "content_type": "image/png", "width": 8, "height": 6, "bytes": 9}]
    ),
    "outputs": json.dumps([{"key": "k", "content_type": "image/png", "width": 8, "height": 6, "bytes": 5}]),
    "estimate": json.dumps({"estimated_usd": "0.010000"}),
    "reserved": "10000",
    "settled": "1",
    "actual": "4000",
    "usage": json.dumps({"input_tokens": 3}),
    "metadata": json.dumps({"a": "b"}),
    "created_at": "1764000000000",
    "finished_at": "1764000001000",
    "attempts": "1",
    "last_error": json.dumps({"code": "timeout", "message": "slow"}),
}


def _url(job: Job, index: int, output: dict[str, Any]) -> str:
    return f"https://o/{job.id}/{index}"


def test_a_finished_job_shows_its_cost_outputs_and_no_last_error() -> None:
    shown = edit_job(Job.from_hash(HASH), _url, queue_position=3).model_dump(mode="json")
    assert shown["object"] == "edit"
    assert shown["status"] == "succeeded"
    assert shown["created_at"] == "2025-11-24T16:00:00.000Z"
    assert shown["model"] == "gpt-image-1-mini"
    assert shown["model_requested"] is None
    assert shown["options"]["strength"] == "low"
    assert shown["options"]["size"] is None
    assert shown["provider_request"]["size"] == "1024x1024"
    assert shown["sources"] == [
        {"id": "img_a", "content_type": "image/png", "width": 8, "height": 6, "bytes": 9}
    ]
    assert shown["cost"] == {
        "estimated_usd": "0.010000",
        "reserved_usd": "0.000000",
        "actual_usd": "0.004000",
        "usage": {"input_tokens": 3},
    }
    assert shown["outputs"] == [
        {"url": "https://o/edit_1/0", "content_type": "image/png", "width": 8, "height": 6, "bytes": 5}
    ]
    assert shown["last_error"] is None
    assert shown["queue_position"] is None
    assert shown["webhook"] is None


def test_a_waiting_job_shows_its_place_and_last_error_but_no_outputs() -> None:
    waiting = {
        **HASH,
        "status": "queued",
        "settled": "",
        "webhook_url": "https://h/",
        "webhook_events": '["edit.failed"]',
    }
    shown = edit_job(Job.from_hash(waiting), _url, queue_position=3).model_dump(mode="json")
    assert shown["queue_position"] == 3
    assert shown["outputs"] == []
    assert shown["last_error"] == {"code": "timeout", "message": "slow"}
    assert shown["webhook"] == {"url": "https://h/", "events": ["edit.failed"]}
    assert shown["cost"]["reserved_usd"] == "0.010000"
    assert shown["cost"]["actual_usd"] is None


def test_provider_error_details_are_kept() -> None:
    failed = {
        **HASH,
        "status": "failed",
        "error": json.dumps({"code": "x", "message": "m", "provider_status": 500}),
    }
    shown = edit_job(Job.from_hash(failed), _url).model_dump(mode="json")
    assert shown["error"] == {"code": "x", "message": "m", "provider_status": 500}


def test_the_started_event_shows_the_job_running() -> None:
    job = edit_job(Job.from_hash(HASH), _url)
    body = webhook_event("edit.started", "2025-11-24T16:00:00.000Z", job).model_dump(mode="json")
    assert list(body) == ["type", "timestamp", "data"]
    assert body["data"]["status"] == "running"
    done = webhook_event("edit.succeeded", "t", job).model_dump(mode="json")
    assert done["data"]["status"] == "succeeded"
