"""Several scripts in one round trip (`Scripts.run_many`): each runs once, in order, also on a
server that lost its scripts; an error reply or an unreachable server is editq's error."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from editq.ops import launcher
from editq.storage.errors import StorageError, StorageUnavailable
from editq.storage.redis import Scripts, connect

pytestmark = pytest.mark.integration


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[int, launcher.Proc]]:
    port = launcher.free_port()
    proc = launcher.redis_server(port, tmp_path / "r", aof=False, echo=False)
    try:
        yield port, proc
    finally:
        proc.stop()


def _scripts(port: int) -> Scripts:
    return Scripts(connect(f"redis://127.0.0.1:{port}/0", retries=False), "sb", retries=())


def test_replies_come_in_order_and_each_script_runs_once(server: tuple[int, launcher.Proc]) -> None:
    port, _ = server
    scripts = _scripts(port)
    assert scripts.run_many(
        [("tenant_create", ("acme", "name", "acme")), ("tenant_create", ("beta", "name", "b"))]
    ) == [1, 1]
    # a second run of the same creation would answer 0: the first ran once
    assert scripts.run_many(
        [("tenant_create", ("acme", "name", "x")), ("tenant_create", ("gamma", "name", "g"))]
    ) == [0, 1]
    plain = redis.Redis(port=port, decode_responses=True)
    assert plain.smembers("sb:tenants") == {"acme", "beta", "gamma"}
    assert plain.hget("sb:tenant:acme", "name") == "acme"
    plain.close()


def test_a_server_that_lost_its_scripts_runs_each_once_after_loading_it(
    server: tuple[int, launcher.Proc],
) -> None:
    port, _ = server
    scripts = _scripts(port)
    assert scripts.run_many([("tenant_create", ("acme", "name", "acme"))]) == [1]
    plain = redis.Redis(port=port, decode_responses=True)
    plain.script_flush()  # what a restarted or newly promoted Redis has
    assert scripts.run_many(
        [("tenant_create", ("beta", "name", "b")), ("tenant_create", ("acme", "name", "x"))]
    ) == [1, 0]
    assert plain.smembers("sb:tenants") == {"acme", "beta"}
    plain.close()


def test_an_error_reply_is_a_storage_error(server: tuple[int, launcher.Proc]) -> None:
    port, _ = server
    scripts = _scripts(port)
    plain = redis.Redis(port=port, decode_responses=True)
    plain.set("sb:tenants", "not a set")  # SADD on it fails inside the script
    with pytest.raises(StorageError, match="WRONGTYPE"):
        scripts.run_many([("tenant_create", ("acme", "name", "acme"))])
    plain.close()


def test_an_unreachable_server_is_unavailable(server: tuple[int, launcher.Proc]) -> None:
    port, proc = server
    scripts = _scripts(port)
    proc.kill()
    with pytest.raises(StorageUnavailable):
        scripts.run_many([("tenant_create", ("acme", "name", "acme")), ("renew", ("acme", "j", "1", 1000))])
