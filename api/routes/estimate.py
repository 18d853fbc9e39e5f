"""A dry run of a submission: every check, the model and size it would get, what it may cost and
what the tenant's budgets have left. Nothing is stored: no source, hold, job or idempotency key."""

from __future__ import annotations

import anyio.to_thread
from fastapi import APIRouter, Request

from editq.api import inputs, openapi
from editq.api.credit_schemas import CreditEstimate
from editq.api.deps import DB, ContentType, Models, Tenant, Uploads
from editq.api.schemas import EDIT_CODES, Estimate, errors
from editq.api.submit import Prepared, prepare
from editq.cost import usd
from editq.storage import credits as credit_store
from editq.storage import money
from editq.storage import tenants as tenant_store
from editq.storage.backend import Backend

router = APIRouter(prefix="/v1/edits", tags=["edits"])
#: A submit's refusals, less those only a submit decides (its headers, the budget hold).
ESTIMATE_CODES = {
    **EDIT_CODES,
    400: EDIT_CODES[400].replace("invalid_cancel_after invalid_idempotency_key ", ""),
    402: "max_cost_exceeded",
    503: "no_model_available",
}
ESTIMATE_CODES.pop(409)


def answer(db: Backend, prepared: Prepared) -> Estimate:
    limits = tenant_store.get(db, prepared.tenant)
    budgets = money.budgets(db, prepared.tenant, limits.budgets if limits else {})
    return Estimate(
        model=prepared.choice.resolution.model.name,
        model_called=prepared.choice.resolution.api_name,
        model_note=prepared.choice.note,
        provider_size=prepared.plan.size,
        quality=prepared.plan.quality,
        n=prepared.plan.n,
        lane=prepared.lane,
        estimated_usd=None if prepared.estimate is None else usd(prepared.estimate.micros),
        budget_remaining_usd={period: b["remaining_usd"] for period, b in budgets.items()},
        credits=None
        if prepared.credits is None
        else CreditEstimate(
            plan=prepared.credits.terms.plan,
            estimated=prepared.credits.credits,
            available=credit_store.balance(db, prepared.tenant).available,
        ),
    )


@router.post(
    "/estimate",
    response_model=Estimate,
    responses=errors(402, 413, 415, 429, codes=ESTIMATE_CODES),
    openapi_extra=openapi.request_body(("multipart/form-data", "EditForm"), ("application/json", "EditJson")),
)
async def estimate(
    request: Request,
    db: DB,
    models: Models,
    tenant: Tenant,
    uploads: Uploads,
    content_type: ContentType = "",
) -> Estimate:
    """The same body as `POST /v1/edits`; answers what that submit would run and may cost.

    `estimated_usd` is the upper bound a submit would reserve, at the prices of its `lane` (the
    economy lane pays batch prices; null for a model without confirmed prices);
    `budget_remaining_usd` is what each budget period (`day`, `month`, `total`) has left before
    this job, null where the tenant has no limit."""
    options, sources, mask = await inputs.read_edit(request, db, tenant, content_type, uploads)

    def run() -> Estimate:
        prepared = prepare(db, models, tenant=tenant, options=options, sources=sources, mask=mask)
        return answer(db, prepared)

    return await anyio.to_thread.run_sync(run)
