"""Webhook delivery (Standard Webhooks): turning job events into deliveries, and one attempt.

Each event gets one delivery record whose id is the `webhook-id` of every attempt. The body is
fixed when the delivery is created; each attempt is signed afresh (new `webhook-timestamp`) with
every secret the tenant has in use. Attempts follow `EDITQ_WEBHOOK_SCHEDULE` with jitter, driven
by the Redis schedule; 2xx ends it, 410 disables the URL for the tenant, anything else retries.
"""

from __future__ import annotations

import json
import logging
import random
import time
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import httpx

from editq import logs, signing, ssrf
from editq.errors import InvalidRequest
from editq.job import iso
from editq.public import webhook_event
from editq.storage import deliveries, outputs, schedule, tenants
from editq.storage import jobs as job_store
from editq.telemetry import DeliveryOutcome
from editq.worker.context import Context

log = logging.getLogger("editq.webhooks")

#: Bytes of a receiver's answer kept with the attempt.
EXCERPT_BYTES = 512
READ_LIMIT = 64 * 1024
USER_AGENT = "editq-webhooks/1"


def materialize(ctx: Context, entry: schedule.Entry) -> str | None:
    """An event entry from the outbox becomes a delivery with its body (a `WebhookEvent`) frozen."""
    tenant, job_id, event = entry.tenant, entry.job_id, entry.event
    db = ctx.db
    job = job_store.get(db, tenant, job_id)
    if job is None or not job.webhook_url:
        schedule.done(db, entry)
        return None
    at = job.started_at if event == "edit.started" else (job.finished_at or job.updated_at)
    timestamp = iso(at or ctx.db.clock.ms()) or ""
    body = json.dumps(webhook_event(event, timestamp, outputs.public(db, job)).model_dump(mode="json"))
    created = deliveries.create(db, tenant, job_id, event, job.webhook_url, body)
    schedule.done(db, entry)
    return created


def _pinned(target: ssrf.Target) -> tuple[str, dict[str, str], dict[str, Any]]:
    """The URL rewritten to the checked address, the Host header and the TLS name."""
    parts = urlsplit(target.url)
    host = f"[{target.address}]" if ":" in target.address else target.address
    default = 443 if target.scheme == "https" else 80
    netloc = host if target.port == default else f"{host}:{target.port}"
    url = urlunsplit((parts.scheme, netloc, parts.path or "/", parts.query, ""))
    host_header = target.host if target.port == default else f"{target.host}:{target.port}"
    extensions: dict[str, Any] = {"sni_hostname": target.host} if target.scheme == "https" else {}
    return url, {"Host": host_header}, extensions


def _next_delay(ctx: Context, attempt_index: int) -> float | None:
    plan = ctx.settings.webhook_schedule
    if attempt_index >= len(plan):
        return None
    delay = plan[attempt_index]
    jitter = ctx.settings.webhook_jitter
    return max(0.0, delay * random.uniform(1 - jitter, 1 + jitter))  # noqa: S311 - jitter


def deliver(ctx: Context, delivery_id: str, resolve: ssrf.Resolver = ssrf.system_resolver) -> str:
    """One attempt. Returns the delivery's status after it."""
    db = ctx.db
    dlv = deliveries.get(db, delivery_id)
    if dlv is None:
        schedule.done(db, schedule.Entry.delivery(delivery_id))
        return "missing"
    if dlv.status != deliveries.PENDING:
        schedule.done(db, schedule.Entry.delivery(delivery_id))
        return dlv.status
    with logs.bound(job_id=dlv.job_id, tenant=dlv.tenant, delivery_id=dlv.id, webhook_event=dlv.event):
        return _attempt(ctx, dlv, resolve)


def _attempt(ctx: Context, dlv: deliveries.Delivery, resolve: ssrf.Resolver) -> str:
    started = time.monotonic()
    attempt: dict[str, Any] = {"n": dlv.attempts + 1, "at": int(started * 1000)}
    if tenants.is_disabled(ctx.db, dlv.tenant, dlv.url):
        attempt.update(status="skipped", error="endpoint disabled after a 410")
        deliveries.record_attempt(
            ctx.db,
            dlv,
            attempt=attempt,
            status=deliveries.DISABLED,
            next_at=None,
            outcome=DeliveryOutcome.SKIPPED,
        )
        logs.event(log, "webhook.attempt", attempt=attempt["n"], outcome="skipped", delivery="disabled")
        return deliveries.DISABLED
    code, retry_after = _post(ctx, dlv, _signed_headers(ctx, dlv), attempt, resolve)
    attempt["duration_ms"] = int((time.monotonic() - started) * 1000)
    outcome = _outcome(code, attempt)
    status = _record_outcome(ctx, dlv, attempt, code, retry_after, outcome)
    logs.event(
        log,
        "webhook.attempt",
        logging.INFO if outcome is DeliveryOutcome.DELIVERED else logging.WARNING,
        attempt=attempt["n"],
        outcome=outcome.value,
        status_code=code,
        duration_ms=attempt["duration_ms"],
        delivery=status,
        error=attempt.get("error"),
    )
    return status


