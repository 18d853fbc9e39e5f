"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from editq.api.deps import DB, Models
from editq.api.lifecycle import model_report
from editq.api.metrics import REGISTRY
from editq.storage import limiter
from editq.storage.errors import StorageError
from editq.storage.redis import REDIS_ERRORS

router = APIRouter(tags=["health"])


@router.get("/healthz")
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz")
def readyz(db: DB, models: Models) -> JSONResponse:
    """Ready when Redis and S3 answer; says so when the provider account is paused."""
    checks: dict[str, Any] = {}
    ok = True
    try:
        db.redis.ping()
        checks["redis"] = "ok"
    except REDIS_ERRORS as exc:
        checks["redis"] = f"down: {exc}"
        ok = False
    try:
        db.objects.ping()
        checks["s3"] = "ok"
    except StorageError as exc:
        checks["s3"] = f"down: {exc}"
        ok = False
    status = "ok" if ok else "unavailable"
    if ok:
        state = limiter.state(db)
        workers = int(db.redis.zcount(db.keys.workers, "(" + str(db.clock.ms()), "+inf"))
        checks["provider"] = state
        checks["workers"] = workers
        report = model_report(db, models)
        checks["models"] = report
        if state["paused"] and state["pause_reason"] != "rate_limited":
            status = "degraded"
        if report["default_problem"]:
            status = "degraded"
    return JSONResponse({"status": status, "checks": checks}, status_code=200 if ok else 503)


@router.get("/metrics")
def metrics() -> Response:
    return Response(generate_latest(REGISTRY), media_type=CONTENT_TYPE_LATEST)
