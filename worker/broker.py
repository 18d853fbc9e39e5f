"""How the worker talks to Celery's Redis broker, at less CPU per job.

kombu's Redis channel builds a new redis-py client for every message and event it publishes
(`Channel.conn_or_acquire` without a client calls `_create_client`), and a redis-py client
fills a table of some two hundred response callbacks when it is made: about a third of the
cost of each publish. `Transport` keeps one client per channel, on the channel's own
connection pool (redis-py clients are thread-safe; pipelines and pub/sub are not shared).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from kombu.transport import redis as kombu_redis

#: `broker_transport` for a `redis://` or `rediss://` broker URL.
TRANSPORT = "editq.worker.broker:Transport"


class Channel(kombu_redis.Channel):
    _one_client: Any = None

    @contextmanager
    def conn_or_acquire(self, client: Any = None) -> Iterator[Any]:
        if client:
            yield client
            return
        pool = self.pool
        cached = self._one_client
        if cached is None or cached.connection_pool is not pool:
            cached = self._one_client = self._create_client()  # type: ignore[attr-defined]  # kombu's, untyped
        yield cached


class Transport(kombu_redis.Transport):
    Channel = Channel


def transport_for(url: str) -> str | None:
    """The transport for a broker URL: editq's for plain Redis, kombu's choice otherwise."""
    return TRANSPORT if url.split("://", 1)[0] in ("redis", "rediss") else None
