"""What editq measures: every metric family it exports, with its labels and buckets, and the
bounded values its labels take.

Counters and histograms are recorded in Redis (by the Lua scripts at each job transition, and
by workers for provider calls), so any API replica's `/metrics` reports the whole cluster;
gauges are read from Redis when `/metrics` is scraped. Label values come from closed sets
(statuses, outcomes, reasons) or from the model catalogue; tenants appear only in the capped
gauges.
"""

from __future__ import annotations

import hmac
from dataclasses import dataclass
from enum import StrEnum


class Kind(StrEnum):
    COUNTER = "counter"
    HISTOGRAM = "histogram"
    GAUGE = "gauge"


@dataclass(frozen=True)
class Family:
    """One metric family. Counters are exposed with `_total`; `scale` is how many stored units
    make one exposed unit (money is stored in micro-dollars)."""

    name: str
    kind: Kind
    help: str
    labels: tuple[str, ...] = ()
    buckets: tuple[float, ...] = ()
    scale: int = 1

    @property
    def exposed(self) -> tuple[str, ...]:
        """The sample names a scrape shows for this family."""
        if self.kind is Kind.COUNTER:
            return (f"{self.name}_total",)
        if self.kind is Kind.HISTOGRAM:
            return (f"{self.name}_bucket", f"{self.name}_sum", f"{self.name}_count")
        return (self.name,)


class ProviderOutcome(StrEnum):
    """How a provider call ended (`editq_provider_calls_total{outcome}`)."""

    OK = "ok"
    RATE_LIMITED = "rate_limited"  #: 429 rate_limit_exceeded
    QUOTA = "quota"  #: 429 insufficient_quota
    AUTH = "auth"  #: 401/403
    SERVER_ERROR = "server_error"  #: 5xx
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"  #: connection refused, reset, DNS
    MODERATION = "moderation"  #: moderation_blocked
    REJECTED = "rejected"  #: any other 4xx (model_not_found included)
    BAD_RESPONSE = "bad_response"  #: a 2xx without usable images


class DeliveryOutcome(StrEnum):
    """What one webhook attempt came to (`editq_webhook_deliveries_total{outcome}`)."""

    DELIVERED = "delivered"  #: 2xx
    HTTP_ERROR = "http_error"  #: another status (retried)
    GONE = "gone"  #: 410: the URL is disabled for the tenant
    TIMEOUT = "timeout"
    UNREACHABLE = "unreachable"  #: connection refused, reset, TLS
    REFUSED = "refused"  #: the SSRF guard refused the address
    SKIPPED = "skipped"  #: the URL was already disabled


#: Failed attempts, for the webhook failure rate (skipped attempts make no request).
DELIVERY_FAILURES = tuple(
    o.value for o in DeliveryOutcome if o not in (DeliveryOutcome.DELIVERED, DeliveryOutcome.SKIPPED)
)

_CALL_BUCKETS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0)
_WAIT_BUCKETS = (
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
    30.0,
    60.0,
    120.0,
    300.0,
    600.0,
    1800.0,
    3600.0,
    14400.0,
)

JOBS_FINISHED = Family(
    "editq_jobs_finished", Kind.COUNTER, "Jobs that reached a final status", ("status", "model")
)
PROVIDER_CALLS = Family(
    "editq_provider_calls", Kind.COUNTER, "Provider calls by how they ended", ("model", "outcome")
)
ACCOUNT_CALLS = Family(
    "editq_account_calls",
    Kind.COUNTER,
    "Provider calls by account and how they ended",
    ("account", "outcome"),
)
PROVIDER_IMAGES = Family(
    "editq_provider_images", Kind.COUNTER, "Images the provider returned (what IPM limits count)", ("model",)
)
PROVIDER_CALL_SECONDS = Family(
    "editq_provider_call_seconds",
    Kind.HISTOGRAM,
    "Provider call duration, whatever the outcome",
    ("model",),
    _CALL_BUCKETS,
)
JOB_QUEUE_SECONDS = Family(
    "editq_job_queue_seconds",
    Kind.HISTOGRAM,
    "From submission to the first start of the job",
    ("priority",),
    _WAIT_BUCKETS,
)
JOB_DURATION_SECONDS = Family(
    "editq_job_duration_seconds",
    Kind.HISTOGRAM,
    "From submission to the final status",
    ("status",),
    _WAIT_BUCKETS,
)
COST_USD = Family(
    "editq_cost_usd",
    Kind.COUNTER,
    "Provider spend as settled from usage (equal to the ledger's charges)",
    ("model",),
    scale=1_000_000,
)
WEBHOOK_DELIVERIES = Family(
    "editq_webhook_deliveries", Kind.COUNTER, "Webhook delivery attempts by outcome", ("outcome",)
)
RETRIES = Family(
    "editq_retries", Kind.COUNTER, "Jobs put back in line to run again, by the error's code", ("reason",)
)

