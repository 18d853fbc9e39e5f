"""What a worker process holds: clients built once, plus the threads that keep its leases
alive, advertise its free slots and admit work."""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import threading
from dataclasses import dataclass, field

import httpx

from editq import catalogue
from editq.catalogue import Catalogue
from editq.job import Job
from editq.settings import Settings, get_settings
from editq.storage import jobs, limiter, metrics
from editq.storage.backend import Backend
from editq.storage.errors import StorageError
from editq.storage.models import AvailabilityCache
from editq.worker import probes
from editq.worker.provider import batches, openai
from editq.worker.provider.batches import BatchClient
from editq.worker.provider.openai import Provider

log = logging.getLogger("editq.worker")


class LeaseKeeper(threading.Thread):
    """Renews the leases of the jobs running in this process and beats the worker's slots."""

    def __init__(self, ctx: Context) -> None:
        super().__init__(name="editq-leases", daemon=True)
        self.ctx = ctx
        self.running: dict[tuple[str, str], str] = {}
        self.lock = threading.Lock()
        self.stopped = threading.Event()
        self.draining = threading.Event()

    def hold(self, job: Job) -> None:
        with self.lock:
            self.running[(job.tenant, job.id)] = job.token

    def drop(self, job: Job) -> None:
        with self.lock:
            self.running.pop((job.tenant, job.id), None)

    def beat(self) -> None:
        """Renew the leases held here and, unless draining, advertise the free slots."""
        ctx = self.ctx
        if not self.draining.is_set():
            limiter.heartbeat(ctx.db, ctx.worker_id, ctx.slots, ctx.settings.lease_seconds, ctx.recorder)
        else:
            metrics.flush(ctx.db, ctx.recorder)
        with self.lock:
            held = list(self.running.items())
        for (tenant, job_id), token in held:
            jobs.renew(ctx.db, tenant, job_id, token)

    def run(self) -> None:
        interval = self.ctx.settings.lease_seconds / 3
        while not self.stopped.wait(interval):
            try:
                self.beat()
            except StorageError as exc:
                probes.redis_reached(False)
                log.warning("lease renewal failed: %s", exc)
            else:
                probes.redis_reached(True)

    def drain(self) -> None:
        """Warm shutdown: keep the running jobs' leases, stop offering slots for new ones."""
        self.draining.set()

    def stop(self) -> None:
        self.stopped.set()


@dataclass
class Context:
    settings: Settings
    db: Backend
    catalogue: Catalogue
    http: httpx.Client
    provider: Provider
    webhook_http: httpx.Client
    slots: int
    worker_id: str
    #: The provider's Files and Batch APIs (economy lane); None when it has none editq speaks.
    batches: BatchClient | None = None
    batch_http: httpx.Client | None = None
    leases: LeaseKeeper = field(init=False)
    availability: AvailabilityCache = field(default_factory=AvailabilityCache)
    #: Provider calls counted here go to Redis with each heartbeat (and at shutdown).
    recorder: metrics.Recorder = field(default_factory=metrics.Recorder)
    #: The adapters of the accounts after the first (whose adapter is `provider`), by name.
    providers: dict[str, Provider] = field(default_factory=dict)

    def adapter(self, account: str) -> Provider:
        """The adapter that calls `account` (the first account's when it names none known)."""
        return self.providers.get(account, self.provider)

    def __post_init__(self) -> None:
        self.leases = LeaseKeeper(self)

    def close(self) -> None:
        self.leases.stop()
        with contextlib.suppress(StorageError):
            metrics.flush(self.db, self.recorder)
        with contextlib.suppress(StorageError):
            limiter.unregister(self.db, self.worker_id)
        self.http.close()
        self.webhook_http.close()
        if self.batch_http is not None:
            self.batch_http.close()
        self.db.close()


_ctx: Context | None = None
_lock = threading.Lock()


def build(settings: Settings, slots: int) -> Context:
    http = openai.http_client(settings, pool=slots + 4)
    batch_http = batches.http_client(settings)
    return Context(
        settings=settings,
        db=Backend.connect(settings),
        catalogue=catalogue.load(settings.catalogue_path),
        http=http,
        provider=openai.build(settings, http),
        webhook_http=httpx.Client(
            timeout=httpx.Timeout(
                settings.webhook_timeout_seconds, connect=min(10.0, settings.webhook_timeout_seconds)
            ),
            follow_redirects=False,
            limits=httpx.Limits(max_connections=32),
        ),
        slots=slots,
        worker_id=f"{socket.gethostname()}:{os.getpid()}",
        batches=batches.build(settings, batch_http),
        batch_http=batch_http,
        providers={a.name: openai.for_account(a, http) for a in settings.accounts[1:]},
    )


def current() -> Context:
    """This process's context, built on first use."""
    global _ctx
    with _lock:
        if _ctx is None:
            settings = get_settings()
            _ctx = build(settings, settings.worker_concurrency)
        return _ctx


def install(ctx: Context) -> None:
    global _ctx
    with _lock:
        _ctx = ctx


def shutdown() -> None:
    global _ctx
    with _lock:
        if _ctx is not None:
            _ctx.close()
            _ctx = None
