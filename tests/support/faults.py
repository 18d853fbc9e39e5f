"""A stack of its own for fault tests: a private redis-server (AOF), S3 server and simulator
that a test may stop, freeze or reconfigure, and the checks every fault test ends with."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from editq.ops import launcher
from tests import images
from tests.support.stack import PrivateSim, Services, Universe

IMAGE = ("a.png", images.scene(160, 120), "image/png")
TERMINAL = ("succeeded", "failed", "canceled", "expired")


@dataclass
class Rig:
    """One universe on servers of its own, so a test can break them."""

    u: Universe
    sim: PrivateSim
    redis: launcher.Proc
    s3: launcher.Proc
    redis_port: int
    data: Path
    tenant: str = ""
    key: str = ""
    accepted: list[str] = field(default_factory=list)

    def submit(self, count: int, **data: str) -> list[str]:
        ids = []
        with self.u.client(self.key) as client:
            for i in range(count):
                response = client.post(
                    "/v1/edits",
                    data={"prompt": f"rain {i}", "reuse": "false", **data},
                    files=[("image", IMAGE)],
                )
                assert response.status_code == 202, response.text
                ids.append(str(response.json()["id"]))
        self.accepted.extend(ids)
        return ids

    def restart_redis(self, down_seconds: float = 2.0) -> None:
        """Stop redis-server as `redis-cli shutdown` does (AOF written) and start it again."""
        time.sleep(1.2)  # AOF fsyncs every second
        cli = shutil.which("redis-cli")
        if cli is not None:
            subprocess.run([cli, "-p", str(self.redis_port), "shutdown"], timeout=30, check=False)
        self.redis.stop()
        time.sleep(down_seconds)
        self.redis = launcher.redis_server(self.redis_port, self.data / "redis", aof=True, echo=False)

    def wait_all(self, timeout: float = 90.0) -> dict[str, dict[str, Any]]:
        """Every accepted job, once all of them are terminal."""
        deadline = time.monotonic() + timeout
        with self.u.client(self.key) as client:
            while True:
                jobs = {job_id: client.get(f"/v1/edits/{job_id}").json() for job_id in self.accepted}
                waiting = {k: j["status"] for k, j in jobs.items() if j["status"] not in TERMINAL}
                if not waiting:
                    return jobs
                if time.monotonic() > deadline:
                    raise AssertionError(f"not terminal after {timeout}s: {waiting}")
                time.sleep(0.5)

    def ledger(self) -> list[dict[str, str]]:
        return [fields for _, fields in self.u.redis.xrange(f"{self.u.prefix}:ledger:{self.tenant}")]

    def check(self, timeout: float = 90.0) -> dict[str, Any]:
        """The promises every fault test ends with; returns figures for the report."""
        jobs = self.wait_all(timeout)
        r, p = self.u.redis, self.u.prefix
        for job_id in self.accepted:
            statuses = [f["status"] for _, f in r.xrange(f"{p}:ev:{self.tenant}:{job_id}")]
            assert len([s for s in statuses if s in TERMINAL]) == 1, (job_id, statuses)
        ledger = self.ledger()
        closing = [e for e in ledger if e["kind"] in ("settled", "released", "reused")]
        assert sorted(e["job"] for e in closing) == sorted(self.accepted), "one settlement per job"
        assert sum(int(e["amount"]) for e in closing) == sum(
            int(r.hget(f"{p}:job:{self.tenant}:{j}", "actual") or 0) for j in self.accepted
        )
        lost = len([e for e in ledger if e["kind"] == "lost_call"])
        billed = len([e for e in closing if e.get("usage")]) + lost
        unknown = len([e for e in ledger if e["kind"] == "unknown_charge"])
        calls = self.provider_ok()
        assert billed <= calls <= billed + unknown, (billed, unknown, calls)
        assert int(r.hget(f"{p}:budget:{self.tenant}:total", "reserved") or 0) == 0
        assert r.zcard(f"{p}:holds") == 0
        assert r.zcard(f"{p}:inflight") == 0
        dead = [p.name for p in self.u.procs if not p.alive()]
        assert not dead, f"died: {dead}"
        counts: dict[str, int] = {}
        for job in jobs.values():
            counts[job["status"]] = counts.get(job["status"], 0) + 1
        return {
            "jobs": len(jobs),
            "statuses": counts,
            "provider_ok": calls,
            "lost_calls": lost,
            "unknown_charges": unknown,
        }

    def provider_ok(self) -> int:
        """Calls the simulator answered 200, once a call cut off by a kill has finished there."""
        seen = -1
        for _ in range(20):
            stats = self.sim.stats()
            if stats["requests"] == seen:
                break
            seen = stats["requests"]
            time.sleep(0.5)
        return int(stats["by_status"].get("200", 0))


def make_rig(services: Services, tmp: Path, universe: Any, workers: int = 2, **env: str) -> Rig:
    redis_port, s3_port, sim_port = launcher.free_port(), launcher.free_port(), launcher.free_port()
    redis = launcher.redis_server(redis_port, tmp / "redis", aof=True, echo=False)
    s3 = launcher.s3_server(
        s3_port, tmp / "s3", access_key="editq-test", secret_key="editq-test-secret", echo=False
    )
    sim_proc = launcher.simulator(sim_port, args=["--latency", "0.3-0.8"], echo=False)
    sim = PrivateSim(sim_proc, f"http://127.0.0.1:{sim_port}")
    own = Services(f"redis://127.0.0.1:{redis_port}/0", f"http://127.0.0.1:{s3_port}", sim.url, services.logs)
    u: Universe = universe(own, OPENAI_BASE_URL=sim.url, **env)
    rig = Rig(u, sim, redis, s3, redis_port, tmp)
    u.start_api()
    for _ in range(workers):
        u.start_worker(4, wait=False)
    u.wait_for_workers(workers)
    u.start_beat()
    rig.tenant, rig.key = u.tenant(budgets={"total": 1_000_000_000})
    return rig


def stop_rig(rig: Rig) -> None:
    rig.u.stop()
    for proc in (rig.sim.proc, rig.s3, rig.redis):
        proc.stop()


def log_figures(name: str, figures: dict[str, Any], logs: Path) -> None:
    with (logs / "faults.jsonl").open("a") as out:
        out.write(json.dumps({"test": name, **figures}) + "\n")


def client(rig: Rig) -> httpx.Client:
    return rig.u.client(rig.key)
