"""A real editq stack for integration tests: redis-server, moto's S3 server, the simulator,
the API over HTTP and Celery worker processes, all on private ports.

Several "universes" can share one redis-server and one S3 endpoint: each has its own Redis key
prefix (which also prefixes Celery's queues) and its own API and workers, so a test that needs
special settings starts one without disturbing the others.
"""

from __future__ import annotations

import itertools
import os
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import redis

from editq.clock import offset_to
from editq.ops import launcher
from editq.ops.launcher import Proc
from editq.settings import Settings
from editq.storage import tenants
from editq.storage.backend import Backend

_counter = itertools.count(1)

#: Every universe runs on a clock pinned to this moment (then running on), so the suite sees
#: the same model lifecycle whatever the day it runs: gpt-image-1-mini live, five days before
#: it retires. Tests of later days start a universe (and a simulator) with their own offset.
PINNED_AT = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
PINNED_OFFSET = f"{offset_to(PINNED_AT):.3f}"

#: The admin API's key in every test universe (a universe can override it, "" turns it off).
ADMIN_KEY = "editq-admin-key-for-tests-only"

#: Settings every test universe runs with: short leases and grace so reaping is quick, a
#: scaled-down webhook schedule, private webhook receivers allowed.
BASE_ENV = {
    "EDITQ_LEASE_SECONDS": "3",
    "EDITQ_ADMIT_GRACE_SECONDS": "6",
    "EDITQ_VISIBILITY_TIMEOUT": "120",
    "EDITQ_HOUSEKEEPING_SECONDS": "1",
    "EDITQ_WEBHOOK_ALLOW_PRIVATE": "true",
    "EDITQ_WEBHOOK_ALLOW_HTTP": "true",
    "EDITQ_WEBHOOK_SCHEDULE": "0,0.5,1,1.5,2",
    "EDITQ_WEBHOOK_TIMEOUT": "3",
    "EDITQ_RETRY_BASE_SECONDS": "0.2",
    "EDITQ_RETRY_MAX_SECONDS": "1",
    "EDITQ_PROVIDER_IPM": "100000",
    "EDITQ_PROVIDER_RPM": "100000",
    "EDITQ_PROVIDER_MAX_INFLIGHT": "64",
    "EDITQ_LOG_LEVEL": "WARNING",
    "AWS_ACCESS_KEY_ID": "editq-test",
    "AWS_SECRET_ACCESS_KEY": "editq-test-secret",
    "OPENAI_API_KEY": "sk-editq-test",
    "EDITQ_CLOCK_OFFSET": PINNED_OFFSET,
    "EDITQ_SECRETS_KEY": "Zm9yLXRlc3RzLW9ubHktMzItYnl0ZXMtbG9uZy1rZXk=",
    "EDITQ_ADMIN_API_KEY": ADMIN_KEY,
}


@dataclass
class Services:
    """The shared servers of a test session."""

    redis_url: str
    s3_url: str
    sim_url: str
    logs: Path


