"""The client's flows against httpx.MockTransport: waiting (events, then polling), pagination,
batches, downloads, request bodies and errors, each through the sync and the async client."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from editq.client import (
    AsyncClient,
    BadRequest,
    BudgetExceeded,
    Client,
    EditJob,
    Image,
    JobFinished,
    JobNotSucceeded,
    NotFound,
    RetryPolicy,
    ServerError,
)
from editq.client.errors import retry_after
from editq.client.protocol import EventReader

BASE = "http://editq.test"
Handler = Callable[[httpx.Request], httpx.Response]


def job(job_id: str = "edit_1", status: str = "queued", **extra: Any) -> dict[str, Any]:
    return {"id": job_id, "object": "edit", "status": status, **extra}


def error(http_status: int, code: str, **extra: Any) -> httpx.Response:
    body = {"error": {"code": code, "message": f"{code}!", "param": None, **extra}}
    return httpx.Response(http_status, json=body)


def sse(*events: tuple[str, dict[str, Any]]) -> httpx.Response:
    body = "retry: 2000\n\n: keep-alive\n\n" + "".join(
        f"event: {name}\ndata: {json.dumps(data)}\n\n" for name, data in events
    )
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body.encode())


class Both:
    """Runs one scenario through `Client` and through `AsyncClient` on the same handler."""

    def __init__(self, handler: Handler, kind: str) -> None:
        self.handler, self.kind = handler, kind
        self.requests: list[httpx.Request] = []

    def _record(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.handler(request)

    def __call__(self, method: str, *args: Any, **kwargs: Any) -> Any:
        retry = RetryPolicy(attempts=3, base=0.001, cap=0.002)
        if self.kind == "sync":
            with Client(
                BASE, "eq_k", retry=retry, poll_interval=0.01, transport=httpx.MockTransport(self._record)
            ) as c:
                result = getattr(c, method)(*args, **kwargs)
                return list(result) if isinstance(result, Iterator) else result

        async def run() -> Any:
            transport = httpx.MockTransport(self._record)
            async with AsyncClient(BASE, "eq_k", retry=retry, poll_interval=0.01, transport=transport) as c:
                if method in ("list", "iter_batch"):
                    return [item async for item in getattr(c, method)(*args, **kwargs)]
                return await getattr(c, method)(*args, **kwargs)

        return asyncio.run(run())


@pytest.fixture(params=["sync", "async"])
def kind(request: pytest.FixtureRequest) -> str:
    value: str = request.param
    return value


def test_wait_follows_the_events_until_the_job_ends(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            assert request.headers["accept"] == "text/event-stream"
            return sse(("status", job(status="running")), ("status", job(status="succeeded")), ("done", {}))
        return httpx.Response(200, json=job(status="queued"))

    run = Both(handler, kind)
    finished = run("wait", "edit_1", timeout=10)
    assert finished.status == "succeeded"
    assert [r.url.path for r in run.requests] == ["/v1/edits/edit_1", "/v1/edits/edit_1/events"]


def test_wait_polls_when_the_events_cannot_be_had(kind: str) -> None:
    polls = iter(["queued", "queued", "running", "succeeded"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(502, text="bad gateway")
        return httpx.Response(200, json=job(status=next(polls)))

    run = Both(handler, kind)
    assert run("wait", "edit_1", timeout=10).status == "succeeded"
    paths = [r.url.path for r in run.requests]
    assert paths.count("/v1/edits/edit_1/events") == 1
    assert paths.count("/v1/edits/edit_1") == 4


def test_a_stream_that_keeps_dropping_gives_way_to_polling(kind: str) -> None:
    polls = iter(["running", "succeeded"])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return sse(("status", job(status="running")))  # ends without the job ending
        return httpx.Response(200, json=job(status=next(polls)))

    run = Both(handler, kind)
    assert run("wait", "edit_1", timeout=10).status == "succeeded"
    assert [r.url.path for r in run.requests].count("/v1/edits/edit_1/events") == 3


def test_wait_gives_the_job_as_it_stands_when_the_timeout_passes(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/events"):
            return httpx.Response(503, json={})
        return httpx.Response(200, json=job(status="queued", queue_position=3))

    waited = Both(handler, kind)("wait", "edit_1", timeout=0.2)
    assert waited.status == "queued"
    assert waited.queue_position == 3


def test_submit_with_wait_asks_the_api_to_wait_then_follows(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.method == "POST":
            assert request.headers["prefer"] == "wait=60"
            assert request.headers["cancel-after"] == "1h30m"
            return httpx.Response(202, json=job(status="running"))
        return sse(("status", job(status="failed", error={"code": "moderation_blocked", "message": "no"})))

    ended = Both(handler, kind)("submit", b"png", "a prompt", wait=600, cancel_after="1h30m")
    assert ended.status == "failed"
    assert ended.error is not None
    assert ended.error.code == "moderation_blocked"


def test_submit_sends_multipart_with_options_as_the_api_reads_them(kind: str, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(b"first")

    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json=job())

    run = Both(handler, kind)
    run(
        "submit",
        [source, ("second.webp", b"second")],
        "night",
        mask=b"mask",
        n=2,
        reuse=False,
        metadata={"sku": "A1"},
        webhook_events=["edit.succeeded", "edit.failed"],
        max_cost_usd="0.5",
        size=None,
    )
    body = run.requests[0].content
    assert run.requests[0].headers["content-type"].startswith("multipart/form-data")
    for part in (
        b'name="image[]"; filename="photo.png"',
        b'name="image[]"; filename="second.webp"',
        b'name="mask"; filename="mask.png"',
        b'name="n"\r\n\r\n2\r\n',
        b'name="reuse"\r\n\r\nfalse\r\n',
        b'name="metadata"\r\n\r\n{"sku": "A1"}\r\n',
        b'name="webhook_events"\r\n\r\nedit.succeeded,edit.failed\r\n',
        b'name="max_cost_usd"\r\n\r\n0.5\r\n',
    ):
        assert part in body, part
    assert b'name="size"' not in body


def test_uploaded_images_are_referenced_by_id_in_json(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(202, json=job())

    run = Both(handler, kind)
    first, second = Image(id="img_a"), Image(id="img_b")
    run("submit", [first, second], "rain", mask=Image(id="img_m"), strength="low")
    sent = json.loads(run.requests[0].content)
    assert sent == {"prompt": "rain", "strength": "low", "image_ids": ["img_a", "img_b"], "mask_id": "img_m"}
    with pytest.raises(ValueError, match="not both"):
        run("submit", [first, b"bytes"], "rain")


def test_list_follows_the_cursor_and_stops_at_the_limit(kind: str) -> None:
    pages: dict[str | None, dict[str, Any]] = {
        None: {"data": [job("e3"), job("e2")], "next_cursor": "c2", "has_more": True},
        "c2": {"data": [job("e1")], "next_cursor": "c1", "has_more": True},
        "c1": {"data": [job("e0")], "next_cursor": None, "has_more": False},
    }

    def handler(request: httpx.Request) -> httpx.Response:
        assert request.url.params["status"] == "failed,canceled"
        return httpx.Response(200, json={"object": "list", **pages[request.url.params.get("cursor")]})

    run = Both(handler, kind)
    everything = run("list", status=["failed", "canceled"])
    assert [j.id for j in everything] == ["e3", "e2", "e1", "e0"]
    first_three = run("list", status="failed,canceled", limit=3)
    assert [j.id for j in first_three] == ["e3", "e2", "e1"]
    assert run.requests[-1].url.params["limit"] == "1"
    asked = len(run.requests)
    assert run("list", status="failed,canceled", limit=0) == []
    assert len(run.requests) == asked


def test_iter_batch_yields_refusals_at_once_and_jobs_as_they_end(kind: str) -> None:
    rounds = iter([["e1"], ["e1", "e0"]])

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/uploads":
            return httpx.Response(201, json={"object": "image", "id": "img_up"})
        if request.method == "POST":
            body = json.loads(request.content)
            assert body["items"][0] == {"image_ids": ["img_up"], "strength": "low"}
            assert body["defaults"] == {"prompt": "sketch"}
            return httpx.Response(
                200,
                json={
                    "object": "batch",
                    "accepted": 2,
                    "refused": 1,
                    "items": [
                        {"index": 0, "status": 202, "job": job("e0", created_at="2026-11-26T12:00:00.000Z")},
                        {"index": 1, "status": 202, "job": job("e1", created_at="2026-11-26T12:00:01.000Z")},
                        {
                            "index": 2,
                            "status": 400,
                            "error": {"code": "invalid_n", "message": "n", "param": "n"},
                        },
                    ],
                },
            )
        noon = datetime(2026, 11, 26, 12, tzinfo=UTC)
        assert request.url.params["created_after"] == str(int(noon.timestamp() * 1000) - 1)
        done = [job(i, "succeeded") for i in next(rounds)]
        return httpx.Response(200, json={"object": "list", "data": done, "has_more": False})

    items = [
        {"images": [b"png"], "strength": "low"},
        {"image_ids": ["img_x"]},
        {"image_ids": ["img_x"], "n": 99},
    ]
    results = Both(handler, kind)("iter_batch", items, defaults={"prompt": "sketch"}, timeout=10)
    assert [(r.index, r.succeeded) for r in results] == [(2, False), (1, True), (0, True)]
    refused = results[0].error
    assert isinstance(refused, BadRequest)
    assert (refused.code, refused.param, refused.status) == ("invalid_n", "n", 400)


def test_download_saves_each_output_and_keeps_the_key_from_other_hosts(kind: str, tmp_path: Path) -> None:
    outputs = [
        {"url": f"{BASE}/v1/edits/edit_1/outputs/0", "content_type": "image/png"},
        {"url": "https://bucket.s3.test/out/1.webp?X-Amz-Signature=abc", "content_type": "image/webp"},
    ]

    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path == "/v1/edits/edit_1":
            return httpx.Response(200, json=job(status="succeeded", outputs=outputs))
        return httpx.Response(200, content=request.url.host.encode())

    run = Both(handler, kind)
    saved = run("download", "edit_1", tmp_path)
    assert [p.name for p in saved] == ["edit_1-0.png", "edit_1-1.webp"]
    assert [p.read_bytes() for p in saved] == [b"editq.test", b"bucket.s3.test"]
    assert "authorization" in run.requests[1].headers
    assert "authorization" not in run.requests[2].headers


def test_download_of_a_job_without_outputs_says_why(kind: str, tmp_path: Path) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, json=job(status="running"))

    with pytest.raises(JobNotSucceeded) as raised:
        Both(handler, kind)("download", "edit_1", tmp_path)
    assert raised.value.job_id == "edit_1"
    assert list(tmp_path.iterdir()) == []


def test_errors_carry_code_message_param_status_and_job(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        if request.url.path.endswith("/cancel"):
            return error(409, "job_finished", status="succeeded")
        if request.method == "POST":
            return error(402, "budget_exceeded", period="day", remaining_usd="0.01")
        if request.url.path == "/v1/usage":
            return httpx.Response(500, text="<html>proxy error</html>")
        return error(404, "job_not_found")

    run = Both(handler, kind)
    with pytest.raises(JobFinished) as finished:
        run("cancel", "edit_9")
    assert (finished.value.status, finished.value.job_id) == (409, "edit_9")
    assert finished.value.details == {"status": "succeeded"}
    with pytest.raises(BudgetExceeded) as budget:
        run("submit", b"x", "p")
    assert budget.value.details["period"] == "day"
    with pytest.raises(NotFound) as missing:
        run("get", "edit_9")
    assert str(missing.value) == "edit_9: 404 job_not_found: job_not_found!"
    with pytest.raises(ServerError) as broken:
        run("usage")
    assert broken.value.code == "http_500"
    assert "proxy error" in broken.value.message


def test_hostile_job_ids_stay_inside_their_path(kind: str) -> None:
    def handler(request: httpx.Request) -> httpx.Response:
        return error(404, "job_not_found")

    run = Both(handler, kind)
    for hostile in ("../usage", "edit_1/cancel", "a?b=c", "%2e%2e"):
        with pytest.raises(NotFound):
            run("get", hostile)
    for request in run.requests:
        assert request.url.raw_path.count(b"/") == 3, request.url.raw_path
        assert request.url.path.startswith("/v1/edits/")
        assert not request.url.params


def test_answers_keep_unknown_fields_and_the_raw_json() -> None:
    data = job(status="succeeded", cost={"actual_usd": "0.013428"}, new_field={"x": 1})
    parsed = EditJob.model_validate(data)
    assert parsed.raw == data
    assert parsed.model_extra == {"new_field": {"x": 1}}
    assert str(parsed.cost.actual_usd) == "0.013428"
    assert parsed.terminal


def test_the_event_reader_takes_multiline_data_comments_and_done() -> None:
    reader = EventReader(deadline=float("inf"))
    lines = [": hi", "event: status", 'data: {"id": "e",', 'data: "status": "running"}', ""]
    assert not any(reader.feed(line) for line in lines)
    assert reader.job is not None
    assert reader.job.raw == {"id": "e", "status": "running"}
    for hostile in ("data: not json", 'data: {"status": "succeeded"}', "data: " + "[" * 100_000):
        assert not reader.feed("event: status")
        assert not reader.feed(hostile)
        assert not reader.feed("")
        assert reader.job.raw == {"id": "e", "status": "running"}
    assert not reader.feed("event: done")
    assert reader.feed("")


def test_answers_that_are_not_what_the_api_sends_are_server_errors(kind: str) -> None:
    answers = {
        "/v1/edits/a": httpx.Response(200, content=b"<html>a portal</html>"),
        "/v1/edits/b": httpx.Response(200, json=["not", "a", "job"]),
        "/v1/edits/c": httpx.Response(200, content=b"[" * 100_000),
        "/v1/edits/d": httpx.Response(418, content=b"x" * 10_000_000),
    }

    def handler(request: httpx.Request) -> httpx.Response:
        return answers[request.url.path]

    run = Both(handler, kind)
    for job_id in "abc":
        with pytest.raises(ServerError) as raised:
            run("get", job_id)
        assert raised.value.code == "invalid_answer"
        assert len(raised.value.message) < 2000
    with pytest.raises(BadRequest) as teapot:
        run("get", "d")
    assert (teapot.value.status, teapot.value.code, len(teapot.value.message)) == (418, "http_418", 300)


@pytest.mark.parametrize(
    ("header", "seconds"),
    [
        ("7", 7.0),
        (" 0 ", 0.0),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0),  # in the past: at once
        ("-1", None),
        ("1.5", None),
        ("soon", None),
        ("٣", None),
        ("", None),
        ("9" * 400, float("9" * 400)),
    ],
)
def test_retry_after_is_read_strictly(header: str, seconds: float | None) -> None:
    assert retry_after({"retry-after": header}) == seconds
