"""A tenant's money, webhook settings and the model catalogue."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Query, Request

from editq.api import inputs, openapi
from editq.api.credit_schemas import CreditBalance
from editq.api.deps import DB, Models, Tenant
from editq.api.lifecycle import model_report
from editq.api.schemas import (
    CatalogueModel,
    DisabledEndpoints,
    EnabledEndpoint,
    Ledger,
    ModelList,
    Redelivery,
    Usage,
    WebhookSecrets,
    errors,
)
from editq.catalogue import Model
from editq.cost import usd
from editq.errors import InvalidRequest, NotFound
from editq.job import iso
from editq.lifecycle import Availability
from editq.storage import credits as credit_store
from editq.storage import deliveries, money, tenants
from editq.storage import models as model_store
from editq.storage.backend import Backend

router = APIRouter(prefix="/v1", tags=["account"])


def _day(value: str | None, default: date, name: str) -> date:
    if value is None:
        return default
    try:
        return date.fromisoformat(value[:10])
    except ValueError:
        raise InvalidRequest("invalid_parameter", f"{name} is a date like 2026-11-25", name) from None


@router.get("/usage", response_model=Usage, responses=errors())
def usage(
    db: DB,
    tenant: Tenant,
    from_: Annotated[str | None, Query(alias="from")] = None,
    to: Annotated[str | None, Query()] = None,
    group_by: Annotated[str, Query()] = "day",
) -> Usage:
    """Spend, reservations and what remains of each budget; spend grouped by day or model."""
    if group_by not in ("day", "model"):
        raise InvalidRequest("invalid_parameter", "group_by is day or model", "group_by")
    today = db.clock.today()
    first = _day(from_, today.replace(day=1), "from")
    last = _day(to, today, "to")
    if last < first or (last - first).days > 400:
        raise InvalidRequest("invalid_parameter", "from..to must be 0 to 400 days", "from")
    found = tenants.get(db, tenant)
    assert found is not None
    groups = money.usage(db, tenant, first, last, group_by)
    total = sum(int(g["spent_micros"]) for g in groups)
    return Usage(
        tenant=tenant,
        from_=first.isoformat(),
        to=last.isoformat(),
        group_by=group_by,
        budgets=money.budgets(db, tenant, found.budgets),
        credits=CreditBalance(**credit_store.balance(db, tenant).public()),
        spent_usd=usd(total),
        groups=groups,
    )


@router.get("/usage/ledger", response_model=Ledger, responses=errors())
def ledger(
    db: DB,
    tenant: Tenant,
    after: Annotated[str | None, Query()] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 1000,
) -> Ledger:
    """Ledger entries oldest first; pass the last `id` as `after` for the next page."""
    start = "-" if after is None else f"({after}"
    try:
        entries = money.ledger(db, tenant, start=start, count=limit)
    except Exception as exc:
        if "Invalid stream ID" in str(exc):
            raise InvalidRequest("invalid_parameter", "after is an entry id", "after") from None
        raise
    return Ledger(data=entries, has_more=len(entries) == limit)


@router.get("/webhooks/secret", response_model=WebhookSecrets, responses=errors())
def webhook_secret(db: DB, tenant: Tenant) -> WebhookSecrets:
    """The signing secrets in use: the current one first, rotated ones until they expire."""
    items = tenants.secrets_of(db, tenant)
    return WebhookSecrets(secret=items[0]["secret"] if items else None, secrets=items)


@router.post("/webhooks/secret/rotate", response_model=WebhookSecrets, responses=errors())
def rotate_secret(db: DB, tenant: Tenant) -> WebhookSecrets:
    """A new signing secret; the old one keeps signing (both signatures sent) for a while."""
    items = tenants.rotate_secret(db, tenant, db.settings.secret_overlap_seconds)
    return WebhookSecrets(secret=items[0]["secret"], secrets=items)


@router.post(
    "/webhooks/{delivery_id}/redeliver",
    status_code=202,
    response_model=Redelivery,
    responses=errors(404, codes={404: "delivery_not_found"}),
)
def redeliver(delivery_id: str, db: DB, tenant: Tenant) -> Redelivery:
    found = deliveries.get(db, delivery_id)
    if found is None or found.tenant != tenant:
        raise NotFound("delivery_not_found", f"no delivery {delivery_id!r}", "delivery_id")
    deliveries.redeliver(db, found)
    return Redelivery(id=found.id, event=found.event, url=found.url)


@router.get("/webhooks/endpoints", response_model=DisabledEndpoints, responses=errors())
def endpoints(db: DB, tenant: Tenant) -> DisabledEndpoints:
    """Webhook URLs disabled after answering 410 Gone."""
    return DisabledEndpoints(disabled=sorted(tenants.disabled_urls(db, tenant)))


@router.post(
    "/webhooks/endpoints/enable",
    response_model=EnabledEndpoint,
    responses=errors(
        404,
        413,
        codes={400: "invalid_json json_too_deep", 404: "endpoint_not_disabled", 413: "request_too_large"},
    ),
    openapi_extra=openapi.request_body(("application/json", "EndpointEnable")),
)
async def enable_endpoint(request: Request, db: DB, tenant: Tenant) -> EnabledEndpoint:
    body = await inputs.read_json(request, 8192)
    url = body.get("url") if isinstance(body, dict) else None
    if not isinstance(url, str):
        raise InvalidRequest("invalid_parameter", 'send {"url": "..."}', "url")
    if not tenants.enable_url(db, tenant, url):
        raise NotFound("endpoint_not_disabled", "that URL is not disabled", "url")
    return EnabledEndpoint(url=url, enabled=True)


def _shown(db: Backend, model: Model, availability: Availability) -> CatalogueModel:
    today = db.clock.today()
    served = availability.serves(model.name) and not model.retired(today)
    return CatalogueModel(**model.public(), retired=model.retired(today), served=served)


@router.get("/models", response_model=ModelList, responses=errors(authenticated=False))
def models(models: Models, db: DB) -> ModelList:
    """OpenAI's model list (`object`, `data[]` of `id`, `object`, `created`, `owned_by`) with
    editq's catalogue on each model: capabilities, prices, retirement, successor, and whether the
    provider account serves it; and which model a job without `model` runs on, and why."""
    report = model_report(db, models)
    availability = model_store.availability(db)
    return ModelList(
        default=report["default"],
        default_note=report["default_note"] or report["default_problem"],
        configured_default=report["configured_default"],
        served_checked_at=iso(report["refreshed_at_ms"]),
        aliases=db.settings.model_aliases,
        data=[_shown(db, m, availability) for m in models.models.values()],
    )


@router.get(
    "/models/{model_id}",
    response_model=CatalogueModel,
    responses=errors(404, authenticated=False, codes={404: "model_not_found"}),
)
def model(model_id: str, models: Models, db: DB) -> CatalogueModel:
    """One model as `GET /v1/models` lists it; a snapshot name or an operator alias finds the
    model it stands for."""
    found = models.find(model_id, db.settings.model_aliases)
    if found is None:
        raise NotFound("model_not_found", f"no model {model_id!r}; GET /v1/models lists them", "model_id")
    return _shown(db, found[0], model_store.availability(db))
