"""The FastAPI application: built once per process, clients opened in its lifespan."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from editq import __version__, catalogue, logs
from editq.api import error_handlers, metrics, openapi, schemas
from editq.api.guard import RequestGuard, UploadSlots
from editq.api.routes import account, admin, batch, compat, docs, edits, estimate, health, plans, studio
from editq.api.stream import router as stream_router
from editq.settings import Settings, get_settings
from editq.storage import tenants
from editq.storage.backend import Backend
from editq.storage.events import EventFeed

log = logging.getLogger("editq.api")
#: A client's `X-Request-ID` is kept when it looks like an id; otherwise the API makes one.
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,64}")


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()
    models = catalogue.load(settings.catalogue_path)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        db = Backend.connect(settings, request_path=True)
        longest = max(settings.output_retention_seconds, settings.source_retention_seconds)
        db.objects.ensure_bucket(retention_days=max(1, longest // 86400))
        if settings.bootstrap_api_key is not None:
            tenants.ensure_bootstrap(db, settings.bootstrap_api_key.get_secret_value())
        app.state.backend = db
        app.state.catalogue = models
        app.state.event_feed = EventFeed.connect(settings)
        if not getattr(metrics.REGISTRY, "_editq_state", False):
            metrics.register_state(db)
            metrics.REGISTRY._editq_state = True  # type: ignore[attr-defined]
        log.info("editq API %s ready", __version__)
        try:
            yield
        finally:
            await app.state.event_feed.close()
            db.close()

    app = FastAPI(
        title="editq",
        version=__version__,
        lifespan=lifespan,
        docs_url=None,
        redoc_url=None,
        description=(
            "Asynchronous, cost-aware image edits. **Authorize** with an editq API key "
            "(`Authorization: Bearer <key>`). `POST /v1/images/edits` and `GET /v1/models` speak "
            "OpenAI's API, so the `openai` SDK works with `base_url` set to this server's `/v1`."
        ),
    )
    error_handlers.install(app)
    schemas.document_webhooks(app)
    openapi.install(app, models, settings)
    app.state.upload_slots = UploadSlots(settings.max_concurrent_uploads)
    routers = (
        edits.router,
        estimate.router,
        stream_router,
        batch.router,
        compat.router,
        account.router,
        health.router,
    )
    for router in (*routers, admin.router, plans.router, studio.router, docs.router):
        app.include_router(router)
    app.mount("/studio", studio.assets(), name="studio")
    app.mount(docs.ASSETS, docs.assets(), name="docs-assets")

    @app.middleware("http")
    async def observe(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        started = time.perf_counter()
        given = request.headers.get("x-request-id", "")
        request_id = given if REQUEST_ID.fullmatch(given) else f"req_{secrets.token_hex(8)}"
        with logs.bound(request_id=request_id):
            response = await call_next(request)
        response.headers["X-Request-ID"] = request_id
        route = request.scope.get("route")
        name = getattr(route, "path", "unmatched")
        metrics.REQUESTS.labels(request.method, name, str(response.status_code)).inc()
        metrics.LATENCY.labels(request.method, name).observe(time.perf_counter() - started)
        return response

    app.add_middleware(RequestGuard, body_seconds=settings.body_timeout_seconds)
    return app