#: Families recorded in Redis, in the order `/metrics` shows them.
RECORDED = (
    JOBS_FINISHED,
    PROVIDER_CALLS,
    ACCOUNT_CALLS,
    PROVIDER_IMAGES,
    PROVIDER_CALL_SECONDS,
    JOB_QUEUE_SECONDS,
    JOB_DURATION_SECONDS,
    COST_USD,
    WEBHOOK_DELIVERIES,
    RETRIES,
)
BY_NAME = {family.name: family for family in RECORDED}

#: Gauges read from Redis at scrape time.
GAUGES = (
    Family("editq_pending_jobs", Kind.GAUGE, "Jobs waiting for admission", ("tenant", "priority")),
    Family("editq_inflight_calls", Kind.GAUGE, "Provider calls in flight"),
    Family("editq_limiter_ipm", Kind.GAUGE, "Effective images per minute"),
    Family("editq_limiter_rpm", Kind.GAUGE, "Effective requests per minute"),
    Family("editq_provider_paused", Kind.GAUGE, "1 while admission is paused"),
    Family("editq_account_inflight", Kind.GAUGE, "Provider calls in flight per account", ("account",)),
    Family("editq_account_ipm", Kind.GAUGE, "Effective images per minute per account", ("account",)),
    Family("editq_account_ipm_limit", Kind.GAUGE, "Configured images per minute per account", ("account",)),
    Family("editq_account_paused", Kind.GAUGE, "1 while an account takes no new work", ("account", "reason")),
    Family("editq_schedule_due", Kind.GAUGE, "Scheduled items already due"),
    Family("editq_schedule_size", Kind.GAUGE, "Scheduled retries and deliveries"),
    Family("editq_workers_live", Kind.GAUGE, "Workers whose heartbeat is live"),
    Family("editq_economy_waiting_jobs", Kind.GAUGE, "Economy jobs waiting to be put in a batch"),
    Family("editq_economy_batches", Kind.GAUGE, "Economy batches not yet done, by state", ("state",)),
    Family(
        "editq_budget_used_ratio",
        Kind.GAUGE,
        "Reserved plus spent over the limit, for the tenants nearest their budgets",
        ("tenant", "period"),
    ),
)
GAUGE = {family.name: family for family in GAUGES}


def bucket_index(family: Family, value: float) -> int:
    """The (non-cumulative) bucket a value falls in; len(buckets) is +Inf."""
    for index, bound in enumerate(family.buckets):
        if value <= bound:
            return index
    return len(family.buckets)


def metrics_refusal(authorization: str | None, token: str | None) -> tuple[str, str] | None:
    """Why a scrape may not read `/metrics` (code, message), or None when it may: with no
    token configured anyone may; else `Authorization: Bearer <token>`, compared in constant time."""
    if token is None:
        return None
    if not authorization:
        return "missing_metrics_token", "send Authorization: Bearer <EDITQ_METRICS_TOKEN>"
    scheme, _, given = authorization.partition(" ")
    if scheme.lower() != "bearer" or not hmac.compare_digest(given.strip().encode(), token.encode()):
        return "invalid_metrics_token", "the metrics token is wrong"
    return None
