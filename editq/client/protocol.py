"""The client without I/O: every operation is a generator (a *flow*) that yields steps and gets
their outcomes back; `Client` performs them with httpx.Client and `AsyncClient` with
httpx.AsyncClient. So retries, waiting, pagination and batching are written once, and the two
clients differ only in how they send a request, sleep and read an event stream.

    flow  ──Send(request)──▶  transport  ──Reply──▶  flow      (ConnectionFailed thrown in)
          ──Sleep(seconds)──▶            ──None───▶
          ──Follow(url, deadline)──▶     ──Followed──▶         (server-sent events of one job)
          ──Emit(value)──▶  handed to the caller of an iterator (`list`, `iter_batch`)
"""

from __future__ import annotations

import json
import time
from collections.abc import Generator, Mapping
from dataclasses import dataclass, field
from typing import Any, TypeVar

from pydantic import ValidationError

from editq.client.errors import EditqError, ServerError
from editq.client.models import Answer, EditJob

T = TypeVar("T")
A = TypeVar("A", bound=Answer)


@dataclass(frozen=True)
class Request:
    """One HTTP request. `url` is a path under the API's base URL, or absolute (presigned
    output URLs: sent without the API key)."""

    method: str
    url: str
    params: Mapping[str, str] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict)
    json: Any = None
    data: Mapping[str, str] | None = None
    files: list[tuple[str, tuple[str, bytes, str]]] | None = None
    #: Seconds to wait for the answer (None: the client's timeout).
    read_timeout: float | None = None
    #: Send the API key (false for URLs outside the API).
    authorized: bool = True


@dataclass(frozen=True)
class Reply:
    status: int
    headers: Mapping[str, str]
    content: bytes

    def json(self) -> Any:
        try:
            return json.loads(self.content)
        except (ValueError, RecursionError):
            excerpt = self.content[:200].decode(errors="replace")
            raise ServerError(
                f"the answer is not JSON: {excerpt!r}", code="invalid_answer", status=self.status
            ) from None

    def parse(self, model: type[A]) -> A:
        """The answer as `model`; an answer of another shape raises `ServerError`."""
        try:
            return model.model_validate(self.json())
        except ValidationError as exc:
            raise ServerError(
                f"the answer is not a {model.__name__}: {exc}", code="invalid_answer", status=self.status
            ) from None


@dataclass(frozen=True)
class Send:
    request: Request


@dataclass(frozen=True)
class Sleep:
    seconds: float


@dataclass(frozen=True)
class Follow:
    """Read the job's server-sent events until it ends or `deadline` (monotonic) passes."""

    url: str
    deadline: float


@dataclass(frozen=True)
class Followed:
    """`opened`: the stream was answered 200; `job`: the newest job it carried."""

    opened: bool
    job: EditJob | None


@dataclass(frozen=True)
class Emit:
    value: Any


Step = Send | Sleep | Follow | Emit
Flow = Generator[Step, Any, T]


class Machine:
    """Runs a flow for a transport: `step()` is the next step (None once the flow returned,
    its value in `result`); `reply()` or `fail()` gives the outcome of the step."""

    def __init__(self, flow: Flow[Any]) -> None:
        self.flow = flow
        self.result: Any = None
        self._outcome: Any = None
        self._error: EditqError | None = None

    def step(self) -> Step | None:
        try:
            if self._error is not None:
                error, self._error = self._error, None
                return self.flow.throw(error)
            return self.flow.send(self._outcome)
        except StopIteration as stop:
            self.result = stop.value
            return None

    def reply(self, outcome: Any) -> None:
        self._outcome = outcome

    def fail(self, error: EditqError) -> None:
        self._outcome, self._error = None, error


class EventReader:
    """The server-sent events of one job (`GET /v1/edits/{id}/events`), fed line by line: keeps
    the newest job from `status` events and says when to stop reading."""

    def __init__(self, deadline: float) -> None:
        self.deadline = deadline
        self.job: EditJob | None = None
        self.ended = False
        self._event = "message"
        self._data: list[str] = []

    def feed(self, line: str) -> bool:
        """Take one line; true once the job has ended or the deadline has passed."""
        if not line:
            self._dispatch()
        elif not line.startswith(":"):
            name, _, value = line.partition(":")
            value = value.removeprefix(" ")
            if name == "event":
                self._event = value
            elif name == "data":
                self._data.append(value)
        return self.ended or time.monotonic() >= self.deadline

    def _dispatch(self) -> None:
        event, data = self._event, "\n".join(self._data)
        self._event, self._data = "message", []
        if event == "done":
            self.ended = True
        elif event == "status" and data:
            try:
                self.job = EditJob.model_validate_json(data)
            except ValidationError:
                return  # not a job: the next status event or the polling will tell
            self.ended = self.job.terminal

    def read_timeout(self, longest: float) -> float:
        """How long one read may block: until the deadline, at most `longest`, at least 0.1 s."""
        return max(0.1, min(longest, self.deadline - time.monotonic() + 0.05))
