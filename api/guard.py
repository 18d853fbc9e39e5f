"""Guards in front of every route: one value per singleton header, a deadline on the request
body, and a bound on the uploads a tenant streams at once."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from contextlib import contextmanager

import anyio
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from editq import logs
from editq.api.compat_errors import Refusal
from editq.errors import RequestTimeout, TooManyRequests

log = logging.getLogger("editq.api")

#: Headers that mean one thing only: a second copy is refused rather than guessed at.
SINGLETON_HEADERS = (b"authorization", b"content-type", b"idempotency-key", b"prefer", b"cancel-after")


def _error(refused: Refusal, path: str) -> tuple[Message, Message]:
    """The answer's messages, in the shape the path speaks (editq's or OpenAI's)."""
    logs.event(log, "request.refused", status=refused.status, code=refused.code)
    status, body, extra = refused.for_path(path)
    content = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(content)).encode())]
    headers += [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in extra.items()]
    start: Message = {"type": "http.response.start", "status": status, "headers": headers}
    return start, {"type": "http.response.body", "body": content}


def duplicated(scope: Scope) -> str | None:
    """The first singleton header the request carries more than once."""
    seen: set[bytes] = set()
    for name, _ in scope.get("headers", []):
        lowered = bytes(name).lower()
        if lowered in SINGLETON_HEADERS:
            if lowered in seen:
                return lowered.decode("latin-1")
            seen.add(lowered)
    return None


class RequestGuard:
    """ASGI middleware. A request whose body has not arrived whole `body_seconds` after it
    started is answered 408 `body_timeout` and its connection closed, whatever route it hit."""

    def __init__(self, app: ASGIApp, body_seconds: float) -> None:
        self.app = app
        self.body_seconds = body_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        twice = duplicated(scope)
        if twice is not None:
            refused = Refusal(400, "duplicate_header", f"send the {twice} header once", twice)
            for message in _error(refused, scope["path"]):
                await send(message)
            return
        await _Deadline(self.app, self.body_seconds, scope["path"]).run(scope, receive, send)


class _Deadline:
    """One request under a body deadline."""

    def __init__(self, app: ASGIApp, seconds: float, path: str) -> None:
        self.app = app
        self.seconds = seconds
        self.path = path
        self.deadline = anyio.current_time() + seconds
        self.body_done = False
        self.expired = False
        self.answered = False

    async def run(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def timed_receive() -> Message:
            return await self.receive(receive)

        async def guarded_send(message: Message) -> None:
            await self.send(send, message)

        try:
            await self.app(scope, timed_receive, guarded_send)
        except Exception:
            if not self.expired:
                raise
        if self.expired and not self.answered:
            await self.answer_timeout(send)

    async def receive(self, receive: Receive) -> Message:
        if self.body_done:
            return await receive()
        try:
            with anyio.fail_after(max(0.0, self.deadline - anyio.current_time())):
                message = await receive()
        except TimeoutError:
            self.expired = True
            raise RequestTimeout(
                "body_timeout", f"the request body did not arrive within {self.seconds:g} s"
            ) from None
        if message["type"] != "http.request" or not message.get("more_body", False):
            self.body_done = True
        return message

    async def send(self, send: Send, message: Message) -> None:
        """After the deadline, whatever the route answers becomes the 408."""
        if not self.expired:
            self.answered = self.answered or message["type"] == "http.response.start"
            await send(message)
            return
        if not self.answered and message["type"] == "http.response.start":
            await self.answer_timeout(send)

    async def answer_timeout(self, send: Send) -> None:
        self.answered = True
        message = f"the request body did not arrive within {self.seconds:g} s"
        refused = Refusal(408, "body_timeout", message, headers={"Connection": "close"})
        for reply in _error(refused, self.path):
            await send(reply)


class UploadSlots:
    """How many multipart uploads each tenant is streaming into this API process."""

    def __init__(self, limit: int) -> None:
        self.limit = limit
        self.active: dict[str, int] = {}

    @contextmanager
    def hold(self, tenant: str) -> Iterator[None]:
        if self.active.get(tenant, 0) >= self.limit:
            raise TooManyRequests(
                "too_many_uploads", f"at most {self.limit} uploads at once per tenant; retry when one ends"
            )
        self.active[tenant] = self.active.get(tenant, 0) + 1
        try:
            yield
        finally:
            left = self.active[tenant] - 1
            if left:
                self.active[tenant] = left
            else:
                del self.active[tenant]
