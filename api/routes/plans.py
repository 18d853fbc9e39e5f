"""`/v1/admin/plans`: credit plans (made once, never changed), with EDITQ_ADMIN_API_KEY."""

from __future__ import annotations

import logging
from typing import Annotated

from fastapi import APIRouter, Depends

from editq.api.admin import admin, body, documented, refusals
from editq.api.admin_schemas import PlanCreate, PlanInfo, PlanList
from editq.api.deps import DB, Models
from editq.errors import Conflict, NotFound
from editq.storage import credits as credit_store
from editq.storage import tenants

log = logging.getLogger("editq.admin")

router = APIRouter(prefix="/v1/admin/plans", tags=["admin"], dependencies=[Depends(admin)])


@router.post(
    "",
    status_code=201,
    response_model=PlanInfo,
    responses=refusals(409, 413),
    openapi_extra=documented(PlanCreate),
)
def create_plan(db: DB, models: Models, new: Annotated[PlanCreate, Depends(body(PlanCreate))]) -> PlanInfo:
    """A new plan; plans never change (make another and move tenants to it)."""
    plan = new.to_plan(models, int(db.clock.time()))
    try:
        credit_store.create_plan(db, plan)
    except credit_store.PlanExists:
        raise Conflict("plan_exists", f"plan {plan.name!r} already exists", "name") from None
    log.info("admin: plan %s created", plan.name)
    return PlanInfo(**plan.public())


@router.get("", response_model=PlanList, responses=refusals())
def list_plans(db: DB) -> PlanList:
    return PlanList(data=[PlanInfo(**p.public()) for p in credit_store.plans(db)])


@router.get("/{name}", response_model=PlanInfo, responses=refusals(404))
def get_plan(name: str, db: DB) -> PlanInfo:
    found = credit_store.get_plan(db, name) if tenants.NAME.fullmatch(name) else None
    if found is None:
        raise NotFound("plan_not_found", f"no plan {name[:64]!r}", "name")
    return PlanInfo(**found.public())
