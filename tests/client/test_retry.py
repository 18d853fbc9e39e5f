"""Retries over real HTTP: a local server answers 429/503 before it accepts, and the client (sync
and async) sends the same request again with the same Idempotency-Key, after `Retry-After`."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator

import pytest

from editq.client import (
    AsyncClient,
    Client,
    ConnectionFailed,
    RateLimited,
    RetryPolicy,
    Unavailable,
)
from editq.ops.launcher import free_port
from tests.support.receiver import Received, Receiver

JOB = {"id": "edit_retry", "object": "edit", "status": "queued"}
REFUSED = {"error": {"code": "too_many_uploads", "message": "later", "param": None}}
FAST = RetryPolicy(attempts=4, base=0.01, cap=0.05)


class Scripted(Receiver):
    """A stand-in API: the n-th request gets `script[n]` (status, headers), then 202 with a job."""

    def __init__(self) -> None:
        super().__init__(reply=self._next)
        self.script: list[tuple[int, dict[str, str]]] = []

    def _next(self, count: int) -> tuple[int, dict[str, str], bytes]:
        status, headers = self.script[count] if count < len(self.script) else (202, {})
        body = json.dumps(JOB if status < 300 else REFUSED).encode()
        return status, {**headers, "content-type": "application/json"}, body

    @property
    def base(self) -> str:
        return self.url.removesuffix("/hook")


def unbounded(seen: Received) -> bytes:
    """The body without its multipart boundary (new on every request)."""
    boundary = seen.headers["content-type"].partition("boundary=")[2].encode()
    return seen.body.replace(boundary, b"BOUNDARY")


@pytest.fixture
def scripted() -> Iterator[Scripted]:
    server = Scripted()
    server.start()
    yield server
    server.stop()


def _submit_sync(url: str, retry: RetryPolicy = FAST) -> str:
    with Client(url, "eq_test", retry=retry) as client:
        return client.submit(b"not read by this server", "make it sunny").id


def _submit_async(url: str, retry: RetryPolicy = FAST) -> str:
    async def run() -> str:
        async with AsyncClient(url, "eq_test", retry=retry) as client:
            return (await client.submit(b"not read by this server", "make it sunny")).id

    return asyncio.run(run())


SUBMITTERS = [pytest.param(_submit_sync, id="sync"), pytest.param(_submit_async, id="async")]


@pytest.mark.parametrize("submit", SUBMITTERS)
def test_a_429_then_202_sends_the_same_idempotency_key_twice(scripted: Scripted, submit: object) -> None:
    scripted.script = [(429, {"retry-after": "1"})]
    assert callable(submit)
    assert submit(scripted.base) == "edit_retry"
    assert len(scripted.received) == 2
    keys = [seen.headers["idempotency-key"] for seen in scripted.received]
    assert keys[0] == keys[1]
    assert len(keys[0]) >= 16
    first, again = (unbounded(seen) for seen in scripted.received)
    assert first == again
    assert b"make it sunny" in first
    assert all(seen.headers["authorization"] == "Bearer eq_test" for seen in scripted.received)
    assert scripted.received[1].at - scripted.received[0].at >= 0.95  # after Retry-After


@pytest.mark.parametrize("submit", SUBMITTERS)
def test_503s_are_retried_until_accepted_and_each_call_has_its_own_key(
    scripted: Scripted, submit: object
) -> None:
    assert callable(submit)
    scripted.script = [(503, {"retry-after": "0"}), (503, {})]
    submit(scripted.base)
    submit(scripted.base)
    keys = [seen.headers["idempotency-key"] for seen in scripted.received]
    assert len(keys) == 4
    assert keys[0] == keys[1] == keys[2] != keys[3]


def test_attempts_are_bounded(scripted: Scripted) -> None:
    scripted.script = [(503, {"retry-after": "0"})] * 10
    with pytest.raises(Unavailable) as raised:
        _submit_sync(scripted.base)
    assert len(scripted.received) == FAST.attempts
    assert raised.value.status == 503
    assert raised.value.retry_after == 0


def test_a_retry_after_beyond_the_longest_wait_is_not_waited_for(scripted: Scripted) -> None:
    scripted.script = [(429, {"retry-after": "3600"})]
    with pytest.raises(RateLimited) as raised:
        _submit_sync(scripted.base, RetryPolicy(attempts=3, longest_wait=60))
    assert len(scripted.received) == 1
    assert raised.value.code == "too_many_uploads"
    assert raised.value.retry_after == 3600


def test_other_errors_are_not_retried(scripted: Scripted) -> None:
    scripted.script = [(400, {})]
    with pytest.raises(Exception, match="too_many_uploads"):
        _submit_sync(scripted.base)
    assert len(scripted.received) == 1


def test_a_refused_connection_is_retried_then_raised() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ConnectionFailed) as raised:
        _submit_sync(url)
    assert raised.value.code == "connection_error"
    assert raised.value.status is None
    with pytest.raises(ConnectionFailed):
        _submit_async(url)