def _outcome(code: int | None, attempt: dict[str, Any]) -> DeliveryOutcome:
    if code is not None:
        if 200 <= code < 300:
            return DeliveryOutcome.DELIVERED
        return DeliveryOutcome.GONE if code == 410 else DeliveryOutcome.HTTP_ERROR
    if attempt.get("status") == "timeout":
        return DeliveryOutcome.TIMEOUT
    return DeliveryOutcome.REFUSED if attempt.get("status") == "refused" else DeliveryOutcome.UNREACHABLE


def _signed_headers(ctx: Context, dlv: deliveries.Delivery) -> dict[str, str]:
    """The Standard Webhooks headers, signed now with every secret the tenant has in use."""
    body = dlv.body.encode()
    timestamp = int(time.time())  # real time: receivers check it against their own clocks
    secrets = [s["secret"] for s in tenants.secrets_of(ctx.db, dlv.tenant)]
    return {
        "content-type": "application/json",
        "user-agent": USER_AGENT,
        "webhook-id": dlv.id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": signing.signature_header(secrets, dlv.id, timestamp, body),
    }


def _post(
    ctx: Context,
    dlv: deliveries.Delivery,
    headers: dict[str, str],
    attempt: dict[str, Any],
    resolve: ssrf.Resolver,
) -> tuple[int | None, float | None]:
    """POST the body to the checked address; notes the answer or the failure in `attempt` and
    returns the status code and `retry-after` (None when there was no answer)."""
    code: int | None = None
    retry_after: float | None = None
    try:
        target = ssrf.check_url(
            dlv.url,
            allow_private=ctx.settings.webhook_allow_private,
            allow_http=ctx.settings.webhook_allow_http,
            resolve=resolve,
        )
        url, host, extensions = _pinned(target)
        request = ctx.webhook_http.build_request(
            "POST", url, content=dlv.body.encode(), headers={**headers, **host}, extensions=extensions
        )
        response = ctx.webhook_http.send(request, stream=True)
        try:
            code = response.status_code
            retry_after = _read_answer(response, attempt)
        finally:
            response.close()
    except InvalidRequest as exc:
        attempt.update(status="refused", error=exc.message)
    except httpx.TimeoutException:
        attempt.update(status="timeout", error=f"no answer within {ctx.settings.webhook_timeout_seconds}s")
    except httpx.HTTPError as exc:
        attempt.update(status="error", error=str(exc)[:300])
    return code, retry_after


def _read_answer(response: httpx.Response, attempt: dict[str, Any]) -> float | None:
    """Notes the status and the start of the receiver's answer in `attempt`; returns its
    `retry-after` in seconds, if it gave one."""
    excerpt = b""
    for chunk in response.iter_bytes():
        excerpt += chunk
        if len(excerpt) >= READ_LIMIT:
            break
    attempt.update(status=response.status_code, response=excerpt[:EXCERPT_BYTES].decode("utf-8", "replace"))
    if "retry-after" not in response.headers:
        return None
    try:
        return float(response.headers["retry-after"])
    except ValueError:
        return None


def _record_outcome(
    ctx: Context,
    dlv: deliveries.Delivery,
    attempt: dict[str, Any],
    code: int | None,
    retry_after: float | None,
    outcome: DeliveryOutcome,
) -> str:
    """2xx delivers, 410 disables the URL, anything else is retried on the schedule until it
    runs out. Returns the delivery's new status."""
    db = ctx.db
    status, next_at = deliveries.PENDING, None
    if outcome is DeliveryOutcome.DELIVERED:
        status = deliveries.DELIVERED
    elif outcome is DeliveryOutcome.GONE:
        deliveries.disable_url(db, dlv.tenant, dlv.url)
        status = deliveries.DISABLED
    else:
        round_start = deliveries.round_start(db, dlv.id)
        delay = _next_delay(ctx, dlv.attempts + 1 - round_start)
        if delay is None:
            status = deliveries.FAILED
        else:
            if retry_after is not None and code in (429, 503):
                delay = max(delay, min(retry_after, 3600.0))
            next_at = int((ctx.db.clock.time() + delay) * 1000)
            attempt["next_attempt_at"] = next_at
    deliveries.record_attempt(db, dlv, attempt=attempt, status=status, next_at=next_at, outcome=outcome)
    return status
