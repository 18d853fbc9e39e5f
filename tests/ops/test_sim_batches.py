"""The simulator's Files and Batch APIs, through the official SDK: the same edits and usage as
its interactive endpoint, its fault switches, and refusals of broken input files."""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import openai
import pytest
from openai import OpenAI
from openai.types import Batch

from editq.ops import launcher
from tests import images
from tests.support.stack import PINNED_OFFSET, PrivateSim

BODY = {"model": "gpt-image-1-mini", "prompt": "make it vintage film", "size": "1024x1024", "quality": "low"}


@pytest.fixture(scope="module")
def sim() -> Iterator[PrivateSim]:
    port = launcher.free_port()
    args = ["--api-key", "sk-sim", "--batch-delay", "0.2", "--clock-offset", PINNED_OFFSET]
    proc = launcher.simulator(port, args=args, echo=False)
    try:
        yield PrivateSim(proc, f"http://127.0.0.1:{port}")
    finally:
        proc.stop()


@pytest.fixture
def client(sim: PrivateSim) -> OpenAI:
    sim(batch_delay=0.2, batch_fail_next=0, batch_expire_next=0, batch_expire_after=0, batch_line_fail_rate=0)
    return OpenAI(base_url=sim.url, api_key="sk-sim", max_retries=0)


def _lines(*bodies: dict[str, Any], url: str = "/v1/images/edits") -> bytes:
    return b"".join(
        json.dumps({"custom_id": f"job{i}", "method": "POST", "url": url, "body": b}).encode() + b"\n"
        for i, b in enumerate(bodies)
    )


def _run(client: OpenAI, content: bytes, timeout: float = 30) -> Batch:
    input_file = client.files.create(file=("in.jsonl", content, "application/jsonl"), purpose="batch")
    batch = client.batches.create(
        input_file_id=input_file.id,
        endpoint="/v1/images/edits",
        completion_window="24h",
        metadata={"editq_batch": "b1"},
    )
    first: str = batch.status
    assert first == "validating"
    deadline = time.monotonic() + timeout
    while batch.status not in ("completed", "failed", "expired", "cancelled"):
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
        batch = client.batches.retrieve(batch.id)
    return batch


def _results(client: OpenAI, file_id: str | None) -> dict[str, dict[str, Any]]:
    if file_id is None:
        return {}
    lines = [json.loads(line) for line in client.files.content(file_id).text.splitlines()]
    return {line["custom_id"]: line for line in lines}


def test_a_batch_makes_the_same_edits_and_usage_as_the_interactive_endpoint(client: OpenAI) -> None:
    picture = images.scene(320, 240)
    image = client.files.create(file=("a.png", picture, "image/png"), purpose="vision")
    assert client.files.retrieve(image.id).bytes == len(picture)
    data_url = "data:image/png;base64," + base64.b64encode(picture).decode()
    batch = _run(
        client,
        _lines({**BODY, "images": [{"file_id": image.id}]}, {**BODY, "images": [{"image_url": data_url}]}),
    )
    assert batch.status == "completed"
    assert batch.request_counts is not None
    assert (batch.request_counts.total, batch.request_counts.completed) == (2, 2)
    assert batch.metadata == {"editq_batch": "b1"}
    assert batch.error_file_id is None
    out = _results(client, batch.output_file_id)
    direct = client.images.edit(
        model="gpt-image-1-mini",
        image=("a.png", picture, "image/png"),
        prompt=BODY["prompt"],
        size="1024x1024",
        quality="low",
    )
    assert direct.usage is not None
    for line in out.values():
        assert line["response"]["status_code"] == 200
        answer = line["response"]["body"]
        assert answer["usage"] == direct.usage.model_dump(exclude_none=True)
        assert answer["data"][0]["b64_json"] == direct.data[0].b64_json  # type: ignore[index]
    assert batch.id in [b.id for b in client.batches.list(limit=5).data]
    assert client.files.delete(image.id).deleted
    with pytest.raises(openai.NotFoundError):
        client.files.retrieve(image.id)


