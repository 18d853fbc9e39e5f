"""Prometheus metrics: request counters in the API, queue and limiter gauges read from Redis
at scrape time (so they cover every worker, wherever it runs)."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from editq.storage import economy, limiter
from editq.storage import jobs as job_store
from editq.storage.backend import Backend
from editq.storage.errors import StorageError

REGISTRY = CollectorRegistry()
REQUESTS = Counter("editq_http_requests", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "editq_http_request_seconds", "HTTP request latency", ["method", "route"], registry=REGISTRY
)
#: Tenants listed one by one in queue gauges; the rest are summed as `other`.
TOP_TENANTS = 50


class StateCollector(Collector):
    """Reads queue depths, slots and the limiter from Redis on every scrape."""

    def __init__(self, db: Backend) -> None:
        self.db = db

    def collect(self) -> Iterator[GaugeMetricFamily]:
        db = self.db
        try:
            state = limiter.state(db)
            backlog = job_store.backlog(db)
            depths, due, scheduled = backlog.depths, backlog.due, backlog.scheduled
            lane = economy.overview(db)
        except StorageError:
            return
        pending = GaugeMetricFamily(
            "editq_pending_jobs", "Jobs waiting for admission", labels=["tenant", "priority"]
        )
        other = [0, 0]
        tenants = list(depths)
        for i, (tenant, (interactive, batch)) in enumerate(depths.items()):
            if i < TOP_TENANTS:
                pending.add_metric([tenant, "interactive"], interactive)
                pending.add_metric([tenant, "batch"], batch)
            else:
                other[0] += interactive
                other[1] += batch
        if len(tenants) > TOP_TENANTS:
            pending.add_metric(["other", "interactive"], other[0])
            pending.add_metric(["other", "batch"], other[1])
        yield pending
        yield GaugeMetricFamily("editq_inflight_calls", "Provider calls in flight", value=state["inflight"])
        yield GaugeMetricFamily(
            "editq_limiter_ipm", "Effective images per minute", value=state["ipm_effective"]
        )
        yield GaugeMetricFamily(
            "editq_limiter_rpm", "Effective requests per minute", value=state["rpm_effective"]
        )
        yield GaugeMetricFamily(
            "editq_provider_paused", "1 while admission is paused", value=1 if state["paused"] else 0
        )
        yield GaugeMetricFamily(
            "editq_economy_waiting_jobs", "Economy jobs waiting to be put in a batch", value=lane.waiting
        )
        batches = GaugeMetricFamily(
            "editq_economy_batches", "Economy batches not yet done, by state", labels=["state"]
        )
        for batch_state in ("open", "uploaded", "submitted"):
            batches.add_metric([batch_state], lane.batches.get(batch_state, 0))
        yield batches
        yield GaugeMetricFamily("editq_schedule_due", "Scheduled items already due", value=due)
        yield GaugeMetricFamily("editq_schedule_size", "Scheduled retries and deliveries", value=scheduled)


def register_state(db: Backend) -> None:
    REGISTRY.register(StateCollector(db))
