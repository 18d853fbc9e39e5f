"""The Redis connection and editq's Lua scripts, each loaded once per client."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import redis
import redis.asyncio

from storage.errors import StorageUnavailable

SCRIPTS = (
    "hold",
    "release_hold",
    "submit",
    "admit",
    "start",
    "call",
    "reseal",
    "renew",
    "finish",
    "requeue",
    "release_retry",
    "cancel",
    "reap",
    "observe",
    "idempotency",
    "claim",
)

Redis = redis.Redis
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)


@functools.cache
def _source(name: str) -> str:
    folder = resources.files("storage").joinpath("lua")
    lib = folder.joinpath("_lib.lua").read_text(encoding="utf-8")
    return lib + "\n" + folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")


def connect(url: str, *, timeout: float = 5.0) -> redis.Redis:
    """A client with explicit timeouts and health checks; strings in, strings out."""
    return redis.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=25,
        retry_on_timeout=False,
    )


def connect_async(url: str, *, timeout: float = 5.0, longest_block: float = 60.0) -> redis.asyncio.Redis:
    """For blocking reads (XREAD BLOCK): the socket timeout outlasts the longest block asked."""
    return redis.asyncio.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=longest_block + timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=25,
    )


class Scripts:
    """editq's Lua scripts registered on one client. `run(name, *args)` passes the prefix first."""

    def __init__(self, client: redis.Redis, prefix: str) -> None:
        self.client = client
        self.prefix = prefix
        self._scripts = {name: client.register_script(_source(name)) for name in SCRIPTS}

    def run(self, name: str, *args: Any) -> Any:
        try:
            return self._scripts[name](keys=[], args=[self.prefix, *(_arg(a) for a in args)])
        except REDIS_ERRORS as exc:
            raise StorageUnavailable(f"redis: {exc}") from exc


def _arg(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)
