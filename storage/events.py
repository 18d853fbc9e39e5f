"""The jobs' event streams, read without holding a thread: for server-sent events and
`Prefer: wait`. Redis failures come out as `StorageUnavailable`."""

from __future__ import annotations

import anyio
import redis.asyncio

from editq.settings import Settings
from editq.storage.errors import StorageUnavailable
from editq.storage.keys import Keys
from editq.storage.redis import ANY_REDIS_ERROR, connect_async

#: Seconds a blocking read may always take, whatever `EDITQ_MAX_WAIT_SECONDS` says.
MIN_BLOCK = 30.0


class EventFeed:
    """One async Redis client for the whole API process (built at startup, closed at shutdown)."""

    def __init__(
        self, client: redis.asyncio.Redis, keys: Keys, timeout: float, longest_block: float = MIN_BLOCK
    ) -> None:
        self.client = client
        self.keys = keys
        #: How long a non-blocking read may take before Redis counts as stalled.
        self.timeout = timeout
        #: The longest a single blocking read may take (the socket timeout outlasts it); longer
        #: waits are several reads.
        self.longest_block_ms = int(longest_block * 1000)

    @classmethod
    def connect(cls, settings: Settings) -> EventFeed:
        longest = max(float(settings.max_wait_seconds), MIN_BLOCK)
        client = connect_async(
            settings.redis_url, timeout=settings.api_redis_timeout_seconds, longest_block=longest
        )
        return cls(client, Keys(settings.redis_prefix), settings.api_redis_timeout_seconds, longest)

    async def last_id(self, tenant: str, job_id: str) -> str:
        """The newest event's id ('0-0' when there is none); fails within `timeout`."""
        try:
            with anyio.fail_after(self.timeout):
                last = await self.client.xrevrange(self.keys.events(tenant, job_id), count=1)
        except TimeoutError:
            raise StorageUnavailable("redis: no answer to XREVRANGE") from None
        except ANY_REDIS_ERROR as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc
        return str(last[0][0]) if last else "0-0"

    async def after(self, tenant: str, job_id: str, last: str, block_ms: int) -> str | None:
        """Block up to `block_ms` (at most `longest_block_ms`) for events after `last`: the newest
        id, or None if none came."""
        block = max(1, min(block_ms, self.longest_block_ms))
        try:
            entries = await self.client.xread({self.keys.events(tenant, job_id): last}, block=block, count=50)
        except ANY_REDIS_ERROR as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc
        newest = None
        for _, items in entries or []:
            if items:
                newest = str(items[-1][0])
        return newest

    async def close(self) -> None:
        await self.client.aclose()
