"""Scripts next to replicas: WAIT after a submission, a replica's refusal, and which errors a
script may be sent again after (never one that could apply it twice)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from editq.ops import launcher
from editq.storage.errors import StorageUnavailable
from editq.storage.redis import REPEATABLE, Scripts, _never_ran, connect


@pytest.mark.parametrize(
    ("error", "never_ran"),
    [
        (redis.ConnectionError("Error 111 connecting to 127.0.0.1:6379. Connection refused."), True),
        (redis.TimeoutError("Timeout connecting to server"), True),
        (redis.ConnectionError("The previous master is now a slave"), True),
        (redis.sentinel.MasterNotFoundError("No master found for 'editq'"), True),
        (redis.ReadOnlyError("You can't write against a read only replica."), True),
        (redis.BusyLoadingError("Redis is loading the dataset in memory"), True),
        # the command may have run: its reply was lost
        (redis.ConnectionError("Connection closed by server."), False),
        (redis.ConnectionError("Error while reading from socket: (104, 'Connection reset by peer')"), False),
        (redis.TimeoutError("Timeout reading from socket"), False),
        (redis.ResponseError("ERR something"), False),
    ],
)
def test_what_shows_a_script_never_ran(error: redis.RedisError, never_ran: bool) -> None:
    assert _never_ran(error) is never_ran


def test_only_scripts_that_change_nothing_the_second_time_are_repeatable() -> None:
    # submit, hold, admit, start, finish, observe, idempotency...: a second run would double a
    # reservation or a count, or answer as if another run held the job
    assert {"renew", "call", "release_hold", "reseal", "tenant_plan", "reap"} == REPEATABLE


@pytest.fixture
def pair(tmp_path: Path) -> Iterator[tuple[int, int, launcher.Proc]]:
    """A master and its replica, both with AOF."""
    master, replica = launcher.free_port(), launcher.free_port()
    procs = [
        launcher.redis_server(master, tmp_path / "m", echo=False, extra=("--repl-diskless-sync-delay", "0"))
    ]
    procs.append(
        launcher.redis_server(
            replica, tmp_path / "r", echo=False, extra=("--replicaof", "127.0.0.1", str(master))
        )
    )
    try:
        probe = redis.Redis(port=master)
        deadline = time.monotonic() + 30
        while probe.info("replication").get("slave0", {}).get("state") != "online":
            assert time.monotonic() < deadline, "the replica did not sync"
            time.sleep(0.05)
        probe.close()
        yield master, replica, procs[1]
    finally:
        for proc in procs:
            proc.stop()


@pytest.mark.integration
def test_wait_counts_the_replica_that_has_the_write(pair: tuple[int, int, launcher.Proc]) -> None:
    master, replica, replica_proc = pair
    scripts = Scripts(connect(f"redis://127.0.0.1:{master}/0", retries=False), "wt")
    result, acked = scripts.run_replicated("tenant_create", 1, 2000, "acme", "name", "acme")
    assert (result, acked) == (1, 1)
    on_replica = redis.Redis(port=replica, decode_responses=True)
    assert on_replica.hget("wt:tenant:acme", "name") == "acme"
    on_replica.close()
    replica_proc.kill()
    result, acked = scripts.run_replicated("tenant_create", 1, 50, "beta", "name", "beta")
    assert (result, acked) == (1, 0)  # written on the master; no replica has it
    scripts.client.close()


@pytest.mark.integration
def test_a_replica_refuses_a_script_and_nothing_is_written(pair: tuple[int, int, launcher.Proc]) -> None:
    _, replica, _ = pair
    scripts = Scripts(connect(f"redis://127.0.0.1:{replica}/0", retries=False), "wt", retries=(0.01,))
    with pytest.raises(StorageUnavailable, match="read only"):
        scripts.run("tenant_create", "acme", "name", "acme")
    assert scripts.client.exists("wt:tenant:acme") == 0
    scripts.client.close()
