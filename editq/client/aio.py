"""`AsyncClient`: the editq API over httpx.AsyncClient; the same flows as `Client`, awaited."""

from __future__ import annotations

import builtins
from collections.abc import AsyncIterator, Iterable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from types import TracebackType
from typing import Any, TypeVar, Unpack

import anyio
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


class AsyncClient:
    """The editq API for asyncio (or trio): every method of `Client`, awaited; `list` and
    `iter_batch` are async iterators. Use it as an async context manager, or `await aclose()`."""

    def __init__(
        self,
        base_url: str | None = None,
        api_key: str | None = None,
        *,
        timeout: float = 60.0,
        retry: RetryPolicy | None = None,
        poll_interval: float = 0.5,
        transport: httpx.AsyncBaseTransport | None = None,
    ) -> None:
        url, key = config.resolve(base_url, api_key)
        self.base_url = url
        self._ctx = flows.Context(url, retry or RetryPolicy(), poll_interval)
        self._auth = {"Authorization": f"Bearer {key}"}
        self._timeout = timeout
        self._http = httpx.AsyncClient(
            base_url=url,
            headers={"User-Agent": wire.USER_AGENT},
            transport=transport,
            follow_redirects=False,
        )

    # --- the operations -------------------------------------------------------------------------

    async def submit(
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
        """As `Client.submit`."""
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
        return await self._run(flow)

    async def estimate(
        self, images: Images, prompt: str, *, mask: ImageInput | None = None, **options: Unpack[EditOptions]
    ) -> Estimate:
        """As `Client.estimate`."""
        return await self._run(flows.estimate(self._ctx, images, prompt, mask, options))

    async def upload(self, image: ImageInput) -> Image:
        """As `Client.upload`."""
        return await self._run(flows.upload(self._ctx, image))

    async def get(self, job_id: str) -> EditJob:
        return await self._run(flows.get(self._ctx, job_id))

    async def cancel(self, job_id: str) -> EditJob:
        """As `Client.cancel`."""
        return await self._run(flows.cancel(self._ctx, job_id))

    async def wait(self, job: EditJob | str, *, timeout: float | None = None) -> EditJob:
        """As `Client.wait`."""
        return await self._run(flows.wait(self._ctx, job, timeout))

    def list(
        self,
        *,
        status: str | Iterable[str] | None = None,
        created_after: datetime | str | int | None = None,
        created_before: datetime | str | int | None = None,
        limit: int | None = None,
        page_size: int | None = None,
    ) -> AsyncIterator[EditJob]:
        """As `Client.list`."""
        flow = flows.jobs(
            self._ctx,
            limit=limit,
            page_size=page_size,
            status=status,
            created_after=created_after,
            created_before=created_before,
        )
        return self._iterate(flow)

    async def list_page(
        self,
        *,
        status: str | Iterable[str] | None = None,
        created_after: datetime | str | int | None = None,
        created_before: datetime | str | int | None = None,
        cursor: str | None = None,
        limit: int | None = None,
    ) -> EditJobList:
        """As `Client.list_page`."""
        flow = flows.list_page(
            self._ctx,
            status=status,
            created_after=created_after,
            created_before=created_before,
            cursor=cursor,
            limit=limit,
        )
        return await self._run(flow)

    async def usage(
        self, *, from_: str | None = None, to: str | None = None, group_by: str | None = None
    ) -> Usage:
        """As `Client.usage`."""
        return await self._run(flows.usage(self._ctx, {"from": from_, "to": to, "group_by": group_by}))

    async def download(self, job: EditJob | str, folder: str | Path = ".") -> builtins.list[Path]:
        """As `Client.download`."""
        return await self._run(flows.download(self._ctx, job, Path(folder)))

    async def read_output(self, job: EditJob | str, index: int = 0) -> bytes:
        """As `Client.read_output`."""
        return await self._run(flows.read_output(self._ctx, job, index))

    async def submit_batch(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        defaults: Mapping[str, Any] | None = None,
        idempotency_key: str | None = None,
        cancel_after: str | int | None = None,
    ) -> BatchAnswer:
        """As `Client.submit_batch`."""
        flow = flows.submit_batch(
            self._ctx, items, defaults, idempotency_key=idempotency_key, cancel_after=cancel_after
        )
        return await self._run(flow)

    def iter_batch(
        self,
        items: Sequence[Mapping[str, Any]],
        *,
        defaults: Mapping[str, Any] | None = None,
        timeout: float | None = None,
        chunk_size: int = flows.BATCH_CHUNK,
        idempotency_key: str | None = None,
    ) -> AsyncIterator[BatchResult]:
        """As `Client.iter_batch`."""
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

    async def _run(self, flow: Flow[T]) -> T:
        machine = Machine(flow)
        while (step := machine.step()) is not None:
            await self._settle(machine, step)
        result: T = machine.result
        return result

    async def _iterate(self, flow: Flow[None]) -> AsyncIterator[Any]:
        machine = Machine(flow)
        while (step := machine.step()) is not None:
            if isinstance(step, Emit):
                yield step.value
                machine.reply(None)
            else:
                await self._settle(machine, step)

    async def _settle(self, machine: Machine, step: Step) -> None:
        try:
            if isinstance(step, Send):
                machine.reply(await self._send(step.request))
            elif isinstance(step, Sleep):
                await anyio.sleep(step.seconds)
                machine.reply(None)
            elif isinstance(step, Follow):
                machine.reply(await self._follow(step))
            else:
                raise TypeError(f"a flow run for its result emitted {step!r}")
        except EditqError as exc:
            machine.fail(exc)

    async def _send(self, request: Request) -> Reply:
        try:
            return wire.reply(await self._http.request(**wire.arguments(request, self._auth, self._timeout)))
        except httpx.HTTPError as exc:
            raise wire.failure(exc, request) from exc

    async def _follow(self, step: Follow) -> Followed:
        reader = EventReader(step.deadline)
        opened = False
        try:
            async with self._http.stream(
                **wire.stream_arguments(step.url, self._auth, self._timeout, reader)
            ) as r:
                opened = r.status_code == 200
                if opened:
                    async for line in r.aiter_lines():
                        if reader.feed(line):
                            break
        except httpx.HTTPError:
            pass  # a dropped stream: the flow opens it again or polls
        return Followed(opened, reader.job)

    async def aclose(self) -> None:
        await self._http.aclose()

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()