@dataclass
class Universe:
    services: Services
    prefix: str
    env: dict[str, str]
    api_url: str = ""
    procs: list[Proc] = field(default_factory=list)
    workers: list[Proc] = field(default_factory=list)
    _db: Backend | None = None

    @property
    def settings(self) -> Settings:
        return Settings.from_env(self.env)

    @property
    def db(self) -> Backend:
        if self._db is None:
            self._db = Backend.connect(self.settings)
        return self._db

    @property
    def redis(self) -> redis.Redis:
        return self.db.redis

    def start_api(self) -> None:
        port = launcher.free_port()
        self.env["EDITQ_API_PORT"] = str(port)
        self.env["EDITQ_PUBLIC_URL"] = f"http://127.0.0.1:{port}"
        self.api_url = f"http://127.0.0.1:{port}"
        self.procs.append(launcher.api(self.env, port, echo=False, log=self._log("api")))

    def start_worker(self, concurrency: int = 6, *, wait: bool = True) -> Proc:
        name = f"w{next(_counter)}"
        proc = launcher.worker(self.env, name=name, concurrency=concurrency, echo=False, log=self._log(name))
        self.procs.append(proc)
        self.workers.append(proc)
        if wait:
            self.wait_for_workers(len([w for w in self.workers if w.alive()]))
        return proc

    def wait_for_workers(self, count: int, timeout: float = 60.0) -> None:
        launcher.wait_for_worker(
            self.env["EDITQ_REDIS_URL"], self.prefix, count, timeout, clock=self.settings.clock
        )

    def wait_for_model_listing(self, timeout: float = 30.0) -> dict[str, Any]:
        """Until a worker has recorded the provider's model listing; the readiness models check."""
        deadline = time.monotonic() + timeout
        while True:
            models: dict[str, Any] = httpx.get(f"{self.api_url}/readyz", timeout=10).json()["checks"][
                "models"
            ]
            if models["refreshed_at_ms"] is not None:
                return models
            if time.monotonic() > deadline:
                raise AssertionError(f"no model listing after {timeout}s: {models}")
            time.sleep(0.1)

    def start_beat(self) -> None:
        folder = self.services.logs / f"beat-{self.prefix}"
        self.procs.append(launcher.beat(self.env, folder, echo=False, log=self._log("beat")))

    def _log(self, name: str) -> Path:
        return self.services.logs / f"{self.prefix}-{name}.log"

    def tenant(self, name: str | None = None, **options: Any) -> tuple[str, str]:
        """A fresh tenant and an API key for it."""
        name = name or f"t{uuid.uuid4().hex[:10]}"
        tenants.create(self.db, name, **options)
        return name, tenants.create_key(self.db, name)

    def client(self, key: str, **kwargs: Any) -> httpx.Client:
        kwargs.setdefault("timeout", 60.0)
        return httpx.Client(base_url=self.api_url, headers={"Authorization": f"Bearer {key}"}, **kwargs)

    def admin(self, **kwargs: Any) -> httpx.Client:
        """A client of the admin API, with this universe's admin key."""
        return self.client(self.env["EDITQ_ADMIN_API_KEY"], **kwargs)

    def wait_job(
        self, client: httpx.Client, job_id: str, timeout: float = 60.0, until: tuple[str, ...] = ()
    ) -> dict[str, Any]:
        done = until or ("succeeded", "failed", "canceled", "expired")
        deadline = time.monotonic() + timeout
        while True:
            job: dict[str, Any] = client.get(f"/v1/edits/{job_id}").json()
            if job["status"] in done:
                return job
            if time.monotonic() > deadline:
                raise AssertionError(f"job {job_id} still {job['status']} after {timeout}s: {job}")
            time.sleep(0.1)

    def stop(self) -> None:
        for proc in reversed(self.procs):
            proc.stop(timeout=10)
        if self._db is not None:
            self._db.close()


def universe(services: Services, **overrides: str) -> Universe:
    prefix = f"eqt{next(_counter)}{uuid.uuid4().hex[:4]}"
    env = {
        **os.environ,
        **BASE_ENV,
        "EDITQ_REDIS_URL": services.redis_url,
        "EDITQ_S3_ENDPOINT_URL": services.s3_url,
        "EDITQ_S3_BUCKET": f"{prefix}-bucket",
        "OPENAI_BASE_URL": services.sim_url,
        "EDITQ_REDIS_PREFIX": prefix,
        # the files workers and beat keep for `editq probe`, in the session's folder
        "EDITQ_PROBE_DIR": str(services.logs / "probe"),
        **overrides,
    }
    return Universe(services, prefix, env)


class PrivateSim:
    """A simulator of a test's own, whose behaviour the test changes through /_sim/config."""

    def __init__(self, proc: launcher.Proc, base: str) -> None:
        self.proc = proc
        self.base = base
        self.url = f"{base}/v1"

    def __call__(self, **changes: object) -> None:
        httpx.post(f"{self.base}/_sim/config", json=changes, timeout=10).raise_for_status()

    def stats(self) -> dict[str, Any]:
        result: dict[str, Any] = httpx.get(f"{self.base}/_sim/stats", timeout=10).json()
        return result
