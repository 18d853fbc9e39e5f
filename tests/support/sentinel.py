"""A Redis master, its replica and three Sentinels on private ports, for failover tests.

Both servers write an AOF (fsync every second). The Sentinels declare the master down after
`DOWN_AFTER_MS` without an answer and promote the replica; a master that comes back is made a
replica of the new one. Sentinels run as Debian's `redis-sentinel` (or `redis-server
--sentinel`, the same program)."""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import redis

from editq.ops import launcher
from editq.ops.launcher import Proc

SERVICE = "editq-test"
#: How long a master may not answer before a Sentinel counts it down (Redis' default: 30 s).
DOWN_AFTER_MS = 1000
#: Redis' default is 3 minutes; a retried failover waits twice this.
FAILOVER_TIMEOUT_MS = 4000


def _sentinel_argv(conf: Path) -> list[str]:
    binary = shutil.which("redis-sentinel")
    if binary is not None:
        return [binary, str(conf)]
    server = shutil.which("redis-server")
    if server is None:
        raise RuntimeError("neither redis-sentinel nor redis-server is installed")
    return [server, str(conf), "--sentinel"]


@dataclass
class SentinelSet:
    root: Path
    logs: Path
    ports: dict[str, int] = field(default_factory=dict)
    procs: dict[str, Proc] = field(default_factory=dict)
    sentinel_ports: list[int] = field(default_factory=list)
    sentinels: list[Proc] = field(default_factory=list)

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{port}" for port in self.sentinel_ports)
        return f"sentinel://{hosts}/{SERVICE}/0"

    def start(self) -> SentinelSet:
        self.ports = {"a": launcher.free_port(), "b": launcher.free_port()}
        self.start_server("a")
        self.start_server("b", replica_of=self.ports["a"])
        self.wait_replicated(self.ports["a"], replicas=1)
        for index in range(3):
            port = launcher.free_port()
            folder = self.root / f"sentinel{index}"
            folder.mkdir(parents=True, exist_ok=True)
            conf = folder / "sentinel.conf"
            conf.write_text(
                "\n".join(
                    [
                        f"port {port}",
                        "bind 127.0.0.1",
                        f"dir {folder}",
                        "daemonize no",
                        'logfile ""',
                        f"sentinel monitor {SERVICE} 127.0.0.1 {self.ports['a']} 2",
                        f"sentinel down-after-milliseconds {SERVICE} {DOWN_AFTER_MS}",
                        f"sentinel failover-timeout {SERVICE} {FAILOVER_TIMEOUT_MS}",
                        f"sentinel parallel-syncs {SERVICE} 1",
                        "",
                    ]
                )
            )
            proc = launcher.spawn(
                f"sentinel{index}", _sentinel_argv(conf), echo=False, log=self.logs / f"sentinel{index}.log"
            )
            launcher.wait_for_port(port)
            self.sentinel_ports.append(port)
            self.sentinels.append(proc)
        self.wait_sentinels_agree(self.ports["a"])
        return self

    def start_server(self, name: str, replica_of: int | None = None) -> Proc:
        # a replica's first sync starts at once (Redis waits 5 s for more replicas by default)
        extra: tuple[str, ...] = ("--repl-diskless-sync-delay", "0")
        if replica_of:
            extra += ("--replicaof", "127.0.0.1", str(replica_of))
        proc = launcher.redis_server(
            self.ports[name],
            self.root / f"redis-{name}",
            aof=True,
            echo=False,
            log=self.logs / f"redis-{name}.log",
            extra=extra,
        )
        self.procs[name] = proc
        return proc

    def master_port(self, sentinel: int = 0) -> int:
        client = redis.Redis(port=self.sentinel_ports[sentinel], socket_timeout=2, decode_responses=True)
        try:
            _, port = client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", SERVICE)
        finally:
            client.close()
        return int(port)

    def master_name(self) -> str:
        """'a' or 'b': the server the first Sentinel names as master."""
        port = self.master_port()
        return next(name for name, p in self.ports.items() if p == port)

    def wait_sentinels_agree(self, port: int, timeout: float = 30.0) -> None:
        """Until every Sentinel names `port` as the master and knows the other Sentinels."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                agreed = all(self.master_port(i) == port for i in range(len(self.sentinel_ports)))
                known = all(self._others_known(i) for i in range(len(self.sentinel_ports)))
            except redis.RedisError:
                agreed = known = False
            if agreed and known:
                return
            if time.monotonic() > deadline:
                raise AssertionError(f"sentinels do not agree on master port {port} after {timeout}s")
            time.sleep(0.1)

    def _others_known(self, index: int) -> bool:
        client = redis.Redis(port=self.sentinel_ports[index], socket_timeout=2, decode_responses=True)
        try:
            master = client.execute_command("SENTINEL", "MASTER", SERVICE)
        finally:
            client.close()
        # redis-py parses the reply into a dict (num-other-sentinels as an int)
        return int(master["num-other-sentinels"]) >= len(self.sentinel_ports) - 1

    def wait_replicated(self, port: int, replicas: int, timeout: float = 30.0) -> None:
        """Until the server on `port` is a master with `replicas` replicas online."""
        client = redis.Redis(port=port, socket_timeout=2, decode_responses=True)
        deadline = time.monotonic() + timeout
        try:
            while True:
                try:
                    info = client.info("replication")
                except redis.RedisError:
                    info = {}
                if info.get("role") == "master" and int(info.get("connected_slaves", 0)) >= replicas:
                    online = [v for k, v in info.items() if k.startswith("slave") and isinstance(v, dict)]
                    if sum(1 for v in online if v.get("state") == "online") >= replicas:
                        return
                if time.monotonic() > deadline:
                    raise AssertionError(f"redis on {port}: not a master with {replicas} replica(s): {info}")
                time.sleep(0.1)
        finally:
            client.close()

    def stop(self) -> None:
        for proc in [*self.sentinels, *self.procs.values()]:
            proc.stop()