def test_fault_switches_fail_expire_and_break_lines(client: OpenAI, sim: PrivateSim) -> None:
    body = {
        **BODY,
        "images": [{"image_url": "data:image/png;base64," + base64.b64encode(images.scene(64, 64)).decode()}],
    }
    sim(batch_fail_next=1)
    failed = _run(client, _lines(body))
    assert failed.status == "failed"
    assert failed.errors is not None
    assert failed.errors.data
    assert failed.output_file_id is None
    sim(batch_expire_next=1, batch_expire_after=1)
    expired = _run(client, _lines(body, body, body))
    assert expired.status == "expired"
    assert len(_results(client, expired.output_file_id)) == 1
    errors = _results(client, expired.error_file_id)
    assert len(errors) == 2
    assert {e["error"]["code"] for e in errors.values()} == {"batch_expired"}
    assert {e["response"] for e in errors.values()} == {None}
    sim(batch_line_fail_rate=1.0)
    broken = _run(client, _lines(body, {**body, "prompt": "x [moderation]"}))
    assert broken.status == "completed"
    answers = _results(client, broken.error_file_id)
    assert {a["response"]["status_code"] for a in answers.values()} == {500, 400}
    assert answers["job1"]["response"]["body"]["error"]["code"] == "moderation_blocked"
    assert sim.stats()["batches"]["failed"] >= 1


def test_cancel_stops_a_running_batch(client: OpenAI, sim: PrivateSim) -> None:
    sim(batch_delay=60)
    body = {
        **BODY,
        "images": [{"image_url": "data:image/png;base64," + base64.b64encode(images.scene(64, 64)).decode()}],
    }
    input_file = client.files.create(
        file=("in.jsonl", _lines(body, body), "application/jsonl"), purpose="batch"
    )
    batch = client.batches.create(
        input_file_id=input_file.id, endpoint="/v1/images/edits", completion_window="24h"
    )
    assert client.batches.cancel(batch.id).status == "cancelling"
    deadline = time.monotonic() + 10
    while (batch := client.batches.retrieve(batch.id)).status != "cancelled":
        assert time.monotonic() < deadline, batch
        time.sleep(0.1)
    errors = _results(client, batch.error_file_id)
    assert {e["error"]["code"] for e in errors.values()} == {"batch_cancelled"}
    assert client.batches.cancel(batch.id).status == "cancelled"  # an ended batch stays as it is


def test_broken_input_is_refused_clearly(client: OpenAI, sim: PrivateSim) -> None:
    good = {**BODY, "images": [{"file_id": "file-missing"}]}
    chat = {"custom_id": "other", "method": "POST", "url": "/v1/chat/completions", "body": good}
    lines = _lines(good) + b"not json\n" + _lines(good) + json.dumps(chat).encode() + b"\n"
    refused = _run(client, lines)
    assert refused.status == "failed"
    assert refused.errors is not None
    problems = {(e.line, (e.message or "").split(" ")[0]) for e in refused.errors.data or []}
    assert problems == {(2, "The"), (3, "Duplicate"), (4, "Each")}
    unknown = _run(
        client,
        _lines(
            good,
            {**BODY, "images": []},
            {**BODY, "images": [{"file_id": "a", "image_url": "b"}], "stream": True},
        ),
    )
    answers = _results(client, unknown.error_file_id)
    assert [answers[f"job{i}"]["response"]["status_code"] for i in range(3)] == [400, 400, 400]
    assert answers["job0"]["response"]["body"]["error"]["message"] == "No such file: 'file-missing'."
    image = client.files.create(file=("a.png", images.scene(64, 64), "image/png"), purpose="vision")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=image.id, endpoint="/v1/images/edits", completion_window="24h")
    with pytest.raises(openai.BadRequestError):
        client.batches.create(input_file_id=image.id, endpoint="/v1/embeddings", completion_window="24h")
    with pytest.raises(openai.AuthenticationError):
        OpenAI(base_url=sim.url, api_key="wrong", max_retries=0).batches.list()
    answer = httpx.post(
        f"{sim.url}/files",
        headers={"Authorization": "Bearer sk-sim"},
        data={"purpose": "nonsense"},
        files={"file": ("a", b"x")},
    )
    assert answer.status_code == 400
    assert answer.json()["error"]["param"] == "purpose"
