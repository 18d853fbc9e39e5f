"""The Redis connection and editq's Lua scripts, each loaded once per client."""

from __future__ import annotations

import functools
from importlib import resources
from typing import Any

import redis
import redis.asyncio
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from editq.storage import keys, records
from editq.storage.errors import StorageError, StorageUnavailable

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
    "reprice",
    "tenant_create",
    "plan_create",
    "tenant_plan",
    "credits_topup",
)

Redis = redis.Redis
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError)
#: Anything a Redis call can raise (replies included), for steps that must not fail a request.
ANY_REDIS_ERROR = redis.RedisError


#: The last line of the generated prelude.
PRELUDE_END = "-- end of the generated prelude"


def prelude() -> str:
    """Generated Lua that opens every script: the prefix `P` (ARGV[1]), the key builders `K`
    and the record builders `R`, rendered from `keys.TEMPLATES` and `records.PARTS`."""
    return "\n".join(
        [
            "-- generated from storage/keys.py and storage/records.py: do not edit",
            "local P = ARGV[1]",
            keys.lua_builders(),
            records.lua_builders(),
            PRELUDE_END,
        ]
    )


@functools.cache
def _source(name: str) -> str:
    folder = resources.files("editq.storage").joinpath("lua")
    lib = folder.joinpath("_lib.lua").read_text(encoding="utf-8")
    script = folder.joinpath(f"{name}.lua").read_text(encoding="utf-8")
    return "\n".join([prelude(), lib, script])


def translated(exc: redis.RedisError) -> StorageError:
    """editq's error for a redis-py one: unreachable or timed out, or refused."""
    if isinstance(exc, REDIS_ERRORS):
        return StorageUnavailable(f"redis: {exc}")
    return StorageError(f"redis: {exc}")


class Pipeline(redis.client.Pipeline):  # type: ignore[misc]  # redis is untyped here (pyproject)
    """A pipeline whose `execute` raises editq's errors."""

    def execute(self, raise_on_error: bool = True) -> list[Any]:
        try:
            replies: list[Any] = super().execute(raise_on_error)
        except redis.RedisError as exc:
            raise translated(exc) from exc
        return replies


class Client(redis.Redis):  # type: ignore[misc]
    """redis-py's client speaking editq's error tree: every failure is a `StorageError`
    (`StorageUnavailable` when Redis cannot be reached), so no caller outside storage needs to
    know redis-py's exceptions. A missing script passes through: `Script` reloads it."""

    def execute_command(self, *args: Any, **options: Any) -> Any:
        try:
            return super().execute_command(*args, **options)
        except redis.exceptions.NoScriptError:
            raise
        except redis.RedisError as exc:
            raise translated(exc) from exc

    def pipeline(self, transaction: bool = True, shard_hint: Any = None) -> Pipeline:
        return Pipeline(self.connection_pool, self.response_callbacks, transaction, shard_hint)


def connect(url: str, *, timeout: float = 5.0, fail_fast: bool = False) -> Client:
    """A client with explicit timeouts and health checks; strings in, strings out.

    `fail_fast` (the API's request path): a timeout is not retried, and a broken connection
    (a restarted Redis) is retried once on a fresh one, at once. Otherwise redis-py's default
    retries with backoff apply (workers can wait)."""
    extra: dict[str, Any] = {"retry": Retry(NoBackoff(), 1, (redis.ConnectionError,))} if fail_fast else {}
    client: Client = Client.from_url(
        url,
        decode_responses=True,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=25,
        retry_on_timeout=False,
        **extra,
    )
    return client


def connect_async(url: str, *, timeout: float = 5.0, longest_block: float = 60.0) -> redis.asyncio.Redis:
    """For blocking reads (XREAD BLOCK): the socket timeout outlasts the longest block asked,
    so callers bound each call themselves; retries only a broken connection, once."""
    return redis.asyncio.Redis.from_url(
        url,
        decode_responses=True,
        socket_timeout=longest_block + timeout,
        socket_connect_timeout=timeout,
        socket_keepalive=True,
        health_check_interval=25,
        retry=AsyncRetry(NoBackoff(), 1, (redis.ConnectionError,)),
    )


class Scripts:
    """editq's Lua scripts registered on one client. `run(name, *args)` passes the prefix first,
    then the clock's offset in ms, which the shared prelude takes off `ARGV` again."""

    def __init__(self, client: Client, prefix: str, clock_offset_ms: int = 0) -> None:
        self.client = client
        self.prefix = prefix
        self.clock_offset = str(clock_offset_ms)
        self._scripts = {name: client.register_script(_source(name)) for name in SCRIPTS}

    def run(self, name: str, *args: Any) -> Any:
        try:
            return self._scripts[name](
                keys=[], args=[self.prefix, self.clock_offset, *(_arg(a) for a in args)]
            )
        except redis.RedisError as exc:
            raise translated(exc) from exc


def _arg(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)
