"""Standing up editq, the simulator and the baseline for benchmarks, on private ports."""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3
import httpx
import redis
from celery import Celery

from editq.ops import launcher
from editq.ops.launcher import Proc
from editq.settings import Settings
from editq.storage import tenants
from editq.storage.backend import Backend

ACCESS, SECRET = "editq-bench", "editq-bench-secret"


def proc_cpu_seconds(pid: int) -> float:
    """User + system CPU of a process (all its threads), from /proc."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


@dataclass
class Services:
    root: Path
    redis_url: str
    s3_url: str
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def start(cls, root: Path) -> Services:
        root.mkdir(parents=True, exist_ok=True)
        redis_port, s3_port = launcher.free_port(), launcher.free_port()
        procs = [
            launcher.redis_server(redis_port, root / "redis", aof=False, echo=False, log=root / "redis.log"),
            launcher.s3_server(
                s3_port, root / "s3", access_key=ACCESS, secret_key=SECRET, echo=False, log=root / "s3.log"
            ),
        ]
        return cls(root, f"redis://127.0.0.1:{redis_port}/0", f"http://127.0.0.1:{s3_port}", procs)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop()

    def s3(self) -> Any:
        return boto3.client(
            "s3",
            endpoint_url=self.s3_url,
            aws_access_key_id=ACCESS,
            aws_secret_access_key=SECRET,
            region_name="us-east-1",
        )

    def sim(self, *args: str) -> tuple[Proc, str]:
        port = launcher.free_port()
        proc = launcher.simulator(port, args=list(args), echo=False, log=self.root / f"sim-{port}.log")
        return proc, f"http://127.0.0.1:{port}"


def sim_stats(base: str, timeline: bool = False) -> dict[str, Any]:
    params = {"timeline": "1"} if timeline else {}
    result: dict[str, Any] = httpx.get(f"{base}/_sim/stats", params=params, timeout=60).json()
    return result


@dataclass
class Editq:
    """One editq deployment (API, workers) under its own Redis prefix."""

    services: Services
    env: dict[str, str]
    prefix: str
    api_url: str = ""
    procs: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, services: Services, sim_url: str, **settings: str) -> Editq:
        prefix = f"bench{uuid.uuid4().hex[:6]}"
        port = launcher.free_port()
        env = {
            **os.environ,
            "EDITQ_REDIS_URL": services.redis_url,
            "EDITQ_S3_ENDPOINT_URL": services.s3_url,
            "EDITQ_S3_BUCKET": f"{prefix}-bucket",
            "AWS_ACCESS_KEY_ID": ACCESS,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "OPENAI_BASE_URL": f"{sim_url}/v1",
            "OPENAI_API_KEY": "sk-bench",
            "EDITQ_REDIS_PREFIX": prefix,
            "EDITQ_API_PORT": str(port),
            "EDITQ_LOG_LEVEL": "WARNING",
            "EDITQ_BOOTSTRAP_API_KEY": "eq_bench_" + uuid.uuid4().hex,
            **settings,
        }
        editq = cls(services, env, prefix, f"http://127.0.0.1:{port}")
        editq.procs.append(launcher.api(env, port, echo=False, log=services.root / f"{prefix}-api.log"))
        return editq

    @property
    def key(self) -> str:
        return self.env["EDITQ_BOOTSTRAP_API_KEY"]

    def client(self, key: str | None = None) -> httpx.Client:
        return httpx.Client(
            base_url=self.api_url, headers={"Authorization": f"Bearer {key or self.key}"}, timeout=300
        )

    def tenant(self, name: str) -> str:
        db = Backend.connect(Settings.from_env(self.env))
        try:
            tenants.create(db, name, exist_ok=True)
            return tenants.create_key(db, name)
        finally:
            db.close()

    def start_workers(self, count: int, concurrency: int) -> None:
        for i in range(count):
            proc = launcher.worker(
                self.env,
                name=f"{self.prefix}w{i}",
                concurrency=concurrency,
                echo=False,
                log=self.services.root / f"{self.prefix}-w{i}.log",
            )
            self.procs.append(proc)
            self.workers.append(proc)
        launcher.wait_for_worker(self.services.redis_url, self.prefix, count, timeout=90)

    def submit_backlog(self, client: httpx.Client, count: int, image: bytes, **options: Any) -> list[str]:
        upload = client.post("/v1/uploads", files={"file": ("src.png", image, "image/png")}).json()["id"]
        ids: list[str] = []
        for start in range(0, count, 1000):
            items = [
                {
                    "image_ids": [upload],
                    "prompt": f"make it a pencil sketch #{i}",
                    "quality": "low",
                    "size": "1024x1024",
                    "output_format": "jpeg",
                    "reuse": False,
                    **options,
                }
                for i in range(start, min(count, start + 1000))
            ]
            answer = client.post("/v1/edits/batch", json={"items": items}).json()
            if answer.get("accepted") != len(items):
                raise RuntimeError(f"batch refused: {str(answer)[:500]}")
            ids += [item["job"]["id"] for item in answer["items"]]
        return ids

    def records(self, tenant: str, ids: list[str]) -> list[dict[str, str]]:
        client = redis.Redis.from_url(self.services.redis_url, decode_responses=True)
        pipe = client.pipeline(transaction=False)
        for job_id in ids:
            pipe.hgetall(f"{self.prefix}:job:{tenant}:{job_id}")
        result = list(pipe.execute())
        client.close()
        return result

    def wait(
        self,
        tenant: str,
        ids: list[str],
        *,
        timeout: float,
        statuses: tuple[str, ...] = ("succeeded", "failed"),
        field_name: str = "status",
    ) -> list[dict[str, str]]:
        deadline = time.monotonic() + timeout
        while True:
            records = self.records(tenant, ids)
            if field_name == "status":
                done = all(r.get("status") in statuses for r in records)
            else:
                done = all(r.get(field_name) for r in records)
            if done or time.monotonic() > deadline:
                return records
            time.sleep(0.5)

    def limiter(self, account: str = "default") -> dict[str, str]:
        client = redis.Redis.from_url(self.services.redis_url, decode_responses=True)
        state = client.hgetall(f"{self.prefix}:lim:{account}")
        client.close()
        return dict(state)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=20)


@dataclass
class Plain:
    """The baseline deployment: plain Celery workers running `ops.bench.plain`."""

    services: Services
    env: dict[str, str]
    prefix: str
    bucket: str
    procs: list[Proc] = field(default_factory=list)

    @classmethod
    def create(cls, services: Services, sim_url: str, rate_limit: str | None) -> Plain:
        prefix = f"plain{uuid.uuid4().hex[:6]}"
        env = {
            **os.environ,
            "BENCH_BROKER": services.redis_url,
            "BENCH_PREFIX": prefix,
            "BENCH_RATE_LIMIT": rate_limit or "",
            "EDITQ_S3_ENDPOINT_URL": services.s3_url,
            "AWS_ACCESS_KEY_ID": ACCESS,
            "AWS_SECRET_ACCESS_KEY": SECRET,
            "OPENAI_BASE_URL": f"{sim_url}/v1",
        }
        bucket = f"{prefix}-bucket"
        services.s3().create_bucket(Bucket=bucket)
        return cls(services, env, prefix, bucket)

    def put_source(self, image: bytes) -> str:
        self.services.s3().put_object(Bucket=self.bucket, Key="src.png", Body=image, ContentType="image/png")
        return "src.png"

    def start_workers(self, count: int, concurrency: int) -> None:
        for i in range(count):
            argv = [
                sys.executable,
                "-m",
                "celery",
                "-A",
                "editq.ops.bench.plain",
                "worker",
                "-P",
                "threads",
                "-c",
                str(concurrency),
                "-n",
                f"{self.prefix}{i}@%h",
                "--without-mingle",
                "--without-gossip",
                "-l",
                "WARNING",
            ]
            self.procs.append(
                launcher.spawn(
                    f"plain{i}",
                    argv,
                    env=self.env,
                    echo=False,
                    log=self.services.root / f"{self.prefix}-{i}.log",
                )
            )
        time.sleep(4)

    def enqueue(self, jobs: list[str], source: str) -> None:
        app = Celery("plain", broker=self.services.redis_url)
        app.conf.broker_transport_options = {"global_keyprefix": f"{self.prefix}:celery:"}
        with app.producer_or_acquire() as producer:
            for job in jobs:
                app.send_task(
                    "plain.edit",
                    args=[job, self.bucket, source, "make it a pencil sketch"],
                    producer=producer,
                )

    def times(self) -> tuple[dict[str, int], dict[str, int], int]:
        client = redis.Redis.from_url(self.services.redis_url, decode_responses=True)
        start = {k: int(v) for k, v in client.hgetall(f"{self.prefix}:start").items()}
        done = {k: int(v) for k, v in client.hgetall(f"{self.prefix}:done").items()}
        limited = int(client.hget(f"{self.prefix}:stats", "429") or 0)
        client.close()
        return start, done, limited

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(
                timeout=10,
            )
