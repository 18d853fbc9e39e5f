"""`Client`: the editq API over httpx.Client; every operation is a flow from `flows`."""

from __future__ import annotations

import builtins
import time
from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack

import httpx

from editq.client import config, flows, wire
from editq.client.errors import EditqError
from editq.client.inputs import EditOptions, ImageInput, Images
from editq.client.models import BatchAnswer, BatchResult, EditJob, EditJobList, Estimate, Image, Usage
from editq.client.protocol import (
    Emit,
    EventReader,
    Flow,
    Follow,
    Followed,
    Machine,
    Reply,
    Request,
    Send,
    Sleep,
    Step,
)
from editq.client.retry import RetryPolicy

T = TypeVar("T")


class Client:
    """The editq API. `base_url` and `api_key` default to the environment (`EDITQ_API_URL`,
    `EDITQ_API_KEY`; see `editq.client.config`). Every call retries 429/503 and connection
    failures per `retry`; errors raise `EditqError` subclasses. Use it as a context manager, or
    `close()` it."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.5,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        url, key = config.resolve(base_url, api_key)
        self.base_url = url
        self._ctx = flows.Context(url, retry or RetryPolicy(), poll_interval)
        self._auth = {"Authorization": f"Bearer {key}"}
        self._timeout = timeout
        self._http = httpx.Client(
            base_url=url,
            headers={"User-Agent": wire.USER_AGENT},
            transport=transport,
            follow_redirects=False,
        )

    # --- the operations -------------------------------------------------------------------------

    def submit(
        self,
        images: Images,
        prompt: str,
        *,
        mask: ImageInput | None = None,
        wait: float | None = None,
        idempotency_key: str | None = None,
        cancel_after: str | int | None = None,
        **options: Unpack[EditOptions],
    ) -> EditJob:
        """Submit one edit job. With `wait` (seconds), return once it has ended or `wait` has
        passed. An `Idempotency-Key` is made for the call (or `idempotency_key` is used) and
        sent with every attempt, so a retried submit never makes two jobs."""
        flow = flows.submit(
            self._ctx,
            images,
            prompt,
            mask,
            options,
            wait=wait,
            idempotency_key=idempotency_key,
            cancel_after=cancel_after,
        )
        return self._run(flow)

    def estimate(
        self, images: Images, prompt: str, *, mask: ImageInput | None = None, **options: Unpack[EditOptions]
    ) -> Estimate:
        """What `submit` with the same arguments would run and reserve; stores nothing."""
        return self._run(flows.estimate(self._ctx, images, prompt, mask, options))

    def upload(self, image: ImageInput) -> Image:
        """Store an image once; pass the `Image` to `submit` to reference it by id."""
        return self._run(flows.upload(self._ctx, image))

    def get(self, job_id: str) -> EditJob:
        return self._run(flows.get(self._ctx, job_id))

    def cancel(self, job_id: str) -> EditJob:
        """Cancel a job that has not ended (`JobFinished` if it has)."""
        return self._run(flows.cancel(self._ctx, job_id))

    def wait(self, job: EditJob | str, *, timeout: float | None = None) -> EditJob:
        """The job once it has ended (events, or polling when they cannot be had); with
        `timeout`, as it stands when that many seconds have passed."""
        return self._run(flows.wait(self._ctx, job, timeout))

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        created_after: datetime | str | int | None = None,
        created_before: datetime | str | int | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> Iterator[EditJob]:
        """The tenant's jobs, newest first, fetched page by page as the iteration goes."""
        flow = flows.jobs(
            self._ctx,
            limit=limit,
            page_size=page_size,
            status=status,
            created_after=created_after,
            created_before=created_before,
        )
        return self._iterate(flow)

    def list_page(
        self,
        *,
        status: str | Iterable[str] | None = None,
        created_after: datetime | str | int | None = None,
        created_before: datetime | str | int | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> EditJobList:
        """One page of `GET /v1/edits`; pass its `next_cursor` as `cursor` for the next."""
        flow = flows.list_page(
            self._ctx,
            status=status,
            created_after=created_after,
            created_before=created_before,
            cursor=cursor,
            limit=limit,
        )
        return self._run(flow)

    def usage(self, *, from_: str | None = None, to: str | None = None, group_by: str | None = None) -> Usage:
        """Spend, reservations and budgets; `from_`/`to` are dates, `group_by` day or model."""
        return self._run(flows.usage(self._ctx, {"from": from_, "to": to, "group_by": group_by}))

    def download(self, job: EditJob | str, folder: str | Path = ".") -> builtins.list[Path]:
        """Save every output of a job that succeeded into `folder`; the paths written."""
        return self._run(flows.download(self._ctx, job, Path(folder)))

    def read_output(self, job: EditJob | str, index: int = 0) -> bytes:
        """The bytes of one output of a job that succeeded."""
        return self._run(flows.read_output(self._ctx, job, index))

    def submit_batch(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        defaults: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        cancel_after: str | int | None = None,
    ) -> BatchAnswer:
        """One `POST /v1/edits/batch`. Each item has the JSON fields of an edit; local files under
        `images` (and `mask`) are uploaded first and referenced by id."""
        flow = flows.submit_batch(
            self._ctx, items, defaults, idempotency_key=idempotency_key, cancel_after=cancel_after
        )
        return self._run(flow)

    def iter_batch(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        defaults: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        chunk_size: int = flows.BATCH_CHUNK,
        idempotency_key: str | None = None,
    ) -> Iterator[BatchResult]:
        """Submit `items` as batches and yield one `BatchResult` per item as it finishes:
        refusals first, then jobs as they end; once `timeout` passes, the rest as they stand."""
        flow = flows.batch(
            self._ctx,
            items,
            defaults,
            timeout=timeout,
            chunk_size=chunk_size,
            idempotency_key=idempotency_key,
        )
        return self._iterate(flow)

    # --- the transport --------------------------------------------------------------------------

    def _run(self, flow: Flow[T]) -> T:
        machine = Machine(flow)
        while (step := machine.step()) is not None:
            self._settle(machine, step)
        result: T = machine.result
        return result

    def _iterate(self, flow: Flow[None]) -> Iterator[Any]:
        machine = Machine(flow)
        while (step := machine.step()) is not None:
            if isinstance(step, Emit):
                yield step.value
                machine.reply(None)
            else:
                self._settle(machine, step)

    def _settle(self, machine: Machine, step: Step) -> None:
        try:
            if isinstance(step, Send):
                machine.reply(self._send(step.request))
            elif isinstance(step, Sleep):
                time.sleep(step.seconds)
                machine.reply(None)
            elif isinstance(step, Follow):
                machine.reply(self._follow(step))
            else:
                raise TypeError(f"a flow run for its result emitted {step!r}")
        except EditqError as exc:
            machine.fail(exc)

    def _send(self, request: Request) -> Reply:
        try:
            return wire.reply(self._http.request(**wire.arguments(request, self._auth, self._timeout)))
        except httpx.HTTPError as exc:
            raise wire.failure(exc, request) from exc

    def _follow(self, step: Follow) -> Followed:
        reader = EventReader(step.deadline)
        opened = False
        try:
            with self._http.stream(**wire.stream_arguments(step.url, self._auth, self._timeout, reader)) as r:
                opened = r.status_code == 200
                for line in r.iter_lines() if opened else ():
                    if reader.feed(line):
                        break
        except httpx.HTTPError:
            pass  # a dropped stream: the flow opens it again or polls
        return Followed(opened, reader.job)

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()
