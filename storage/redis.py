"""The Redis connection and editq's Lua scripts, each loaded once per client."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from importlib import resources
from typing import Any

import redis
import redis.asyncio
import redis.asyncio.sentinel
import redis.sentinel
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff
from redis.retry import Retry

from editq.redis_target import RedisTarget, parse
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
    "econ_take",
    "econ_return",
    "tenant_create",
    "plan_create",
    "tenant_plan",
    "credits_topup",
)

#: Scripts that may simply run again when their reply was lost (a broken connection, a failover):
#: a second run after a first that took effect leaves the same state. Every other script is
#: retried only when the error shows it never ran (see `_never_ran`).
REPEATABLE = frozenset({"renew", "call", "release_hold", "reseal", "tenant_plan", "reap"})
#: Seconds before each new attempt at a script on the API's request path: one retry, time for
#: a pool to drop a connection to a master that went away and to ask the Sentinels again.
FAIL_FAST_RETRIES = (0.25,)
#: The same for workers and beat, which can wait out a failover (about 6 s in all, like
#: redis-py's own default retries).
PATIENT_RETRIES = (0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.0, 1.0, 1.0, 1.0)

Redis = redis.Redis
#: A script by name and its arguments (after the prefix), for `Scripts.run_many`.
ScriptCall = tuple[str, tuple[Any, ...]]
#: Redis cannot serve now (READONLY: a replica, such as a master demoted by a failover).
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError, redis.BusyLoadingError, redis.ReadOnlyError)
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


def connect(url: str, *, timeout: float = 5.0, fail_fast: bool = False, retries: bool = True) -> Client:
    """A client with explicit timeouts and health checks; strings in, strings out. `url` is
    `EDITQ_REDIS_URL`: one server, or a master found through Sentinels (`sentinel://`), whose
    pool asks the Sentinels again whenever a connection to the master breaks (a failover).

    `fail_fast` (the API's request path): a timeout is not retried, and a broken connection
    (a restarted Redis) is retried once on a fresh one, at once. Otherwise redis-py's default
    retries with backoff apply (workers can wait). `retries=False`: no command is ever sent
    twice by redis-py (the client `Scripts` runs on decides itself)."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "health_check_interval": 25,
    }
    if not retries:
        options["retry"] = Retry(NoBackoff(), 0)
    elif fail_fast:
        options["retry"] = Retry(NoBackoff(), 1, (redis.ConnectionError,))
    target = parse(url)
    if target.is_sentinel:
        sentinels = redis.sentinel.Sentinel(
            list(target.sentinels), sentinel_kwargs=_sentinel_kwargs(target, timeout), **options
        )
        master: Client = sentinels.master_for(
            target.service, redis_class=Client, db=target.db, **_credentials(target)
        )
        return master
    client: Client = Client.from_url(url, retry_on_timeout=False, **options)
    return client


def connect_async(url: str, *, timeout: float = 5.0, longest_block: float = 60.0) -> redis.asyncio.Redis:
    """For blocking reads (XREAD BLOCK): the socket timeout outlasts the longest block asked,
    so callers bound each call themselves; retries only a broken connection, once."""
    options: dict[str, Any] = {
        "decode_responses": True,
        "socket_timeout": longest_block + timeout,
        "socket_connect_timeout": timeout,
        "socket_keepalive": True,
        "health_check_interval": 25,
        "retry": AsyncRetry(NoBackoff(), 1, (redis.ConnectionError,)),
    }
    target = parse(url)
    if target.is_sentinel:
        sentinels = redis.asyncio.sentinel.Sentinel(
            list(target.sentinels), sentinel_kwargs=_sentinel_kwargs(target, timeout), **options
        )
        master: redis.asyncio.Redis = sentinels.master_for(
            target.service, redis_class=redis.asyncio.Redis, db=target.db, **_credentials(target)
        )
        return master
    return redis.asyncio.Redis.from_url(url, **options)


def _sentinel_kwargs(target: RedisTarget, timeout: float) -> dict[str, Any]:
    """How to talk to the Sentinels themselves: their own credentials, short timeouts."""
    return {
        **target.sentinel_kwargs(),
        "socket_timeout": timeout,
        "socket_connect_timeout": timeout,
        "decode_responses": True,
    }


def _credentials(target: RedisTarget) -> dict[str, str]:
    found = {"username": target.username, "password": target.password}
    return {k: v for k, v in found.items() if v}


