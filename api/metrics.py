"""Prometheus metrics: request counters of this API process, plus the cluster's counters and
histograms and its queue, limiter, worker and budget gauges, all read from Redis at scrape time.
Every replica therefore reports the same cluster-wide series (aggregate them with
`max without(instance, pod)`); `editq_http_*` alone are this process's own."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Histogram
from prometheus_client.core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.registry import Collector

from editq.storage import economy, limiter, money
from editq.storage import jobs as job_store
from editq.storage import metrics as recorded
from editq.storage.backend import Backend
from editq.storage.errors import StorageError
from editq.telemetry import GAUGE, RECORDED, Family, Kind

REGISTRY = CollectorRegistry()
REQUESTS = Counter("editq_http_requests", "HTTP requests", ["method", "route", "status"], registry=REGISTRY)
LATENCY = Histogram(
    "editq_http_request_seconds", "HTTP request latency", ["method", "route"], registry=REGISTRY
)
#: Tenants listed one by one in queue gauges; the rest are summed as `other`.
TOP_TENANTS = 50
#: Budgets listed in `editq_budget_used_ratio`: the ones nearest their limits.
TOP_BUDGETS = 50


def _gauge(name: str, value: float | None = None) -> GaugeMetricFamily:
    family = GAUGE[name]
    if value is None:
        return GaugeMetricFamily(family.name, family.help, labels=list(family.labels))
    return GaugeMetricFamily(family.name, family.help, value=value)


def _pending(depths: dict[str, tuple[int, int]]) -> GaugeMetricFamily:
    pending = _gauge("editq_pending_jobs")
    other = [0, 0]
    for i, (tenant, (interactive, batch)) in enumerate(depths.items()):
        if i < TOP_TENANTS:
            pending.add_metric([tenant, "interactive"], interactive)
            pending.add_metric([tenant, "batch"], batch)
        else:
            other[0] += interactive
            other[1] += batch
    if len(depths) > TOP_TENANTS:
        pending.add_metric(["other", "interactive"], other[0])
        pending.add_metric(["other", "batch"], other[1])
    return pending


def _accounts(accounts: list[dict[str, Any]]) -> Iterator[Metric]:
    """Each provider account's gauges, labelled `account`."""
    inflight, ipm, limit, paused = (
        _gauge(name)
        for name in (
            "editq_account_inflight",
            "editq_account_ipm",
            "editq_account_ipm_limit",
            "editq_account_paused",
        )
    )
    for a in accounts:
        inflight.add_metric([a["name"]], a["inflight"])
        ipm.add_metric([a["name"]], a["ipm_effective"])
        limit.add_metric([a["name"]], a["ipm_configured"])
        paused.add_metric([a["name"], a["pause_reason"] or ""], 1 if a["paused"] else 0)
    yield from (inflight, ipm, limit, paused)


class StateCollector(Collector):
    """Reads queue depths, slots, the limiter, live workers and budgets from Redis on every scrape."""

    def __init__(self, db: Backend) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        db = self.db
        try:
            state = limiter.state(db)
            backlog = job_store.backlog(db)
            live, _ = limiter.workers(db)
            ratios = money.used_ratios(db, TOP_BUDGETS)
            lane = economy.overview(db)
        except StorageError:
            return
        yield _pending(backlog.depths)
        yield _gauge("editq_inflight_calls", state["inflight"])
        yield _gauge("editq_limiter_ipm", state["ipm_effective"])
        yield _gauge("editq_limiter_rpm", state["rpm_effective"])
        yield _gauge("editq_provider_paused", 1 if state["paused"] else 0)
        yield from _accounts(state["accounts"])
        yield _gauge("editq_schedule_due", backlog.due)
        yield _gauge("editq_schedule_size", backlog.scheduled)
        yield _gauge("editq_workers_live", live)
        budgets = _gauge("editq_budget_used_ratio")
        for tenant, period, ratio in ratios:
            budgets.add_metric([tenant, period], ratio)
        yield budgets
        yield _gauge("editq_economy_waiting_jobs", lane.waiting)
        batches = _gauge("editq_economy_batches")
        for batch_state in ("open", "uploaded", "submitted"):
            batches.add_metric([batch_state], lane.batches.get(batch_state, 0))
        yield batches


def _family(family: Family, series: dict[tuple[str, ...], recorded.Series]) -> Metric:
    labels = list(family.labels)
    if family.kind is Kind.HISTOGRAM:
        histogram = HistogramMetricFamily(family.name, family.help, labels=labels)
        for values, one in sorted(series.items()):
            histogram.add_metric(list(values), one.cumulative(family), one.sum)
        return histogram
    counter = CounterMetricFamily(family.name, family.help, labels=labels)
    for values, one in sorted(series.items()):
        counter.add_metric(list(values), one.value)
    return counter


class RecordedCollector(Collector):
    """The counters and histograms every process records in Redis (`storage.metrics`)."""

    def __init__(self, db: Backend) -> None:
        self.db = db

    def collect(self) -> Iterator[Metric]:
        try:
            found = recorded.read(self.db)
        except StorageError:
            return
        for family in RECORDED:
            yield _family(family, found[family.name])


def register_state(db: Backend) -> None:
    REGISTRY.register(StateCollector(db))
    REGISTRY.register(RecordedCollector(db))
