"""The request path under faults: readiness tells the truth, a job once committed is answered as
committed, a stalled Redis or S3 fails fast, and slow bodies or upload floods cannot hold the API."""

from __future__ import annotations

import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from editq.ops import launcher
from tests import images
from tests.support.stack import Universe

IMAGE = ("a.png", images.scene(320, 240), "image/png")
Private = tuple[Universe, Path, int, launcher.Proc, launcher.Proc]
#: "503 within 3 s", asserted with slack for a loaded 2-core machine.
FAIL_FAST_BOUND = 5.0


def _job_exists(u: Universe, tenant: str, job_id: str) -> bool:
    return bool(u.redis.exists(f"{u.prefix}:job:{tenant}:{job_id}"))


def test_readyz_refuses_without_a_live_worker(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=0, beat=False)
    ready = httpx.get(f"{u.api_url}/readyz", timeout=10)
    assert ready.status_code == 503
    body = ready.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["workers"] == 0
    assert "worker" in body["reason"]


def test_readyz_turns_503_when_the_last_worker_dies(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=1, beat=False, EDITQ_READY_WORKER_GRACE="1")
    ready = httpx.get(f"{u.api_url}/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["checks"]["workers"] == 1
    u.workers[0].kill()
    deadline = time.monotonic() + 30
    while (ready := httpx.get(f"{u.api_url}/readyz", timeout=10)).status_code == 200:
        assert time.monotonic() < deadline, "readyz still 200 long after the only worker died"
        time.sleep(0.5)
    assert ready.status_code == 503
    assert "worker" in ready.json()["reason"]


def test_prefer_wait_after_a_redis_restart_answers_the_committed_job(private: Private) -> None:
    u, tmp, redis_port, redis, _ = private
    tenant, key = u.tenant()
    with u.client(key) as client:
        first = client.post(
            "/v1/edits", data={"prompt": "rain"}, files=[("image", IMAGE)], headers={"Prefer": "wait=1"}
        )
        assert first.status_code == 202  # no worker here: it stays queued
        time.sleep(1.2)  # AOF fsyncs every second
        redis.stop()
        u.procs.insert(0, launcher.redis_server(redis_port, tmp / "redis", aof=True, echo=False))
        answers = [
            client.post(
                "/v1/edits",
                data={"prompt": f"rain {i}"},
                files=[("image", IMAGE)],
                headers={"Prefer": "wait=1"},
            )
            for i in range(3)
        ]
    accepted = [a for a in answers if a.status_code < 500]
    for answer in accepted:
        assert answer.status_code == 202, answer.text
        assert _job_exists(u, tenant, answer.json()["id"])
    # a 503 means nothing was written: every stored job was answered as accepted
    assert len(list(u.redis.scan_iter(f"{u.prefix}:job:{tenant}:*"))) == 1 + len(accepted)


@pytest.fixture
def xread_denied(stack: Universe, make_stack: Callable[..., Universe]) -> Iterator[Universe]:
    """An API whose Redis user may not XREAD: the wait step after the commit always fails."""
    user = f"noxread-{stack.prefix}"
    stack.redis.execute_command("ACL", "SETUSER", user, "on", ">pw", "~*", "&*", "+@all", "-xread")
    url = stack.env["EDITQ_REDIS_URL"].replace("redis://", f"redis://{user}:pw@")
    try:
        yield make_stack(workers=0, beat=False, EDITQ_REDIS_URL=url)
    finally:
        stack.redis.execute_command("ACL", "DELUSER", user)


def test_a_failing_wait_step_still_answers_the_committed_job(xread_denied: Universe) -> None:
    u = xread_denied
    tenant, key = u.tenant()
    with u.client(key) as client:
        response = client.post(
            "/v1/edits", data={"prompt": "rain"}, files=[("image", IMAGE)], headers={"Prefer": "wait=2"}
        )
    assert response.status_code == 202, response.text
    job = response.json()
    assert job["status"] == "queued"
    assert _job_exists(u, tenant, job["id"])


@contextmanager
def _frozen(proc: launcher.Proc) -> Iterator[None]:
    os.kill(proc.pid, signal.SIGSTOP)
    try:
        yield
    finally:
        os.kill(proc.pid, signal.SIGCONT)


def _timed(call: Callable[[], httpx.Response]) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = call()
    return response, time.monotonic() - started


def _assert_fast_503(response: httpx.Response, elapsed: float) -> None:
    assert response.status_code == 503, response.text
    assert elapsed < FAIL_FAST_BOUND, f"{response.request.url.path} took {elapsed:.1f}s"
    assert response.headers.get("retry-after")


@pytest.mark.slow
def test_frozen_s3_fails_fast(private: Private) -> None:
    u, _, _, _, s3 = private
    tenant, key = u.tenant()
    u.start_worker(2)
    with u.client(key, timeout=60) as client:
        job = client.post("/v1/edits", data={"prompt": "rain"}, files=[("image", IMAGE)]).json()
        assert u.wait_job(client, job["id"])["status"] == "succeeded"
        calls: list[Callable[[], httpx.Response]] = [
            lambda: client.post("/v1/edits", data={"prompt": "sketch"}, files=[("image", IMAGE)]),
            lambda: client.post("/v1/uploads", files=[("file", ("b.png", images.scene(200, 100)))]),
            lambda: client.get(f"/v1/edits/{job['id']}/outputs/0"),
            lambda: client.get("/readyz"),
        ]
        with _frozen(s3):
            results = [_timed(call) for call in calls]
    for response, elapsed in results[:3]:
        _assert_fast_503(response, elapsed)
    ready, elapsed = results[3]
    assert ready.status_code == 503
    assert elapsed < FAIL_FAST_BOUND
    assert ready.json()["checks"]["s3"].startswith("down")
    assert len(list(u.redis.scan_iter(f"{u.prefix}:job:{tenant}:*"))) == 1


@pytest.mark.slow
def test_frozen_redis_fails_fast(private: Private) -> None:
    u, _, _, redis, _ = private
    tenant, key = u.tenant()
    with u.client(key, timeout=60) as client:
        job = client.post("/v1/edits", data={"prompt": "rain"}, files=[("image", IMAGE)]).json()
        calls: list[Callable[[], httpx.Response]] = [
            lambda: client.post("/v1/edits", data={"prompt": "sketch"}, files=[("image", IMAGE)]),
            lambda: client.get(f"/v1/edits/{job['id']}"),
            lambda: client.post(
                "/v1/edits", data={"prompt": "x"}, files=[("image", IMAGE)], headers={"Prefer": "wait=5"}
            ),
            lambda: client.get("/readyz"),
        ]
        with _frozen(redis):
            results = [_timed(call) for call in calls]
    for response, elapsed in results[:3]:
        _assert_fast_503(response, elapsed)
    ready, elapsed = results[3]
    assert ready.status_code == 503
    assert elapsed < FAIL_FAST_BOUND
    assert ready.json()["checks"]["redis"].startswith("down")
    assert len(list(u.redis.scan_iter(f"{u.prefix}:job:{tenant}:*"))) == 1


def _raw(u: Universe, head: bytes, body: bytes) -> socket.socket:
    port = int(u.api_url.rsplit(":", 1)[1])
    sock = socket.create_connection(("127.0.0.1", port), timeout=15)
    sock.sendall(head + b"\r\n\r\n" + body)
    return sock


def _answer(sock: socket.socket) -> bytes:
    """What the server sent until it closed the connection or went quiet for 15 s."""
    received = b""
    try:
        while chunk := sock.recv(65536):
            received += chunk
            if b"\r\n\r\n" in received and b"}}" in received:
                break
    except TimeoutError:
        pass
    finally:
        sock.close()
    return received


def _head(u: Universe, key: str, path: str, *lines: str) -> bytes:
    port = u.api_url.rsplit(":", 1)[1]
    base = [f"POST {path} HTTP/1.1", f"Host: 127.0.0.1:{port}", f"Authorization: Bearer {key}"]
    return "\r\n".join([*base, *lines]).encode()


PART = b'--B\r\nContent-Disposition: form-data; name="prompt"\r\n\r\nhello\r\n'


def test_a_body_that_never_ends_is_cut_off(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=0, beat=False, EDITQ_BODY_TIMEOUT_SECONDS="1")
    _, key = u.tenant()
    multipart = "Content-Type: multipart/form-data; boundary=B"
    short = _raw(u, _head(u, key, "/v1/edits", multipart, "Content-Length: 100000"), PART)
    chunked = _raw(
        u,
        _head(u, key, "/v1/edits", multipart, "Transfer-Encoding: chunked"),
        b"%x\r\n%s\r\n" % (len(PART), PART),
    )
    json_body = _raw(
        u, _head(u, key, "/v1/edits", "Content-Type: application/json", "Content-Length: 500"), b'{"a'
    )
    for sock in (short, chunked, json_body):
        answer = _answer(sock)
        assert answer.startswith(b"HTTP/1.1 408"), answer[:200]
        assert b'"body_timeout"' in answer


def test_concurrent_uploads_per_tenant_are_bounded(make_stack: Callable[..., Universe]) -> None:
    u = make_stack(workers=0, beat=False, EDITQ_MAX_CONCURRENT_UPLOADS="2", EDITQ_BODY_TIMEOUT_SECONDS="30")
    _, key = u.tenant()
    head = _head(
        u, key, "/v1/uploads", "Content-Type: multipart/form-data; boundary=B", "Content-Length: 9999"
    )
    slow = [_raw(u, head, PART) for _ in range(2)]
    try:
        with u.client(key) as client:
            deadline = time.monotonic() + 15
            while True:
                third = client.post("/v1/uploads", files=[("file", ("a.png", images.scene(64, 64)))])
                if third.status_code == 429 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert third.status_code == 429, third.text
            assert third.json()["error"]["code"] == "too_many_uploads"
            assert third.headers.get("retry-after")
            for sock in slow:
                sock.close()
            slow = []
            deadline = time.monotonic() + 15
            while (
                after := client.post("/v1/uploads", files=[("file", ("a.png", images.scene(64, 64)))])
            ).status_code == 429:
                assert time.monotonic() < deadline, "upload slots were not given back"
                time.sleep(0.1)
            assert after.status_code == 201, after.text
    finally:
        for sock in slow:
            sock.close()
