"""`/v1/admin/*`: tenants, their budgets, weights, caps and API keys, with EDITQ_ADMIN_API_KEY."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends, Query, Response

from editq.api.admin import admin, body, documented, refusals
from editq.api.admin_schemas import (
    AdminTenant,
    ApiKeyInfo,
    ApiKeyList,
    CreatedTenant,
    NewApiKey,
    ProviderAccount,
    ProviderAccountList,
    RevokedApiKey,
    TenantCreate,
    TenantCredits,
    TenantList,
    TenantPatch,
    TopUp,
)
from editq.api.deps import DB, IdempotencyKey
from editq.errors import Conflict, InvalidRequest, NotFound, Unprocessable
from editq.storage import credits as credit_store
from editq.storage import idempotency, limiter, money, tenants
from editq.storage.backend import Backend

log = logging.getLogger("editq.admin")

router = APIRouter(prefix="/v1/admin", tags=["admin"], dependencies=[Depends(admin)])


def _answer(db: Backend, found: tenants.Tenant) -> AdminTenant:
    return AdminTenant.model_validate(
        {
            **found.public(),
            "budgets": money.budgets(db, found.name, found.budgets),
            "credits": credit_store.balance(db, found.name).public(),
        }
    )


def _known_plan(db: Backend, name: str | None) -> None:
    """Refuse a plan that does not exist (400 `unknown_plan`) before anything is written."""
    if name is not None and credit_store.get_plan(db, name) is None:
        raise InvalidRequest("unknown_plan", f"no plan {name!r}", "plan")


def _put_on_plan(db: Backend, tenant: str, plan: str | None) -> None:
    try:
        credit_store.assign(db, tenant, plan)
    except credit_store.NoSuchPlan:
        raise InvalidRequest("unknown_plan", f"no plan {plan!r}", "plan") from None


def _tenant(db: Backend, name: str) -> tenants.Tenant:
    found = tenants.get(db, name) if tenants.NAME.fullmatch(name) else None
    if found is None:
        raise NotFound("tenant_not_found", f"no tenant {name[:64]!r}", "name")
    return found


@router.post(
    "/tenants",
    status_code=201,
    response_model=CreatedTenant,
    responses=refusals(409, 413),
    openapi_extra=documented(TenantCreate),
)
def create_tenant(db: DB, new: Annotated[TenantCreate, Depends(body(TenantCreate))]) -> CreatedTenant:
    """A new tenant, with its webhook signing secret."""
    _known_plan(db, new.plan)
    try:
        made = tenants.create(
            db,
            new.name,
            weight=new.weight,
            max_running=new.max_running or 0,
            budgets=new.budgets(),
            default_priority=new.default_priority or "",
        )
    except tenants.TenantExists:
        raise Conflict("tenant_exists", f"tenant {new.name!r} already exists", "name") from None
    if new.plan is not None:
        _put_on_plan(db, made.name, new.plan)
        made = _tenant(db, made.name)
    log.info("admin: tenant %s created", made.name)
    secret = tenants.secrets_of(db, made.name)[0]["secret"]
    return CreatedTenant.model_validate({**_answer(db, made).model_dump(), "webhook_secret": secret})


@router.get("/tenants", response_model=TenantList, responses=refusals())
def list_tenants(
    db: DB,
    after: Annotated[str | None, Query(max_length=64)] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> TenantList:
    """Tenants by name, `limit` at a time after `after`."""
    names = [n for n in tenants.names(db) if after is None or n > after]
    page = [found for n in names[:limit] if (found := tenants.get(db, n)) is not None]
    return TenantList(data=[_answer(db, t) for t in page], has_more=len(names) > limit)


@router.get("/tenants/{name}", response_model=AdminTenant, responses=refusals(404))
def get_tenant(name: str, db: DB) -> AdminTenant:
    return _answer(db, _tenant(db, name))


@router.patch(
    "/tenants/{name}",
    response_model=AdminTenant,
    responses=refusals(404, 413),
    openapi_extra=documented(TenantPatch),
)
def update_tenant(
    name: str, db: DB, patch: Annotated[TenantPatch, Depends(body(TenantPatch))]
) -> AdminTenant:
    """Change the fields sent; a budget or `max_running` sent as null is cleared."""
    _tenant(db, name)
    sent = patch.model_fields_set
    _known_plan(db, patch.plan)
    try:
        changed = tenants.update(
            db,
            name,
            weight=patch.weight if "weight" in sent else None,
            max_running=(patch.max_running or 0) if "max_running" in sent else None,
            budgets=patch.budgets(),
            default_priority=(patch.default_priority or "") if "default_priority" in sent else None,
        )
    except tenants.NoSuchTenant:
        raise NotFound("tenant_not_found", f"no tenant {name!r}", "name") from None
    if "plan" in sent:
        _put_on_plan(db, name, patch.plan)
        changed = _tenant(db, name)
    log.info("admin: tenant %s changed: %s", name, ", ".join(sorted(sent)) or "nothing")
    return _answer(db, changed)


@router.post(
    "/tenants/{name}/credits",
    response_model=TenantCredits,
    responses=refusals(404, 413, 422),
    openapi_extra=documented(TopUp),
)
def top_up(
    name: str,
    db: DB,
    top: Annotated[TopUp, Depends(body(TopUp))],
    response: Response,
    idempotency_key: IdempotencyKey = None,
) -> TenantCredits:
    """Add credits to the tenant's balance (recorded in its ledger as `topup`). With an
    `Idempotency-Key`, a retried top-up adds nothing and answers what the first one did
    (`Idempotent-Replayed: true`); the key with another top-up is refused (422)."""
    _tenant(db, name)
    key = idempotency.parse_key(idempotency_key)
    try:
        done = credit_store.top_up(db, name, top.credits, top.note, idempotency_key=key)
    except tenants.NoSuchTenant:
        raise NotFound("tenant_not_found", f"no tenant {name!r}", "name") from None
    except credit_store.BalanceTooLarge as exc:
        raise InvalidRequest("invalid_credits", str(exc), "credits") from None
    except credit_store.TopUpKeyReused as exc:
        raise Unprocessable("idempotency_key_reused", str(exc), "Idempotency-Key") from None
    if done.replayed:
        response.headers["Idempotent-Replayed"] = "true"
        log.info("admin: top-up of %d credits to %s replayed", top.credits, name)
    else:
        log.info("admin: %d credits added to %s (balance %d)", top.credits, name, done.balance.balance)
    return TenantCredits(tenant=name, **done.balance.public())


@router.post("/tenants/{name}/keys", status_code=201, response_model=NewApiKey, responses=refusals(404))
def create_key(name: str, db: DB) -> NewApiKey:
    """A new API key for the tenant, shown in this answer only."""
    _tenant(db, name)
    try:
        key_id, key = tenants.issue_key(db, name)
    except tenants.NoSuchTenant:
        raise NotFound("tenant_not_found", f"no tenant {name!r}", "name") from None
    log.info("admin: key %s issued to %s", key_id, name)
    return NewApiKey(id=key_id, tenant=name, created_at=int(db.clock.time()), key=key)


@router.get("/tenants/{name}/keys", response_model=ApiKeyList, responses=refusals(404))
def list_keys(name: str, db: DB) -> ApiKeyList:
    """The tenant's live keys, by id, oldest first."""
    _tenant(db, name)
    return ApiKeyList(
        data=[ApiKeyInfo(id=k.id, tenant=name, created_at=k.created_at) for k in tenants.keys_of(db, name)]
    )


@router.delete("/tenants/{name}/keys/{key_id}", response_model=RevokedApiKey, responses=refusals(404))
def revoke_key(name: str, key_id: str, db: DB) -> RevokedApiKey:
    """Revoke a key: requests with it are refused (401) from now on."""
    _tenant(db, name)
    try:
        tenants.revoke(db, name, key_id)
    except tenants.NoSuchKey:
        raise NotFound("key_not_found", f"tenant {name!r} has no key {key_id[:64]!r}", "key_id") from None
    log.info("admin: key %s of %s revoked", key_id, name)
    return RevokedApiKey(id=key_id, tenant=name)


@router.get("/provider", response_model=ProviderAccountList, responses=refusals())
def list_provider_accounts(db: DB) -> ProviderAccountList:
    """Each provider account: limits, effective rates, calls in flight, pause or probe."""
    accounts = limiter.state(db)["accounts"]
    return ProviderAccountList(data=[ProviderAccount.model_validate(a) for a in accounts])