def _never_ran(exc: redis.RedisError) -> bool:
    """The error shows the command never ran, so sending it again cannot apply it twice: no
    master known yet, no connection made, a server still loading its data, or a replica (a
    demoted master) refused it. redis-py has no class of its own for a refused connect; its
    message says "connecting to"."""
    if isinstance(exc, (redis.ReadOnlyError, redis.BusyLoadingError, redis.sentinel.MasterNotFoundError)):
        return True
    message = str(exc)
    return isinstance(exc, (redis.ConnectionError, redis.TimeoutError)) and (
        " connecting to " in message
        or message.startswith("Timeout connecting")
        # redis-py's SentinelManagedConnection turns a READONLY reply into this ConnectionError
        or "previous master is now a slave" in message
    )


class Scripts:
    """editq's Lua scripts registered on one client. `run(name, *args)` passes the prefix first,
    then the clock's offset in ms, which the shared prelude takes off `ARGV` again.

    The client should be made with `retries=False`: a script is sent again only by `run`, after
    each delay of `retries` in turn, and only when that cannot apply it twice (it is
    `REPEATABLE`, or the error shows it never ran). A script whose reply was lost otherwise
    fails with `StorageUnavailable`, and the caller's own recovery (leases, holds that lapse,
    idempotency keys) takes over, as after any Redis outage."""

    def __init__(
        self,
        client: Client,
        prefix: str,
        clock_offset_ms: int = 0,
        retries: tuple[float, ...] = FAIL_FAST_RETRIES,
    ) -> None:
        self.client = client
        self.prefix = prefix
        self.clock_offset = str(clock_offset_ms)
        self.retries = retries
        self._scripts = {name: client.register_script(_source(name)) for name in SCRIPTS}

    def run(self, name: str, *args: Any) -> Any:
        argv = self._argv(args)
        return self._with_retry(name in REPEATABLE, lambda: self._scripts[name](keys=[], args=argv))

    def run_many(self, calls: list[ScriptCall]) -> list[Any]:
        """Several scripts in one round trip, each atomic on its own (not a transaction), in
        order; their replies. Sent again only as `run` would send every one of them again. A
        script the server does not have (a restarted or promoted Redis) is loaded and run alone."""
        sent = [(name, self._argv(args)) for name, args in calls]

        def attempt() -> list[Any]:
            pipe = redis.client.Pipeline(
                self.client.connection_pool, self.client.response_callbacks, False, None
            )
            for name, argv in sent:
                pipe.evalsha(self._scripts[name].sha, 0, *argv)
            replies: list[Any] = pipe.execute(raise_on_error=False)
            return replies

        replies = self._with_retry(all(name in REPEATABLE for name, _ in sent), attempt)
        results = []
        for (name, argv), reply in zip(sent, replies, strict=True):
            if isinstance(reply, redis.exceptions.NoScriptError):
                alone = functools.partial(self._scripts[name], keys=[], args=argv)
                results.append(self._with_retry(name in REPEATABLE, alone))
            elif isinstance(reply, redis.RedisError):
                raise translated(reply) from reply
            else:
                results.append(reply)
        return results

    def run_replicated(self, name: str, replicas: int, timeout_ms: int, *args: Any) -> tuple[Any, int]:
        """`run`, then `WAIT replicas timeout_ms` on the same connection (WAIT counts the
        replicas that have this connection's writes): the reply and how many replicas have it."""
        argv = self._argv(args)

        def attempt() -> list[Any]:
            pipe = redis.client.Pipeline(
                self.client.connection_pool, self.client.response_callbacks, False, None
            )
            self._scripts[name](keys=[], args=argv, client=pipe)
            pipe.wait(replicas, timeout_ms)
            replies: list[Any] = pipe.execute()
            return replies

        result, acked = self._with_retry(name in REPEATABLE, attempt)
        return result, int(acked)

    def _argv(self, args: tuple[Any, ...]) -> list[str]:
        return [self.prefix, self.clock_offset, *(_arg(a) for a in args)]

    def _with_retry(self, repeatable: bool, attempt: Callable[[], Any]) -> Any:
        for delay in (*self.retries, None):
            try:
                return attempt()
            except (redis.RedisError, StorageError) as exc:
                # `Client` has already turned redis-py's error into editq's; its cause is the original
                cause = exc if isinstance(exc, redis.RedisError) else exc.__cause__
                if delay is None or not (
                    isinstance(cause, redis.RedisError)
                    and (_never_ran(cause) or (repeatable and isinstance(cause, REDIS_ERRORS)))
                ):
                    raise _editq_error(exc) from cause
            time.sleep(delay)
        raise AssertionError("unreachable")  # the last pass returns or raises


def _editq_error(exc: redis.RedisError | StorageError) -> StorageError:
    return translated(exc) if isinstance(exc, redis.RedisError) else exc


def _arg(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return repr(value)
    return str(value)
