"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import anyio
import anyio.to_thread
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from editq.api.deps import DB, Models
from editq.api.lifecycle import model_report
from editq.api.metrics import REGISTRY
from editq.api.schemas import ErrorEnvelope, Health, Readiness, errors
from editq.catalogue import Catalogue
from editq.errors import Unauthorized
from editq.storage import limiter
from editq.storage.backend import Backend
from editq.storage.errors import StorageError
from editq.telemetry import metrics_refusal

router = APIRouter(tags=["health"])

#: /readyz answers within this, whatever is stalled (each check also has its client timeout).
READY_SECONDS = 2.5


@router.get("/healthz", response_model=Health)
def healthz() -> Health:
    return Health()


def _redis_checks(db: Backend, models: Catalogue) -> dict[str, Any]:
    """Redis, the provider account, the workers and the models, in one thread."""
    limiter.ping(db)
    live, lapsed_ms = limiter.workers(db)
    return {
        "redis": "ok",
        "provider": limiter.state(db),
        "workers": live,
        "workers_lapsed_ms": lapsed_ms,
        "models": model_report(db, models),
    }


def _s3_checks(db: Backend) -> dict[str, Any]:
    db.objects.ping()
    return {"s3": "ok"}


async def _run(checks: dict[str, Any], name: str, check: Callable[[], dict[str, Any]]) -> None:
    try:
        checks.update(await anyio.to_thread.run_sync(check, abandon_on_cancel=True))
    except (StorageError, OSError) as exc:
        checks[name] = f"down: {exc}"


def _verdict(db: Backend, checks: dict[str, Any]) -> tuple[str, str | None]:
    """ok, degraded or unavailable, and why."""
    down = [name for name in ("redis", "s3") if checks[name] != "ok"]
    if down:
        return "unavailable", f"{' and '.join(down)} not answering"
    lapsed = checks.pop("workers_lapsed_ms")
    grace_ms = db.settings.ready_worker_grace_seconds * 1000
    if not checks["workers"] and (lapsed is None or lapsed > grace_ms):
        since = "ever" if lapsed is None else f"for {lapsed / 1000:.0f} s"
        return "unavailable", f"no live worker (none seen {since}): accepted jobs would not run"
    provider = checks["provider"]
    if provider["paused"] and provider["pause_reason"] != "rate_limited":
        return "degraded", f"provider account paused: {provider['pause_reason']}"
    if checks["models"]["default_problem"]:
        return "degraded", checks["models"]["default_problem"]
    return "ok", None


@router.get(
    "/readyz",
    response_model=Readiness,
    responses={503: {"model": Readiness, "description": "Redis, S3 or every worker is down"}},
)
async def readyz(db: DB, models: Models) -> JSONResponse:
    """Ready when Redis and S3 answer and a worker is alive; says so when the provider account
    is paused. Answers within `READY_SECONDS` even when a service is stalled."""
    silent = f"down: no answer within {READY_SECONDS:g} s"
    checks: dict[str, Any] = {"redis": silent, "s3": silent}
    with anyio.move_on_after(READY_SECONDS):
        async with anyio.create_task_group() as group:
            group.start_soon(_run, checks, "redis", lambda: _redis_checks(db, models))
            group.start_soon(_run, checks, "s3", lambda: _s3_checks(db))
    status, reason = _verdict(db, checks)
    body = Readiness(status=status, reason=reason, checks=checks).model_dump(mode="json")
    return JSONResponse(body, status_code=503 if status == "unavailable" else 200)


@router.get(
    "/metrics",
    response_class=PlainTextResponse,
    responses={
        200: {
            "description": "Prometheus text format",
            "content": {"text/plain": {"schema": {"type": "string"}}},
        },
        **errors(authenticated=False),
        401: {
            "model": ErrorEnvelope,
            "description": "With `EDITQ_METRICS_TOKEN` set, a missing or wrong token: "
            "`missing_metrics_token`, `invalid_metrics_token`",
        },
    },
)
def metrics(request: Request, db: DB) -> Response:
    """The cluster's metrics; with `EDITQ_METRICS_TOKEN` set, only for `Authorization: Bearer` it."""
    token = db.settings.metrics_token
    refusal = metrics_refusal(
        request.headers.get("authorization"), token.get_secret_value() if token else None
    )
    if refusal is not None:
        raise Unauthorized(*refusal)
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
